//! The built-in mock provider: deterministic OpenAI-compatible answers (chat, streaming,
//! tool calls, completions, embeddings, models), served in-process for `kind: mock` and by
//! `warden mock-provider` for tests and benchmarks. It records what it received so tests
//! can check exactly what left Warden. The demo shop's backends (`commerce`) live here
//! too.

pub mod cli;
pub mod commerce;
mod reply;
mod responses;
pub mod server;

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use serde::Serialize;
use serde_json::{Value, json};

use crate::http_client::UpstreamBody;

/// Behaviour knobs of a mock instance.
#[derive(Debug, Clone, Default)]
pub struct MockSettings {
    /// Delay before the response headers.
    pub latency: Duration,
    /// Streaming pace in chunks per second; 0 streams without pauses.
    pub tokens_per_sec: u64,
    /// Answer every model call with this status and an OpenAI error body.
    pub fail_status: Option<u16>,
    /// Break every stream (connection error) after this many chunks.
    pub fail_after_chunks: Option<usize>,
    /// Never report token usage (whole responses and streams).
    pub no_usage: bool,
    /// Stream content in pieces of this many characters instead of words.
    pub chunk_chars: Option<usize>,
    /// A sentence added to every chat and completion answer, as a model quoting a
    /// retrieved document would (output-scanning tests).
    pub also_say: Option<String>,
}

/// Counters exposed at `GET /_mock/stats`.
#[derive(Debug, Default)]
pub struct MockStats {
    pub requests: AtomicU64,
    pub streams_started: AtomicU64,
    pub streams_completed: AtomicU64,
    pub streams_cancelled: AtomicU64,
}

#[derive(Debug, Clone, Serialize)]
pub struct StatsSnapshot {
    pub requests: u64,
    pub streams_started: u64,
    pub streams_completed: u64,
    pub streams_cancelled: u64,
}

/// The last model call the mock received, as `GET /_mock/last-request` shows it.
#[derive(Debug, Clone, Serialize)]
pub struct RecordedRequest {
    pub method: String,
    pub path: String,
    pub headers: serde_json::Map<String, Value>,
    pub body_bytes: usize,
    pub body: Value,
}

pub struct Mock {
    settings: MockSettings,
    stats: Arc<MockStats>,
    last: Mutex<Option<RecordedRequest>>,
    record: bool,
    responses: responses::Store,
}

/// An incoming request, transport-independent.
pub struct MockRequest<'a> {
    pub method: &'a Method,
    /// Path and query, e.g. `/v1/chat/completions`.
    pub path: &'a str,
    pub headers: &'a HeaderMap,
    pub body: Bytes,
}

impl Mock {
    /// `record` keeps a copy of the last request (standalone server only).
    pub fn new(settings: MockSettings, record: bool) -> Self {
        Mock {
            settings,
            stats: Arc::default(),
            last: Mutex::new(None),
            record,
            responses: responses::Store::default(),
        }
    }

    pub fn stats(&self) -> StatsSnapshot {
        let s = &self.stats;
        StatsSnapshot {
            requests: s.requests.load(Ordering::Relaxed),
            streams_started: s.streams_started.load(Ordering::Relaxed),
            streams_completed: s.streams_completed.load(Ordering::Relaxed),
            streams_cancelled: s.streams_cancelled.load(Ordering::Relaxed),
        }
    }

    /// Serves one request.
    pub async fn handle(&self, req: MockRequest<'_>) -> Response<UpstreamBody> {
        let path = req.path.split('?').next().unwrap_or(req.path);
        match (req.method, path) {
            (&Method::GET, "/_mock/stats") => return json_response(StatusCode::OK, &self.stats()),
            (&Method::GET, "/_mock/last-request") => {
                let last = self.last.lock().map(|g| g.clone()).unwrap_or(None);
                return json_response(StatusCode::OK, &last);
            }
            (&Method::GET, "/v1/models") | (&Method::GET, "/models") => {
                return json_response(StatusCode::OK, &reply::model_list());
            }
            _ => {}
        }
        if let Some(rest) = path
            .strip_prefix("/v1/responses/")
            .or_else(|| path.strip_prefix("/openai/responses/"))
        {
            if self.record {
                self.remember(&req, &Value::Null);
            }
            return self.responses.read(req.method, rest);
        }
        let Some(kind) = reply::endpoint_of(path) else {
            return error_response(StatusCode::NOT_FOUND, "unknown mock path", "not_found");
        };
        if req.method != Method::POST {
            return error_response(
                StatusCode::METHOD_NOT_ALLOWED,
                "use POST",
                "method_not_allowed",
            );
        }
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let body: Value = match serde_json::from_slice(&req.body) {
            Ok(v) => v,
            Err(_) => {
                return error_response(
                    StatusCode::BAD_REQUEST,
                    "invalid JSON body",
                    "invalid_json",
                );
            }
        };
        if self.record {
            self.remember(&req, &body);
        }
        if !self.settings.latency.is_zero() {
            tokio::time::sleep(self.settings.latency).await;
        }
        if let Some(status) = self.settings.fail_status {
            let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            return error_response(status, "mock provider configured to fail", "mock_failure");
        }
        if kind == reply::Kind::Responses {
            return responses::create(&body, &self.settings, &self.stats, &self.responses);
        }
        reply::respond(kind, &body, &self.settings, &self.stats)
    }

    fn remember(&self, req: &MockRequest<'_>, body: &Value) {
        let headers = req
            .headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_string(),
                    Value::from(v.to_str().unwrap_or("<binary>")),
                )
            })
            .collect();
        let rec = RecordedRequest {
            method: req.method.to_string(),
            path: req.path.to_string(),
            headers,
            body_bytes: req.body.len(),
            body: body.clone(),
        };
        if let Ok(mut g) = self.last.lock() {
            *g = Some(rec);
        }
    }
}

pub(crate) fn full_body(bytes: impl Into<Bytes>) -> UpstreamBody {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

pub(crate) fn json_response<T: Serialize>(status: StatusCode, value: &T) -> Response<UpstreamBody> {
    let body = serde_json::to_vec(value).unwrap_or_default();
    Response::builder()
        .status(status)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::CONTENT_LENGTH, body.len())
        .body(full_body(body))
        .unwrap_or_else(|_| Response::new(full_body(Bytes::new())))
}

fn error_response(status: StatusCode, message: &str, code: &str) -> Response<UpstreamBody> {
    let kind = if status.is_server_error() {
        "server_error"
    } else {
        "invalid_request_error"
    };
    json_response(
        status,
        &json!({"error": {"message": message, "type": kind, "param": null, "code": code}}),
    )
}
