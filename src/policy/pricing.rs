//! Model prices (`kind: Pricing` in the policy directory, usually `pricing.yaml`): USD per
//! 1M input, cached-input and output tokens per model, each with the date it takes effect.
//! Turns a request's token usage into its cost, in billionths of a dollar so that budgets
//! add up exactly across replicas.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use serde::Deserialize;

use crate::openai::usage::Usage;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PricingFile {
    #[serde(rename = "apiVersion", default)]
    pub api_version: Option<String>,
    pub kind: String,
    #[serde(default)]
    pub metadata: Option<serde_yaml_ng::Value>,
    /// Model name (client-facing or upstream) → its prices over time.
    pub models: BTreeMap<String, Vec<Price>>,
}

#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Price {
    /// `YYYY-MM-DD` (UTC) from which this price applies.
    pub effective_from: String,
    /// USD per 1M prompt tokens.
    pub input: f64,
    /// USD per 1M prompt tokens served from the provider's cache; defaults to `input`.
    #[serde(default)]
    pub cached_input: Option<f64>,
    /// USD per 1M completion tokens.
    pub output: f64,
}

/// Billionths of a US dollar.
pub type Nanos = i64;

/// Converts nanodollars to dollars.
pub fn usd(nanos: Nanos) -> f64 {
    nanos as f64 / 1e9
}

/// Converts dollars to nanodollars.
pub fn nanos(usd: f64) -> Nanos {
    (usd * 1e9).round() as Nanos
}

/// Every model's prices with their parsed start dates, each list sorted by date.
#[derive(Debug, Clone, Default)]
pub struct Pricing {
    models: HashMap<String, Vec<(NaiveDate, Price)>>,
}

impl Pricing {
    /// Adds a file's models; returns a message for a model priced twice or a bad entry.
    pub fn add(&mut self, file: PricingFile) -> Result<(), String> {
        for (model, prices) in file.models {
            if self.models.contains_key(&model) {
                return Err(format!("model `{model}` is priced in more than one file"));
            }
            let mut dated = Vec::with_capacity(prices.len());
            for p in prices {
                let Ok(from) = NaiveDate::parse_from_str(&p.effective_from, "%Y-%m-%d") else {
                    return Err(format!(
                        "model `{model}`: effective_from `{}` is not a YYYY-MM-DD date",
                        p.effective_from
                    ));
                };
                let all = [Some(p.input), p.cached_input, Some(p.output)];
                if all
                    .into_iter()
                    .flatten()
                    .any(|v| !(v >= 0.0 && v.is_finite()))
                {
                    return Err(format!("model `{model}`: prices must be 0 or more"));
                }
                dated.push((from, p));
            }
            dated.sort_by_key(|(from, _)| *from);
            self.models.insert(model, dated);
        }
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// The price of the first of `names` that is priced, in effect on `day`.
    pub fn price(&self, names: &[&str], day: NaiveDate) -> Option<&Price> {
        names.iter().find_map(|name| {
            self.models
                .get(*name)?
                .iter()
                .rev()
                .find(|(from, _)| *from <= day)
                .map(|(_, price)| price)
        })
    }

    /// The cost of `usage` at `price`.
    pub fn cost(price: &Price, usage: &Usage) -> Nanos {
        let cached = usage.cached_tokens.min(usage.prompt_tokens);
        let per_token = |usd_per_million: f64| usd_per_million * 1e3; // nanodollars
        let total = (usage.prompt_tokens - cached) as f64 * per_token(price.input)
            + cached as f64 * per_token(price.cached_input.unwrap_or(price.input))
            + usage.completion_tokens as f64 * per_token(price.output);
        total.round() as Nanos
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn pricing() -> Pricing {
        let file: PricingFile = serde_yaml_ng::from_str(
            "kind: Pricing\nmodels:\n  gpt-4o-mini:\n    - {effective_from: 2024-07-18, input: 0.15, cached_input: 0.075, output: 0.6}\n    - {effective_from: 2026-01-01, input: 0.2, output: 0.8}\n",
        )
        .unwrap();
        let mut p = Pricing::default();
        p.add(file).unwrap();
        p
    }

    #[test]
    fn picks_the_price_in_effect() {
        let p = pricing();
        assert_eq!(
            p.price(&["gpt-4o-mini"], day("2025-05-01")).unwrap().input,
            0.15
        );
        assert_eq!(
            p.price(&["x", "gpt-4o-mini"], day("2026-11-26"))
                .unwrap()
                .input,
            0.2
        );
        assert!(p.price(&["gpt-4o-mini"], day("2024-01-01")).is_none());
        assert!(p.price(&["other"], day("2026-11-26")).is_none());
    }

    #[test]
    fn costs_input_cached_and_output_tokens() {
        let p = pricing();
        let price = p.price(&["gpt-4o-mini"], day("2025-05-01")).unwrap();
        let usage = Usage {
            prompt_tokens: 1_000_000,
            completion_tokens: 500_000,
            cached_tokens: 200_000,
            reasoning_tokens: 0,
        };
        // 800k × 0.15 + 200k × 0.075 + 500k × 0.6 = 0.12 + 0.015 + 0.3 USD
        assert_eq!(Pricing::cost(price, &usage), nanos(0.435));
        assert!((usd(Pricing::cost(price, &usage)) - 0.435).abs() < 1e-12);
    }

    #[test]
    fn refuses_bad_dates_and_duplicates() {
        let mut p = pricing();
        let again: PricingFile = serde_yaml_ng::from_str(
            "kind: Pricing\nmodels:\n  gpt-4o-mini: [{effective_from: 2024-07-18, input: 1, output: 1}]\n",
        )
        .unwrap();
        assert!(p.add(again).unwrap_err().contains("more than one file"));
        let bad: PricingFile = serde_yaml_ng::from_str(
            "kind: Pricing\nmodels:\n  m: [{effective_from: July, input: 1, output: 1}]\n",
        )
        .unwrap();
        assert!(p.add(bad).unwrap_err().contains("YYYY-MM-DD"));
    }
}
