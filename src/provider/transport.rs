//! How a provider is reached: one [`Transport`] trait for every kind — HTTP to OpenAI,
//! Azure OpenAI and vLLM (`adapter`), and the built-in mock served in-process — so the
//! dispatcher's retries, timeouts and streaming treat them all alike.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use http::{HeaderMap, Response};
use http_body_util::BodyExt;

use super::UpstreamBody;
use super::adapter::HttpUpstream;
use crate::mock::{Mock, MockRequest};
use crate::openai::Endpoint;
use crate::telemetry::trace::CallTrace;

/// One call to a provider.
pub struct Outbound<'a> {
    /// `POST` for model requests; `GET`/`DELETE` for a stored response.
    pub method: http::Method,
    pub endpoint: Endpoint,
    /// A resource below the endpoint's path (`resp_123`, `resp_123/input_items`).
    pub resource: Option<&'a str>,
    /// Upstream model name, or Azure deployment.
    pub upstream_model: &'a str,
    pub body: Bytes,
    pub request_id: &'a str,
    pub stream: bool,
    /// The request's trace, continued by this call (`traceparent`, `tracestate`).
    pub trace: Option<&'a CallTrace>,
}

/// Why a call got no response head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SendError {
    /// No connection could be made.
    Connect,
    /// The request could not be built, or the connection failed before a response.
    Broken,
}

/// Sends a call and returns the provider's response head and body.
#[async_trait]
pub trait Transport: Send + Sync {
    async fn send(&self, call: Outbound<'_>) -> Result<Response<UpstreamBody>, SendError>;
}

#[async_trait]
impl Transport for HttpUpstream {
    async fn send(&self, call: Outbound<'_>) -> Result<Response<UpstreamBody>, SendError> {
        let req = self.request(call).map_err(|_| SendError::Broken)?;
        let resp = self.client.request(req).await.map_err(|e| {
            if e.is_connect() {
                SendError::Connect
            } else {
                SendError::Broken
            }
        })?;
        Ok(resp.map(|body| {
            body.map_err(|e| -> crate::http_client::BoxError { Box::new(e) })
                .boxed()
        }))
    }
}

/// The built-in mock, answering in-process as a provider would over HTTP.
#[async_trait]
impl Transport for Arc<Mock> {
    async fn send(&self, call: Outbound<'_>) -> Result<Response<UpstreamBody>, SendError> {
        let path = match call.resource {
            Some(r) => format!("/v1/{}/{r}", call.endpoint.upstream_path()),
            None => format!("/v1/{}", call.endpoint.upstream_path()),
        };
        let mut headers = HeaderMap::new();
        if let Some(trace) = call.trace {
            trace.apply(&mut headers);
        }
        Ok(self
            .handle(MockRequest {
                method: &call.method,
                path: &path,
                headers: &headers,
                body: call.body,
            })
            .await)
    }
}
