//! Stage 4, rate limits: request-rate limits from named profiles, counted per tenant,
//! subject, API key, model, route or client IP, in-process (`governor` GCRA, the embedded
//! default) or in Redis (one atomic Lua script per admission, shared by every replica).
//! The tightest limit feeds OpenAI's `x-ratelimit-*-requests` headers.

mod local;
mod redis_store;

use std::sync::Arc;
use std::time::Duration;

use crate::config::{KeyPart, LimitBackend, LimitProfile, LimitsConfig, OnStoreError};
use crate::telemetry::metrics;

/// One counter to charge: its key and its quota.
#[derive(Debug, Clone)]
pub struct Charge {
    pub key: String,
    pub limit: u32,
    pub period: Duration,
}

/// The outcome for the tightest limit of a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admission {
    pub allowed: bool,
    pub limit: u32,
    pub remaining: u32,
    /// Until the counter is back to its full limit.
    pub reset: Duration,
    /// When a refused request may be retried.
    pub retry_after: Option<Duration>,
}

/// What a limit can be keyed by, for one request.
#[derive(Debug, Clone, Default)]
pub struct KeyFacts<'a> {
    pub tenant: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub api_key: Option<&'a str>,
    pub model: Option<&'a str>,
    pub route: &'a str,
    pub client_ip: Option<String>,
}

/// The store failed; the profile's `on_store_error` decides.
#[derive(Debug, thiserror::Error)]
#[error("rate-limit store unavailable: {0}")]
pub struct StoreError(pub String);

enum Store {
    Local(local::LocalStore),
    Redis(Box<redis_store::RedisStore>),
}

pub struct Limiter {
    config: LimitsConfig,
    store: Store,
}

/// What [`Limiter::admit`] decided.
pub enum Outcome {
    /// No profile applies.
    Unlimited,
    Checked(Admission),
    /// The store failed and the profile says `deny`.
    StoreDown,
}

impl Limiter {
    pub fn from_config(config: &LimitsConfig) -> anyhow::Result<Arc<Limiter>> {
        let store = match config.backend {
            LimitBackend::Local => Store::Local(local::LocalStore::default()),
            LimitBackend::Redis => {
                let redis = config
                    .redis
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("limits.redis is required"))?;
                Store::Redis(Box::new(redis_store::RedisStore::new(redis)?))
            }
        };
        Ok(Arc::new(Limiter {
            config: config.clone(),
            store,
        }))
    }

    /// The profile a request uses: its policy rule's, else the default.
    pub fn profile<'a>(
        &'a self,
        from_policy: Option<&'a str>,
    ) -> Option<(&'a str, &'a LimitProfile)> {
        let name = from_policy.or(self.config.default_profile.as_deref())?;
        self.config
            .profiles
            .get_key_value(name)
            .map(|(k, v)| (k.as_str(), v))
    }

    /// Charges one request against every limit of the profile.
    pub async fn admit(&self, profile_name: Option<&str>, facts: &KeyFacts<'_>) -> Outcome {
        let Some((name, profile)) = self.profile(profile_name) else {
            return Outcome::Unlimited;
        };
        let charges: Vec<Charge> = profile
            .requests
            .iter()
            .enumerate()
            .map(|(i, limit)| Charge {
                key: key_for(name, i, &limit.key, facts),
                limit: limit.limit,
                period: Duration::from_millis(limit.per.millis()),
            })
            .collect();
        if charges.is_empty() {
            return Outcome::Unlimited;
        }
        let result = match &self.store {
            Store::Local(s) => Ok(s.admit(&charges)),
            Store::Redis(s) => s.admit(&charges).await,
        };
        match result {
            Ok(admission) => {
                let label = if admission.allowed {
                    "allowed"
                } else {
                    "limited"
                };
                metrics()
                    .rate_limit_decisions
                    .with_label_values(&[name, label])
                    .inc();
                Outcome::Checked(admission)
            }
            Err(e) => {
                metrics().rate_limit_store_errors.inc();
                match profile.on_store_error {
                    OnStoreError::Allow => {
                        tracing::warn!(error = %e, profile = name, "rate-limit store unavailable; admitting (on_store_error: allow)");
                        Outcome::Unlimited
                    }
                    OnStoreError::Deny => {
                        tracing::warn!(error = %e, profile = name, "rate-limit store unavailable; refusing (on_store_error: deny)");
                        Outcome::StoreDown
                    }
                }
            }
        }
    }
}

/// `profile|index|part=value|…`; parts without a value count as `-`.
fn key_for(profile: &str, index: usize, parts: &[KeyPart], f: &KeyFacts<'_>) -> String {
    let mut key = format!("{profile}|{index}");
    for part in parts {
        let (name, value) = match part {
            KeyPart::Tenant => ("tenant", f.tenant),
            KeyPart::Subject => ("subject", f.subject),
            KeyPart::ApiKey => ("api_key", f.api_key),
            KeyPart::Model => ("model", f.model),
            KeyPart::Route => ("route", Some(f.route)),
            KeyPart::ClientIp => ("ip", f.client_ip.as_deref()),
        };
        key.push('|');
        key.push_str(name);
        key.push('=');
        key.push_str(value.unwrap_or("-"));
    }
    key
}

/// The tightest of several admissions: a refusal first, then the fewest remaining.
fn tightest(all: Vec<Admission>) -> Admission {
    all.into_iter()
        .min_by_key(|a| (a.allowed, a.remaining, std::cmp::Reverse(a.reset)))
        .unwrap_or(Admission {
            allowed: true,
            limit: 0,
            remaining: 0,
            reset: Duration::ZERO,
            retry_after: None,
        })
}

/// OpenAI-style duration for `x-ratelimit-reset-*` (`250ms`, `1.5s`, `6m0s`).
pub fn format_reset(d: Duration) -> String {
    let ms = d.as_millis();
    if ms < 1000 {
        format!("{ms}ms")
    } else if ms < 60_000 {
        let s = format!("{:.3}", d.as_secs_f64());
        format!("{}s", s.trim_end_matches('0').trim_end_matches('.'))
    } else {
        format!("{}m{}s", ms / 60_000, (ms % 60_000) / 1000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_name_their_parts() {
        let f = KeyFacts {
            tenant: Some("acme"),
            model: Some("m"),
            route: "chat_completions",
            ..Default::default()
        };
        assert_eq!(
            key_for(
                "p",
                0,
                &[KeyPart::Tenant, KeyPart::Subject, KeyPart::Model],
                &f
            ),
            "p|0|tenant=acme|subject=-|model=m"
        );
    }

    #[test]
    fn reset_formats() {
        assert_eq!(format_reset(Duration::from_millis(250)), "250ms");
        assert_eq!(format_reset(Duration::from_millis(1500)), "1.5s");
        assert_eq!(format_reset(Duration::from_secs(2)), "2s");
        assert_eq!(format_reset(Duration::from_secs(360)), "6m0s");
    }

    #[test]
    fn tightest_prefers_refusals_then_fewest_remaining() {
        let a = |allowed, remaining| Admission {
            allowed,
            limit: 10,
            remaining,
            reset: Duration::ZERO,
            retry_after: None,
        };
        assert_eq!(tightest(vec![a(true, 5), a(true, 2)]).remaining, 2);
        assert!(!tightest(vec![a(true, 0), a(false, 3)]).allowed);
    }
}
