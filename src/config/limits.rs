//! Rate-limit settings: the store (in-process or Redis) and named profiles that policy
//! rules select with `settings.limits`.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    #[serde(default)]
    pub backend: LimitBackend,
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    /// Profile for requests whose policy rule names none (or with no policy).
    #[serde(default)]
    pub default_profile: Option<String>,
    pub profiles: BTreeMap<String, LimitProfile>,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum LimitBackend {
    /// In-process GCRA (`governor`): limits hold per replica.
    #[default]
    Local,
    /// Redis: one atomic Lua script per admission, limits shared by every replica.
    Redis,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    pub url: String,
    /// Longest wait for Redis before `on_store_error` decides.
    #[serde(default = "default_redis_timeout")]
    pub timeout_ms: u64,
    /// Prefix of every key Warden writes.
    #[serde(default = "default_redis_prefix")]
    pub key_prefix: String,
}

fn default_redis_timeout() -> u64 {
    50
}
fn default_redis_prefix() -> String {
    "warden:rl".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitProfile {
    /// Request-rate limits; every one must admit the request.
    #[serde(default)]
    pub requests: Vec<RequestLimit>,
    /// When the store cannot be reached: `allow` (default for request rates) or `deny`.
    #[serde(default)]
    pub on_store_error: OnStoreError,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestLimit {
    pub limit: u32,
    pub per: Period,
    /// What the limit is counted by; an empty list is one counter for everyone.
    #[serde(default)]
    pub key: Vec<KeyPart>,
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Second,
    Minute,
    Hour,
    Day,
}

impl Period {
    pub fn millis(self) -> u64 {
        match self {
            Period::Second => 1_000,
            Period::Minute => 60_000,
            Period::Hour => 3_600_000,
            Period::Day => 86_400_000,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum KeyPart {
    Tenant,
    Subject,
    ApiKey,
    Model,
    Route,
    ClientIp,
}

#[derive(Debug, Clone, Copy, Deserialize, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnStoreError {
    #[default]
    Allow,
    Deny,
}
