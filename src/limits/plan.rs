//! What a profile asks of the store for one request: its counters (named by the profile,
//! the limit and the key parts' values), the amounts to charge, and afterwards the
//! settlement that corrects the estimate. Also the reading of a verdict: which limit
//! refused, the soft thresholds crossed, and the admin API's view of each counter.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{Datelike, NaiveDate, Utc};

use super::usage::UsageEntry;
use super::{Admission, Demand, LimitState, Refusal, Spent, Verdict};
use crate::config::{KeyPart, LimitProfile};
use crate::policy::pricing::usd;

/// What a limit can be keyed by, for one request.
#[derive(Debug, Clone, Default)]
pub struct KeyFacts<'a> {
    pub tenant: Option<&'a str>,
    /// The subject as [`subject_id`] writes it.
    pub subject: Option<String>,
    pub api_key: Option<&'a str>,
    pub model: Option<&'a str>,
    pub route: &'a str,
    pub client_ip: Option<String>,
}

impl KeyFacts<'_> {
    fn value(&self, part: KeyPart) -> (&'static str, Option<&str>) {
        match part {
            KeyPart::Tenant => ("tenant", self.tenant),
            KeyPart::Subject => ("subject", self.subject.as_deref()),
            KeyPart::ApiKey => ("api_key", self.api_key),
            KeyPart::Model => ("model", self.model),
            KeyPart::Route => ("route", Some(self.route).filter(|r| !r.is_empty())),
            KeyPart::ClientIp => ("ip", self.client_ip.as_deref()),
        }
    }
}

/// How a subject appears in counter keys: the first 96 bits of its SHA-256, hex. Token
/// subjects are often e-mail addresses; a shared store (Redis) never holds them in its key
/// names, and the admin API, given a subject, finds its counters the same way.
pub fn subject_id(subject: &str) -> String {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(subject.as_bytes());
    hex::encode(digest.get(..12).unwrap_or_default())
}

/// The calendar periods budgets are counted in (UTC).
#[derive(Debug, Clone)]
pub struct Periods {
    /// `YYYY-MM-DD`
    pub day: String,
    /// `YYYY-MM`
    pub month: String,
    pub day_left: Duration,
    pub month_left: Duration,
}

