//! The request's metrics and its access log line: ids, route, model, provider, status,
//! timings and token counts — never prompt text, and only API key ids as subjects.

use super::context::RequestCtx;
use crate::telemetry::metrics;

/// Metrics and the access log line of a finished request.
pub fn finish(ctx: &RequestCtx) {
    let elapsed = ctx.started.elapsed();
    let m = metrics();
    let status = if ctx.client_gone && ctx.answered.status == 0 {
        499
    } else {
        ctx.answered.status
    };
    let status_label = status.to_string();
    m.requests
        .with_label_values(&[
            ctx.route,
            ctx.model().unwrap_or("none"),
            status_label.as_str(),
        ])
        .inc();
    m.request_duration
        .with_label_values(&[ctx.route])
        .observe(elapsed.as_secs_f64());
    if let Some(ttfb) = ctx.answered.first_byte {
        m.time_to_first_byte
            .with_label_values(&[ctx.route])
            .observe(ttfb.as_secs_f64());
    }
    tracing::info!(
        target: "warden::access",
        request_id = %ctx.request_id,
        trace_id = ctx.trace_id().as_deref().unwrap_or("-"),
        route = ctx.route,
        model = ctx.model().unwrap_or("-"),
        // Token subjects can be personal (e-mail addresses): only API key ids are logged.
        subject = ctx
            .principal
            .as_ref()
            .filter(|p| p.method == crate::auth::AuthMethod::ApiKey)
            .map(|p| p.subject.as_str())
            .unwrap_or("-"),
        tenant = ctx.principal.as_ref().and_then(|p| p.tenant.as_deref()).unwrap_or("-"),
        auth = ctx.principal.as_ref().map(|p| p.method.label()).unwrap_or("-"),
        rule = ctx.decision().map(|d| d.rule.as_str()).unwrap_or("-"),
        status,
        error = ctx.answered.error_code.as_deref().unwrap_or("-"),
        stream = ctx.stream(),
        provider = ctx.upstream.provider.as_deref().unwrap_or("-"),
        upstream_model = ctx.upstream.model.as_deref().unwrap_or("-"),
        attempts = ctx.upstream.attempts,
        prompt_estimate = ctx.estimate.as_ref().map_or(0, |e| e.prompt_tokens),
        prompt_tokens = ctx.answered.usage.as_ref().map_or(0, |u| u.prompt_tokens),
        completion_tokens = ctx.answered.usage.as_ref().map_or(0, |u| u.completion_tokens),
        usage_counted = ctx.answered.usage_counted,
        cost_usd = ctx.answered.cost.map_or(0.0, crate::policy::pricing::usd),
        upstream_ms = ctx.upstream.latency.map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0),
        ttfb_ms = ctx.answered.first_byte.map(|d| d.as_secs_f64() * 1e3).unwrap_or(0.0),
        duration_ms = elapsed.as_secs_f64() * 1e3,
        client_gone = ctx.client_gone,
        "request"
    );
}
