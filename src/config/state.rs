//! Where shared state lives (`state:`): in process (the embedded default: each replica
//! counts alone) or in Redis (every replica shares limits, and next idempotency keys,
//! approvals and sessions). `limits.backend` and `limits.redis` are accepted as aliases.

use std::path::{Path, PathBuf};

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Invalid, invalid};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct StateConfig {
    #[serde(default)]
    pub backend: StateBackend,
    /// Required with `backend: redis`.
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    /// The environment variable whose value (any text; its SHA-256 is the AES-256-GCM
    /// key) seals pending approvals and stored answers in the state. Every replica sharing
    /// Redis needs the same value; in process, a random key is drawn when it is unset.
    #[serde(default = "default_encryption_key_env")]
    pub encryption_key_env: String,
    /// How long Warden keeps who created each Responses API response it passed, and the
    /// placeholders of its conversation: as long as the provider keeps stored responses.
    #[serde(default = "default_responses_ttl_days")]
    pub responses_ttl_days: u64,
    /// With `backend: local`, the most entries the state holds; at it, the namespace with
    /// the most entries (stored responses, under a flood of them) drops those that expire
    /// soonest.
    #[serde(default = "default_local_max_entries")]
    pub local_max_entries: usize,
}

/// The default of `state.local_max_entries`.
pub const DEFAULT_LOCAL_MAX_ENTRIES: usize = 200_000;

fn default_local_max_entries() -> usize {
    DEFAULT_LOCAL_MAX_ENTRIES
}

fn default_encryption_key_env() -> String {
    "WARDEN_STATE_KEY".into()
}

fn default_responses_ttl_days() -> u64 {
    30
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum StateBackend {
    /// In process: state holds per replica.
    #[default]
    Local,
    /// Redis: state shared by every replica (atomic scripts, Redis's clock).
    Redis,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// One Redis server (or a managed service's single endpoint):
    /// `redis://[user:password@]host:port/[db]` or `rediss://` for TLS. Exactly one of
    /// `url`, `cluster` and `sentinel`.
    #[serde(default)]
    pub url: Option<String>,
    /// Redis Cluster: some of its nodes (`redis://host:port` or `rediss://`), from which
    /// the client learns the rest and follows slot moves and failovers.
    #[serde(default)]
    pub cluster: Vec<String>,
    /// A primary found through Redis Sentinel, asked again after a failover.
    #[serde(default)]
    pub sentinel: Option<SentinelConfig>,
    /// Longest wait for one Redis operation before the caller's failure setting decides
    /// (e.g. a limit profile's `on_store_error`).
    #[serde(default = "default_redis_timeout")]
    pub timeout_ms: u64,
    /// First part of every key Warden writes: `<key_prefix>:<namespace>:{<tag>}:<name>`.
    #[serde(default = "default_redis_prefix")]
    pub key_prefix: String,
    /// An ACL user (managed services' users), instead of one in the URL.
    #[serde(default)]
    pub username: Option<String>,
    /// Its password, e.g. `${REDIS_PASSWORD}`; never logged.
    #[serde(default)]
    pub password: Option<String>,
    /// With `rediss://`: PEM CA certificates the server's certificate must chain to,
    /// instead of the system's roots; relative to the config file.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// With `rediss://`: a client certificate and its key (PEM) for servers that verify
    /// clients (`tls-auth-clients yes`).
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}

/// Redis Sentinel: where the sentinels are and which primary to ask them for. The
/// primary is reached with the URLs' scheme (TLS with `rediss://`) and `state.redis`'s
/// user and password.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SentinelConfig {
    /// The name the sentinels monitor the primary under (`sentinel monitor <name> …`).
    pub master: String,
    /// The sentinels: `redis://host:port` (usually port 26379) or `rediss://`.
    pub nodes: Vec<String>,
    /// The sentinels' own ACL user and password, when they require one.
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default)]
    pub password: Option<String>,
}

