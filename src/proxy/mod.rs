//! The data plane: a pingora `ProxyHttp` whose `request_filter` runs the request's stages
//! (`pipeline`), answers the client itself, maps a failure to its error once (`rescue`)
//! and ends every request with its report (`report`). Warden owns the body and calls
//! providers with its own client, so bodies of any size up to the limit are seen whole
//! before a provider is picked.

mod accounting;
mod admission;
mod answer;
mod approval;
mod audit_entry;
mod authorize;
mod body;
mod catalog;
pub mod context;
mod conversation;
mod fault;
mod invoke;
mod log;
mod offer;
mod pipeline;
mod redaction;
mod replay;
mod report;
mod rescue;
mod respond;
mod route;
mod stored;
mod tool_loop;
mod trace;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::proxy::{ProxyHttp, Session};

use crate::telemetry::metrics;
use rescue::Failure;

pub use crate::gateway::Gateway;
pub use approval::display_name as approval_display_name;
pub use context::RequestCtx;

pub struct WardenProxy {
    gateway: Arc<Gateway>,
}

impl WardenProxy {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        WardenProxy { gateway }
    }

    /// With the audit spool full, `reject` refuses the request and `block` waits (up to the
    /// body timeout) for the spool to drain.
    async fn admit_audit(&self, ctx: &mut RequestCtx) -> Result<(), Failure> {
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
        Err(Failure::AuditUnavailable)
    }
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
        ctx.started_at = std::time::SystemTime::now();
        ctx.request_id = context::request_id(session.req_header());
        ctx.trace = crate::telemetry::trace::RequestTrace::begin(
            &session.req_header().headers,
            ctx.started,
            ctx.started_at,
        );
        let admitted = self.admit_audit(ctx).await;
        let handled = match admitted {
            Ok(()) => fault::catch(pipeline::run(&self.gateway, session, ctx)).await,
            Err(e) => Err(e),
        };
        if let Err(failure) = handled {
            let err = rescue::rescue(failure);
            if !ctx.body_read && body::declares_body(session) {
                // The body was not consumed: the connection cannot carry another request.
                session.set_keepalive(None);
            }
            if ctx.answered.first_byte.is_none() {
                respond::error(session, ctx, &err).await;
            } else {
                // The answer has started (a stream): end it with an error event.
                respond::abort(session, ctx, &err).await;
            }
        }
        report::finish(&self.gateway, ctx);
        replay::finish(ctx).await;
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
