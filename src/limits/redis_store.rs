//! The Redis store, shared by every replica. An admission is one Lua script: every counter
//! of the request is checked and, only if all admit, charged — on Redis's own clock, in one
//! round trip, so replicas cannot over-admit between them. Settlement (credit/debit, slot
//! release, usage counters) is a second script, run after the response.
//!
//! An admission that committed but whose answer was lost (a timeout) must not leak its
//! slot or its estimate: the admission sets a marker under its lease id, and settlement
//! consumes it — with the marker it corrects the estimate and frees the slot, without it
//! (the admission never committed) it charges what was spent as new. Each settlement runs
//! once under its id, so a retry after an unanswered attempt is a no-op.
//!
//! Counters: request and token rates are GCRA arrival times; concurrency slots are sorted
//! sets of lease ids scored by expiry (a crashed replica's slots expire); budgets are
//! integers (nanodollars or tokens) per calendar period; usage is a hash per tenant and
//! period. All keys expire on their own.
//!
//! Key names (under `<prefix>:limits:`) start with a hash tag: the tenant's for counters
//! keyed by tenant and for a request's own marks (admission, settlement) and usage, the
//! global `{*}` for counters keyed otherwise. Settlements are batched per tag.

use std::collections::HashMap;
use std::time::Duration;

use std::sync::Arc;

use super::plan::{Plan, Settlement};
use super::usage::{TenantUsage, by_model};
use super::{Admission, Periods, StoreError, Verdict};
use crate::state::redis::{Connection, millis};
use crate::state::{Key, RedisState};

/// The limits' namespace in the shared state.
const NAMESPACE: &str = "limits";

/// Checks a plan; with ARGV[5] = 1 charges it when every counter admits, and then marks
/// the admission (the last key) for ARGV[6] ms when ARGV[6] > 0.
const CHECK: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local nr, nt, nc, nb = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local commit = ARGV[5] == '1'
local marker_ttl = tonumber(ARGV[6])
local a, k, ok = 7, 1, 1
local out = {}
local function push(...) for _, v in ipairs({...}) do out[#out + 1] = v end end
local tats, leases, budgets = {}, {}, {}
for i = 1, nr + nt do
  -- A peek (the admin API) reads request counters without counting itself.
  local period, limit, amount = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), commit and 1 or 0
  if i > nr then amount = tonumber(ARGV[a + 2]); a = a + 3 else a = a + 2 end
  local interval = period / limit
  local tat = tonumber(redis.call('GET', KEYS[k]) or now)
  if tat < now then tat = now end
  local new_tat = tat + interval * amount
  local allow_at = new_tat - period
  if now < allow_at then
    ok = 0
    push(0, math.max(0, math.floor((period - (tat - now)) / interval + 1e-9)),
         math.ceil(allow_at - now), math.ceil(tat - now))
  else
    push(1, math.floor((period - (new_tat - now)) / interval + 1e-9), 0, math.ceil(new_tat - now))
    tats[k] = new_tat
  end
  k = k + 1
end
for i = 1, nc do
  local n
  if commit then
    redis.call('ZREMRANGEBYSCORE', KEYS[k], '-inf', now)
    n = redis.call('ZCARD', KEYS[k])
  else
    n = redis.call('ZCOUNT', KEYS[k], now, '+inf')
  end
  if commit and n >= tonumber(ARGV[a]) then ok = 0; push(0, n) else push(1, n) end
  leases[k] = {ARGV[a + 1], tonumber(ARGV[a + 2])}
  a = a + 3; k = k + 1
end
for i = 1, nb do
  local used = tonumber(redis.call('GET', KEYS[k]) or '0')
  if commit and used + tonumber(ARGV[a + 1]) > tonumber(ARGV[a]) then ok = 0; push(0, used) else push(1, used) end
  budgets[k] = {ARGV[a + 1], ARGV[a + 2]}
  a = a + 3; k = k + 1
