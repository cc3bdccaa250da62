//! Limits (the request path's stage 6, count and admit): named profiles of request rates, token rates, concurrent requests and
//! budgets (USD or tokens per calendar day or month), each counted by tenant, subject, API
//! key, model, route or client IP. One store interface, two stores: in-process (the
//! embedded default) and Redis (one atomic Lua script per admission, shared by replicas).
//!
//! A request is admitted with an estimate (prompt tokens + `max_tokens`, priced); after the
//! response it is settled with the provider's usage, so the difference is credited or
//! debited and budgets end up charged with what the request really cost.

mod local;
mod plan;
mod redis_store;
mod usage;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{LimitProfile, LimitsConfig, OnStoreError, OnUnpriced};
use crate::policy::pricing::Nanos;
use crate::state::StateStore;
use crate::telemetry::metrics;

pub use plan::{KeyFacts, Periods, subject_id};
pub use usage::{ModelUsage, TenantUsage};

use plan::{Plan, Settlement};

/// The state of one counter after an admission (or a look at it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub allowed: bool,
    pub limit: u64,
    pub remaining: u64,
    /// Until the counter is back to its full limit.
    pub reset: Duration,
    /// When a refused request may be retried.
    pub retry_after: Option<Duration>,
}

/// What one request is expected to cost, for admission.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Demand {
    /// Prompt tokens + the completion tokens it may produce.
    pub tokens: u64,
    /// The estimate priced, in nanodollars (0 when the model has no price).
    pub cost: Nanos,
    /// Whether the model has a price (USD budgets refuse unpriced models by default).
    pub priced: bool,
}

/// What one request really cost, from the provider's usage.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Spent {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    pub cost: Nanos,
}

impl Spent {
    pub fn tokens(&self) -> u64 {
        self.prompt_tokens + self.completion_tokens
    }
}

/// The store failed; the profile's `on_store_error` decides.
#[derive(Debug, thiserror::Error)]
#[error("limit store unavailable: {0}")]
pub struct StoreError(pub String);

/// What each counter of a plan said; `allowed` only when all admit.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    pub allowed: bool,
    pub requests: Vec<Admission>,
    pub tokens: Vec<Admission>,
    /// Requests in flight per concurrency limit (this one included when admitted).
    pub concurrent: Vec<(bool, u64)>,
    /// Amount used per budget (this request's reservation included when admitted).
    pub budgets: Vec<(bool, i64)>,
}

/// Where the counters live: the limits' own in-process store (GCRA on `governor`), or
/// their scripts on the shared Redis state.
enum Store {
    Local(Box<local::LocalStore>),
    Redis(Arc<redis_store::RedisStore>),
}

impl Store {
    async fn check(&self, plan: &Plan) -> Result<Verdict, StoreError> {
        match self {
            Store::Local(s) => Ok(s.check(plan)),
            Store::Redis(s) => s.check(plan).await,
        }
    }

    async fn settle(&self, s: &Settlement) -> Result<Vec<i64>, StoreError> {
        match self {
            Store::Local(l) => Ok(l.settle(s)),
            Store::Redis(r) => r.settle(s).await,
        }
    }

    async fn peek(&self, plan: &Plan) -> Result<Verdict, StoreError> {
        match self {
            Store::Local(s) => Ok(s.peek(plan)),
            Store::Redis(s) => s.peek(plan).await,
        }
    }

    async fn usage(&self, tenant: &str, periods: &Periods) -> Result<TenantUsage, StoreError> {
        match self {
            Store::Local(s) => Ok(s.usage(tenant, periods)),
            Store::Redis(s) => s.usage(tenant, periods).await,
        }
    }
}

pub struct Limiter {
    config: LimitsConfig,
    store: Store,
    /// The shared state, for once-marks (soft-budget announcements).
    state: StateStore,
    /// Settlements the store could not take, retried in the background.
    retry: std::sync::Mutex<std::collections::VecDeque<Settlement>>,
    retrying: std::sync::atomic::AtomicBool,
    /// Settlements started and not finished (drained at shutdown).
    pending: Arc<std::sync::atomic::AtomicUsize>,
}

/// Settlements kept for retry at most; beyond, the oldest is dropped (and counted).
const RETRY_QUEUE: usize = 100_000;

