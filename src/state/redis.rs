//! The Redis store: one server, a Redis Cluster or a primary found through Sentinel
//! ([`Link`]); TLS with `rediss://` and an ACL user on each. Every operation is bounded
//! by the configured timeout, and key names are under the configured prefix. The
//! primitives are single commands or one small script each, so each is atomic; every key
//! one script touches carries one hash tag, so it runs on one cluster slot.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::{ConnectionLike, ConnectionManager, MultiplexedConnection};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{Cmd, Pipeline, RedisFuture, Value};

use super::{Key, StateError};
use crate::config::{RedisConfig, RedisTopology, SentinelConfig};

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

/// How Warden reaches Redis.
enum Link {
    /// One server: a managed connection that reconnects on its own.
    Single {
        client: redis::Client,
        manager: tokio::sync::OnceCell<ConnectionManager>,
    },
    /// Redis Cluster: the cluster connection follows slot moves and failovers, and
    /// reconnects to nodes on its own.
    Cluster {
        client: ClusterClient,
        connection: tokio::sync::OnceCell<ClusterConnection>,
    },
    /// A primary named by the sentinels. Its connection is dropped when it fails or
    /// answers READONLY (a failover demoted it), so the next operation asks again.
    Sentinel {
        sentinels: tokio::sync::Mutex<SentinelClient>,
        primary: ArcSwapOption<MultiplexedConnection>,
    },
}

/// A connection to whichever [`Link`] is configured; scripts and pipelines run on it.
#[derive(Clone)]
pub enum Connection {
    Single(ConnectionManager),
    Cluster(ClusterConnection),
    Primary(MultiplexedConnection),
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
            Connection::Primary(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Primary(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
            Connection::Primary(c) => c.get_db(),
        }
    }
}

pub struct RedisState {
    link: Link,
    timeout: Duration,
    prefix: String,
    compare_and_set: redis::Script,
    add: redis::Script,
}

/// Reads a PEM file named in the settings.
fn read(file: &std::path::Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(file).map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))
}

/// The CA and client certificate for `rediss://`, or `None` without TLS.
fn certificates(config: &RedisConfig) -> anyhow::Result<Option<redis::TlsCertificates>> {
    if !config.tls() {
        return Ok(None);
    }
    let root_cert = config.ca_file.as_deref().map(read).transpose()?;
    let client_tls = match (&config.cert_file, &config.key_file) {
        (Some(cert), Some(key)) => Some(redis::ClientTlsConfig {
            client_cert: read(cert)?,
            client_key: read(key)?,
        }),
        _ => None,
    };
    Ok(Some(redis::TlsCertificates {
        client_tls,
        root_cert,
    }))
}

/// One URL's connection settings, with the ACL user and password given apart. Errors
/// name the setting, never a credential.
fn connection_info(config: &RedisConfig, url: &str) -> anyhow::Result<redis::ConnectionInfo> {
    use redis::IntoConnectionInfo;
    let info = url
        .into_connection_info()
        .map_err(|_| anyhow::anyhow!("state.redis: a URL is not a Redis URL"))?;
    let mut settings = info.redis_settings().clone();
    if let Some(user) = &config.username {
        settings = settings.set_username(user);
    }
    if let Some(password) = &config.password {
        settings = settings.set_password(password);
    }
    Ok(info.set_redis_settings(settings))
}

fn tls_error(e: redis::RedisError) -> anyhow::Error {
    anyhow::anyhow!("state.redis TLS settings: {:?}", e.kind())
}

impl Link {
    fn new(config: &RedisConfig, timeout: Duration) -> anyhow::Result<Link> {
        let certs = certificates(config)?;
        Ok(match config.topology() {
            RedisTopology::Single(url) => {
                let info = connection_info(config, url)?;
                let client = match certs {
                    None => redis::Client::open(info)?,
                    Some(certs) => redis::Client::build_with_tls(info, certs).map_err(tls_error)?,
                };
                Link::Single {
                    client,
                    manager: tokio::sync::OnceCell::new(),
                }
            }
            RedisTopology::Cluster(nodes) => {
                let nodes = nodes
                    .iter()
                    .map(|url| connection_info(config, url))
                    .collect::<anyhow::Result<Vec<_>>>()?;
                let mut builder = ClusterClient::builder(nodes)
                    .connection_timeout(timeout)
                    .response_timeout(timeout)
                    // A slot move or failover is retried within the operation's budget.
                    .retries(3)
                    .min_retry_wait(10)
                    .max_retry_wait(timeout.as_millis() as u64);
                if let Some(certs) = certs {
                    builder = builder.tls(redis::TlsMode::Secure).certs(certs);
                }
                Link::Cluster {
                    client: builder
                        .build()
                        .map_err(|e| anyhow::anyhow!("state.redis.cluster: {:?}", e.kind()))?,
                    connection: tokio::sync::OnceCell::new(),
                }
            }
            RedisTopology::Sentinel(sentinel) => Link::Sentinel {
                sentinels: tokio::sync::Mutex::new(sentinel_client(config, sentinel, certs)?),
                primary: ArcSwapOption::empty(),
            },
        })
    }
}

