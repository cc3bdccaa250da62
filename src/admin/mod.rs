//! The admin listener (separate from the proxy port): `/healthz` (process alive),
//! `/readyz` (configuration loaded, providers configured, not draining), `/metrics`
//! (Prometheus text), the token-protected `/admin/v1/*` usage and limits API, and the
//! approval queue for identified approvers (`/admin/v1/approvals`).

mod approvals_api;
mod usage_api;

use std::sync::Arc;

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;
use serde_json::json;

use crate::gateway::Gateway;
use crate::telemetry::metrics;

pub struct AdminApp {
    gateway: Arc<Gateway>,
}

impl AdminApp {
    pub fn new(gateway: Arc<Gateway>) -> Self {
        AdminApp { gateway }
    }

    /// Reads the gauges that live in the shared state (pending approvals) for a scrape;
    /// when the store does not answer, the last value stays.
    async fn gather_shared(&self) {
        match self.gateway.approvals.pending().await {
            Ok(n) => metrics()
                .approvals_pending
                .set(i64::try_from(n).unwrap_or(i64::MAX)),
            Err(e) => tracing::warn!(error = %e.0, "metrics: pending approvals not read"),
        }
    }

    fn readiness(&self) -> (StatusCode, serde_json::Value) {
        let gw = &self.gateway;
        let draining = gw.lifecycle.is_draining();
        let providers = gw.upstreams.providers.len();
        let models = gw.upstreams.models.len();
        let ready = !draining && providers > 0 && models > 0;
        let status = if ready {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        let policy = gw.policy.as_ref().map(|store| {
            let set = store.current();
            json!({
                "digest": format!("sha256:{}", set.digest),
                "rules": set.rules.len(),
                "tools": set.tools.len(),
                "files": set.files.len(),
                "last_reload_error": store.last_error(),
            })
        });
        let body = json!({
            "status": if ready { "ready" } else if draining { "draining" } else { "not_ready" },
            "config": "loaded",
            "providers": providers,
            "models": models,
            "policy": policy,
            "in_flight": gw.lifecycle.in_flight(),
        });
        (status, body)
    }
}

fn respond(status: StatusCode, content_type: &str, body: Vec<u8>) -> Response<Vec<u8>> {
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, content_type)
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(body)
        .unwrap_or_default()
}

#[async_trait]
impl ServeHttp for AdminApp {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let path = session.req_header().uri.path().to_string();
        if let Some(rest) = path.strip_prefix("/admin/v1/approvals") {
            let header = session.req_header();
            let (status, body) =
                approvals_api::serve(&self.gateway, &header.method, rest, &header.headers).await;
            return respond(status, "application/json", body.to_string().into_bytes());
        }
        if let Some(endpoint) = path.strip_prefix("/admin/v1/") {
            let gw = &self.gateway;
            let header = session.req_header();
            let query = header.uri.query().map(str::to_string);
            let authorization = header
                .headers
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            let (status, body) = match usage_api::authorize(gw, authorization) {
                Err(answer) => answer,
                Ok(()) => match endpoint {
                    "usage" => usage_api::usage(gw, query.as_deref()).await,
                    "limits" => usage_api::limits(gw, query.as_deref()).await,
                    _ => (
                        StatusCode::NOT_FOUND,
                        json!({"error": {"message": "Unknown admin endpoint.", "type": "invalid_request_error", "param": null, "code": "not_found"}}),
                    ),
                },
            };
            return respond(status, "application/json", body.to_string().into_bytes());
        }
        match path.as_str() {
            "/healthz" => respond(StatusCode::OK, "application/json", br#"{"status":"ok"}"#.to_vec()),
            "/readyz" => {
                let (status, body) = self.readiness();
                respond(status, "application/json", body.to_string().into_bytes())
            }
            "/metrics" => {
                self.gather_shared().await;
                respond(StatusCode::OK, "text/plain; version=0.0.4", metrics().render())
            }
            _ => respond(
                StatusCode::NOT_FOUND,
                "application/json",
                br#"{"error":{"message":"Unknown admin endpoint.","type":"invalid_request_error","param":null,"code":"not_found"}}"#.to_vec(),
            ),
        }
    }
}
