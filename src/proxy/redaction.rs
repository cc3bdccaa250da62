//! Stage 5, redact: the request's PII profile (its policy rule's `settings.pii`, else
//! the default) applied by the PII module's entry point (`Profiles::redact`) before
//! anything is counted or forwarded. Findings go to the metrics and the record, refused
//! requests included; with `capture: redacted` the record keeps the redacted prompt.

use super::Gateway;
use super::answer::Capture;
use super::context::RequestCtx;
use super::rescue::Failure;
use crate::audit::record::PiiCount;
use crate::config::CaptureMode;
use crate::openai::ApiRequest;
use crate::pii::response::Answer;
use crate::pii::{Counts, Refused, VaultSnapshot};
use crate::telemetry::metrics;
use crate::tokens::Encoding;

/// What the rest of the request needs from this stage.
#[derive(Default)]
pub struct Redaction {
    /// Whether the request's body changed.
    pub changed: bool,
    /// The answer's PII filter (restore, scan), when it needs one.
    pub answer: Option<Answer>,
}

/// The PII profile of the request: its policy rule's, else the default.
pub fn profile(gw: &Gateway, ctx: &RequestCtx) -> Option<std::sync::Arc<crate::pii::Profile>> {
    gw.pii
        .select(ctx.decision().and_then(|d| d.settings.pii.as_deref()))
}

/// Redacts `req` in place. `raw` is the body as the client sent it; `encoding` decodes
/// token-id inputs; `resumed` holds the placeholders of the conversation the request
/// continues (Responses API), which the request's are kept with for the next turn.
pub async fn redact(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    req: &mut ApiRequest,
    raw: &[u8],
    resumed: Option<VaultSnapshot>,
    encoding: &Encoding,
) -> Result<Redaction, Failure> {
    let Some(profile) = profile(gw, ctx) else {
        return Ok(Redaction::default());
    };
    let tenant = ctx.principal.as_ref().and_then(|p| p.tenant.clone());
    let redacted = match gw
        .pii
        .redact(profile, tenant.as_deref(), req, raw, resumed, encoding)
        .await
    {
        Ok(redacted) => redacted,
        Err(Refused {
            refusal,
            counts,
            ner_skipped,
        }) => {
            record(ctx, &counts, Stage::Request);
            ctx.pii.ner_skipped |= ner_skipped;
            return Err(refusal.into());
        }
    };
    record(ctx, &redacted.counts, Stage::Request);
    ctx.pii.ner_skipped |= redacted.ner_skipped;
    if let Some(turn) = ctx.conversation.as_mut() {
        turn.vault = redacted.conversation;
    }
    if let Some(audit) = &gw.audit
        && super::audit_entry::capture_mode(audit, ctx) == CaptureMode::Redacted
    {
        let max = audit.config().capture_max_bytes;
        ctx.answered.capture = Some(Capture::new(redacted.scan, max, &req.to_json()));
    }
    Ok(Redaction {
        changed: redacted.changed,
        answer: redacted.answer,
    })
}

/// Where PII was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Request,
    Answer,
    /// A tool's result (`POST /v1/tools/{name}/invoke`).
    ToolResult,
}

/// Counts findings in the metrics and the audit record.
pub fn record(ctx: &mut RequestCtx, counts: &Counts, stage: Stage) {
    let m = metrics();
    let label = match stage {
        Stage::Request => "request",
        Stage::Answer => "answer",
        Stage::ToolResult => "tool_result",
    };
    for ((entity, action), count) in counts {
        m.pii_findings
            .with_label_values(&[entity.name(), action.label(), label])
            .inc_by(*count);
        ctx.pii.found.push(PiiCount {
            entity: entity.name().to_string(),
            action: action.label().to_string(),
            count: *count,
            stage: (stage != Stage::Request).then(|| label.to_string()),
        });
    }
}