/// The sentinels' client, which names the primary; TLS and the ACL user apply to both.
fn sentinel_client(
    config: &RedisConfig,
    sentinel: &SentinelConfig,
    certs: Option<redis::TlsCertificates>,
) -> anyhow::Result<SentinelClient> {
    use redis::IntoConnectionInfo;
    let addrs = sentinel
        .nodes
        .iter()
        .map(|url| {
            url.as_str()
                .into_connection_info()
                .map(|i| i.addr().clone())
                .map_err(|_| anyhow::anyhow!("state.redis.sentinel: a node is not a Redis URL"))
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut builder =
        SentinelClientBuilder::new(addrs, &sentinel.master, SentinelServerType::Master)
            .map_err(|e| anyhow::anyhow!("state.redis.sentinel: {:?}", e.kind()))?;
    if let Some(user) = &config.username {
        builder = builder.set_client_to_redis_username(user);
    }
    if let Some(password) = &config.password {
        builder = builder.set_client_to_redis_password(password);
    }
    if let Some(user) = &sentinel.username {
        builder = builder.set_client_to_sentinel_username(user);
    }
    if let Some(password) = &sentinel.password {
        builder = builder.set_client_to_sentinel_password(password);
    }
    if let Some(certs) = certs {
        builder = builder
            .set_client_to_redis_tls_mode(redis::TlsMode::Secure)
            .set_client_to_redis_certificates(certs.clone())
            .set_client_to_sentinel_tls_mode(redis::TlsMode::Secure)
            .set_client_to_sentinel_certificates(certs);
    }
    builder
        .build()
        .map_err(|e| anyhow::anyhow!("state.redis.sentinel: {:?}", e.kind()))
}

/// Whether `e` means the primary's connection is gone or no longer a primary's.
fn lost_primary(e: &redis::RedisError) -> bool {
    e.is_io_error()
        || e.is_connection_dropped()
        || e.is_connection_refusal()
        || e.is_timeout()
        || e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::ReadOnly)
}

/// A TTL in whole milliseconds, at least one.
pub fn millis(d: Duration) -> u64 {
    (d.as_millis() as u64).max(1)
}

impl RedisState {
    pub fn new(config: &RedisConfig) -> anyhow::Result<RedisState> {
        let timeout = Duration::from_millis(config.timeout_ms);
        Ok(RedisState {
            link: Link::new(config, timeout)?,
            timeout,
            prefix: config.key_prefix.clone(),
            compare_and_set: redis::Script::new(COMPARE_AND_SET),
            add: redis::Script::new(ADD),
        })
    }

    /// The Redis name of `key`: `<prefix>:<namespace>:<name>`.
    pub fn name(&self, key: Key<'_>) -> String {
        format!("{}:{}:{}", self.prefix, key.namespace, key.name)
    }

    /// The link's connection, made on first use (and, behind Sentinel, after a loss).
    async fn connect(&self) -> redis::RedisResult<Connection> {
        match &self.link {
            Link::Single { client, manager } => {
                let manager = manager
                    .get_or_try_init(|| {
                        let config = redis::aio::ConnectionManagerConfig::new()
                            .set_connection_timeout(Some(self.timeout))
                            .set_response_timeout(Some(self.timeout));
                        ConnectionManager::new_with_config(client.clone(), config)
                    })
                    .await?;
                Ok(Connection::Single(manager.clone()))
            }
            Link::Cluster { client, connection } => {
                let connection = connection
                    .get_or_try_init(|| client.get_async_connection())
                    .await?;
                Ok(Connection::Cluster(connection.clone()))
            }
            Link::Sentinel { sentinels, primary } => {
                if let Some(c) = primary.load_full() {
                    return Ok(Connection::Primary((*c).clone()));
                }
                let mut sentinels = sentinels.lock().await;
                // Another operation may have asked while this one waited.
                if let Some(c) = primary.load_full() {
                    return Ok(Connection::Primary((*c).clone()));
                }
                let config = redis::AsyncConnectionConfig::new()
                    .set_connection_timeout(Some(self.timeout))
                    .set_response_timeout(Some(self.timeout));
                let c = sentinels.get_async_connection_with_config(&config).await?;
                primary.store(Some(Arc::new(c.clone())));
                Ok(Connection::Primary(c))
            }
        }
    }

    /// Behind Sentinel, drops the primary's connection so the next operation asks the
    /// sentinels which server is primary now.
    fn forget_primary(&self) {
        if let Link::Sentinel { primary, .. } = &self.link {
            primary.store(None);
        }
    }

    /// Runs `f` on the link's connection within the store's time budget (four times the
    /// configured timeout, which bounds connecting and each response).
    pub async fn with_connection<T, F, Fut>(&self, f: F) -> Result<T, StateError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        let call = async {
            let result = match self.connect().await {
                Ok(connection) => f(connection).await,
                Err(e) => Err(e),
            };
            if let Err(e) = &result
                && lost_primary(e)
            {
                self.forget_primary();
            }
            result.map_err(|e| StateError(e.to_string()))
        };
        match tokio::time::timeout(self.timeout * 4, call).await {
            Ok(result) => result,
            Err(_) => {
                self.forget_primary();
                Err(StateError(format!(
                    "no answer within {:?}",
                    self.timeout * 4
                )))
            }
        }
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
