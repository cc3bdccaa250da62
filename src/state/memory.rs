//! The in-process store: one map of entries with expiry times, swept of expired entries
//! every few thousand writes, and bounded: when it holds its most entries, the namespace
//! with the most entries gives up the tenth of the bound that expires soonest (a flood of
//! stored responses gives way before any rate-limit counter does). Each replica has its own.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use super::Key;

/// Writes between sweeps of expired entries.
const SWEEP_EVERY: u64 = 4096;

#[derive(Debug, Clone)]
enum Value {
    Counter(i64),
    Bytes(Vec<u8>),
}

#[derive(Debug)]
struct Entry {
    value: Value,
    expires: Instant,
}

#[derive(Debug, Default)]
struct Entries {
    map: HashMap<(&'static str, String), Entry>,
    writes: u64,
}

#[derive(Debug)]
pub struct MemoryState {
    entries: Mutex<Entries>,
    max_entries: usize,
}

impl Default for MemoryState {
    fn default() -> Self {
        MemoryState::new(crate::config::DEFAULT_LOCAL_MAX_ENTRIES)
    }
}

impl MemoryState {
    /// A store of at most `max_entries` entries (at least 10).
    pub fn new(max_entries: usize) -> MemoryState {
        MemoryState {
            entries: Mutex::default(),
            max_entries: max_entries.max(10),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The map, locked for a write; every few thousand writes it is swept of expired
    /// entries first, and at its bound room is made.
    fn write(&self) -> MutexGuard<'_, Entries> {
        let mut e = self.lock();
        e.writes += 1;
        let full = e.map.len() >= self.max_entries;
        if full || e.writes.is_multiple_of(SWEEP_EVERY) {
            let now = Instant::now();
            e.map.retain(|_, v| v.expires > now);
        }
        if e.map.len() >= self.max_entries {
            self.make_room(&mut e);
        }
        e
    }

    /// Drops the tenth of the bound that expires soonest from the namespace holding the
    /// most entries.
    fn make_room(&self, e: &mut Entries) {
        let mut sizes: HashMap<&'static str, usize> = HashMap::new();
        for (namespace, _) in e.map.keys() {
            *sizes.entry(namespace).or_default() += 1;
        }
        let Some((largest, _)) = sizes.into_iter().max_by_key(|&(_, n)| n) else {
            return;
        };
        let mut candidates: Vec<(Instant, String)> = e
            .map
            .iter()
            .filter(|((namespace, _), _)| *namespace == largest)
            .map(|((_, name), entry)| (entry.expires, name.clone()))
            .collect();
        let dropped = (self.max_entries / 10).clamp(1, candidates.len());
        if dropped < candidates.len() {
            candidates.select_nth_unstable(dropped);
        }
        for (_, name) in candidates.into_iter().take(dropped) {
            e.map.remove(&(largest, name));
        }
        crate::telemetry::metrics()
            .state_evictions
            .with_label_values(&[largest])
            .inc_by(dropped as u64);
    }

    fn id(key: Key<'_>) -> (&'static str, String) {
        (key.namespace, key.name.to_string())
    }

    fn live(e: &Entries, key: Key<'_>) -> Option<Value> {
        e.map
            .get(&Self::id(key))
            .filter(|v| v.expires > Instant::now())
            .map(|v| v.value.clone())
    }

    pub fn add(&self, key: Key<'_>, delta: i64, ttl: Duration) -> i64 {
        let mut e = self.write();
        let now = Instant::now();
        let entry = e.map.entry(Self::id(key)).or_insert(Entry {
            value: Value::Counter(0),
            expires: now + ttl,
        });
        if entry.expires <= now {
            *entry = Entry {
                value: Value::Counter(0),
                expires: now + ttl,
            };
        }
        let total = match entry.value {
            Value::Counter(n) => n.saturating_add(delta),
            Value::Bytes(_) => delta,
        };
        entry.value = Value::Counter(total);
        total
    }

    pub fn mark_once(&self, key: Key<'_>, ttl: Duration) -> bool {
        let mut e = self.write();
        if Self::live(&e, key).is_some() {
            return false;
        }
        e.map.insert(
            Self::id(key),
            Entry {
                value: Value::Counter(1),
                expires: Instant::now() + ttl,
            },
        );
        true
    }

    pub fn get(&self, key: Key<'_>) -> Option<Vec<u8>> {
        match Self::live(&self.lock(), key)? {
            Value::Bytes(b) => Some(b),
            Value::Counter(n) => Some(n.to_string().into_bytes()),
        }
    }

    pub fn put(&self, key: Key<'_>, value: &[u8], ttl: Duration) {
        self.write().map.insert(
            Self::id(key),
            Entry {
                value: Value::Bytes(value.to_vec()),
                expires: Instant::now() + ttl,
            },
        );
    }

    pub fn compare_and_set(
        &self,
        key: Key<'_>,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) -> bool {
        let mut e = self.write();
        let current = match Self::live(&e, key) {
            None => None,
            Some(Value::Bytes(b)) => Some(b),
            Some(Value::Counter(n)) => Some(n.to_string().into_bytes()),
        };
        if current.as_deref() != expected {
            return false;
        }
        e.map.insert(
            Self::id(key),
            Entry {
                value: Value::Bytes(value.to_vec()),
                expires: Instant::now() + ttl,
            },
        );
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: Duration = Duration::from_secs(60);

    #[test]
    fn primitives_behave_as_in_redis() {
        let s = MemoryState::default();
        let k = Key::new("t", "{t:a}:n");
        assert_eq!(s.add(k, 2, MIN), 2);
        assert_eq!(s.add(k, -5, MIN), -3);
        assert_eq!(s.get(k), Some(b"-3".to_vec()));
        let m = Key::new("t", "{t:a}:m");
        assert!(s.mark_once(m, MIN));
        assert!(!s.mark_once(m, MIN));
        let v = Key::new("t", "{t:a}:v");
        assert!(s.compare_and_set(v, None, b"one", MIN));
        assert!(!s.compare_and_set(v, None, b"two", MIN));
        assert!(!s.compare_and_set(v, Some(b"zero"), b"two", MIN));
        assert!(s.compare_and_set(v, Some(b"one"), b"two", MIN));
        assert_eq!(s.get(v), Some(b"two".to_vec()));
        s.put(v, b"three", MIN);
        assert_eq!(s.get(v), Some(b"three".to_vec()));
        assert_eq!(
            s.get(Key::new("other", "{t:a}:v")),
            None,
            "namespaces apart"
        );
    }

    #[test]
    fn at_its_bound_the_largest_namespace_gives_way_soonest_expiring_first() {
        let s = MemoryState::new(100);
        // Rate-limit counters, then a flood of long-lived records.
        for i in 0..20 {
            s.add(Key::new("limits", &format!("c{i}")), 1, MIN);
        }
        for i in 0..200 {
            let ttl = MIN * (1000 + i);
            s.put(Key::new("responses", &format!("r{i}")), b"x", ttl);
        }
        let e = s.lock();
        assert!(e.map.len() <= 100, "{}", e.map.len());
        drop(e);
        for i in 0..20 {
            assert_eq!(
                s.get(Key::new("limits", &format!("c{i}"))),
                Some(b"1".to_vec())
            );
        }
        // The newest record is kept, the oldest (soonest to expire) went first.
        assert!(s.get(Key::new("responses", "r199")).is_some());
        assert!(s.get(Key::new("responses", "r0")).is_none());
    }

    #[test]
    fn entries_expire() {
        let s = MemoryState::default();
        let k = Key::new("t", "x");
        assert!(s.mark_once(k, Duration::from_millis(1)));
        std::thread::sleep(Duration::from_millis(5));
        assert!(s.mark_once(k, MIN), "an expired mark can be set again");
        s.put(Key::new("t", "y"), b"v", Duration::from_millis(1));
        std::thread::sleep(Duration::from_millis(5));
        assert_eq!(s.get(Key::new("t", "y")), None);
        assert!(s.compare_and_set(Key::new("t", "y"), None, b"w", MIN));
    }
}
