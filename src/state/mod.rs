//! Shared state: one store, in process or in Redis (the `state` section), for everything
//! Warden must remember across requests — limit counters and usage today; idempotency
//! keys, approvals and sessions next. Its primitives: counters ([`StateStore::add`]),
//! once-marks ([`StateStore::mark_once`]), values with a TTL ([`StateStore::get`],
//! [`StateStore::put`]) and [`StateStore::compare_and_set`]. Modules with their own
//! atomic scripts (the limits) use the Redis connection and key naming directly
//! ([`RedisState`]).
//!
//! Key names are `<prefix>:<namespace>:{<tag>}:<name>`. The hash tag in braces decides a
//! key's Redis Cluster slot: every key one atomic operation touches must carry the same
//! tag. The limits tag a request's keys with its tenant ([`tag`]); a counter not keyed by
//! tenant (e.g. a model-wide limit) carries the global tag `{*}`, so in Redis Cluster a
//! profile must key all its limits by tenant or none of them (see `docs/limits.md`).

mod memory;
pub mod redis;
mod sealed;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{StateBackend, StateConfig};

pub use memory::MemoryState;
pub use redis::RedisState;
pub use sealed::Sealer;

/// The store failed or did not answer in time; the caller's setting decides what follows.
#[derive(Debug, Clone, thiserror::Error)]
#[error("state store unavailable: {0}")]
pub struct StateError(pub String);

/// The hash tag of everything about `tenant` (`{t:<tenant>}`), or the global tag `{*}`.
/// Braces and `%` in a tenant are percent-encoded, so no two tenants share a tag.
pub fn tag(tenant: Option<&str>) -> String {
    match tenant {
        None => "{*}".to_string(),
        Some(t) => {
            let mut out = String::with_capacity(t.len() + 4);
            out.push_str("{t:");
            for c in t.chars() {
                match c {
                    '{' => out.push_str("%7B"),
                    '}' => out.push_str("%7D"),
                    '%' => out.push_str("%25"),
                    c => out.push(c),
                }
            }
            out.push('}');
            out
        }
    }
}

/// SHA-256 (hex) of `parts`, each prefixed with its length, so that no two lists of parts
/// share a digest: the names of keys made of several values (a principal's idempotency
/// key, an approval's binding).
pub fn parts_digest(parts: &[&[u8]]) -> String {
    use sha2::{Digest, Sha256};
    let mut h = Sha256::new();
    for part in parts {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    hex::encode(h.finalize())
}

/// A key: the module it belongs to (`limits`, `idempotency`, …) and its tagged name
/// (`{t:acme}:…`).
#[derive(Debug, Clone, Copy)]
pub struct Key<'a> {
    pub namespace: &'static str,
    pub name: &'a str,
}

impl<'a> Key<'a> {
    pub fn new(namespace: &'static str, name: &'a str) -> Key<'a> {
        Key { namespace, name }
    }
}

/// The configured store.
#[derive(Clone)]
pub enum StateStore {
    Memory(Arc<MemoryState>),
    Redis(Arc<RedisState>),
}

impl StateStore {
    pub fn from_config(config: &StateConfig) -> anyhow::Result<StateStore> {
        Ok(match (config.backend, &config.redis) {
            (StateBackend::Local, _) => {
                StateStore::Memory(Arc::new(MemoryState::new(config.local_max_entries)))
            }
            (StateBackend::Redis, Some(redis)) => {
                StateStore::Redis(Arc::new(RedisState::new(redis)?))
            }
            (StateBackend::Redis, None) => anyhow::bail!("state.redis is required"),
        })
    }

    /// Adds `delta` to a counter (created at 0) and returns its new value; a new counter
    /// expires after `ttl`.
    pub async fn add(&self, key: Key<'_>, delta: i64, ttl: Duration) -> Result<i64, StateError> {
        match self {
            StateStore::Memory(m) => Ok(m.add(key, delta, ttl)),
            StateStore::Redis(r) => r.add(key, delta, ttl).await,
        }
    }

    /// Sets a mark that expires after `ttl`; true when it was not set before.
    pub async fn mark_once(&self, key: Key<'_>, ttl: Duration) -> Result<bool, StateError> {
        match self {
            StateStore::Memory(m) => Ok(m.mark_once(key, ttl)),
            StateStore::Redis(r) => r.mark_once(key, ttl).await,
        }
    }

    pub async fn get(&self, key: Key<'_>) -> Result<Option<Vec<u8>>, StateError> {
        match self {
            StateStore::Memory(m) => Ok(m.get(key)),
            StateStore::Redis(r) => r.get(key).await,
        }
    }

    /// Stores `value` for `ttl`.
    pub async fn put(&self, key: Key<'_>, value: &[u8], ttl: Duration) -> Result<(), StateError> {
        match self {
            StateStore::Memory(m) => {
                m.put(key, value, ttl);
                Ok(())
            }
            StateStore::Redis(r) => r.put(key, value, ttl).await,
        }
    }

    /// Stores `value` for `ttl` only if the key holds `expected` (`None`: the key is
    /// absent); true when it did.
    pub async fn compare_and_set(
        &self,
        key: Key<'_>,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StateError> {
        match self {
            StateStore::Memory(m) => Ok(m.compare_and_set(key, expected, value, ttl)),
            StateStore::Redis(r) => r.compare_and_set(key, expected, value, ttl).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_get_distinct_tags_without_braces_inside() {
        assert_eq!(tag(Some("acme")), "{t:acme}");
        assert_eq!(tag(None), "{*}");
        assert_eq!(tag(Some("*")), "{t:*}");
        let odd = tag(Some("a}b{c%"));
        assert_eq!(odd, "{t:a%7Db%7Bc%25}");
        assert_ne!(tag(Some("a}")), tag(Some("a%7D")));
    }
}
