//! Limits in Redis, shared by every replica: all of a request's counters are checked and,
//! only if every one admits it, charged — in one Lua script (GCRA on Redis's own clock),
//! so one round trip per admission and no over-admission between replicas.

use std::time::Duration;

use redis::aio::ConnectionManager;

use super::{Admission, Charge, StoreError, tightest};
use crate::config::RedisConfig;

const GCRA: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local n = #KEYS
local out = {}
local tats = {}
local ok = 1
for i = 1, n do
  local period = tonumber(ARGV[2 * i - 1])
  local limit = tonumber(ARGV[2 * i])
  local interval = period / limit
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval
  local allow_at = new_tat - period
  if now < allow_at then
    ok = 0
    out[i] = {0, 0, math.ceil(allow_at - now), math.ceil(tat - now)}
  else
    out[i] = {1, math.floor((period - (new_tat - now)) / interval + 1e-9), 0, math.ceil(new_tat - now)}
  end
  tats[i] = new_tat
end
if ok == 1 then
  for i = 1, n do
    redis.call('SET', KEYS[i], tostring(tats[i]), 'PX', math.max(1, math.ceil(tats[i] - now)))
  end
end
return out
"#;

pub struct RedisStore {
    client: redis::Client,
    manager: tokio::sync::OnceCell<ConnectionManager>,
    script: redis::Script,
    timeout: Duration,
    prefix: String,
}

impl RedisStore {
    pub fn new(config: &RedisConfig) -> anyhow::Result<RedisStore> {
        Ok(RedisStore {
            client: redis::Client::open(config.url.as_str())?,
            manager: tokio::sync::OnceCell::new(),
            script: redis::Script::new(GCRA),
            timeout: Duration::from_millis(config.timeout_ms),
            prefix: config.key_prefix.clone(),
        })
    }

    pub async fn admit(&self, charges: &[Charge]) -> Result<Admission, StoreError> {
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
                .map_err(|e| StoreError(e.to_string()))?;
            let mut con = manager.clone();
            let mut invocation = self.script.prepare_invoke();
            for c in charges {
                invocation.key(format!("{}:{}", self.prefix, c.key));
                invocation.arg(c.period.as_millis() as u64).arg(c.limit);
            }
            let rows: Vec<(i64, i64, i64, i64)> = invocation
                .invoke_async(&mut con)
                .await
                .map_err(|e| StoreError(e.to_string()))?;
            Ok::<_, StoreError>(rows)
        };
        let rows = tokio::time::timeout(self.timeout * 4, call)
            .await
            .map_err(|_| StoreError(format!("no answer within {:?}", self.timeout * 4)))??;
        let all = rows
            .into_iter()
            .zip(charges)
            .map(|((ok, remaining, retry_ms, reset_ms), c)| Admission {
                allowed: ok == 1,
                limit: c.limit,
                remaining: remaining.clamp(0, i64::from(c.limit)) as u32,
                reset: Duration::from_millis(reset_ms.max(0) as u64),
                retry_after: (ok != 1).then(|| Duration::from_millis(retry_ms.max(1) as u64)),
            })
            .collect();
        Ok(tightest(all))
    }
}
