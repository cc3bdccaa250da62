//! The Redis store: one managed connection (reconnecting on its own; TLS with `rediss://`,
//! an ACL user), every operation bounded by the configured timeout, and key names under
//! the configured prefix. The
//! primitives are single commands or one small script each, so each is atomic.

use std::time::Duration;

use redis::aio::ConnectionManager;

use super::{Key, StateError};
use crate::config::RedisConfig;

/// Stores the value only when the key holds ARGV[1] (ARGV[3] = 1) or is absent
/// (ARGV[3] = 0); ARGV[2] is the TTL in ms and ARGV[4] the new value.
const COMPARE_AND_SET: &str = r#"
local current = redis.call('GET', KEYS[1])
if ARGV[3] == '1' then
  if current ~= ARGV[1] then return 0 end
elseif current then
  return 0
end
redis.call('SET', KEYS[1], ARGV[4], 'PX', ARGV[2])
return 1
"#;

/// Adds ARGV[1] to the counter and sets its TTL (ARGV[2] ms) when it has none.
const ADD: &str = r#"
local n = redis.call('INCRBY', KEYS[1], ARGV[1])
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return n
"#;

pub struct RedisState {
    client: redis::Client,
    manager: tokio::sync::OnceCell<ConnectionManager>,
    timeout: Duration,
    prefix: String,
    compare_and_set: redis::Script,
    add: redis::Script,
}

/// The client for `config`: its URL, with the ACL user and password given apart, and
/// for `rediss://` the CA and client certificate files. Errors name the setting, never a
/// credential.
fn client(config: &RedisConfig) -> anyhow::Result<redis::Client> {
    use redis::IntoConnectionInfo;
    let mut info = config
        .url
        .as_str()
        .into_connection_info()
        .map_err(|_| anyhow::anyhow!("state.redis.url is not a Redis URL"))?;
    let mut settings = info.redis_settings().clone();
    if let Some(user) = &config.username {
        settings = settings.set_username(user);
    }
    if let Some(password) = &config.password {
        settings = settings.set_password(password);
    }
    info = info.set_redis_settings(settings);
    if !config.tls() {
        return Ok(redis::Client::open(info)?);
    }
    let read = |file: &std::path::Path| {
        std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))
    };
    let root_cert = config.ca_file.as_deref().map(read).transpose()?;
    let client_tls = match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert)?,
            client_key: read(key)?,
        }),
        _ => None,
    };
    redis::Client::build_with_tls(
        info,
        redis::TlsCertificates {
            client_tls,
            root_cert,
        },
    )
    .map_err(|e| anyhow::anyhow!("state.redis TLS settings: {:?}", e.kind()))
}

/// A TTL in whole milliseconds, at least one.
pub fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

impl RedisState {
    pub fn new(config: &RedisConfig) -> anyhow::Result<RedisState> {
        Ok(RedisState {
            client: client(config)?,
            manager: tokio::sync::OnceCell::new(),
            timeout: Duration::from_millis(config.timeout_ms),
            prefix: config.key_prefix.clone(),
            compare_and_set: redis::Script::new(COMPARE_AND_SET),
            add: redis::Script::new(ADD),
        })
    }

    /// The Redis name of `key`: `<prefix>:<namespace>:<name>`.
    pub fn name(&self, key: Key<'_>) -> String {
        format!("{}:{}:{}", self.prefix, key.namespace, key.name)
    }

    /// Runs `f` on the managed connection within the store's time budget (four times the
    /// configured timeout, which bounds connecting and each response).
    pub async fn with_connection<T, F, Fut>(&self, f: F) -> Result<T, StateError>
    where
        F: FnOnce(ConnectionManager) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let call = async {
            let manager = self
                .manager
                .get_or_try_init(|| {
                    let config = redis::aio::ConnectionManagerConfig::new()
                        .set_connection_timeout(Some(self.timeout))
                        .set_response_timeout(Some(self.timeout));
                    ConnectionManager::new_with_config(self.client.clone(), config)
                })
                .await
                .map_err(|e| StateError(e.to_string()))?;
            f(manager.clone())
                .await
                .map_err(|e| StateError(e.to_string()))
        };
        tokio::time::timeout(self.timeout * 4, call)
            .await
            .map_err(|_| StateError(format!("no answer within {:?}", self.timeout * 4)))?
    }

    pub async fn add(&self, key: Key<'_>, delta: i64, ttl: Duration) -> Result<i64, StateError> {
        let mut inv = self.add.prepare_invoke();
        inv.key(self.name(key)).arg(delta).arg(millis(ttl));
        self.with_connection(|mut con| async move { inv.invoke_async(&mut con).await })
            .await
    }

    pub async fn mark_once(&self, key: Key<'_>, ttl: Duration) -> Result<bool, StateError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.name(key))
            .arg(1)
            .arg("NX")
            .arg("PX")
            .arg(millis(ttl));
        let set: Option<String> = self
            .with_connection(|mut con| async move { cmd.query_async(&mut con).await })
            .await?;
        Ok(set.is_some())
    }

    pub async fn get(&self, key: Key<'_>) -> Result<Option<Vec<u8>>, StateError> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(self.name(key));
        self.with_connection(|mut con| async move { cmd.query_async(&mut con).await })
            .await
    }

    pub async fn put(&self, key: Key<'_>, value: &[u8], ttl: Duration) -> Result<(), StateError> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(self.name(key))
            .arg(value)
            .arg("PX")
            .arg(millis(ttl));
        self.with_connection(|mut con| async move { cmd.query_async(&mut con).await })
            .await
    }

    pub async fn compare_and_set(
        &self,
        key: Key<'_>,
        expected: Option<&[u8]>,
        value: &[u8],
        ttl: Duration,
    ) -> Result<bool, StateError> {
        let mut inv = self.compare_and_set.prepare_invoke();
        inv.key(self.name(key))
            .arg(expected.unwrap_or_default())
            .arg(millis(ttl))
            .arg(u8::from(expected.is_some()))
            .arg(value);
        let done: i64 = self
            .with_connection(|mut con| async move { inv.invoke_async(&mut con).await })
            .await?;
        Ok(done == 1)
    }
}
