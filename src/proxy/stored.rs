//! `GET /v1/responses/{id}`, `DELETE /v1/responses/{id}` and
//! `GET /v1/responses/{id}/input_items`: a response the provider stores, read or deleted
//! by the principal who created it through Warden. After authentication (by `pipeline`):
//!
//! 1. **find** — the caller's record of the id (`conversation`); anyone else's id, or an
//!    id Warden never passed, answers 404 without reaching the provider;
//! 2. **authorize** — the policy decision for endpoint `responses` and the response's
//!    model;
//! 3. **dispatch** — the same method and path at the provider that stores it;
//! 4. **answer** — a response or its input items through the PII profile's answer
//!    filter, with the conversation's placeholders: output scanning applies as when the
//!    response was created, and placeholders are restored; a deleted response is
//!    forgotten.
//!
//! No tokens are spent, so nothing is admitted or settled; the report ends it like every
//! request.

use pingora::proxy::Session;

use super::context::{Parsed, RequestCtx, Upstream};
use super::rescue::Failure;
use super::route::{StoredAction, StoredRoute};
use super::{Gateway, answer, authorize, conversation, redaction, respond};
use crate::provider::Reply;
use crate::provider::dispatch;
use crate::telemetry::trace::Stage;

pub async fn run(
    gw: &Gateway,
    session: &mut Session,
    ctx: &mut RequestCtx,
    route: &StoredRoute,
) -> Result<(), Failure> {
    // 1. find
    let thread = conversation::find(gw, ctx, &route.id, None).await?;
    ctx.parsed = Some(Parsed {
        model: thread.model.clone(),
        ..Parsed::default()
    });

    // 2. authorize
    ctx.stage(Stage::Authorize);
    let authorized = authorize::decide_stored(gw, ctx.principal.as_ref(), &thread.model);
    let denied = authorized.as_ref().and_then(authorize::denial);
    ctx.authorized = authorized;
    if let Some(denied) = denied {
        return Err(denied);
    }

    // 3. dispatch
    ctx.stage(Stage::Dispatch);
    let provider = gw
        .upstreams
        .providers
        .iter()
        .find(|p| p.name == thread.provider)
        .ok_or_else(|| Failure::ResponseNotFound {
            id: route.id.clone(),
            param: None,
        })?;
    let mut resource = match route.action {
        StoredAction::InputItems => format!("{}/input_items", route.id),
        StoredAction::Get | StoredAction::Delete => route.id.clone(),
    };
    if let Some(q) = &route.query {
        resource = format!("{resource}?{q}");
    }
    let mut dispatched = dispatch::stored(
        provider,
        route.action.method(),
        &resource,
        &thread.upstream_model,
        &ctx.request_id,
        ctx.carrier(),
    )
    .await;
    ctx.upstream = Upstream::taken(&mut dispatched);
    ctx.traced(std::mem::take(&mut dispatched.spans));
    let reply = dispatched.reply?;

    // 4. answer
    ctx.stage(Stage::Answer);
    let deleted = route.action == StoredAction::Delete
        && matches!(&reply, Reply::Full { status, .. } if status.is_success());
    if deleted
        && let Some(principal) = ctx.principal.as_ref()
        && let Err(e) = gw.conversations.forget(principal, &route.id).await
    {
        tracing::warn!(request_id = %ctx.request_id, error = %e, "responses: a deleted response's record stays until it expires");
    }
    let filter = match (route.action, redaction::profile(gw, ctx)) {
        (StoredAction::Delete, _) | (_, None) => None,
        (_, Some(profile)) => {
            let tenant = ctx.principal.as_ref().and_then(|p| p.tenant.as_deref());
            gw.pii.stored_answer(profile, tenant, thread.vault)
        }
    };
    respond::reply(session, ctx, reply, answer::Chain::restoring(filter)).await;
    Ok(())
}
