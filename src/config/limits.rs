//! Limit settings: named profiles that policy rules select with `settings.limits` —
//! request rates, token rates, concurrent requests and spending budgets, each counted by
//! a chosen key. Where the counters live is the `state` section's (`limits.backend` and
//! `limits.redis` remain as its aliases).

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::Deserialize;

use super::{Invalid, RedisConfig, StateBackend, invalid};

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitsConfig {
    /// Alias of `state.backend`, from before the `state` section (set one or the other).
    #[serde(default)]
    pub backend: Option<StateBackend>,
    /// Alias of `state.redis` (set one or the other).
    #[serde(default)]
    pub redis: Option<RedisConfig>,
    /// Profile for requests whose policy rule names none (or with no policy).
    #[serde(default)]
    pub default_profile: Option<String>,
    pub profiles: BTreeMap<String, LimitProfile>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LimitProfile {
    /// Request-rate limits; every one must admit the request.
    #[serde(default)]
    pub requests: Vec<RequestLimit>,
    /// Token-rate limits (prompt + completion tokens), charged with the request's estimate
    /// and settled with the provider's usage.
    #[serde(default)]
    pub tokens: Vec<TokenLimit>,
    /// Requests (streams included) in flight at once.
    #[serde(default)]
    pub concurrent: Vec<ConcurrencyLimit>,
    /// Spending caps per calendar day or month (UTC), in USD or tokens.
    #[serde(default)]
    pub budgets: Vec<Budget>,
    /// When the store cannot be reached, for rates and concurrency: `allow` (default) or
    /// `deny`. Budgets have their own setting.
    #[serde(default)]
    pub on_store_error: OnStoreError,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TokenLimit {
    pub limit: u64,
    pub per: Period,
    #[serde(default)]
    pub key: Vec<KeyPart>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConcurrencyLimit {
    pub limit: u32,
    #[serde(default)]
    pub key: Vec<KeyPart>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Budget {
    /// Shown in the admin API, metrics and logs; defaults to `<per>-<usd|tokens>`.
    #[serde(default)]
    pub name: Option<String>,
    /// Cap in US dollars (priced by `kind: Pricing` in the policy directory).
    #[serde(default)]
    pub usd: Option<f64>,
    /// Cap in tokens (prompt + completion).
    #[serde(default)]
    pub tokens: Option<u64>,
    pub per: BudgetPeriod,
    /// Usually `[tenant]` or `[subject]`.
    #[serde(default)]
    pub key: Vec<KeyPart>,
    /// Shares of the cap that raise a metric and a log event when crossed.
    #[serde(default = "default_soft")]
    pub soft: Vec<f64>,
    /// When the store cannot be reached: `deny` (default for budgets) or `allow`.
    #[serde(default = "deny")]
    pub on_store_error: OnStoreError,
    /// A USD budget and a model without a price: `deny` (default: the request is refused,
    /// since it could not be charged) or `allow` (it passes uncharged).
    #[serde(default)]
    pub on_unpriced: OnUnpriced,
}

/// What a USD budget does with requests to a model that has no price.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnUnpriced {
    #[default]
    Deny,
    Allow,
}

fn default_soft() -> Vec<f64> {
    vec![0.8]
}
fn deny() -> OnStoreError {
    OnStoreError::Deny
}

impl Budget {
    pub fn label(&self) -> String {
        self.name.clone().unwrap_or_else(|| {
            let unit = if self.usd.is_some() { "usd" } else { "tokens" };
            format!("{}-{unit}", self.per.label())
        })
    }
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum BudgetPeriod {
    Day,
    Month,
}

impl BudgetPeriod {
    pub fn label(self) -> &'static str {
        match self {
            BudgetPeriod::Day => "day",
            BudgetPeriod::Month => "month",
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RequestLimit {
    pub limit: u32,
    pub per: Period,
    /// What the limit is counted by; an empty list is one counter for everyone.
    #[serde(default)]
    pub key: Vec<KeyPart>,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    Second,
    Minute,
    Hour,
    Day,
}

impl Period {
    pub fn label(self) -> &'static str {
        match self {
            Period::Second => "second",
            Period::Minute => "minute",
            Period::Hour => "hour",
            Period::Day => "day",
        }
    }

    pub fn millis(self) -> u64 {
        match self {
            Period::Second => 1_000,
            Period::Minute => 60_000,
            Period::Hour => 3_600_000,
            Period::Day => 86_400_000,
        }
    }
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum KeyPart {
    Tenant,
    Subject,
    ApiKey,
    Model,
    Route,
    ClientIp,
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OnStoreError {
    #[default]
    Allow,
    Deny,
}

/// Which Redis Cluster hash tags a profile's counters carry (see `state::tag`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TagScope {
    /// No counters.
    Empty,
    /// Every counter is keyed by tenant: one slot per tenant.
    Tenant,
    /// No counter is keyed by tenant: every request's counters share the global slot.
    Global,
    /// Some are and some are not: one admission touches two slots.
    Mixed,
}

impl LimitsConfig {
    /// With `cluster` (Redis Cluster), a profile whose admission would touch two hash
    /// slots is refused: Redis Cluster runs a script on one slot only.
    pub(crate) fn validate(&self, cluster: bool) -> Result<(), Invalid> {
        if let Some(d) = &self.default_profile
            && !self.profiles.contains_key(d)
        {
            return Err(invalid(
                &["limits", "default_profile"],
                format!("unknown profile `{d}`"),
            ));
        }
        for (name, p) in &self.profiles {
            let path = ["limits", "profiles", name.as_str()];
            p.validate(&path)?;
            if cluster && p.tag_scope() == TagScope::Mixed {
                return Err(invalid(
                    &path,
                    "with Redis Cluster a profile must key all its limits by `tenant` or none of them \
                     (one admission runs on one hash slot; see docs/limits.md)",
                ));
            }
        }
        Ok(())
    }
}

impl LimitProfile {
    /// The hash tags the profile's counters carry.
    pub fn tag_scope(&self) -> TagScope {
        let keys = self
            .requests
            .iter()
            .map(|l| &l.key)
            .chain(self.tokens.iter().map(|l| &l.key))
            .chain(self.concurrent.iter().map(|l| &l.key))
            .chain(self.budgets.iter().map(|l| &l.key));
        let (mut tenant, mut global) = (false, false);
        for key in keys {
            if key.contains(&KeyPart::Tenant) {
                tenant = true;
            } else {
                global = true;
            }
        }
        match (tenant, global) {
            (false, false) => TagScope::Empty,
            (true, false) => TagScope::Tenant,
            (false, true) => TagScope::Global,
            (true, true) => TagScope::Mixed,
        }
    }

    fn validate(&self, path: &[&str]) -> Result<(), Invalid> {
        if self.requests.iter().any(|r| r.limit == 0)
            || self.tokens.iter().any(|r| r.limit == 0)
            || self.concurrent.iter().any(|r| r.limit == 0)
        {
            return Err(invalid(path, "limits must be at least 1"));
        }
        for b in &self.budgets {
            match (b.usd, b.tokens) {
                (Some(usd), None) if usd > 0.0 && usd.is_finite() => {}
                (None, Some(tokens)) if tokens > 0 => {}
                _ => {
                    return Err(invalid(
                        path,
                        format!(
                            "budget `{}` needs exactly one of `usd` or `tokens`, greater than 0",
                            b.label()
                        ),
                    ));
                }
            }
            if b.soft.iter().any(|s| !(*s > 0.0 && *s < 1.0)) {
                return Err(invalid(
                    path,
                    format!(
                        "budget `{}`: `soft` shares must be between 0 and 1",
                        b.label()
                    ),
                ));
            }
        }
        Ok(())
    }
}
