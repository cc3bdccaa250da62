//! Everything a request needs, built once from the configuration: providers, the
//! authenticator, the policy store, shared state, limits, PII profiles, the audit log, and the
//! lifecycle (in-flight requests, draining). The proxy and the admin listener both work
//! from it; it knows neither.

mod lifecycle;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::audit::Audit;
use crate::auth::Authenticator;
use crate::config::Config;
use crate::limits::Limiter;
use crate::policy::PolicyStore;
use crate::provider::Upstreams;
use crate::state::StateStore;

pub use lifecycle::{InFlightGuard, Lifecycle};

/// Everything a request needs, built once from the configuration.
pub struct Gateway {
    pub config: Config,
    pub upstreams: Upstreams,
    pub auth: Authenticator,
    /// Authorization policies; `None` when the config has no `policy` section.
    pub policy: Option<Arc<PolicyStore>>,
    /// Shared state: in process, or Redis shared by every replica (`state`).
    pub state: StateStore,
    /// Limits and usage counters (nothing is limited without a `limits` section).
    pub limits: Arc<Limiter>,
    /// How long a concurrency slot outlives a replica that vanished while holding it.
    pub lease_ttl: Duration,
    /// PII profiles (none configured: prompts are forwarded as sent).
    pub pii: crate::pii::Profiles,
    /// Where tool calls go (`tools.backends`).
    pub tool_backends: crate::tools::backends::Backends,
    /// Semantic tool selection (`tools.selection`), with the registry's tools embedded.
    pub selector: Option<Arc<crate::tools::select::Selector>>,
    /// `high` calls waiting for a person, in the shared state.
    pub approvals: crate::tools::approvals::Approvals,
    /// Clients' `Idempotency-Key`s and their stored answers, in the shared state.
    pub idempotency: crate::idempotency::Idempotency,
    /// Who created each Responses API response, and its conversation's placeholders.
    pub conversations: Arc<crate::conversation::Conversations>,
    /// Announces new pending approvals (`tools.approvals.webhook_url`).
    pub approval_webhook: Option<crate::tools::approvals::Webhook>,
    /// The audit log; `None` when the config has no `audit` section.
    pub audit: Option<Arc<Audit>>,
    pub lifecycle: Lifecycle,
    /// Unix time Warden started; the `created` of listed models.
    pub started_at: u64,
}

/// Under Redis Cluster, says at start-up which limit profiles key nothing by tenant:
/// exact, but every request's counters share one slot, so one shard serves them all.
fn warn_single_slot_profiles(config: &Config) {
    let cluster = config.state().redis.is_some_and(|r| r.is_cluster());
    let Some(limits) = config.limits.as_ref().filter(|_| cluster) else {
        return;
    };
    for (name, profile) in &limits.profiles {
        if profile.tag_scope() == crate::config::TagScope::Global {
            tracing::warn!(
                profile = %name,
                "limit profile keys no limit by tenant: under Redis Cluster all its counters share one hash slot, so one shard serves every request it admits"
            );
        }
    }
}

