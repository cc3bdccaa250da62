//! Stage 6, count and admit: the request's estimate (prompt tokens counted with the
//! model's tokenizer + the completion tokens it may produce, priced) charged against its
//! limit profile; a refusal is the limits' own (`rescue` answers it with OpenAI's 429s,
//! `rate_limit_exceeded` or `insufficient_quota`).

use super::Gateway;
use super::context::{Estimate, RequestCtx};
use super::rescue::Failure;
use crate::limits::{Demand, KeyFacts, Refusal, subject_id};
use crate::openai::ApiRequest;
use crate::policy::pricing::Pricing;
use crate::provider::ModelRoute;
use crate::telemetry::metrics;

/// Counts the request (`tokens::demand`), prices it, notes how its usage will be counted
/// and priced, and returns the estimate to charge.
pub fn estimate(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    request: &ApiRequest,
    model: &ModelRoute,
) -> Demand {
    let tokens = crate::tokens::demand(&model.encoding, request, model.default_max_tokens);
    let upstream = model
        .targets
        .first()
        .map_or(model.name.as_str(), |t| &t.upstream_model);
    let price = gw
        .policy
        .as_ref()
        .and_then(|p| p.price(&[&model.name, upstream]));
    if price.is_none() {
        metrics()
            .unpriced_requests
            .with_label_values(&[&model.name])
            .inc();
    }
    let cost = price.as_ref().map_or(0, |price| {
        Pricing::cost(
            price,
            &crate::openai::usage::Usage {
                prompt_tokens: tokens.prompt,
                completion_tokens: tokens.completion,
                ..Default::default()
            },
        )
    });
    let demand = Demand {
        tokens: tokens.total(),
        cost,
        priced: price.is_some(),
    };
    ctx.estimate = Some(Estimate {
        encoding: model.encoding.clone(),
        prompt_tokens: tokens.prompt,
        price,
    });
    demand
}

/// What the request's limits are keyed by.
fn key_facts<'a>(ctx: &'a RequestCtx, client_ip: Option<&str>) -> KeyFacts<'a> {
    let principal = ctx.principal.as_ref();
    KeyFacts {
        tenant: principal.and_then(|p| p.tenant.as_deref()),
        subject: principal.map(|p| subject_id(&p.subject)),
        api_key: principal
            .filter(|p| p.method == crate::auth::AuthMethod::ApiKey)
            .map(|p| p.subject.as_str()),
        model: ctx.model(),
        route: ctx.route,
        client_ip: client_ip.map(str::to_string),
    }
}

fn profile(ctx: &RequestCtx) -> Option<&str> {
    ctx.decision().and_then(|d| d.settings.limits.as_deref())
}

/// Bodies from this size on are expensive to count and scan: their request rate is
/// checked before.
const LARGE_BODY: usize = 64 * 1024;

/// Whether the stages before admission cost enough (the NER model, a large body) to check
/// the request rate first, in a separate step.
pub fn rates_first(gw: &Gateway, ctx: &RequestCtx, body_len: usize) -> bool {
    body_len >= LARGE_BODY || super::redaction::profile(gw, ctx).is_some_and(|p| p.ner().is_some())
}

/// Charges the request-rate limits, right after the policy decision and before the
/// stages that cost CPU (PII detection, token counting).
pub async fn admit_requests(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    client_ip: Option<&str>,
) -> Result<(), Failure> {
    let outcome = gw
        .limits
        .admit_requests(profile(ctx), &key_facts(ctx, client_ip))
        .await;
    ctx.admission.rate_requests = outcome.requests;
    ctx.admission.refused = outcome.refusal.as_ref().map(Refusal::kind);
    match outcome.refusal {
        None => Ok(()),
        Some(refusal) => Err(Failure::Limits(refusal, Demand::default())),
    }
}

/// Charges the request's estimate to its profile's counters (to all but the request rates
/// when `rates_charged`).
pub async fn admit(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    client_ip: Option<&str>,
    demand: Demand,
    rates_charged: bool,
) -> Result<(), Failure> {
    // Lease ids are Warden's own: a client reusing a request id gets no shared slot.
    let lease = uuid::Uuid::new_v4().to_string();
    let outcome = gw
        .limits
        .admit(
            profile(ctx),
            &key_facts(ctx, client_ip),
            demand,
            (&lease, gw.lease_ttl),
            rates_charged,
        )
        .await;
    if !rates_charged {
        ctx.admission.rate_requests = outcome.requests;
    }
    ctx.admission.rate_tokens = outcome.tokens;
    ctx.admission.ticket = outcome.ticket;
    ctx.admission.refused = outcome.refusal.as_ref().map(Refusal::kind);
    ctx.admission.admitted = outcome.refusal.is_none();
    match outcome.refusal {
        None => Ok(()),
        Some(refusal) => Err(Failure::Limits(refusal, demand)),
    }
}
