//! Stage 10, audit: builds the request's audit record from what the stages learned and
//! appends it before the response finishes. A request whose record cannot be written is
//! not answered normally (non-stream answers become 503): there is no silent loss.

use chrono::{DateTime, SecondsFormat, Utc};

use super::context::RequestCtx;
use crate::audit::Audit;
use crate::audit::record::{Bounds, MAX_TEXT, RequestRecord, ToolCalls, ToolDecision};
use crate::auth::AuthMethod;
use crate::config::{CaptureMode, SubjectMode};
use crate::openai::{ApiError, ErrorKind};
use crate::policy::Effect;
use crate::telemetry::metrics;

/// Appends the request's entry; `status` is the status being answered. Called by the
/// report, once per request.
pub fn append(audit: &Audit, ctx: &mut RequestCtx, status: u16) -> Result<(), ApiError> {
    let principal = ctx.principal.as_ref();
    let plain = subject_mode(audit, ctx) == SubjectMode::Plain;
    // API key ids name a key, not a person: always as they are. Token subjects are
    // pseudonymized unless the policy says plain, which the record then says too.
    let (subject, subject_plain) = match principal {
        None => (None, false),
        Some(p) => match p.method {
            AuthMethod::ApiKey | AuthMethod::Anonymous => (Some(p.subject.clone()), false),
            _ if plain => (Some(p.subject.clone()), true),
            _ => (
                Some(audit.pseudonymize(p.tenant.as_deref(), &p.subject)),
                false,
            ),
        },
    };
    let decision = ctx.decision.as_ref();
    // Names and reasons can come from clients and providers: the record stays bounded.
    let mut b = Bounds::default();
    let tools = b.list("tools", ctx.tools.iter().map(|t| b_text(t)));
    let tool_decisions = decision
        .map(|d| {
            b.list(
                "tool_decisions",
                d.tools.iter().map(|(name, effect)| ToolDecision {
                    name: b_text(name),
                    decision: effect_label(*effect).to_string(),
                }),
            )
        })
        .unwrap_or_default();
    let tool_calls = b.list(
        "tool_calls",
        ctx.tool_calls.iter().map(|(name, count)| ToolCalls {
            name: b_text(name),
            count: *count,
        }),
    );
    let reason = decision
        .filter(|d| d.effect == Effect::Deny)
        .map(|d| b.text("reason", &d.reason));
    let pii = b.list("pii", ctx.pii.iter().cloned());
    if ctx.tool_calls_cut > 0 {
        *b.cut.entry("tool_calls".into()).or_default() += ctx.tool_calls_cut;
    }
    let record = RequestRecord {
        time: DateTime::<Utc>::from(ctx.started_at).to_rfc3339_opts(SecondsFormat::Millis, true),
        request_id: ctx.request_id.clone(),
        tenant: principal.and_then(|p| p.tenant.clone()),
        subject,
        auth_method: principal.map(|p| p.method.label().to_string()),
        endpoint: ctx.route.to_string(),
        model: ctx.model.clone(),
        provider: ctx.provider.clone(),
        upstream_model: ctx.upstream_model.clone(),
        policy_digest: ctx.policy_digest.as_ref().map(|d| format!("sha256:{d}")),
        rule: decision.map(|d| d.rule.clone()),
        decision: decision.map(|d| effect_label(d.effect).to_string()),
        reason,
        status,
        error_code: ctx.error_code.clone(),
        stream: ctx.stream,
        attempts: ctx.attempts,
        latency_ms: ctx.started.elapsed().as_secs_f64() * 1e3,
        upstream_latency_ms: ctx.upstream_latency.map(|d| d.as_secs_f64() * 1e3),
        time_to_first_byte_ms: ctx.first_byte.map(|d| d.as_secs_f64() * 1e3),
        client_disconnected: ctx.client_gone,
        tools,
        usage: ctx.usage.clone(),
        cost_usd: ctx.cost.map(crate::policy::pricing::usd),
        pii,
        pii_ner_skipped: ctx.pii_ner_skipped,
        tool_decisions,
        tool_calls,
        subject_plain,
        capture: ctx.capture.take().map(|c| c.finish()),
        cut: b.cut,
    };
    audit.record(record).map(|_| ()).map_err(|e| {
        metrics().audit_rejected.inc();
        tracing::error!(request_id = %ctx.request_id, error = %e, "audit: record not written");
        unavailable()
    })
}

/// A name cut to the record's bound (tool names are validated when they come from the
/// client; a provider's can be anything).
fn b_text(name: &str) -> String {
    name.get(..name.floor_char_boundary(MAX_TEXT))
        .unwrap_or_default()
        .to_string()
}

fn effect_label(effect: Effect) -> &'static str {
    match effect {
        Effect::Allow => "allow",
        Effect::Deny => "deny",
    }
}

fn rule_settings(ctx: &RequestCtx) -> Option<&crate::policy::AuditSettings> {
    ctx.decision.as_ref()?.settings.audit.as_ref()
}

/// How this request's subject is written: its policy rule's choice, else the config's.
fn subject_mode(audit: &Audit, ctx: &RequestCtx) -> SubjectMode {
    rule_settings(ctx)
        .and_then(|s| s.subject)
        .unwrap_or(audit.config().subject)
}

/// Whether this request's record keeps its redacted prompt and answer.
pub fn capture_mode(audit: &Audit, ctx: &RequestCtx) -> CaptureMode {
    rule_settings(ctx)
        .and_then(|s| s.capture)
        .unwrap_or(audit.config().capture)
}

/// The answer when the audit log cannot take records.
pub fn unavailable() -> ApiError {
    ApiError::new(
        ErrorKind::Unavailable,
        "The audit log cannot record requests right now; retry later.",
    )
    .with_code("audit_unavailable")
    .with_header("retry-after", "1")
}
