//! The Responses API's conversations on the request path. A `previous_response_id` must
//! name one of the caller's own responses — anyone else's answers 404 before the
//! provider is reached — and the placeholders of that conversation continue into this
//! request ([`resume`]). A request the provider stores starts a [`Turn`]; its response's
//! id, read from the answer, is remembered with its owner, provider and placeholders
//! before the answer's last bytes go out ([`remember`]), so the client can continue it
//! at once, on any replica.

use std::sync::Arc;

use super::Gateway;
use super::context::RequestCtx;
use super::rescue::Failure;
use crate::conversation::{Conversations, Thread};
use crate::openai::ApiRequest;
use crate::pii::VaultSnapshot;

/// What a stored Responses request remembers with its response.
pub struct Turn {
    conversations: Arc<Conversations>,
    /// The conversation's placeholders after this request's redaction.
    pub vault: Option<VaultSnapshot>,
    /// The response's id, as the answer gave it.
    pub response_id: Option<String>,
}

impl std::fmt::Debug for Turn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Turn")
            .field("response_id", &self.response_id)
            .finish_non_exhaustive()
    }
}

/// For a Responses request: checks its `previous_response_id` is the caller's and
/// returns that conversation's placeholders; starts the request's [`Turn`] when the
/// provider will store the response.
pub async fn resume(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    request: &ApiRequest,
) -> Result<Option<VaultSnapshot>, Failure> {
    let ApiRequest::Responses(r) = request else {
        return Ok(None);
    };
    if r.stored() {
        ctx.conversation = Some(Turn {
            conversations: gw.conversations.clone(),
            vault: None,
            response_id: None,
        });
    }
    let Some(previous) = &r.previous_response_id else {
        return Ok(None);
    };
    let thread = find(gw, ctx, previous, Some("previous_response_id")).await?;
    Ok(thread.vault)
}

/// The caller's record of `response_id`; 404 when it is not theirs.
pub async fn find(
    gw: &Gateway,
    ctx: &RequestCtx,
    response_id: &str,
    param: Option<&'static str>,
) -> Result<Thread, Failure> {
    let principal = ctx.principal.as_ref().ok_or(Failure::Internal)?;
    match gw.conversations.find(principal, response_id).await {
        Ok(Some(thread)) => Ok(thread),
        Ok(None) => Err(Failure::ResponseNotFound {
            id: response_id.to_string(),
            param,
        }),
        Err(e) => {
            tracing::warn!(request_id = %ctx.request_id, error = %e, "responses: lookup failed");
            Err(Failure::ResponsesUnavailable)
        }
    }
}

/// Remembers the answered response as the caller's (once; a no-op for other requests).
/// A failure is logged: the answer still goes out, and continuing it answers 404.
pub async fn remember(ctx: &mut RequestCtx) {
    let Some(turn) = ctx.conversation.take() else {
        return;
    };
    let (Some(id), Some(principal), Some(parsed)) =
        (&turn.response_id, &ctx.principal, &ctx.parsed)
    else {
        return;
    };
    if !(200..300).contains(&ctx.answered.status) {
        return;
    }
    let thread = Thread {
        model: parsed.model.clone(),
        provider: ctx.upstream.provider.clone().unwrap_or_default(),
        upstream_model: ctx.upstream.model.clone().unwrap_or_default(),
        vault: turn.vault.clone(),
    };
    if let Err(e) = turn.conversations.remember(principal, id, &thread).await {
        tracing::warn!(request_id = %ctx.request_id, error = %e, "responses: the response's owner could not be recorded");
        crate::telemetry::metrics().response_owner_errors.inc();
    }
}
