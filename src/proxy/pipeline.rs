//! The request path, in order. Reading [`run`] top to bottom is reading a request's life:
//!
//! 1. **route** — method and path to an endpoint (`route`);
//! 2. **authenticate** — the credential to a [`Principal`](crate::auth::Principal) (`auth`);
//!    model listings are answered here;
//! 3. **read and parse** — the body, whole and bounded (`body`), to an
//!    [`ApiRequest`]; the model to its route;
//! 4. **authorize** — the policy decision for this principal, model, tools and caps
//!    (`authorize`); then a client's `Idempotency-Key` is claimed or its stored answer
//!    replayed (`replay`), and, with `settings.tools.routing`, the registry tools that
//!    match the latest user message are offered too (`offer`);
//! 5. **redact** — the PII profile over every text the provider will see (`redaction`);
//! 6. **count and admit** — the estimate (prompt tokens, output cap, price) charged to the
//!    limits (`admission`); on expensive requests the request rate is checked before 5;
//! 7. **dispatch** — the provider's targets, with retries, until an answer starts
//!    (`provider::dispatch`);
//! 8. **answer** — the answer through the filter chain (`answer`) to the client
//!    (`respond`).
//!
//! `POST /v1/tools/{name}/invoke` leaves after step 2 for its own stages (`invoke`), and
//! so do `GET`/`DELETE /v1/responses/{id}` and `…/input_items` (`stored`). A Responses
//! request's `previous_response_id` is checked, and its conversation's placeholders
//! picked up, just before step 5 (`conversation`).
//!
//! Each stage writes its own outcome into the [`RequestCtx`]; a failure is the stage's
//! own error, mapped to the client's error once (`rescue`). Whatever the path, the
//! report (`report`) ends the request: audit record, settlement, metrics, access line.

use std::sync::Arc;

use http::{HeaderMap, StatusCode};
use pingora::proxy::Session;

use super::context::{Parsed, RequestCtx, Upstream};
use super::rescue::Failure;
use super::{
    Gateway, admission, answer, authorize, body, catalog, conversation, fault, invoke, offer,
    redaction, replay, respond, route, stored, tool_loop,
};
use crate::auth::PeerIdentity;
use crate::openai::ApiRequest;
use crate::provider::dispatch::{Call, dispatch};
use crate::telemetry::trace::Stage;

/// Runs the stages; `Ok` once the client has been answered.
pub async fn run(
    gw: &Arc<Gateway>,
    session: &mut Session,
    ctx: &mut RequestCtx,
) -> Result<(), Failure> {
    // 1. route
    let header = session.req_header();
    let resolved = route::resolve(&header.method, &header.uri)?;
    ctx.route = resolved.label();
    let client_ip = session
        .client_addr()
        .and_then(|a| a.as_inet())
        .map(|a| a.ip().to_string());

    // 2. authenticate
    ctx.stage(Stage::Authenticate);
    let credential = crate::auth::credential(&session.req_header().headers);
    let peer = peer_identity(session);
    let principal = gw
        .auth
        .authenticate(credential, client_ip.as_deref(), peer.as_ref())
        .await?;
    let principal = ctx.principal.insert(principal);
    let route = match resolved {
        route::Resolved::Api(route) => route,
        // A tool run through Warden has its own stages.
        route::Resolved::ToolInvoke(tool) => {
            return invoke::run(gw, session, ctx, &tool, client_ip.as_deref()).await;
        }
        // So has a stored response.
        route::Resolved::Stored(stored) => return stored::run(gw, session, ctx, &stored).await,
    };
    if !route.endpoint.takes_body() {
        let body = catalog::answer(gw, principal, &route)?;
        if let Some(id) = route.model_id {
            ctx.parsed = Some(Parsed {
                model: id,
                ..Parsed::default()
            });
        }
        respond::full(session, ctx, StatusCode::OK, &HeaderMap::new(), body).await;
        return Ok(());
    }

    // 3. read and parse
    ctx.stage(Stage::Read);
    let raw = body::read_json(session, ctx, &gw.config.server).await?;
    let mut request = ApiRequest::parse(route.endpoint, &raw)?;
    let parsed = ctx.parsed.insert(Parsed {
        model: request.model().to_string(),
        stream: request.is_stream(),
        tools: request.offered_tools()?,
        max_tokens: request.max_output_tokens(),
    });
    let model = gw
        .upstreams
        .route(request.model())
        .ok_or_else(|| Failure::UnknownModel(request.model().to_string()))?;

    // 4. authorize (`parsed` borrows one field of the context, the trace another)
    if let Some(trace) = ctx.trace.as_mut() {
        trace.stage(Stage::Authorize);
    }
    let authorized = authorize::decide(gw, ctx.principal.as_ref(), parsed, &request, model);
    let denied = authorized.as_ref().and_then(authorize::denial);
    ctx.authorized = authorized;
    if let Some(denied) = denied {
        return Err(denied);
    }
    let key = replay::client_key(session)?;
    if replay::begin(
        gw,
        session,
        ctx,
        route.endpoint.label(),
        key.as_deref(),
        &raw,
    )
    .await?
    {
        return Ok(()); // answered from an idempotency key's stored answer
    }
    let cap = request
        .max_output_tokens()
        .or(Some(model.default_max_tokens));
    ctx.stage(Stage::Tools);
    let tools_added = offer::offer(gw, ctx, &mut request, cap).await?;
    let resumed = conversation::resume(gw, ctx, &request).await?;

    // 5. redact, and 6. count and admit (request rates first when 5 is expensive)
    let rates_first = admission::rates_first(gw, ctx, raw.len());
    if rates_first {
        ctx.stage(Stage::Admit);
        admission::admit_requests(gw, ctx, client_ip.as_deref()).await?;
    }
    ctx.stage(Stage::Redact);
    let redacted = redaction::redact(gw, ctx, &mut request, &raw, resumed, &model.encoding).await?;
    ctx.stage(Stage::Admit);
    let demand = admission::estimate(gw, ctx, &request, model);
    admission::admit(gw, ctx, client_ip.as_deref(), demand, rates_first).await?;
    fault::inject(&request);

    // 7. and 8., in a loop when Warden runs the model's tool calls
    if let Some(plan) = tool_loop::plan(gw, ctx, &request) {
        ctx.stage(Stage::Dispatch);
        let prepared = tool_loop::Prepared {
            request,
            raw: &raw,
            body_changed: redacted.changed || tools_added,
            model,
            redaction: redacted,
            client_ip: client_ip.as_deref(),
        };
        return tool_loop::run(gw, session, ctx, plan, prepared).await;
    }

    // 7. dispatch
    ctx.stage(Stage::Dispatch);
    let call = Call {
        request: &request,
        original: &raw,
        body_changed: redacted.changed || tools_added,
        request_id: &ctx.request_id,
        trace: ctx.carrier(),
    };
    let mut dispatched = dispatch(&gw.upstreams, model, &gw.config.retry, call).await;
    ctx.upstream = Upstream::taken(&mut dispatched);
    ctx.traced(std::mem::take(&mut dispatched.spans));
    let reply = dispatched.reply?;

    // 8. answer
    ctx.stage(Stage::Answer);
    let chain = answer::Chain::for_request(dispatched.usage_injected, redacted.answer);
    respond::reply(session, ctx, reply, chain).await;
    Ok(())
}

/// The names of the client certificate the TLS listener verified, if the connection
/// presented one.
fn peer_identity(session: &Session) -> Option<PeerIdentity> {
    session
        .digest()?
        .ssl_digest
        .as_ref()?
        .extension
        .get::<PeerIdentity>()
        .cloned()
}
