//! The report's accounting: what a request really used — the provider's usage, or Warden's
//! own count when the provider sent none — its cost, and the settlement of its admission
//! (credit or debit of the estimate, the concurrency slot freed, tenant usage added).

use super::Gateway;
use super::context::RequestCtx;
use crate::limits::{Spent, UsageFacts};
use crate::openai::usage::Usage;
use crate::policy::pricing::Pricing;
use crate::telemetry::metrics;
use crate::tokens::completion;

/// Usage of a successful whole response: the provider's, else counted from the body.
pub fn from_body(ctx: &mut RequestCtx, body: &[u8]) {
    let answered = &mut ctx.answered;
    answered.usage = Usage::from_body(body).or_else(|| {
        let estimate = ctx.estimate.as_ref()?;
        answered.usage_counted = true;
        Some(Usage {
            prompt_tokens: estimate.prompt_tokens,
            completion_tokens: completion::from_body(&estimate.encoding, body).unwrap_or(0),
            ..Usage::default()
        })
    });
}

/// Completes a stream's usage from its events when the provider sent none, and prices
/// the usage; the report runs it once, before the record is written.
pub fn complete(ctx: &mut RequestCtx) {
    let stream = ctx.stream();
    let answered = &mut ctx.answered;
    if answered.usage.is_none()
        && stream
        && answered.status == 200
        && let Some(estimate) = &ctx.estimate
    {
        let completion_tokens = std::mem::take(&mut answered.stream_text).count(&estimate.encoding);
        answered.usage = Some(Usage {
            prompt_tokens: estimate.prompt_tokens,
            completion_tokens,
            ..Usage::default()
        });
        answered.usage_counted = true;
    }
    answered.stream_text = Default::default();
    if answered.cost.is_none()
        && let (Some(price), Some(usage)) = (
            ctx.estimate.as_ref().and_then(|e| e.price.as_ref()),
            &answered.usage,
        )
    {
        answered.cost = Some(Pricing::cost(price, usage));
    }
}

/// Settles the request's admission and adds its usage; the report runs it once, after
/// the answer is written, off the request's path.
pub fn settle(gw: &std::sync::Arc<Gateway>, ctx: &mut RequestCtx) {
    let usage = ctx.answered.usage.clone().unwrap_or_default();
    let model = ctx.model().unwrap_or("-").to_string();
    if ctx.answered.usage.is_some() {
        let m = metrics();
        m.tokens
            .with_label_values(&[&model, "prompt"])
            .inc_by(usage.prompt_tokens);
        m.tokens
            .with_label_values(&[&model, "completion"])
            .inc_by(usage.completion_tokens);
        if let Some(cost) = ctx.answered.cost {
            m.cost_usd
                .with_label_values(&[&model])
                .inc_by(crate::policy::pricing::usd(cost));
        }
    }
    let ticket = ctx.admission.ticket.take();
    if ticket.is_none() && ctx.answered.usage.is_none() {
        return; // nothing was charged and nothing was used
    }
    let spent = Spent {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        cost: ctx.answered.cost.unwrap_or(0),
    };
    let tenant = ctx.principal.as_ref().and_then(|p| p.tenant.clone());
    let gw = gw.clone();
    let started = gw.limits.settlement_started();
    tokio::spawn(async move {
        let _started = started;
        let facts = UsageFacts {
            tenant: tenant.as_deref(),
            model: &model,
        };
        gw.limits.settle(ticket, facts, spent).await;
    });
}