/// Why a request was refused.
#[derive(Debug, Clone)]
pub enum Refusal {
    Requests(Admission),
    Tokens(Admission),
    /// Too many requests in flight for this limit.
    Concurrent {
        limit: u64,
    },
    /// A budget has no room for the request's estimate.
    Budget {
        name: String,
        period: &'static str,
        usd: bool,
        limit: i64,
        used: i64,
    },
    /// The store failed and the profile (or budget) says `deny`.
    StoreDown,
    /// A USD budget applies and the model has no price (`on_unpriced: deny`).
    Unpriced {
        budget: String,
    },
}

/// What [`Limiter::admit`] decided.
pub struct Outcome {
    /// The tightest request-rate and token-rate counters, for the `x-ratelimit-*` headers.
    pub requests: Option<Admission>,
    pub tokens: Option<Admission>,
    pub refusal: Option<Refusal>,
    /// What to settle once the response is done; `None` when nothing was charged.
    pub ticket: Option<Ticket>,
}

impl Outcome {
    fn unlimited() -> Outcome {
        Outcome {
            requests: None,
            tokens: None,
            refusal: None,
            ticket: None,
        }
    }
}

/// A request's admission, to be settled with what it really cost.
#[derive(Debug)]
pub struct Ticket {
    profile: String,
    plan: Plan,
    demand: Demand,
    tenant: Option<String>,
    model: String,
}

impl Limiter {
    /// A limiter for `config`; without one, nothing is limited and usage is counted in
    /// process for the admin API.
    /// Whether any profile has a USD budget (models without a price matter then).
    pub fn has_usd_budgets(&self) -> bool {
        self.config
            .profiles
            .values()
            .any(|p| p.budgets.iter().any(|b| b.usd.is_some()))
    }

    /// A limiter for `config`, counting in `state`; without a config nothing is limited
    /// and usage is still counted for the admin API.
    pub fn from_config(config: Option<&LimitsConfig>, state: &StateStore) -> Arc<Limiter> {
        let config = config.cloned().unwrap_or_else(|| LimitsConfig {
            backend: None,
            redis: None,
            default_profile: None,
            profiles: Default::default(),
        });
        let store = match state {
            StateStore::Memory(_) => Store::Local(Box::default()),
            StateStore::Redis(redis) => {
                Store::Redis(Arc::new(redis_store::RedisStore::new(redis.clone())))
            }
        };
        Arc::new(Limiter {
            config,
            store,
            state: state.clone(),
            retry: Default::default(),
            retrying: Default::default(),
            pending: Default::default(),
        })
    }

