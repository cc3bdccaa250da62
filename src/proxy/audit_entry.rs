//! The report's audit record: built from the stages' outcomes and appended (by `report`)
//! before the answer's last bytes. A request whose record cannot be written is
//! not answered normally (non-stream answers become 503): there is no silent loss.

use chrono::{DateTime, SecondsFormat, Utc};

use super::context::RequestCtx;
use super::rescue::Failure;
use crate::audit::Audit;
use crate::audit::record::{
    ApprovalState, Bounds, MAX_TEXT, RequestRecord, ToolCalls, ToolDecision, ToolExecution,
    ToolSelected,
};
use crate::auth::AuthMethod;
use crate::config::{CaptureMode, SubjectMode};
use crate::policy::Effect;
use crate::telemetry::metrics;

/// Appends the request's entry; `status` is the status being answered. Called by the
/// report, once per request.
pub fn append(audit: &Audit, ctx: &mut RequestCtx, status: u16) -> Result<(), Failure> {
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
    let decision = ctx.decision();
    // Names and reasons can come from clients and providers: the record stays bounded.
    let mut b = Bounds::default();
    let invoked = ctx.tool.as_ref().map(|t| std::slice::from_ref(&t.name));
    let offered = ctx
        .parsed
        .as_ref()
        .map(|p| p.tools.as_slice())
        .or(invoked)
        .unwrap_or_default();
    let tools = b.list("tools", offered.iter().map(|t| b_text(t)));
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
        ctx.answered
            .tool_calls
            .iter()
            .map(|(name, count)| ToolCalls {
                name: b_text(name),
                count: *count,
            }),
    );
    let reason = decision
        .filter(|d| d.effect == Effect::Deny)
        .map(|d| b.text("reason", &d.reason));
    let pii = b.list("pii", ctx.pii.found.iter().cloned());
    if ctx.answered.tool_calls_cut > 0 {
        *b.cut.entry("tool_calls".into()).or_default() += ctx.answered.tool_calls_cut;
    }
    let record = RequestRecord {
        time: DateTime::<Utc>::from(ctx.started_at).to_rfc3339_opts(SecondsFormat::Millis, true),
        request_id: ctx.request_id.clone(),
        trace_id: ctx.trace_id(),
        tenant: principal.and_then(|p| p.tenant.clone()),
        subject,
        auth_method: principal.map(|p| p.method.label().to_string()),
        endpoint: ctx.route.to_string(),
        model: ctx.model().map(str::to_string),
        provider: ctx.upstream.provider.clone(),
        upstream_model: ctx.upstream.model.clone(),
        policy_digest: ctx
            .authorized
            .as_ref()
            .map(|a| format!("sha256:{}", a.policy_digest)),
        rule: decision.map(|d| d.rule.clone()),
        decision: decision.map(|d| effect_label(d.effect).to_string()),
        reason,
        status,
        error_code: ctx.answered.error_code.clone(),
        stream: ctx.stream(),
        attempts: ctx.upstream.attempts,
        latency_ms: ctx.started.elapsed().as_secs_f64() * 1e3,
        upstream_latency_ms: ctx.upstream.latency.map(|d| d.as_secs_f64() * 1e3),
        time_to_first_byte_ms: ctx.answered.first_byte.map(|d| d.as_secs_f64() * 1e3),
        client_disconnected: ctx.client_gone,
        tools,
        usage: ctx.answered.usage.clone(),
        cost_usd: ctx.answered.cost.map(crate::policy::pricing::usd),
        pii,
        pii_ner_skipped: ctx.pii.ner_skipped,
        tool_decisions,
        tool_calls,
        tool_execution: ctx.tool.as_ref().map(|t| ToolExecution {
            name: t.name.clone(),
            risk: t.risk.label().to_string(),
            backend: t.backend.clone(),
            definition_digest: format!("sha256:{}", t.digest),
            outcome: t.outcome.map(str::to_string),
            backend_status: t.backend_status,
            latency_ms: t.latency.map(|d| d.as_secs_f64() * 1e3),
            approval: t.approval.as_ref().map(|a| ApprovalState {
                id: a.id.clone(),
                status: a.status.to_string(),
            }),
        }),
        approval_decision: None,
        tool_selection: ctx
            .selection
            .iter()
            .flatten()
            .map(|(name, score, added)| ToolSelected {
                name: name.clone(),
                score: (f64::from(*score) * 1000.0).round() / 1000.0,
                added: *added,
            })
            .collect(),
        subject_plain,
        capture: ctx.answered.capture.take().map(|c| c.finish()),
        cut: b.cut,
    };
    audit.record(record).map(|_| ()).map_err(|e| {
        metrics().audit_rejected.inc();
        tracing::error!(request_id = %ctx.request_id, error = %e, "audit: record not written");
        Failure::AuditUnavailable
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
    ctx.decision()?.settings.audit.as_ref()
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
