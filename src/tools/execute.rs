//! Calling a tool's backend: the request built from the tool's templates and the call's
//! (validated) arguments, sent with the backend's headers and the idempotency key, bounded
//! by the tool's timeout and the backend's response cap, and read only as JSON. Redirects
//! are never followed. Whatever happens, the outcome is a value the model can read: the
//! backend's answer, its refusal (a 4xx with its body), or an error saying what failed —
//! never a panic or a hang.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderValue, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value, json};

use super::backends::{Backend, Reach};
use super::template::RenderError;
use super::{Body, Call, Tool};
use crate::http_client::{BoxError, UpstreamBody};
use crate::mock::MockRequest;
use crate::telemetry::trace::CallTrace;

/// How a call ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// A 2xx answer: its JSON (for GraphQL, its `data`).
    Ok(Value),
    /// The backend refused the call (4xx, or GraphQL `errors` without data): what it said.
    Rejected { status: u16, body: Value },
    /// The call did not get an answer the model can use.
    Failed(Failure),
}

/// Why a call got no usable answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The arguments cannot fill the request's templates.
    Arguments,
    Unreachable,
    Timeout,
    /// A 5xx answer.
    ServerError(u16),
    /// A 3xx answer: redirects are not followed.
    Redirect(u16),
    TooLarge,
    NotJson,
}

impl Failure {
    pub fn label(self) -> &'static str {
        match self {
            Failure::Arguments => "arguments",
            Failure::Unreachable => "unreachable",
            Failure::Timeout => "timeout",
            Failure::ServerError(_) => "server_error",
            Failure::Redirect(_) => "redirect",
            Failure::TooLarge => "too_large",
            Failure::NotJson => "not_json",
        }
    }

    fn message(self, limit: usize) -> String {
        match self {
            Failure::Arguments => "the arguments cannot form the backend request".into(),
            Failure::Unreachable => "the backend could not be reached".into(),
            Failure::Timeout => "the backend did not answer in time".into(),
            Failure::ServerError(s) => format!("the backend failed (HTTP {s})"),
            Failure::Redirect(s) => {
                format!("the backend answered with a redirect (HTTP {s}), which is not followed")
            }
            Failure::TooLarge => format!("the backend's answer is larger than {limit} bytes"),
            Failure::NotJson => "the backend's answer is not JSON".into(),
        }
    }
}

/// A finished call.
#[derive(Debug, Clone)]
pub struct Executed {
    pub outcome: Outcome,
    /// The backend's HTTP status, when it answered.
    pub status: Option<u16>,
    pub latency: Duration,
    /// The response cap the answer was read under.
    limit: usize,
}

impl Executed {
    /// `ok`, `rejected`, or the failure's label.
    pub fn label(&self) -> &'static str {
        match &self.outcome {
            Outcome::Ok(_) => "ok",
            Outcome::Rejected { .. } => "rejected",
            Outcome::Failed(f) => f.label(),
        }
    }

    pub fn is_error(&self) -> bool {
        !matches!(self.outcome, Outcome::Ok(_))
    }

    /// What the model reads.
    pub fn into_result(self) -> Value {
        match self.outcome {
            Outcome::Ok(v) => v,
            Outcome::Rejected { status, body } => json!({
                "error": {"type": "tool_rejected", "status": status, "detail": body}
            }),
            Outcome::Failed(f) => json!({
                "error": {"type": format!("tool_{}", f.label()), "message": f.message(self.limit)}
            }),
        }
    }
}

/// The backend request of a call, before it is sent.
struct Outgoing {
    method: Method,
    /// Path and query below the base URL.
    path: String,
    body: Option<Value>,
    graphql: bool,
}

fn build(call: &Call, args: &Map<String, Value>) -> Result<Outgoing, RenderError> {
    match call {
        Call::Http {
            method,
            path,
            query,
            body,
        } => {
            let mut path = path.render_path(args)?;
            let mut q = form_urlencoded::Serializer::new(String::new());
            let mut any = false;
            for (name, template) in query {
                if template.filled_by(args) {
                    q.append_pair(name, &template.render_text(args)?);
                    any = true;
                }
            }
            if any {
                path.push('?');
                path.push_str(&q.finish());
            }
            let body = match body {
                Body::None => None,
                Body::Arguments => Some(Value::Object(args.clone())),
                Body::Fields(fields) => {
                    let mut out = Map::new();
                    for (name, template) in fields {
                        if template.filled_by(args) {
                            out.insert(name.clone(), template.render_json(args)?);
                        }
                    }
                    Some(Value::Object(out))
                }
            };
            Ok(Outgoing {
                method: Method::from_bytes(method.as_str().as_bytes()).unwrap_or(Method::GET),
                path,
                body,
                graphql: false,
            })
        }
        Call::Graphql {
            path,
            query,
            variables,
        } => {
            let variables = match variables {
                None => Value::Object(args.clone()),
                Some(vars) => {
                    let mut out = Map::new();
                    for (name, template) in vars {
                        if template.filled_by(args) {
                            out.insert(name.clone(), template.render_json(args)?);
                        }
                    }
                    Value::Object(out)
                }
            };
            Ok(Outgoing {
                method: Method::POST,
                path: path.clone(),
                body: Some(json!({"query": query, "variables": variables})),
                graphql: true,
            })
        }
    }
}

