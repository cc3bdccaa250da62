//! A bounded cache of token outcomes keyed by the SHA-256 of the token, never the token
//! itself. Entries expire at a fixed instant (the caller passes `min(exp, now + ttl)`);
//! when full, the least recently used entry makes room, so a flood of new tokens pushes
//! out idle entries one by one instead of clearing principals in use.

use std::num::NonZeroUsize;
use std::sync::Mutex;
use std::time::Instant;

use lru::LruCache;
use sha2::{Digest, Sha256};

pub type TokenKey = [u8; 32];

pub fn key_of(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

pub struct TokenCache<T> {
    /// `None` when the capacity is 0: nothing is cached.
    entries: Option<Mutex<LruCache<TokenKey, (T, Instant)>>>,
}

impl<T: Clone> TokenCache<T> {
    pub fn new(capacity: usize) -> Self {
        TokenCache {
            entries: NonZeroUsize::new(capacity).map(|c| Mutex::new(LruCache::new(c))),
        }
    }

    /// The cached value, if present and not expired.
    pub fn get(&self, key: &TokenKey) -> Option<T> {
        let mut entries = self.entries.as_ref()?.lock().ok()?;
        match entries.get(key) {
            Some((value, expires)) if *expires > Instant::now() => Some(value.clone()),
            Some(_) => {
                entries.pop(key);
                None
            }
            None => None,
        }
    }

    pub fn insert(&self, key: TokenKey, value: T, expires: Instant) {
        if expires <= Instant::now() {
            return;
        }
        if let Some(Ok(mut entries)) = self.entries.as_ref().map(Mutex::lock) {
            entries.put(key, (value, expires));
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries
            .as_ref()
            .and_then(|e| e.lock().ok().map(|e| e.len()))
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn expires_and_stays_bounded() {
        let c = TokenCache::new(2);
        let later = Instant::now() + Duration::from_secs(60);
        c.insert(key_of("a"), 1, later);
        c.insert(key_of("b"), 2, Instant::now() - Duration::from_secs(1));
        assert_eq!(c.get(&key_of("a")), Some(1));
        assert_eq!(c.get(&key_of("b")), None);
        c.insert(key_of("c"), 3, later);
        c.insert(key_of("d"), 4, later);
        assert!(c.len() <= 2);
        assert_eq!(c.get(&key_of("d")), Some(4));
    }

    #[test]
    fn a_flood_of_new_tokens_evicts_the_least_recently_used_only() {
        let c = TokenCache::new(100);
        let later = Instant::now() + Duration::from_secs(60);
        c.insert(key_of("in-use"), 0, later);
        for i in 0..1000 {
            c.insert(key_of(&format!("random-{i}")), i, later);
            // The principal in use is read now and then, and stays.
            if i % 50 == 0 {
                assert_eq!(c.get(&key_of("in-use")), Some(0), "at {i}");
            }
        }
        assert_eq!(c.len(), 100);
        assert_eq!(c.get(&key_of("in-use")), Some(0));
        assert_eq!(TokenCache::<u8>::new(0).get(&key_of("x")), None);
    }
}