    /// The profile a request uses: its policy rule's, else the default. (Policies that
    /// name a profile that is not configured are refused when they load.)
    pub fn profile<'a>(
        &'a self,
        from_policy: Option<&'a str>,
    ) -> Option<(&'a str, &'a LimitProfile)> {
        let lookup = |name: &str| {
            self.config
                .profiles
                .get_key_value(name)
                .map(|(k, v)| (k.as_str(), v))
        };
        from_policy
            .and_then(lookup)
            .or_else(|| self.config.default_profile.as_deref().and_then(lookup))
    }

    /// Charges the profile's request-rate limits alone: they need no estimate, so a
    /// request over its rate is refused before anything expensive (PII detection with the
    /// model, counting a large prompt) runs. [`Limiter::admit`] then charges the rest.
    /// (Cheap requests skip this step: with Redis it costs a round trip.)
    pub async fn admit_requests(
        &self,
        profile_name: Option<&str>,
        facts: &KeyFacts<'_>,
    ) -> Outcome {
        let Some((name, profile)) = self.profile(profile_name) else {
            return Outcome::unlimited();
        };
        if profile.requests.is_empty() {
            return Outcome::unlimited();
        }
        let mut plan = Plan::build(
            name,
            profile,
            facts,
            Demand::default(),
            "",
            Duration::ZERO,
            None,
        );
        plan.tokens.clear();
        plan.concurrent.clear();
        plan.budgets.clear();
        let verdict = match self.store.check(&plan).await {
            Ok(v) => v,
            Err(e) => return self.store_down(name, profile, &e),
        };
        let refusal = plan.refusal(profile, &verdict);
        if let Some(r) = &refusal {
            metrics()
                .limit_refusals
                .with_label_values(&[name, r.kind()])
                .inc();
            metrics()
                .rate_limit_decisions
                .with_label_values(&[name, "limited"])
                .inc();
        }
        Outcome {
            requests: plan::tightest(&verdict.requests),
            tokens: None,
            refusal,
            ticket: None,
        }
    }

    /// Checks every counter of the request's profile — but request rates when
    /// `rates_charged` ([`Limiter::admit_requests`] ran first) — and, only if all admit,
    /// charges them (one request, the demand's tokens and cost, one concurrency slot).
    pub async fn admit(
        &self,
        profile_name: Option<&str>,
        facts: &KeyFacts<'_>,
        demand: Demand,
        lease: (&str, Duration),
        rates_charged: bool,
    ) -> Outcome {
        let (lease_id, lease_ttl) = lease;
        let Some((name, profile)) = self.profile(profile_name) else {
            return Outcome::unlimited();
        };
        if !demand.priced
            && let Some(budget) = profile
                .budgets
                .iter()
                .find(|b| b.usd.is_some() && b.on_unpriced == OnUnpriced::Deny)
        {
            // It could not be charged: a USD budget fails closed on unpriced models.
            metrics()
                .limit_refusals
                .with_label_values(&[name, "unpriced"])
                .inc();
            return Outcome {
                refusal: Some(Refusal::Unpriced {
                    budget: budget.label(),
                }),
                ..Outcome::unlimited()
            };
        }
        // Calendar periods only matter to budgets; formatting dates is not free.
        let periods = (!profile.budgets.is_empty()).then(Periods::now);
        let mut plan = Plan::build(
            name,
            profile,
            facts,
            demand,
            lease_id,
            lease_ttl,
            periods.as_ref(),
        );
        if rates_charged {
            plan.requests.clear();
        }
        if plan.is_empty() {
            return Outcome::unlimited();
        }
        let verdict = match self.store.check(&plan).await {
            Ok(v) => v,
            Err(e) => {
                // The store may have committed before its answer was lost: the ticket's
                // settlement finds out (by the admission's marker) and corrects either way.
                let mut outcome = self.store_down(name, profile, &e);
                outcome.ticket = Some(Ticket {
                    profile: name.to_string(),
                    plan,
                    demand,
                    tenant: facts.tenant.map(str::to_string),
                    model: facts.model.unwrap_or("-").to_string(),
                });
                return outcome;
            }
        };
        let requests = plan::tightest(&verdict.requests);
        let tokens = plan::tightest(&verdict.tokens);
        let refusal = plan.refusal(profile, &verdict);
        let outcome = match &refusal {
            Some(r) => {
                metrics()
                    .limit_refusals
                    .with_label_values(&[name, r.kind()])
                    .inc();
                None
            }
            None => {
                let after: Vec<i64> = verdict.budgets.iter().map(|(_, used)| *used).collect();
                let before: Vec<i64> = after
                    .iter()
                    .zip(&plan.budgets)
                    .map(|(used, b)| used - b.amount)
                    .collect();
                let crossings = plan.crossings(profile, &before, &after);
                self.announce(name, crossings, facts.tenant).await;
                Some(Ticket {
                    profile: name.to_string(),
                    plan,
                    demand,
                    tenant: facts.tenant.map(str::to_string),
                    model: facts.model.unwrap_or("-").to_string(),
                })
            }
        };
        let label = if refusal.is_none() {
            "allowed"
        } else {
            "limited"
        };
        metrics()
            .rate_limit_decisions
            .with_label_values(&[name, label])
            .inc();
        Outcome {
            requests,
            tokens,
            refusal,
            ticket: outcome,
        }
    }

    /// The store failed: budgets follow their own `on_store_error` (deny by default), the
    /// other limits the profile's (allow by default).
    fn store_down(&self, name: &str, profile: &LimitProfile, e: &StoreError) -> Outcome {
        metrics().rate_limit_store_errors.inc();
        let budget_denies = profile
            .budgets
            .iter()
            .any(|b| b.on_store_error == OnStoreError::Deny);
        let rates_deny = profile.on_store_error == OnStoreError::Deny
            && !(profile.requests.is_empty()
                && profile.tokens.is_empty()
                && profile.concurrent.is_empty());
        if budget_denies || rates_deny {
            tracing::warn!(error = %e, profile = name, "limit store unavailable; refusing (on_store_error: deny)");
            metrics()
                .limit_refusals
                .with_label_values(&[name, "store_down"])
                .inc();
            return Outcome {
                requests: None,
                tokens: None,
                refusal: Some(Refusal::StoreDown),
                ticket: None,
            };
        }
        tracing::warn!(error = %e, profile = name, "limit store unavailable; admitting (on_store_error: allow)");
        Outcome::unlimited()
    }

    /// Charges what the request really cost (crediting or debiting the difference to the
    /// estimate), frees its concurrency slot, and adds its usage to the tenant's counters.
    pub async fn settle(
        self: &Arc<Self>,
        ticket: Option<Ticket>,
        usage: UsageFacts<'_>,
        spent: Spent,
    ) {
        let periods = Periods::now();
        let profile = ticket
            .as_ref()
            .and_then(|t| self.config.profiles.get(&t.profile));
        let settlement = ticket.as_ref().map_or_else(
            || Settlement {
                id: uuid::Uuid::new_v4().to_string(),
                tag: crate::state::tag(usage.tenant),
                ..Settlement::default()
            },
            |t| Settlement::for_ticket(&t.plan, t.demand, spent),
        );
        let settlement = settlement.with_usage(usage::UsageEntry::new(
            ticket
                .as_ref()
                .map_or(usage.tenant, |t| t.tenant.as_deref()),
            ticket.as_ref().map_or(usage.model, |t| t.model.as_str()),
            &periods,
            spent,
        ));
        if settlement.is_empty() {
            return;
        }
        match self.store.settle(&settlement).await {
            Ok(used) => {
                if let (Some(t), Some(profile)) = (&ticket, profile) {
                    let before: Vec<i64> = used
                        .iter()
                        .zip(&settlement.budgets)
                        .map(|(u, b)| u - b.delta)
                        .collect();
                    let crossings = t.plan.crossings(profile, &before, &used);
                    self.announce(&t.profile, crossings, t.tenant.as_deref())
                        .await;
                }
            }
            Err(e) => {
                metrics().rate_limit_store_errors.inc();
                tracing::warn!(error = %e, "limit store unavailable; settlement queued for retry");
                self.queue_retry(settlement);
            }
        }
    }

    /// Marks a settlement as started, before its task is spawned; the task holds the
    /// guard until it is done (see [`Limiter::drain`]).
    pub fn settlement_started(&self) -> Pending {
        self.pending
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        Pending(self.pending.clone())
    }

    /// Keeps a settlement the store could not take and makes sure a task retries it
    /// (its id makes a retry of an attempt that did reach the store a no-op).
    fn queue_retry(self: &Arc<Self>, settlement: Settlement) {
        {
            let mut queue = self.retry.lock().unwrap_or_else(|p| p.into_inner());
            if queue.len() >= RETRY_QUEUE {
                queue.pop_front();
                metrics().settlements_dropped.inc();
                tracing::error!("limit settlements: retry queue full; the oldest was dropped");
            }
            queue.push_back(settlement);
            metrics().settlements_queued.set(queue.len() as i64);
        }
        if self
            .retrying
            .swap(true, std::sync::atomic::Ordering::AcqRel)
        {
            return; // a retry task is running
        }
        let limiter = self.clone();
        tokio::spawn(async move {
            let mut wait = Duration::from_millis(250);
            loop {
                tokio::time::sleep(wait).await;
                if limiter.retry_once().await {
                    wait = Duration::from_millis(250);
                } else {
                    wait = (wait * 2).min(Duration::from_secs(10));
                }
                let empty = {
                    let queue = limiter.retry.lock().unwrap_or_else(|p| p.into_inner());
                    queue.is_empty()
                };
                if empty {
                    limiter
                        .retrying
                        .store(false, std::sync::atomic::Ordering::Release);
                    // A settlement queued between the check and the store starts a new task.
                    let again = !limiter
                        .retry
                        .lock()
                        .unwrap_or_else(|p| p.into_inner())
                        .is_empty();
                    if !again
                        || limiter
                            .retrying
                            .swap(true, std::sync::atomic::Ordering::AcqRel)
                    {
                        return;
                    }
                }
            }
        });
    }

    /// Sends every queued settlement once; true when all were taken. While they are out
    /// of the queue they count as pending, so a drain waits for them.
    async fn retry_once(&self) -> bool {
        let _out = self.settlement_started();
        let batch: Vec<Settlement> = {
            let mut queue = self.retry.lock().unwrap_or_else(|p| p.into_inner());
            queue.drain(..).collect()
        };
        let mut failed = Vec::new();
        for settlement in batch {
            if self.store.settle(&settlement).await.is_err() {
                failed.push(settlement);
            }
        }
        let ok = failed.is_empty();
        let mut queue = self.retry.lock().unwrap_or_else(|p| p.into_inner());
        for s in failed.into_iter().rev() {
            queue.push_front(s);
        }
        metrics().settlements_queued.set(queue.len() as i64);
        ok
    }

    /// Waits (up to `limit`) until every settlement started has reached the store or
    /// the retry queue; then tries the queue once more. Called at shutdown, after the
    /// last request finished. Returns how many settlements could not be made.
    pub async fn drain(&self, limit: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + limit;
        while tokio::time::Instant::now() < deadline {
            let pending = self.pending.load(std::sync::atomic::Ordering::Acquire);
            let queued = !self
                .retry
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .is_empty();
            if pending == 0 && !queued {
                break;
            }
            if pending == 0 && queued && self.retry_once().await {
                continue;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.pending.load(std::sync::atomic::Ordering::Acquire)
            + self.retry.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Raises the metric and a log event for each crossing not yet announced this period.
    async fn announce(&self, profile: &str, crossings: Vec<plan::Crossing>, tenant: Option<&str>) {
        for c in crossings {
            let marker = crate::state::Key::new("limits", &c.marker);
            match self.state.mark_once(marker, c.ttl).await {
                Ok(true) => {}
                Ok(false) => continue, // announced already (by this or another replica)
                Err(e) => tracing::debug!(error = %e, "budget threshold marker not written"),
            }
            let share = format!("{}", c.share);
            metrics()
                .budget_thresholds
                .with_label_values(&[profile, c.budget.as_str(), share.as_str()])
                .inc();
            tracing::warn!(
                target: "warden::budget",
                profile,
                budget = %c.budget,
                share = c.share,
                tenant = tenant.unwrap_or("-"),
                "budget soft threshold crossed"
            );
        }
    }

    /// The current state of every limit of every profile that counts by `facts`, without
    /// charging anything (admin API).
    pub async fn inspect(&self, facts: &KeyFacts<'_>) -> Result<Vec<LimitState>, StoreError> {
        let periods = Periods::now();
        let mut out = Vec::new();
        for (name, profile) in &self.config.profiles {
            let plan = Plan::build(
                name,
                profile,
                facts,
                Demand::default(),
                "",
                Duration::ZERO,
                Some(&periods),
            );
            if plan.is_empty() {
                continue;
            }
            let verdict = self.store.peek(&plan).await?;
            out.extend(plan.describe(name, profile, facts, &verdict, &periods));
        }
        Ok(out)
    }

    /// A tenant's usage today and this month, per model (admin API).
    pub async fn usage(&self, tenant: &str) -> Result<TenantUsage, StoreError> {
        self.store.usage(tenant, &Periods::now()).await
    }
}

/// A settlement in progress; counted until dropped.
pub struct Pending(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// Who a request's usage is counted for, when no profile charged it.
#[derive(Debug, Clone, Copy, Default)]
pub struct UsageFacts<'a> {
    pub tenant: Option<&'a str>,
    pub model: &'a str,
}

/// One limit's state, as the admin API shows it.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct LimitState {
    pub profile: String,
    /// `requests`, `tokens`, `concurrent` or `budget`.
    pub kind: &'static str,
    /// The budget's name, for budgets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `second` … `day` for rates, `day` / `month` for budgets, absent for concurrency.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per: Option<&'static str>,
    /// `usd` or `tokens`, for budgets.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<&'static str>,
    /// What the counter is keyed by, e.g. `{"tenant": "acme"}`.
    pub key: std::collections::BTreeMap<&'static str, String>,
    pub limit: f64,
    pub used: f64,
    pub remaining: f64,
    /// Seconds until the counter is full again (rates) or the budget period ends.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reset_seconds: Option<f64>,
}

impl Refusal {
    pub fn kind(&self) -> &'static str {
        match self {
            Refusal::Requests(_) => "requests",
            Refusal::Tokens(_) => "tokens",
            Refusal::Concurrent { .. } => "concurrent",
            Refusal::Budget { .. } => "budget",
            Refusal::StoreDown => "store_down",
            Refusal::Unpriced { .. } => "unpriced",
        }
    }
}

/// OpenAI-style duration for `x-ratelimit-reset-*` (`250ms`, `1.5s`, `6m0s`).
pub fn format_reset(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let s = format!("{:.3}", d.as_secs_f64());
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    } else if ms < 3_600_000 {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    } else {
        format!(
            "{}h{}m{}s",
            ms / 3_600_000,
            (ms % 3_600_000) / 60_000,
            (ms % 60_000) / 1000
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reset_formats() {
        assert_eq!(format_reset(Duration::from_millis(250)), "250ms");
        assert_eq!(format_reset(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_reset(Duration::from_secs(2)), "2s");
        assert_eq!(format_reset(Duration::from_secs(360)), "6m0s");
        assert_eq!(format_reset(Duration::from_secs(86_399)), "23h59m59s");
    }
}
