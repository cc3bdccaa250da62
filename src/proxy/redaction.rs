//! Stage 3b, PII: the request's texts redacted by its profile (the policy rule's
//! `settings.pii`, else the default) before anything is counted or forwarded; a blocked
//! entity type refuses the request with 400 naming the types, never the values. The
//! request's vault stays in its context so answers can be restored.

use super::Gateway;
use super::context::RequestCtx;
use crate::audit::record::PiiCount;
use crate::openai::{ApiError, ApiRequest, ErrorKind};
use crate::pii::{Redactor, request};
use crate::telemetry::metrics;

/// Redacts `req` in place; returns whether its body changed.
pub fn redact(gw: &Gateway, ctx: &mut RequestCtx, req: &mut ApiRequest) -> Result<bool, ApiError> {
    let from_policy = ctx
        .decision
        .as_ref()
        .and_then(|d| d.settings.pii.as_deref());
    let Some(profile) = gw.pii.select(from_policy) else {
        return Ok(false);
    };
    let tenant = ctx.principal.as_ref().and_then(|p| p.tenant.as_deref());
    let mut redactor = Redactor::new(&profile, &gw.pii.hash_key, tenant);
    let changed = request::redact(req, &mut redactor);
    let m = metrics();
    for ((entity, action), count) in &redactor.counts {
        m.pii_findings
            .with_label_values(&[entity.name(), action.label()])
            .inc_by(*count);
        ctx.pii.push(PiiCount {
            entity: entity.name().to_string(),
            action: action.label().to_string(),
            count: *count,
        });
    }
    if let Some(blocked) = redactor.blocked() {
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
    if profile.settings.restore && !redactor.vault.is_empty() {
        ctx.vault = Some(redactor.vault);
    }
    Ok(changed)
}
