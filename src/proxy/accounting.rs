//! Stage 9, accounting: what a request really used — the provider's usage, or Warden's
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
    ctx.usage = Usage::from_body(body).or_else(|| {
        let enc = ctx.encoding.as_ref()?;
        ctx.usage_counted = true;
        Some(Usage {
            prompt_tokens: ctx.prompt_tokens,
            completion_tokens: completion::from_body(enc, body).unwrap_or(0),
            cached_tokens: 0,
        })
    });
}

/// Completes a stream's usage from its events when the provider sent none, and prices
/// the usage; the report runs it once, before the record is written.
pub fn complete(ctx: &mut RequestCtx) {
    if ctx.usage.is_none()
        && ctx.stream
        && ctx.status == 200
        && let Some(enc) = &ctx.encoding
    {
        let completion_tokens = std::mem::take(&mut ctx.stream_text).count(enc);
        ctx.usage = Some(Usage {
            prompt_tokens: ctx.prompt_tokens,
            completion_tokens,
            cached_tokens: 0,
        });
        ctx.usage_counted = true;
    }
    ctx.stream_text = Default::default();
    if ctx.cost.is_none()
        && let (Some(price), Some(usage)) = (&ctx.price, &ctx.usage)
    {
        ctx.cost = Some(Pricing::cost(price, usage));
    }
}

/// Settles the request's admission and adds its usage; the report runs it once, after
/// the answer is written, off the request's path.
pub fn settle(gw: &std::sync::Arc<Gateway>, ctx: &mut RequestCtx) {
    let usage = ctx.usage.clone().unwrap_or_default();
    let model = ctx.model.clone().unwrap_or_else(|| "-".into());
    if ctx.usage.is_some() {
        let m = metrics();
        m.tokens
            .with_label_values(&[&model, "prompt"])
            .inc_by(usage.prompt_tokens);
        m.tokens
            .with_label_values(&[&model, "completion"])
            .inc_by(usage.completion_tokens);
        if let Some(cost) = ctx.cost {
            m.cost_usd
                .with_label_values(&[&model])
                .inc_by(crate::policy::pricing::usd(cost));
        }
    }
    let ticket = ctx.ticket.take();
    if ticket.is_none() && ctx.usage.is_none() {
        return; // nothing was charged and nothing was used
    }
    let spent = Spent {
        prompt_tokens: usage.prompt_tokens,
        completion_tokens: usage.completion_tokens,
        cost: ctx.cost.unwrap_or(0),
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
