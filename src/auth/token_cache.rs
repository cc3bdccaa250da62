//! A bounded cache of token outcomes keyed by the SHA-256 of the token, never the token
//! itself. Entries expire at a fixed instant (the caller passes `min(exp, now + ttl)`).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use sha2::{Digest, Sha256};

pub type TokenKey = [u8; 32];

pub fn key_of(token: &str) -> TokenKey {
    Sha256::digest(token.as_bytes()).into()
}

pub struct TokenCache<T> {
    entries: Mutex<HashMap<TokenKey, (T, Instant)>>,
    capacity: usize,
}

impl<T: Clone> TokenCache<T> {
    pub fn new(capacity: usize) -> Self {
        TokenCache {
            entries: Mutex::new(HashMap::new()),
            capacity,
        }
    }

    /// The cached value, if present and not expired.
    pub fn get(&self, key: &TokenKey) -> Option<T> {
        let entries = self.entries.lock().ok()?;
        let (value, expires) = entries.get(key)?;
        (*expires > Instant::now()).then(|| value.clone())
    }

    pub fn insert(&self, key: TokenKey, value: T, expires: Instant) {
        if self.capacity == 0 || expires <= Instant::now() {
            return;
        }
        let Ok(mut entries) = self.entries.lock() else {
            return;
        };
        if entries.len() >= self.capacity {
            let now = Instant::now();
            entries.retain(|_, (_, e)| *e > now);
            if entries.len() >= self.capacity {
                entries.clear();
            }
        }
        entries.insert(key, (value, expires));
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
        assert!(c.entries.lock().unwrap().len() <= 2);
        assert_eq!(c.get(&key_of("d")), Some(4));
    }
}