/// What the backend answered, read whole (up to the cap).
struct Answer {
    status: StatusCode,
    json_content: bool,
    body: Bytes,
}

enum ReadError {
    Unreachable,
    TooLarge,
}

async fn read(mut body: UpstreamBody, limit: usize) -> Result<Bytes, ReadError> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|_| ReadError::Unreachable)?;
        if let Ok(data) = frame.into_data() {
            if buf.len() + data.len() > limit {
                return Err(ReadError::TooLarge);
            }
            buf.extend_from_slice(&data);
        }
    }
    Ok(buf.freeze())
}

async fn send(backend: &Backend, req: Request<Full<Bytes>>) -> Result<Answer, ReadError> {
    let resp: http::Response<UpstreamBody> = match &backend.reach {
        Reach::Http(client) => client
            .request(req)
            .await
            .map_err(|_| ReadError::Unreachable)?
            .map(|body| body.map_err(|e| -> BoxError { Box::new(e) }).boxed()),
        Reach::InProcess(shop) => {
            let (parts, body) = req.into_parts();
            let body = body
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
            shop.handle(MockRequest {
                method: &parts.method,
                path,
                headers: &parts.headers,
                body,
            })
        }
    };
    let (parts, body) = resp.into_parts();
    Ok(Answer {
        status: parts.status,
        json_content: parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .is_some_and(crate::http_client::is_json_media),
        body: read(body, backend.max_response_bytes).await?,
    })
}

/// Calls `tool`'s backend with `args` (validated against the tool's schema), sending
/// `idempotency_key` in the tool's idempotency header when it has one.
pub async fn execute(
    tool: &Tool,
    backend: &Backend,
    args: &Map<String, Value>,
    idempotency_key: Option<&str>,
    request_id: &str,
    trace: Option<&CallTrace>,
) -> Executed {
    let started = Instant::now();
    let limit = backend.max_response_bytes;
    let done = move |outcome: Outcome, status: Option<u16>| Executed {
        outcome,
        status,
        latency: started.elapsed(),
        limit,
    };
    let Ok(out) = build(&tool.call, args) else {
        return done(Outcome::Failed(Failure::Arguments), None);
    };
    let mut builder = Request::builder()
        .method(out.method)
        .uri(format!("{}{}", backend.base, out.path))
        .header(http::header::ACCEPT, "application/json");
    if let Some(headers) = builder.headers_mut() {
        headers.extend(backend.headers.clone());
        if let Ok(id) = HeaderValue::from_str(request_id) {
            headers.insert("x-request-id", id);
        }
        if let Some(trace) = trace {
            trace.apply(headers);
        }
        if let (Some(idem), Some(key)) = (&tool.idempotency, idempotency_key)
            && let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(idem.header.as_bytes()),
                HeaderValue::from_str(key),
            )
        {
            headers.insert(name, value);
        }
    }
    let body = match &out.body {
        Some(v) => {
            builder = builder.header(http::header::CONTENT_TYPE, "application/json");
            Bytes::from(serde_json::to_vec(v).unwrap_or_default())
        }
        None => Bytes::new(),
    };
    let Ok(req) = builder.body(Full::new(body)) else {
        return done(Outcome::Failed(Failure::Arguments), None);
    };
    let timeout = Duration::from_millis(tool.def.timeout_ms);
    let answer = match tokio::time::timeout(timeout, send(backend, req)).await {
        Err(_) => return done(Outcome::Failed(Failure::Timeout), None),
        Ok(Err(ReadError::Unreachable)) => {
            return done(Outcome::Failed(Failure::Unreachable), None);
        }
        Ok(Err(ReadError::TooLarge)) => return done(Outcome::Failed(Failure::TooLarge), None),
        Ok(Ok(a)) => a,
    };
    let status = Some(answer.status.as_u16());
    let code = answer.status.as_u16();
    if answer.status.is_redirection() {
        return done(Outcome::Failed(Failure::Redirect(code)), status);
    }
    if answer.status.is_server_error() {
        return done(Outcome::Failed(Failure::ServerError(code)), status);
    }
    let parsed = answer
        .json_content
        .then(|| serde_json::from_slice::<Value>(&answer.body).ok())
        .flatten();
    let Some(value) = parsed else {
        return done(Outcome::Failed(Failure::NotJson), status);
    };
    if !answer.status.is_success() {
        return done(
            Outcome::Rejected {
                status: code,
                body: value,
            },
            status,
        );
    }
    if out.graphql {
        return done(graphql(value, code), status);
    }
    done(Outcome::Ok(value), status)
}

/// A GraphQL answer: its `data`, or its `errors` when there is no data.
fn graphql(mut value: Value, status: u16) -> Outcome {
    let data = value
        .get_mut("data")
        .map(Value::take)
        .unwrap_or(Value::Null);
    let errors = value
        .get("errors")
        .and_then(Value::as_array)
        .filter(|e| !e.is_empty());
    match (data.is_null(), errors) {
        (false, _) => Outcome::Ok(data),
        (true, Some(errors)) => {
            let messages: Vec<Value> = errors
                .iter()
                .filter_map(|e| e.get("message").cloned())
                .collect();
            Outcome::Rejected {
                status,
                body: json!({"errors": messages}),
            }
        }
        (true, None) => Outcome::Ok(Value::Null),
    }
}
