//! The data plane: a pingora `ProxyHttp` whose `request_filter` runs the request's stages
//! in order (route → authn → body → parse → model → upstream → respond) and answers the
//! client itself. Warden owns the body and calls providers with its own client, so bodies
//! of any size up to the limit are seen whole before a provider is picked.

mod accounting;
mod admission;
mod answer;
mod audit_entry;
mod body;
pub mod context;
mod fault;
mod log;
mod redaction;
mod report;
mod respond;
mod route;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, StatusCode};
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};

use crate::auth::Principal;
use crate::openai::models::{ModelList, ModelObject};
use crate::openai::{ApiError, ApiRequest, Endpoint, ErrorKind};
use crate::policy::Facts;
use crate::provider::Reply;
use crate::provider::dispatch::{Call, dispatch};
use crate::telemetry::metrics;

pub use crate::gateway::Gateway;
pub use context::RequestCtx;

pub struct WardenProxy {
    gateway: Arc<Gateway>,
}

impl WardenProxy {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        WardenProxy { gateway }
    }

    /// Runs the stages; returns an error for the caller to write, or `Ok` once answered.
    async fn handle(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<(), ApiError> {
        let gw = &*self.gateway;
        let route = route::resolve(
            &session.req_header().method,
            session.req_header().uri.path(),
        )?;
        ctx.route = route.endpoint.label();
        let client_ip = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip().to_string());
        let credential = crate::auth::credential(&session.req_header().headers);
        ctx.principal = Some(
            gw.auth
                .authenticate(credential, client_ip.as_deref())
                .await?,
        );

        match route.endpoint {
            Endpoint::ListModels => {
                let body = model_list_json(gw, ctx.principal.as_ref());
                respond::full(session, ctx, StatusCode::OK, &HeaderMap::new(), body).await;
                return Ok(());
            }
            Endpoint::GetModel => {
                let id = route.model_id.unwrap_or_default();
                let body = model_json(gw, ctx.principal.as_ref(), &id)?;
                ctx.model = Some(id);
                respond::full(session, ctx, StatusCode::OK, &HeaderMap::new(), body).await;
                return Ok(());
            }
            Endpoint::ChatCompletions | Endpoint::Completions | Endpoint::Embeddings => {}
        }

        body::check_content_type(session)?;
        let server = &gw.config.server;
        let raw = body::read(
            session,
            server.max_body_bytes,
            Duration::from_millis(server.client_body_timeout_ms),
        )
        .await?;
        ctx.body_read = true;
        let mut request = ApiRequest::parse(route.endpoint, &raw)?;
        ctx.stream = request.is_stream();
        ctx.tools = request.offered_tools()?;
        let model = gw
            .upstreams
            .route(request.model())
            .ok_or_else(|| model_not_found(request.model()))?;
        ctx.model = Some(model.name.clone());
        authorize(gw, ctx, &request, model.default_max_tokens)?;
        let rates_first = admission::rates_first(gw, ctx, raw.len());
        if rates_first {
            admission::admit_requests(gw, ctx, client_ip.as_deref()).await?;
        }
        let body_changed = redaction::redact(gw, ctx, &mut request, &raw, &model.encoding).await?;
        let demand = admission::estimate(gw, ctx, &request, model);
        admission::admit(gw, ctx, client_ip.as_deref(), demand, rates_first).await?;
        fault::inject(&request);

        let call = Call {
            request: &request,
            original: &raw,
            body_changed,
            request_id: &ctx.request_id,
        };
        let dispatched = dispatch(&gw.upstreams, model, &gw.config.retry, call).await;
        ctx.provider = dispatched.provider;
        ctx.upstream_model = dispatched.upstream_model;
        ctx.attempts = dispatched.attempts;
        ctx.upstream_latency = dispatched.upstream_latency;
        let reply = dispatched.reply?;
        let mut chain = answer::Chain::for_request(ctx, dispatched.usage_injected);
        match reply {
            Reply::Full {
                status,
                headers,
                body,
            } => {
                let body = if status.is_success() {
                    chain.body(body, ctx)
                } else {
                    body
                };
                respond::full(session, ctx, status, &headers, body).await
            }
            Reply::Stream(stream) => respond::stream(session, ctx, stream, chain).await,
        }
        Ok(())
    }

    /// With the audit spool full, `reject` refuses the request and `block` waits (up to the
    /// body timeout) for the spool to drain.
    async fn admit_audit(&self, ctx: &mut RequestCtx) -> Result<(), ApiError> {
        let Some(audit) = &self.gateway.audit else {
            return Ok(());
        };
        if !audit.is_full() {
            return Ok(());
        }
        if audit.on_full() == crate::config::OnFull::Block {
            let limit = Duration::from_millis(self.gateway.config.server.client_body_timeout_ms);
            let deadline = tokio::time::Instant::now() + limit;
            while audit.is_full() && tokio::time::Instant::now() < deadline {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            if !audit.is_full() {
                return Ok(());
            }
        }
        metrics().audit_rejected.inc();
        // This refusal itself cannot be recorded: the spool has no room.
        report::unrecordable(ctx);
        Err(audit_entry::unavailable())
    }
}

