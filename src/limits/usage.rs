//! Usage counters per tenant and model, for today and this month (UTC): requests, prompt
//! and completion tokens, and cost. Kept by the limit store next to the budgets, so every
//! replica adds to the same counters when the store is Redis.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use serde::Serialize;

use super::{Periods, Spent};
use crate::policy::pricing::usd;

/// Counter names of one model's usage.
pub(super) const FIELDS: [&str; 4] = ["requests", "prompt_tokens", "completion_tokens", "cost"];

/// One request's contribution.
#[derive(Debug, Clone)]
pub(crate) struct UsageEntry {
    pub tenant: String,
    pub model: String,
    pub day: String,
    pub month: String,
    pub day_ttl: Duration,
    pub month_ttl: Duration,
    /// Values in the order of [`FIELDS`].
    pub values: [i64; 4],
}

impl UsageEntry {
    pub fn new(tenant: Option<&str>, model: &str, periods: &Periods, spent: Spent) -> Option<Self> {
        let tenant = tenant?;
        let grace = Duration::from_secs(86_400);
        Some(UsageEntry {
            tenant: tenant.to_string(),
            model: model.to_string(),
            day: periods.day.clone(),
            month: periods.month.clone(),
            day_ttl: periods.day_left + grace,
            month_ttl: periods.month_left + grace,
            values: [
                1,
                spent.prompt_tokens as i64,
                spent.completion_tokens as i64,
                spent.cost,
            ],
        })
    }

    /// `model|field` names with their increments.
    pub fn fields(&self) -> impl Iterator<Item = (String, i64)> + '_ {
        FIELDS
            .iter()
            .zip(self.values)
            .map(|(f, v)| (format!("{}|{f}", self.model), v))
    }
}

/// One model's usage in a period.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct ModelUsage {
    pub requests: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
    pub total_tokens: i64,
    pub cost_usd: f64,
}

/// A tenant's usage, per model, today and this month.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct TenantUsage {
    pub day: String,
    pub month: String,
    pub today: BTreeMap<String, ModelUsage>,
    pub this_month: BTreeMap<String, ModelUsage>,
}

/// Per-model usage from `model|field` counters.
pub(super) fn by_model(fields: &HashMap<String, i64>) -> BTreeMap<String, ModelUsage> {
    let mut out: BTreeMap<String, ModelUsage> = BTreeMap::new();
    for (name, value) in fields {
        let Some((model, field)) = name.rsplit_once('|') else {
            continue;
        };
        let entry = out.entry(model.to_string()).or_default();
        match field {
            "requests" => entry.requests = *value,
            "prompt_tokens" => entry.prompt_tokens = *value,
            "completion_tokens" => entry.completion_tokens = *value,
            "cost" => entry.cost_usd = usd(*value),
            _ => {}
        }
    }
    for u in out.values_mut() {
        u.total_tokens = u.prompt_tokens + u.completion_tokens;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_group_by_model() {
        let fields: HashMap<String, i64> = [
            ("gpt-4o|requests", 2),
            ("gpt-4o|prompt_tokens", 30),
            ("gpt-4o|completion_tokens", 12),
            ("gpt-4o|cost", 1_500),
            ("a|b|requests", 1),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let m = by_model(&fields);
        assert_eq!(m["gpt-4o"].total_tokens, 42);
        assert!((m["gpt-4o"].cost_usd - 0.0000015).abs() < 1e-15);
        assert_eq!(m["a|b"].requests, 1);
    }
}