end
if commit and ok == 1 then
  for i, tat in pairs(tats) do
    redis.call('SET', KEYS[i], tostring(tat), 'PX', math.max(1, math.ceil(tat - now)))
  end
  for i, l in pairs(leases) do
    redis.call('ZADD', KEYS[i], now + l[2], l[1])
    redis.call('PEXPIRE', KEYS[i], l[2])
  end
  for i, b in pairs(budgets) do
    redis.call('INCRBY', KEYS[i], b[1])
    redis.call('PEXPIRE', KEYS[i], b[2])
  end
  if marker_ttl > 0 then redis.call('SET', KEYS[#KEYS], '1', 'PX', marker_ttl) end
end
if not commit then ok = 0 end
table.insert(out, 1, ok)
return out
"#;

/// Applies a batch of settlements (ARGV[1] of them, each with its own counts and
/// arguments); returns each settlement's budgets' amounts used afterwards, in order.
/// Per settlement: KEYS `done` (set once: a repeated settlement changes nothing) and,
/// with an admission, its marker (consumed: present means the admission committed, so
/// the estimate is corrected by `delta`; absent means it did not, so `fresh` is charged).
const SETTLE: &str = r#"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local a, k = 2, 1
local out = {}
for s = 1, tonumber(ARGV[1]) do
  local nt, nb, nl, nu = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  local done_ttl, has_admission = ARGV[a + 4], ARGV[a + 5] == '1'
  a = a + 6
  local first = redis.call('SET', KEYS[k], '1', 'NX', 'PX', done_ttl)
  k = k + 1
  local admitted = true
  if has_admission then
    if first then admitted = redis.call('DEL', KEYS[k]) == 1 end
    k = k + 1
  end
  for i = 1, nt do
    local period, limit = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
    local delta = admitted and tonumber(ARGV[a + 2]) or tonumber(ARGV[a + 3])
    if first and delta ~= 0 then
      local tat = tonumber(redis.call('GET', KEYS[k]) or now)
      if tat < now then tat = now end
      tat = tat + delta * period / limit
      if tat > now then
        redis.call('SET', KEYS[k], tostring(tat), 'PX', math.max(1, math.ceil(tat - now)))
      else
        redis.call('DEL', KEYS[k])
      end
    end
    a = a + 4; k = k + 1
  end
  for i = 1, nb do
    if first then
      out[#out + 1] = redis.call('INCRBY', KEYS[k], admitted and ARGV[a] or ARGV[a + 1])
      redis.call('PEXPIRE', KEYS[k], ARGV[a + 2])
    else
      out[#out + 1] = tonumber(redis.call('GET', KEYS[k]) or '0')
    end
    a = a + 3; k = k + 1
  end
  for i = 1, nl do
    if first then redis.call('ZREM', KEYS[k], ARGV[a]) end
    a = a + 1; k = k + 1
  end
  if nu > 0 then
    local day, month, day_ttl, month_ttl = KEYS[k], KEYS[k + 1], ARGV[a], ARGV[a + 1]
    a = a + 2; k = k + 2
    for i = 1, nu do
      if first then
        redis.call('HINCRBY', day, ARGV[a], ARGV[a + 1])
        redis.call('HINCRBY', month, ARGV[a], ARGV[a + 1])
      end
      a = a + 2
    end
    if first then
      redis.call('PEXPIRE', day, day_ttl)
      redis.call('PEXPIRE', month, month_ttl)
    end
  end
end
return out
"#;

/// How long a settlement's id is remembered (retries come within minutes).
const SETTLED_TTL: Duration = Duration::from_secs(6 * 3600);

/// Settlements wait this long to be sent together: they happen after the answer, and
/// one script per batch keeps Redis round trips off busy request paths.
const SETTLE_BATCH_WINDOW: Duration = Duration::from_millis(5);
const SETTLE_BATCH_MAX: usize = 128;

type SettleReply = tokio::sync::oneshot::Sender<Result<Vec<i64>, StoreError>>;

pub struct RedisStore {
    state: Arc<RedisState>,
    check: redis::Script,
    settle: redis::Script,
    batcher: std::sync::OnceLock<tokio::sync::mpsc::Sender<(Settlement, SettleReply)>>,
}

impl RedisStore {
    pub fn new(state: Arc<RedisState>) -> RedisStore {
        RedisStore {
            state,
            check: redis::Script::new(CHECK),
            settle: redis::Script::new(SETTLE),
            batcher: std::sync::OnceLock::new(),
        }
    }

    /// The Redis name of one of the limits' keys (already tagged: `{tag}:…`).
    fn key(&self, key: &str) -> String {
        self.state.name(Key::new(NAMESPACE, key))
    }

    async fn with_connection<T, F, Fut>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Connection) -> Fut,
        Fut: std::future::Future<Output = redis::RedisResult<T>>,
    {
        self.state
            .with_connection(f)
            .await
            .map_err(|e| StoreError(e.0))
    }

    async fn run_check(&self, plan: &Plan, commit: bool) -> Result<Verdict, StoreError> {
        let mut inv = self.check.prepare_invoke();
        inv.arg(plan.requests.len())
            .arg(plan.tokens.len())
            .arg(plan.concurrent.len())
            .arg(plan.budgets.len())
            .arg(u8::from(commit));
        // Only a committing admission that settlement will correct is marked.
        let marked = commit
            && !plan.lease.is_empty()
            && !(plan.tokens.is_empty() && plan.concurrent.is_empty() && plan.budgets.is_empty());
        inv.arg(if marked { millis(plan.lease_ttl) } else { 0 });
        for r in &plan.requests {
            inv.key(self.key(&r.key)).arg(millis(r.period)).arg(r.limit);
        }
        for t in &plan.tokens {
            inv.key(self.key(&t.key))
                .arg(millis(t.period))
                .arg(t.limit)
                .arg(t.amount);
        }
        for c in &plan.concurrent {
            inv.key(self.key(&c.key))
                .arg(c.limit)
                .arg(&c.id)
                .arg(millis(c.ttl));
        }
        for b in &plan.budgets {
            inv.key(self.key(&b.key))
                .arg(b.limit)
                .arg(b.amount)
                .arg(millis(b.ttl()));
        }
        if marked {
            inv.key(self.admission_key(&plan.tag, &plan.lease));
        }
        let out: Vec<i64> = self
            .with_connection(|mut con| async move { inv.invoke_async(&mut con).await })
            .await?;
        parse_verdict(plan, &out, commit)
    }

    pub async fn check(&self, plan: &Plan) -> Result<Verdict, StoreError> {
        self.run_check(plan, true).await
    }

    pub async fn peek(&self, plan: &Plan) -> Result<Verdict, StoreError> {
        self.run_check(plan, false).await
    }

    /// Queues a settlement for the next batch and waits for its result.
    pub async fn settle(
        self: &std::sync::Arc<Self>,
        s: &Settlement,
    ) -> Result<Vec<i64>, StoreError> {
        let tx = self.batcher.get_or_init(|| {
            let (tx, rx) = tokio::sync::mpsc::channel(4096);
            tokio::spawn(Self::settle_batches(std::sync::Arc::downgrade(self), rx));
            tx
        });
        let (reply, answer) = tokio::sync::oneshot::channel();
        tx.send((s.clone(), reply))
            .await
            .map_err(|_| StoreError("settlement queue closed".into()))?;
        answer
            .await
            .map_err(|_| StoreError("settlement dropped".into()))?
    }

    /// Sends queued settlements in batches: one script per batch.
    async fn settle_batches(
        store: std::sync::Weak<Self>,
        mut rx: tokio::sync::mpsc::Receiver<(Settlement, SettleReply)>,
    ) {
        while let Some(first) = rx.recv().await {
            tokio::time::sleep(SETTLE_BATCH_WINDOW).await;
            let mut batch = vec![first];
            while batch.len() < SETTLE_BATCH_MAX {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let Some(store) = store.upgrade() else {
                return;
            };
            // One script per hash tag: the keys of one script share one slot. Usage
            // whose tenant's tag is not its settlement's is applied in its own tag; its
            // reply is nobody's.
            let mut by_tag: HashMap<String, Vec<(Settlement, SettleReply)>> = HashMap::new();
            for (s, reply) in batch {
                let (main, usage) = s.split_usage();
                if let Some(usage) = usage {
                    let (nobody, _) = tokio::sync::oneshot::channel();
                    by_tag
                        .entry(usage.tag.clone())
                        .or_default()
                        .push((usage, nobody));
                }
                if main.is_empty() {
                    let _ = reply.send(Ok(Vec::new()));
                } else {
                    by_tag
                        .entry(main.tag.clone())
                        .or_default()
                        .push((main, reply));
                }
            }
            for (_, group) in by_tag {
                let settlements: Vec<&Settlement> = group.iter().map(|(s, _)| s).collect();
                match store.settle_now(&settlements).await {
                    Ok(used) => {
                        let mut used = used.into_iter();
                        for (s, reply) in group {
                            let mine: Vec<i64> = used.by_ref().take(s.budgets.len()).collect();
                            let _ = reply.send(Ok(mine));
                        }
                    }
                    Err(e) => {
                        for (_, reply) in group {
                            let _ = reply.send(Err(StoreError(e.0.clone())));
                        }
                    }
                }
            }
        }
    }

    async fn settle_now(&self, batch: &[&Settlement]) -> Result<Vec<i64>, StoreError> {
        let mut inv = self.settle.prepare_invoke();
        inv.arg(batch.len());
        for s in batch {
            let fields: Vec<(String, i64)> = s.usage.iter().flat_map(|u| u.fields()).collect();
            inv.arg(s.tokens.len())
                .arg(s.budgets.len())
                .arg(s.leases.len())
                .arg(fields.len())
                .arg(millis(SETTLED_TTL))
                .arg(u8::from(s.admission.is_some()));
            inv.key(self.key(&format!("{}:settled|{}", s.tag, s.id)));
            if let Some(lease) = &s.admission {
                inv.key(self.admission_key(&s.tag, lease));
            }
            for t in &s.tokens {
                inv.key(self.key(&t.key))
                    .arg(millis(t.period))
                    .arg(t.limit)
                    .arg(t.delta)
                    .arg(t.fresh);
            }
            for b in &s.budgets {
                inv.key(self.key(&b.key))
                    .arg(b.delta)
                    .arg(b.fresh)
                    .arg(millis(b.ttl));
            }
            for (key, id) in &s.leases {
                inv.key(self.key(key)).arg(id);
            }
            if let Some(u) = &s.usage {
                inv.key(self.usage_key(&u.tenant, &u.day))
                    .key(self.usage_key(&u.tenant, &u.month))
                    .arg(millis(u.day_ttl))
                    .arg(millis(u.month_ttl));
                for (field, value) in fields {
                    inv.arg(field).arg(value);
                }
            }
        }
        self.with_connection(|mut con| async move { inv.invoke_async(&mut con).await })
            .await
    }

    /// The marker of a committed admission, by its lease id.
    fn admission_key(&self, tag: &str, lease: &str) -> String {
        self.key(&format!("{tag}:admitted|{lease}"))
    }

    fn usage_key(&self, tenant: &str, period: &str) -> String {
        let tag = crate::state::tag(Some(tenant));
        self.key(&format!("{tag}:usage|{tenant}@{period}"))
    }

    pub async fn usage(&self, tenant: &str, periods: &Periods) -> Result<TenantUsage, StoreError> {
        let mut pipe = redis::pipe();
        pipe.cmd("HGETALL")
            .arg(self.usage_key(tenant, &periods.day))
            .cmd("HGETALL")
            .arg(self.usage_key(tenant, &periods.month));
        let (day, month): (HashMap<String, i64>, HashMap<String, i64>) = self
            .with_connection(|mut con| async move { pipe.query_async(&mut con).await })
            .await?;
        Ok(TenantUsage {
            day: periods.day.clone(),
            month: periods.month.clone(),
            today: by_model(&day),
            this_month: by_model(&month),
        })
    }
}

/// Reads the script's flat answer: `ok`, then 4 numbers per rate counter, 2 per slot
/// counter and 2 per budget.
fn parse_verdict(plan: &Plan, out: &[i64], commit: bool) -> Result<Verdict, StoreError> {
    let expected = 1
        + 4 * (plan.requests.len() + plan.tokens.len())
        + 2 * (plan.concurrent.len() + plan.budgets.len());
    if out.len() != expected {
        return Err(StoreError(format!(
            "unexpected answer of {} values (expected {expected})",
            out.len()
        )));
    }
    let allowed = out.first() == Some(&1);
    let mut rest = out.iter().skip(1).copied();
    let mut next = || rest.next().unwrap_or(0);
    let mut rate = |limit: u64| {
        let (ok, remaining, retry_ms, reset_ms) = (next(), next(), next(), next());
        Admission {
            allowed: ok == 1,
            limit,
            remaining: (remaining.max(0) as u64).min(limit),
            reset: Duration::from_millis(reset_ms.max(0) as u64),
            retry_after: (ok != 1).then(|| Duration::from_millis(retry_ms.max(1) as u64)),
        }
    };
    let requests = plan.requests.iter().map(|r| rate(r.limit)).collect();
    let tokens = plan.tokens.iter().map(|t| rate(t.limit)).collect();
    let mut rest = out
        .get(1 + 4 * (plan.requests.len() + plan.tokens.len())..)
        .unwrap_or_default()
        .chunks_exact(2)
        .map(|pair| (pair.first() == Some(&1), pair.get(1).copied().unwrap_or(0)));
    let concurrent = plan
        .concurrent
        .iter()
        .filter_map(|_| rest.next())
        .map(|(ok, n)| (ok, n.max(0) as u64 + u64::from(allowed && commit)))
        .collect();
    let budgets = plan
        .budgets
        .iter()
        .filter_map(|b| rest.next().map(|r| (r, b.amount)))
        .map(|((ok, used), amount)| (ok, if allowed { used + amount } else { used }))
        .collect();
    Ok(Verdict {
        allowed,
        requests,
        tokens,
        concurrent,
        budgets,
    })
}