impl Periods {
    pub fn now() -> Periods {
        let now = Utc::now();
        let today = now.date_naive();
        let midnight = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc());
        let tomorrow = today.succ_opt().and_then(midnight);
        let (y, m) = if now.month() == 12 {
            (now.year() + 1, 1)
        } else {
            (now.year(), now.month() + 1)
        };
        let next_month = NaiveDate::from_ymd_opt(y, m, 1).and_then(midnight);
        let left = |t: Option<chrono::DateTime<Utc>>| {
            t.and_then(|t| (t - now).to_std().ok())
                .unwrap_or(Duration::from_secs(1))
        };
        let month = format!("{:04}-{:02}", today.year(), today.month());
        Periods {
            day: format!("{month}-{:02}", today.day()),
            month,
            day_left: left(tomorrow),
            month_left: left(next_month),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct RateCharge {
    pub key: String,
    pub limit: u64,
    pub period: Duration,
}

#[derive(Debug, Clone)]
pub(super) struct TokenCharge {
    pub key: String,
    pub limit: u64,
    pub period: Duration,
    pub amount: u64,
}

#[derive(Debug, Clone)]
pub(super) struct LeaseCharge {
    pub key: String,
    pub limit: u64,
    pub id: String,
    /// A slot whose holder vanished (replica crash) frees itself after this long.
    pub ttl: Duration,
}

#[derive(Debug, Clone)]
pub(super) struct BudgetCharge {
    pub key: String,
    /// Nanodollars or tokens.
    pub limit: i64,
    pub amount: i64,
    pub usd: bool,
    /// Until the period ends; the counter expires a day later.
    pub left: Duration,
}

/// Every counter one request touches.
#[derive(Debug, Clone, Default)]
pub(super) struct Plan {
    pub requests: Vec<RateCharge>,
    pub tokens: Vec<TokenCharge>,
    pub concurrent: Vec<LeaseCharge>,
    pub budgets: Vec<BudgetCharge>,
    /// The admission's id and how long its settlement may take: a shared store marks
    /// the admission under it, so its settlement knows whether it committed.
    pub lease: String,
    pub lease_ttl: Duration,
    /// The hash tag the admission's marker carries: its counters' when they all carry
    /// one (so that the script touches one Redis Cluster slot), else the tenant's.
    pub tag: String,
}

#[derive(Debug, Clone)]
pub(super) struct TokenDelta {
    pub key: String,
    pub limit: u64,
    pub period: Duration,
    /// Applied when the admission committed: what was spent minus the estimate.
    pub delta: i64,
    /// Applied when it did not (a shared store that failed to answer): what was spent.
    pub fresh: i64,
}

#[derive(Debug, Clone)]
pub(super) struct BudgetDelta {
    pub key: String,
    pub delta: i64,
    pub fresh: i64,
    pub ttl: Duration,
}

/// A soft threshold crossed; announced once per budget period (the marker is set once).
#[derive(Debug, Clone)]
pub(super) struct Crossing {
    pub budget: String,
    pub share: f64,
    pub marker: String,
    pub ttl: Duration,
}

/// The corrections after a response, the slots to free and the usage to add.
#[derive(Debug, Clone, Default)]
pub(super) struct Settlement {
    /// Settles exactly once under this id (a retry after an unanswered attempt is a
    /// no-op in a shared store).
    pub id: String,
    /// The plan's hash tag, which the settlement's own keys carry.
    pub tag: String,
    /// The admission this settles, by its id (`None`: usage only, nothing was admitted).
    pub admission: Option<String>,
    pub tokens: Vec<TokenDelta>,
    pub budgets: Vec<BudgetDelta>,
    /// `(key, id)` of concurrency slots to free.
    pub leases: Vec<(String, String)>,
    pub usage: Option<UsageEntry>,
}

/// `{tag}:profile|<kind><index>|part=value|…`; parts without a value count as `-`. The
/// hash tag is the tenant's when the limit is keyed by tenant, else the global one
/// (`state::tag`).
fn key_for(profile: &str, kind: char, index: usize, parts: &[KeyPart], f: &KeyFacts<'_>) -> String {
    let tenant = parts
        .contains(&KeyPart::Tenant)
        .then_some(f.tenant)
        .flatten();
    let mut key = format!("{}:{profile}|{kind}{index}", crate::state::tag(tenant));
    for part in parts {
        let (name, value) = f.value(*part);
        key.push('|');
        key.push_str(name);
        key.push('=');
        key.push_str(value.unwrap_or("-"));
    }
    key
}

fn labels(parts: &[KeyPart], f: &KeyFacts<'_>) -> BTreeMap<&'static str, String> {
    parts
        .iter()
        .map(|p| {
            let (name, value) = f.value(*p);
            (name, value.unwrap_or("-").to_string())
        })
        .collect()
}

/// A day past the end of the period, so a late settlement still finds its counter.
const BUDGET_GRACE: Duration = Duration::from_secs(86_400);

impl Plan {
    pub fn build(
        profile_name: &str,
        profile: &LimitProfile,
        facts: &KeyFacts<'_>,
        demand: Demand,
        lease_id: &str,
        lease_ttl: Duration,
        periods: Option<&Periods>,
    ) -> Plan {
        let requests = profile
            .requests
            .iter()
            .enumerate()
            .map(|(i, l)| RateCharge {
                key: key_for(profile_name, 'r', i, &l.key, facts),
                limit: u64::from(l.limit),
                period: Duration::from_millis(l.per.millis()),
            })
            .collect();
        let tokens = profile
            .tokens
            .iter()
            .enumerate()
            .map(|(i, l)| TokenCharge {
                key: key_for(profile_name, 't', i, &l.key, facts),
                limit: l.limit,
                period: Duration::from_millis(l.per.millis()),
                amount: demand.tokens,
            })
            .collect();
        let concurrent = profile
            .concurrent
            .iter()
            .enumerate()
            .map(|(i, l)| LeaseCharge {
                key: key_for(profile_name, 'c', i, &l.key, facts),
                limit: u64::from(l.limit),
                id: lease_id.to_string(),
                ttl: lease_ttl,
            })
            .collect();
        let budgets = profile
            .budgets
            .iter()
            .enumerate()
            .filter_map(|(i, b)| {
                let periods = periods?;
                let (period_id, left) = match b.per {
                    crate::config::BudgetPeriod::Day => (&periods.day, periods.day_left),
                    crate::config::BudgetPeriod::Month => (&periods.month, periods.month_left),
                };
                let mut key = key_for(profile_name, 'b', i, &b.key, facts);
                key.push('@');
                key.push_str(period_id);
                let (limit, amount) = match (b.usd, b.tokens) {
                    (Some(usd), _) => (crate::policy::pricing::nanos(usd), demand.cost),
                    (None, tokens) => (
                        i64::try_from(tokens.unwrap_or(0)).unwrap_or(i64::MAX),
                        i64::try_from(demand.tokens).unwrap_or(i64::MAX),
                    ),
                };
                Some(BudgetCharge {
                    key,
                    limit,
                    amount,
                    usd: b.usd.is_some(),
                    left,
                })
            })
            .collect();
        let mut plan = Plan {
            requests,
            tokens,
            concurrent,
            budgets,
            lease: lease_id.to_string(),
            lease_ttl,
            tag: String::new(),
        };
        plan.tag = plan
            .shared_tag()
            .map_or_else(|| crate::state::tag(facts.tenant), str::to_string);
        plan
    }

    /// The hash tag every counter's key starts with, when they share one.
    fn shared_tag(&self) -> Option<&str> {
        let mut tags = self
            .requests
            .iter()
            .map(|c| &c.key)
            .chain(self.tokens.iter().map(|c| &c.key))
            .chain(self.concurrent.iter().map(|c| &c.key))
            .chain(self.budgets.iter().map(|c| &c.key))
            .map(|key| key.split_inclusive('}').next().unwrap_or(key));
        let first = tags.next()?;
        tags.all(|tag| tag == first).then_some(first)
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
            && self.tokens.is_empty()
            && self.concurrent.is_empty()
            && self.budgets.is_empty()
    }

    /// The limit that refused, budgets first (they do not come back within minutes).
    pub fn refusal(&self, profile: &LimitProfile, v: &Verdict) -> Option<Refusal> {
        if v.allowed {
            return None;
        }
        for (((ok, used), b), charge) in v.budgets.iter().zip(&profile.budgets).zip(&self.budgets) {
            if !ok {
                return Some(Refusal::Budget {
                    name: b.label(),
                    period: b.per.label(),
                    usd: b.usd.is_some(),
                    limit: charge.limit,
                    used: *used,
                });
            }
        }
        if let Some(a) = v.requests.iter().find(|a| !a.allowed) {
            return Some(Refusal::Requests(a.clone()));
        }
        if let Some(a) = v.tokens.iter().find(|a| !a.allowed) {
            return Some(Refusal::Tokens(a.clone()));
        }
        if let Some((_, lease)) = v
            .concurrent
            .iter()
            .zip(&self.concurrent)
            .find(|((ok, _), _)| !ok)
        {
            return Some(Refusal::Concurrent { limit: lease.limit });
        }
        // A store that refuses without naming a counter is a bug; refuse safely.
        Some(Refusal::StoreDown)
    }

    /// Soft thresholds crossed between `before` and `after` (amounts used per budget).
    pub fn crossings(
        &self,
        profile: &LimitProfile,
        before: &[i64],
        after: &[i64],
    ) -> Vec<Crossing> {
        let mut out = Vec::new();
        for (i, (was, now)) in before.iter().zip(after).enumerate() {
            let (Some(b), Some(charge)) = (profile.budgets.get(i), self.budgets.get(i)) else {
                continue;
            };
            for share in &b.soft {
                let line = (charge.limit as f64 * share).ceil() as i64;
                if *was < line && *now >= line {
                    out.push(Crossing {
                        budget: b.label(),
                        share: *share,
                        marker: format!("{}|soft={share}", charge.key),
                        ttl: charge.ttl(),
                    });
                }
            }
        }
        out
    }

    /// Each counter's state as the admin API shows it: only counters whose every key
    /// part is given by `facts`.
    pub fn describe(
        &self,
        profile_name: &str,
        profile: &LimitProfile,
        facts: &KeyFacts<'_>,
        v: &Verdict,
        periods: &Periods,
    ) -> Vec<LimitState> {
        let given = |parts: &[KeyPart]| parts.iter().all(|p| facts.value(*p).1.is_some());
        let mut out = Vec::new();
        let rate = |kind, per: crate::config::Period, key, a: &Admission| LimitState {
            profile: profile_name.to_string(),
            kind,
            name: None,
            per: Some(per.label()),
            unit: None,
            key,
            limit: a.limit as f64,
            used: a.limit.saturating_sub(a.remaining) as f64,
            remaining: a.remaining as f64,
            reset_seconds: Some(a.reset.as_secs_f64()),
        };
        for (l, a) in profile.requests.iter().zip(&v.requests) {
            if given(&l.key) {
                out.push(rate("requests", l.per, labels(&l.key, facts), a));
            }
        }
        for (l, a) in profile.tokens.iter().zip(&v.tokens) {
            if given(&l.key) {
                out.push(rate("tokens", l.per, labels(&l.key, facts), a));
            }
        }
        for (l, (_, in_flight)) in profile.concurrent.iter().zip(&v.concurrent) {
            if !given(&l.key) {
                continue;
            }
            out.push(LimitState {
                profile: profile_name.to_string(),
                kind: "concurrent",
                name: None,
                per: None,
                unit: None,
                key: labels(&l.key, facts),
                limit: f64::from(l.limit),
                used: *in_flight as f64,
                remaining: u64::from(l.limit).saturating_sub(*in_flight) as f64,
                reset_seconds: None,
            });
        }
        for ((b, charge), (_, used)) in profile.budgets.iter().zip(&self.budgets).zip(&v.budgets) {
            if !given(&b.key) {
                continue;
            }
            let show = |n: i64| if charge.usd { usd(n) } else { n as f64 };
            let left = match b.per {
                crate::config::BudgetPeriod::Day => periods.day_left,
                crate::config::BudgetPeriod::Month => periods.month_left,
            };
            out.push(LimitState {
                profile: profile_name.to_string(),
                kind: "budget",
                name: Some(b.label()),
                per: Some(b.per.label()),
                unit: Some(if charge.usd { "usd" } else { "tokens" }),
                key: labels(&b.key, facts),
                limit: show(charge.limit),
                used: show(*used),
                remaining: show((charge.limit - used).max(0)),
                reset_seconds: Some(left.as_secs_f64()),
            });
        }
        out
    }
}

impl Settlement {
    /// Corrections of a ticket's estimate by what was spent.
    pub fn for_ticket(plan: &Plan, demand: Demand, spent: Spent) -> Self {
        let spent_tokens = i64::try_from(spent.tokens()).unwrap_or(i64::MAX);
        let token_delta = spent_tokens - i64::try_from(demand.tokens).unwrap_or(i64::MAX);
        let tokens = plan
            .tokens
            .iter()
            .filter(|_| token_delta != 0 || spent_tokens != 0)
            .map(|t| TokenDelta {
                key: t.key.clone(),
                limit: t.limit,
                period: t.period,
                delta: token_delta,
                fresh: spent_tokens,
            })
            .collect();
        let budgets = plan
            .budgets
            .iter()
            .map(|b| BudgetDelta {
                key: b.key.clone(),
                delta: if b.usd {
                    spent.cost - demand.cost
                } else {
                    token_delta
                },
                fresh: if b.usd { spent.cost } else { spent_tokens },
                ttl: b.ttl(),
            })
            .collect();
        let leases = plan
            .concurrent
            .iter()
            .map(|l| (l.key.clone(), l.id.clone()))
            .collect();
        Settlement {
            id: plan.lease.clone(),
            tag: plan.tag.clone(),
            admission: (!plan.lease.is_empty()).then(|| plan.lease.clone()),
            tokens,
            budgets,
            leases,
            usage: None,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
            && self.budgets.is_empty()
            && self.leases.is_empty()
            && self.usage.is_none()
    }

    pub fn with_usage(mut self, usage: Option<UsageEntry>) -> Self {
        self.usage = usage;
        self
    }

    /// Splits off the usage when its tenant's hash tag is not the settlement's (a
    /// profile keyed by no tenant), so that each part runs in a script on one slot; each
    /// part is applied once under the settlement's id, in its own tag.
    pub fn split_usage(mut self) -> (Settlement, Option<Settlement>) {
        let usage_tag = match &self.usage {
            Some(u) => crate::state::tag(Some(&u.tenant)),
            None => return (self, None),
        };
        if usage_tag == self.tag {
            return (self, None);
        }
        let usage = Settlement {
            id: self.id.clone(),
            tag: usage_tag,
            usage: self.usage.take(),
            ..Settlement::default()
        };
        (self, Some(usage))
    }
}

impl BudgetCharge {
    pub fn ttl(&self) -> Duration {
        self.left + BUDGET_GRACE
    }
}

/// The tightest of several counters: a refusal first, then the fewest remaining.
pub fn tightest(all: &[Admission]) -> Option<Admission> {
    all.iter()
        .min_by_key(|a| (a.allowed, a.remaining, std::cmp::Reverse(a.reset)))
        .cloned()
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
                't',
                0,
                &[KeyPart::Tenant, KeyPart::Subject, KeyPart::Model],
                &f
            ),
            "{t:acme}:p|t0|tenant=acme|subject=-|model=m"
        );
        let with_subject = KeyFacts {
            subject: Some(subject_id("jane.doe@example.com")),
            ..f
        };
        let key = key_for("p", 't', 0, &[KeyPart::Subject], &with_subject);
        assert!(!key.contains("jane"), "{key}");
        assert_eq!(key.len(), "{*}:p|t0|subject=".len() + 24, "{key}");
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
        assert_eq!(tightest(&[a(true, 5), a(true, 2)]).unwrap().remaining, 2);
        assert!(!tightest(&[a(true, 0), a(false, 3)]).unwrap().allowed);
        assert!(tightest(&[]).is_none());
    }

    #[test]
    fn periods_end_at_midnight_and_month_end() {
        let p = Periods::now();
        assert_eq!(p.day.len(), 10);
        assert!(p.day.starts_with(&p.month));
        assert!(p.day_left <= Duration::from_secs(86_400));
        assert!(p.month_left >= p.day_left);
    }
}