/// Stage 3, authorization: the policy decision for this principal and request. The
/// output cap policies see is what the request may really produce: the larger of its two
/// cap fields, or the model's `default_max_tokens` when it sets neither.
fn authorize(
    gw: &Gateway,
    ctx: &mut RequestCtx,
    request: &ApiRequest,
    default_max_tokens: u64,
) -> Result<(), ApiError> {
    let (Some(store), Some(principal)) = (&gw.policy, &ctx.principal) else {
        return Ok(());
    };
    let set = store.current();
    let facts = Facts {
        principal,
        endpoint: crate::policy::EndpointName::of(request.endpoint()),
        model: Some(request.model()),
        tools: &ctx.tools,
        max_tokens: match request {
            ApiRequest::Embedding(_) => None,
            _ => Some(request.max_output_tokens().unwrap_or(default_max_tokens)),
        },
        stream: request.is_stream(),
    };
    let decision = set.decide(&facts);
    let effect = if decision.allowed() { "allow" } else { "deny" };
    metrics()
        .policy_decisions
        .with_label_values(&[effect, decision.rule.as_str()])
        .inc();
    ctx.policy_digest = Some(set.digest.clone());
    let denied = (!decision.allowed()).then(|| {
        ApiError::new(
            ErrorKind::Forbidden,
            format!(
                "Denied by policy rule `{}`: {}.",
                decision.rule, decision.reason
            ),
        )
        .with_code("policy_denied")
    });
    ctx.decision = Some(decision);
    denied.map_or(Ok(()), Err)
}

/// Whether the caller may see `model` in `/v1/models`.
fn may_list(gw: &Gateway, principal: Option<&Principal>, model: &str) -> bool {
    match (&gw.policy, principal) {
        (Some(store), Some(p)) => {
            let default_max = gw
                .upstreams
                .route(model)
                .map_or(0, |m| m.default_max_tokens);
            store.current().may_use_model(p, model, default_max)
        }
        (Some(_), None) => false,
        (None, _) => true,
    }
}

fn model_list_json(gw: &Gateway, principal: Option<&Principal>) -> Bytes {
    let data = gw
        .upstreams
        .model_names
        .iter()
        .filter(|name| may_list(gw, principal, name))
        .filter_map(|name| gw.upstreams.route(name))
        .map(|m| ModelObject::new(&m.name, &m.owned_by, gw.started_at))
        .collect();
    Bytes::from(serde_json::to_vec(&ModelList::new(data)).unwrap_or_default())
}

fn model_json(gw: &Gateway, principal: Option<&Principal>, id: &str) -> Result<Bytes, ApiError> {
    let model = gw
        .upstreams
        .route(id)
        .filter(|m| may_list(gw, principal, &m.name))
        .ok_or_else(|| model_not_found(id))?;
    let obj = ModelObject::new(&model.name, &model.owned_by, gw.started_at);
    Ok(Bytes::from(serde_json::to_vec(&obj).unwrap_or_default()))
}

fn model_not_found(id: &str) -> ApiError {
    // Model ids are identifiers chosen by the client; they are echoed like OpenAI does,
    // bounded so an oversized value cannot bloat the answer.
    let shown: String = id.chars().take(128).collect();
    ApiError::new(
        ErrorKind::ModelNotFound,
        format!("The model `{shown}` does not exist or you do not have access to it."),
    )
    .with_param("model")
}

#[async_trait]
impl ProxyHttp for WardenProxy {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            unreported: Some(report::Unreported::new(self.gateway.audit.clone())),
            ..RequestCtx::new()
        }
    }

    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let _in_flight = self.gateway.lifecycle.enter();
        ctx.started = std::time::Instant::now();
        ctx.request_id = context::request_id(session.req_header());
        let admitted = self.admit_audit(ctx).await;
        let handled = match admitted {
            Ok(()) => fault::catch(self.handle(session, ctx)).await,
            Err(e) => Err(e),
        };
        if let Err(err) = handled {
            if !ctx.body_read && body::declares_body(session) {
                // The body was not consumed: the connection cannot carry another request.
                session.set_keepalive(None);
            }
            if ctx.first_byte.is_none() {
                respond::error(session, ctx, &err).await;
            } else {
                // The answer has started (a stream): end it with an error event.
                respond::abort(session, ctx, &err).await;
            }
        }
        report::finish(&self.gateway, ctx);
        Ok(true)
    }

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        _ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        // `request_filter` answers every request; pingora's own upstream path is unused.
        Err(Error::explain(
            ErrorType::InternalError,
            "warden answers in request_filter",
        ))
    }
}