impl Gateway {
    pub fn new(config: Config) -> anyhow::Result<Gateway> {
        let upstreams = Upstreams::from_config(&config)?;
        let auth = Authenticator::from_config(&config.auth)?;
        let policy = match &config.policy {
            Some(p) => Some(Arc::new(PolicyStore::open_for(&p.dir, &config)?)),
            None => {
                tracing::warn!(
                    "no `policy` configured: every authenticated caller may use every model"
                );
                None
            }
        };
        let started_at = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        let state = StateStore::from_config(&config.state())?;
        let limits = Limiter::from_config(config.limits.as_ref(), &state);
        warn_single_slot_profiles(&config);
        if limits.has_usd_budgets() {
            let unpriced = unpriced_models(&upstreams, policy.as_deref());
            if !unpriced.is_empty() {
                tracing::warn!(
                    models = %unpriced.join(", "),
                    "models without a price: USD budgets refuse them unless a budget sets on_unpriced: allow"
                );
            }
        }
        let lease_ttl = config
            .providers
            .values()
            .map(|p| p.timeouts.total())
            .max()
            .unwrap_or_default()
            * (config.retry.max_attempts.max(1))
            + Duration::from_secs(60);
        let pii = crate::pii::Profiles::from_config(config.pii.as_ref())?;
        let tool_backends = crate::tools::backends::Backends::from_config(config.tools.as_ref())?;
        let sealer = Arc::new(crate::state::Sealer::from_env(
            &config.state().encryption_key_env,
        )?);
        let approvals = crate::tools::approvals::Approvals::new(state.clone(), sealer.clone());
        let idempotency = crate::idempotency::Idempotency::new(state.clone(), sealer.clone());
        let conversations = Arc::new(crate::conversation::Conversations::new(
            state.clone(),
            sealer,
            Duration::from_secs(config.state().responses_ttl_days * 86_400),
        ));
        if !conversations.usable() {
            tracing::warn!(
                env = %config.state().encryption_key_env,
                "state: no shared key: a Responses API conversation continues only on the replica that started it"
            );
        }
        if !idempotency.usable() {
            tracing::warn!(
                env = %config.state().encryption_key_env,
                "state: no shared key: requests with an Idempotency-Key are refused (503) until it is set on every replica"
            );
        }
        let needs_approvals = policy
            .as_ref()
            .is_some_and(|p| p.current().tools.iter().any(|t| t.def.approval.is_some()));
        if needs_approvals && !approvals.usable() {
            anyhow::bail!(
                "tools: approvals are kept in Redis and sealed; set {} (the same value on every replica)",
                config.state().encryption_key_env
            );
        }
        if let Some(pii_config) = &config.pii {
            let tools: Vec<String> = policy.as_ref().map_or_else(Vec::new, |p| {
                p.current()
                    .tools
                    .iter()
                    .map(|t| t.def.name.clone())
                    .collect()
            });
            for (name, profile) in &pii_config.profiles {
                if let Some(missing) = profile
                    .keep_terms_from_tools
                    .iter()
                    .find(|t| !tools.contains(t))
                {
                    anyhow::bail!(
                        "pii.profiles.{name}.keep_terms_from_tools: no tool `{missing}` in the tool registry"
                    );
                }
            }
        }
        let selector = match config.tools.as_ref().and_then(|t| t.selection.as_ref()) {
            None => None,
            Some(sel) => {
                let selector = Arc::new(crate::tools::select::Selector::load(sel)?);
                if let Some(store) = &policy {
                    let warm = selector.clone();
                    // Every set's tools are embedded before it becomes active.
                    store.prepare_with(Box::new(move |set| warm.warm(&set.tools)));
                }
                Some(selector)
            }
        };
        let approval_webhook = config
            .tools
            .as_ref()
            .and_then(|t| t.approvals.webhook_url.as_deref())
            .map(crate::tools::approvals::Webhook::new)
            .transpose()?;
        let audit = match &config.audit {
            Some(a) => Some(Audit::start(a).map_err(|e| anyhow::anyhow!("audit: {e:#}"))?),
            None => None,
        };
        if config
            .audit
            .as_ref()
            .is_some_and(|a| a.capture == crate::config::CaptureMode::Redacted)
            && config.pii.is_none()
        {
            tracing::warn!(
                "audit: capture: redacted keeps text only for requests a PII profile redacted, and no `pii` section is configured: nothing will be captured"
            );
        }
        Ok(Gateway {
            config,
            upstreams,
            auth,
            policy,
            state,
            limits,
            lease_ttl,
            pii,
            tool_backends,
            selector,
            approvals,
            idempotency,
            conversations,
            approval_webhook,
            audit,
            lifecycle: Lifecycle::default(),
            started_at,
        })
    }
}

/// Configured models the policy directory's pricing has no price for today.
fn unpriced_models(upstreams: &Upstreams, policy: Option<&PolicyStore>) -> Vec<String> {
    let today = chrono::Utc::now().date_naive();
    let set = policy.map(PolicyStore::current);
    upstreams
        .model_names
        .iter()
        .filter_map(|name| upstreams.route(name))
        .filter(|m| {
            let mut names: Vec<&str> = vec![m.name.as_str()];
            names.extend(m.targets.iter().map(|t| t.upstream_model.as_str()));
            set.as_ref()
                .is_none_or(|s| s.pricing.price(&names, today).is_none())
        })
        .map(|m| m.name.clone())
        .collect()
}
