//! Stage 4, admission: the request's estimate (prompt tokens counted with the model's
//! tokenizer + the completion tokens it may produce, priced) charged against its limit
//! profile; refusals become OpenAI's 429s (`rate_limit_exceeded`, `insufficient_quota`).

use std::time::Duration;

use super::Gateway;
use super::context::RequestCtx;
use crate::limits::{Demand, KeyFacts, Refusal, format_reset, subject_id};
use crate::openai::{ApiError, ApiRequest, ErrorKind};
use crate::policy::pricing::{Pricing, usd};
use crate::provider::ModelRoute;
use crate::telemetry::metrics;

/// Counts the prompt, notes the model's tokenizer and price, and returns the estimate.
pub fn estimate(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    request: &ApiRequest,
    model: &ModelRoute,
) -> Demand {
    let prompt = crate::tokens::prompt_tokens(&model.encoding, request);
    let completion = match request {
        ApiRequest::Embedding(_) => 0,
        _ => {
            let per_choice = request
                .max_output_tokens()
                .unwrap_or(model.default_max_tokens);
            per_choice.saturating_mul(u64::from(request.choices()))
        }
    };
    ctx.prompt_tokens = prompt;
    ctx.encoding = Some(model.encoding.clone());
    let upstream = model
        .targets
        .first()
        .map_or(model.name.as_str(), |t| &t.upstream_model);
    ctx.price = gw.policy.as_ref().and_then(|p| {
        let today = chrono::Utc::now().date_naive();
        p.current()
            .pricing
            .price(&[&model.name, upstream], today)
            .cloned()
    });
    if ctx.price.is_none() {
        metrics()
            .unpriced_requests
            .with_label_values(&[&model.name])
            .inc();
    }
    let tokens = prompt.saturating_add(completion);
    let cost = ctx.price.as_ref().map_or(0, |price| {
        Pricing::cost(
            price,
            &crate::openai::usage::Usage {
                prompt_tokens: prompt,
                completion_tokens: completion,
                cached_tokens: 0,
            },
        )
    });
    Demand {
        tokens,
        cost,
        priced: ctx.price.is_some(),
    }
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
        model: ctx.model.as_deref(),
        route: ctx.route,
        client_ip: client_ip.map(str::to_string),
    }
}

fn profile(ctx: &RequestCtx) -> Option<&str> {
    ctx.decision
        .as_ref()
        .and_then(|d| d.settings.limits.as_deref())
}

/// Bodies from this size on are expensive to count and scan: their request rate is
/// checked before.
const LARGE_BODY: usize = 64 * 1024;

/// Whether the stages before admission cost enough (the NER model, a large body) to check
/// the request rate first, in a separate step.
pub fn rates_first(gw: &Gateway, ctx: &RequestCtx, body_len: usize) -> bool {
    let profile = ctx
        .decision
        .as_ref()
        .and_then(|d| d.settings.pii.as_deref());
    body_len >= LARGE_BODY || gw.pii.select(profile).is_some_and(|p| p.ner().is_some())
}

/// Charges the request-rate limits, right after the policy decision and before the
/// stages that cost CPU (PII detection, token counting).
pub async fn admit_requests(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    client_ip: Option<&str>,
) -> Result<(), ApiError> {
    let outcome = gw
        .limits
        .admit_requests(profile(ctx), &key_facts(ctx, client_ip))
        .await;
    ctx.rate_requests = outcome.requests;
    match outcome.refusal {
        None => Ok(()),
        Some(refusal) => Err(refused(&refusal, Demand::default())),
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
) -> Result<(), ApiError> {
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
        ctx.rate_requests = outcome.requests;
    }
    ctx.rate_tokens = outcome.tokens;
    ctx.ticket = outcome.ticket;
    match outcome.refusal {
        None => Ok(()),
        Some(refusal) => Err(refused(&refusal, demand)),
    }
}

fn retry_header(e: ApiError, wait: Duration) -> ApiError {
    e.with_header(
        "retry-after",
        wait.as_secs_f64().ceil().max(1.0).to_string(),
    )
}

fn refused(refusal: &Refusal, demand: Demand) -> ApiError {
    match refusal {
        Refusal::Requests(a) => {
            let wait = a.retry_after.unwrap_or(Duration::from_secs(1));
            retry_header(
                ApiError::new(
                    ErrorKind::RateLimited,
                    format!(
                        "Rate limit reached for requests: limit {}, retry in {}.",
                        a.limit,
                        format_reset(wait)
                    ),
                ),
                wait,
            )
        }
        Refusal::Tokens(a) if demand.tokens > a.limit => ApiError::new(
            ErrorKind::RateLimited,
            format!(
                "Request too large for the token rate limit: limit {}, requested {} (prompt + max_tokens); lower max_tokens or shorten the prompt.",
                a.limit, demand.tokens
            ),
        ),
        Refusal::Tokens(a) => {
            let wait = a.retry_after.unwrap_or(Duration::from_secs(1));
            retry_header(
                ApiError::new(
                    ErrorKind::RateLimited,
                    format!(
                        "Rate limit reached for tokens: limit {}, remaining {}, requested {}; retry in {}.",
                        a.limit,
                        a.remaining,
                        demand.tokens,
                        format_reset(wait)
                    ),
                ),
                wait,
            )
        }
        Refusal::Concurrent { limit } => retry_header(
            ApiError::new(
                ErrorKind::RateLimited,
                format!("Too many concurrent requests: limit {limit}; retry when one finishes."),
            ),
            Duration::from_secs(1),
        ),
        Refusal::Budget {
            name,
            period,
            usd: in_usd,
            limit,
            used,
        } => {
            let show = |n: i64| {
                if *in_usd {
                    format!("${:.4}", usd(n))
                } else {
                    format!("{n} tokens")
                }
            };
            ApiError::new(
                ErrorKind::QuotaExceeded,
                format!(
                    "You exceeded your current quota: the {period} budget `{name}` of {} has {} used, and this request may cost up to {}. It renews at the start of the next {period} (UTC).",
                    show(*limit),
                    show(*used),
                    show(if *in_usd {
                        demand.cost
                    } else {
                        demand.tokens as i64
                    })
                ),
            )
        }
        Refusal::Unpriced { budget } => ApiError::new(
            ErrorKind::Forbidden,
            format!(
                "This model has no price, and the USD budget `{budget}` cannot charge it; add the model to the policy directory's pricing (or set the budget's on_unpriced: allow)."
            ),
        )
        .with_code("model_not_priced"),
        Refusal::StoreDown => ApiError::new(
            ErrorKind::Unavailable,
            "Limits cannot be checked right now; retry later.",
        )
        .with_code("rate_limit_unavailable")
        .with_header("retry-after", "1"),
    }
}
