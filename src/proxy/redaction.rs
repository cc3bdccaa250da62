//! Stage 3b, PII: the request's texts redacted by its profile (the policy rule's
//! `settings.pii`, else the default) before anything is counted or forwarded; a blocked
//! entity type refuses the request with 400 naming the types, never the values. Profiles
//! that use the NER model run off the request's worker (`spawn_blocking`). What the answer
//! needs — the vault to restore from, output scanning — stays in the request's context.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::Gateway;
use super::answer::Capture;
use super::context::RequestCtx;
use crate::audit::record::PiiCount;
use crate::config::{CaptureMode, NerMode, PiiAction};
use crate::openai::{ApiError, ApiRequest, ErrorKind};
use crate::pii::ner::{NerBudget, NerLimits};
use crate::pii::response::{Answer, OutputScan};
use crate::pii::{Blocked, Entity, Profile, Redactor, Vault, request};
use crate::telemetry::metrics;
use crate::tokens::Encoding;

struct Outcome {
    changed: bool,
    vault: Vault,
    counts: BTreeMap<(Entity, PiiAction), u64>,
    blocked: Option<Blocked>,
    tokens_refused: bool,
    /// Some text was left to the patterns: the request's allowance of model work ran out.
    ner_exhausted: bool,
}

/// What one request's redaction works with.
struct Job {
    profile: Arc<Profile>,
    key: Arc<[u8]>,
    tenant: Option<String>,
    vault: Vault,
    encoding: Encoding,
    ner_limits: Option<NerLimits>,
}

fn apply(job: Job, req: &mut ApiRequest) -> Outcome {
    let mut r = Redactor::new(&job.profile, &job.key, job.tenant.as_deref());
    r.vault = job.vault;
    r.ner_budget = job.ner_limits.map(NerBudget::new);
    let walked = request::redact(req, &mut r, Some(&job.encoding));
    let blocked = r.blocked();
    Outcome {
        changed: walked.unwrap_or(false),
        ner_exhausted: r.ner_budget.as_ref().is_some_and(|b| b.exhausted),
        vault: r.vault,
        counts: r.counts,
        blocked,
        tokens_refused: walked.is_err(),
    }
}

/// Redacts `req` in place; returns whether its body changed. `raw` is the body as the
/// client sent it (placeholder nonces never occur in it); `encoding` decodes token-id
/// inputs.
pub async fn redact(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    req: &mut ApiRequest,
    raw: &[u8],
    encoding: &Encoding,
) -> Result<bool, ApiError> {
    let from_policy = ctx
        .decision
        .as_ref()
        .and_then(|d| d.settings.pii.as_deref());
    let Some(profile) = gw.pii.select(from_policy) else {
        return Ok(false);
    };
    if profile.ner_missing() {
        metrics().pii_ner.with_label_values(&["unavailable"]).inc();
        return Err(ApiError::new(
            ErrorKind::Unavailable,
            "Personal-data detection is not available right now (the NER model is not loaded); retry later.",
        )
        .with_code("pii_unavailable")
        .with_header("retry-after", "5"));
    }
    if profile.settings.ner == NerMode::Optional && profile.ner().is_none() && gw.pii.ner_configured
    {
        metrics().pii_ner.with_label_values(&["unavailable"]).inc();
        ctx.pii_ner_skipped = true;
    }
    let restore = profile.settings.restore;
    let tenant = ctx.principal.as_ref().and_then(|p| p.tenant.clone());
    let output_scan = OutputScan {
        profile: profile.clone(),
        hash_key: gw.pii.hash_key.clone(),
        tenant: tenant.clone(),
    };
    let scan = profile.settings.scan_output.then(|| output_scan.clone());
    let job = Job {
        vault: Vault::for_request(raw).restoring_only(&profile.settings.restore_sources),
        profile: profile.clone(),
        key: gw.pii.hash_key.clone(),
        tenant: tenant.clone(),
        encoding: encoding.clone(),
        ner_limits: gw.pii.ner_limits,
    };
    let outcome = if profile.ner().is_some() {
        // One tenant's requests share a part of the model's sessions, never all of them.
        let _share = match &gw.pii.ner_share {
            Some(share) => share.acquire(tenant.as_deref().unwrap_or("-")).await,
            None => None,
        };
        let mut owned = req.clone();
        let (done, outcome) = tokio::task::spawn_blocking(move || {
            let outcome = apply(job, &mut owned);
            (owned, outcome)
        })
        .await
        .map_err(|_| ApiError::new(ErrorKind::Internal, "Personal-data detection failed."))?;
        *req = done;
        outcome
    } else {
        apply(job, req)
    };
    record(ctx, &outcome.counts, Stage::Request);
    if outcome.ner_exhausted {
        if profile.settings.ner == NerMode::Required {
            return Err(ApiError::new(
                ErrorKind::PayloadTooLarge,
                "The request holds more text than personal-data detection reads per request; send less text.",
            )
            .with_code("pii_too_large"));
        }
        ctx.pii_ner_skipped = true;
    }
    if outcome.tokens_refused {
        return Err(ApiError::invalid(
            "Inputs given as token ids cannot be checked for personal data for this model; send text instead.",
        )
        .with_code("pii_token_input"));
    }
    if let Some(blocked) = outcome.blocked {
        let types: Vec<&str> = blocked.0.iter().map(|e| e.name()).collect();
        return Err(ApiError::new(
            ErrorKind::InvalidRequest,
            format!(
                "The request contains personal data that may not be sent to the model: {}.",
                types.join(", ")
            ),
        )
        .with_code("pii_blocked"));
    }
    ctx.answer = Answer::new(restore.then_some(outcome.vault), scan);
    if let Some(audit) = &gw.audit
        && super::audit_entry::capture_mode(audit, ctx) == CaptureMode::Redacted
    {
        let max = audit.config().capture_max_bytes;
        ctx.capture = Some(Capture::new(output_scan, max, &req.to_json()));
    }
    Ok(outcome.changed)
}

/// Where PII was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Request,
    Answer,
}

/// Counts findings in the metrics and the audit record.
pub fn record(ctx: &mut RequestCtx, counts: &BTreeMap<(Entity, PiiAction), u64>, stage: Stage) {
    let m = metrics();
    let label = match stage {
        Stage::Request => "request",
        Stage::Answer => "answer",
    };
    for ((entity, action), count) in counts {
        m.pii_findings
            .with_label_values(&[entity.name(), action.label(), label])
            .inc_by(*count);
        ctx.pii.push(PiiCount {
            entity: entity.name().to_string(),
            action: action.label().to_string(),
            count: *count,
            stage: (stage == Stage::Answer).then(|| label.to_string()),
        });
    }
}
