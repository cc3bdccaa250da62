//! Results of a model per input text, least recently used first out, keyed by SHA-256 of
//! a per-process random key and the text: the cache holds no plaintext, and its keys
//! cannot be matched against a text's plain hash.

use std::num::NonZeroUsize;
use std::sync::{Arc, Mutex, MutexGuard};

use lru::LruCache;
use sha2::{Digest, Sha256};

pub struct TextCache<V> {
    entries: Mutex<LruCache<[u8; 32], Arc<V>>>,
    key: [u8; 32],
}

impl<V> TextCache<V> {
    /// A cache of at most `capacity` results (at least one).
    pub fn new(capacity: usize) -> TextCache<V> {
        let mut key = [0u8; 32];
        rand::Rng::fill(&mut rand::rng(), &mut key[..]);
        TextCache {
            entries: Mutex::new(LruCache::new(
                NonZeroUsize::new(capacity.max(1)).unwrap_or(NonZeroUsize::MIN),
            )),
            key,
        }
    }

    fn key(&self, text: &str) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(text.as_bytes());
        h.finalize().into()
    }

    fn lock(&self) -> MutexGuard<'_, LruCache<[u8; 32], Arc<V>>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The result cached for `text`.
    pub fn get(&self, text: &str) -> Option<Arc<V>> {
        let key = self.key(text);
        self.lock().get(&key).cloned()
    }

    pub fn put(&self, text: &str, value: Arc<V>) {
        let key = self.key(text);
        self.lock().put(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_most_recent_results_under_keyed_hashes() {
        let cache: TextCache<u32> = TextCache::new(2);
        cache.put("a", Arc::new(1));
        cache.put("b", Arc::new(2));
        assert_eq!(cache.get("a").as_deref(), Some(&1));
        cache.put("c", Arc::new(3));
        assert!(cache.get("b").is_none(), "least recently used goes first");
        assert_eq!(cache.get("c").as_deref(), Some(&3));
        let other: TextCache<u32> = TextCache::new(2);
        assert_ne!(cache.key("a"), other.key("a"), "keys differ per cache");
    }
}