/// How Warden reaches Redis.
#[derive(Debug, Clone, Copy)]
pub enum RedisTopology<'a> {
    Single(&'a str),
    Cluster(&'a [String]),
    Sentinel(&'a SentinelConfig),
}

impl RedisConfig {
    /// The settings for one server at `url`, everything else at its default.
    pub fn at(url: impl Into<String>) -> RedisConfig {
        RedisConfig {
            url: Some(url.into()),
            cluster: Vec::new(),
            sentinel: None,
            timeout_ms: default_redis_timeout(),
            key_prefix: default_redis_prefix(),
            username: None,
            password: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
        }
    }

    /// Which of `url`, `cluster` and `sentinel` is set (validation keeps it to one).
    pub fn topology(&self) -> RedisTopology<'_> {
        match (&self.url, &self.sentinel) {
            (Some(url), _) => RedisTopology::Single(url),
            (None, Some(s)) => RedisTopology::Sentinel(s),
            (None, None) => RedisTopology::Cluster(&self.cluster),
        }
    }

    /// Whether Warden reaches Redis Cluster (its scripts then run on one slot each).
    pub fn is_cluster(&self) -> bool {
        matches!(self.topology(), RedisTopology::Cluster(_))
    }

    /// Every URL given: the server, the cluster's nodes or the sentinels.
    fn urls(&self) -> impl Iterator<Item = &str> {
        self.url
            .iter()
            .chain(&self.cluster)
            .chain(self.sentinel.iter().flat_map(|s| &s.nodes))
            .map(String::as_str)
    }

    /// Whether the URLs ask for TLS.
    pub fn tls(&self) -> bool {
        self.urls().any(|u| u.starts_with("rediss://"))
    }

    pub(crate) fn validate(&self, path: &[&str]) -> Result<(), Invalid> {
        let given = usize::from(self.url.is_some())
            + usize::from(!self.cluster.is_empty())
            + usize::from(self.sentinel.is_some());
        if given != 1 {
            return Err(invalid(
                path,
                "`redis` needs exactly one of `url` (one server), `cluster` (its nodes) and `sentinel`",
            ));
        }
        if let Some(s) = &self.sentinel
            && (s.master.is_empty() || s.nodes.is_empty())
        {
            return Err(invalid(
                path,
                "`redis.sentinel` needs `master` and at least one of its `nodes`",
            ));
        }
        if self
            .urls()
            .any(|u| !u.starts_with("redis://") && !u.starts_with("rediss://"))
        {
            return Err(invalid(
                path,
                "Redis URLs must start with redis:// or rediss:// (TLS)",
            ));
        }
        if self.tls() && self.urls().any(|u| u.starts_with("redis://")) {
            return Err(invalid(
                path,
                "Redis URLs must all use TLS (rediss://) or none of them",
            ));
        }
        let files = self.ca_file.is_some() || self.cert_file.is_some() || self.key_file.is_some();
        if files && !self.tls() {
            return Err(invalid(
                path,
                "`redis.ca_file`, `cert_file` and `key_file` need a rediss:// URL",
            ));
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(invalid(
                path,
                "`redis.cert_file` and `redis.key_file` go together",
            ));
        }
        if self.password.is_some() && self.urls().any(|u| u.contains('@')) {
            return Err(invalid(
                path,
                "give the Redis credentials in the URL or in `username`/`password`, not both",
            ));
        }
        Ok(())
    }

    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        for file in [&mut self.ca_file, &mut self.cert_file, &mut self.key_file]
            .into_iter()
            .flatten()
        {
            *file = base.join(&*file);
        }
    }
}

fn default_redis_timeout() -> u64 {
    50
}

fn default_redis_prefix() -> String {
    "warden".into()
}

impl Default for StateConfig {
    fn default() -> Self {
        StateConfig {
            backend: StateBackend::default(),
            redis: None,
            encryption_key_env: default_encryption_key_env(),
            responses_ttl_days: default_responses_ttl_days(),
            local_max_entries: default_local_max_entries(),
        }
    }
}

impl StateConfig {
    pub(crate) fn resolve_paths(&mut self, base: &Path) {
        if let Some(redis) = self.redis.as_mut() {
            redis.resolve_paths(base);
        }
    }

    pub(crate) fn validate(&self, path: &[&str]) -> Result<(), Invalid> {
        if let Some(redis) = &self.redis {
            redis.validate(path)?;
        }
        match (&self.backend, &self.redis) {
            (StateBackend::Redis, None) => Err(invalid(
                path,
                "`redis` (`url`, `cluster` or `sentinel`) is required for backend redis",
            )),
            (_, Some(r)) if r.key_prefix.is_empty() || r.key_prefix.contains(['{', '}']) => {
                Err(invalid(
                    path,
                    "`redis.key_prefix` must be non-empty and hold no `{` or `}` (they delimit Redis Cluster hash tags)",
                ))
            }
            (_, Some(r)) if r.timeout_ms == 0 => {
                Err(invalid(path, "`redis.timeout_ms` must be greater than 0"))
            }
            _ if !(1..=3650).contains(&self.responses_ttl_days) => Err(invalid(
                path,
                "`responses_ttl_days` must be between 1 and 3650",
            )),
            _ if self.local_max_entries < 1000 => {
                Err(invalid(path, "`local_max_entries` must be at least 1000"))
            }
            _ => Ok(()),
        }
    }
}
