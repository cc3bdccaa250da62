//! Sends one request to a model's targets: in priority/weight order, retrying the next
//! target with backoff on connect errors, timeouts, 429 and 5xx, but only while nothing
//! has been sent to the client. A stream is handed back once its first chunk arrived;
//! from then on it is never retried.

use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderName, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Body;
use tokio::time::{Instant, timeout_at};

use super::transport::{Outbound, SendError};
use super::{ModelRoute, Provider, UpstreamBody, Upstreams, attempt_order};
use crate::config::RetrySettings;
use crate::openai::{ApiRequest, Endpoint};
use crate::telemetry::metrics;
use crate::telemetry::trace::{CallTrace, Carrier, Span};
use opentelemetry::KeyValue;

/// Largest non-stream response body Warden reads from a provider.
const MAX_RESPONSE_BYTES: usize = 64 * 1024 * 1024;
/// Largest error body kept from a provider.
const MAX_ERROR_BYTES: usize = 1024 * 1024;

/// Response headers of a provider that are passed on to the client.
const PASSED_HEADERS: [&str; 3] = ["content-type", "openai-processing-ms", "openai-version"];

/// What the dispatcher needs to know about the request.
pub struct Call<'a> {
    pub request: &'a ApiRequest,
    /// The client's body, forwarded unchanged when no stage rewrote the request and the
    /// target uses the client's model name.
    pub original: &'a Bytes,
    pub body_changed: bool,
    pub request_id: &'a str,
    /// The request's trace, which each attempt continues.
    pub trace: Option<Carrier>,
}

/// An answer from a provider.
pub enum Reply {
    /// A whole body: a non-stream answer, or a provider error passed through.
    Full {
        status: StatusCode,
        headers: HeaderMap,
        body: Bytes,
    },
    /// A stream whose first chunk has arrived.
    Stream(UpstreamStream),
}

/// The result of dispatching, with what the access log and metrics need.
pub struct Dispatched {
    pub reply: Result<Reply, UpstreamFailure>,
    pub provider: Option<String>,
    pub upstream_model: Option<String>,
    pub attempts: u32,
    /// Time until the chosen provider's response headers.
    pub upstream_latency: Option<Duration>,
    /// Warden asked the provider for a stream usage chunk the client did not request.
    pub usage_injected: bool,
    /// A span per attempt, when the request's trace is recorded.
    pub spans: Vec<Span>,
}

/// Why an attempt (and, for the last one, the dispatch) failed.
#[derive(Debug)]
pub enum UpstreamFailure {
    Connect,
    Timeout { what: &'static str, after: Duration },
    Status(StatusCode),
    Credentials(StatusCode),
    Broken,
}

impl UpstreamFailure {
    fn label(&self) -> &'static str {
        match self {
            UpstreamFailure::Connect => "connect",
            UpstreamFailure::Timeout { .. } => "timeout",
            UpstreamFailure::Status(s) if *s == StatusCode::TOO_MANY_REQUESTS => "status_429",
            UpstreamFailure::Status(_) => "status_5xx",
            UpstreamFailure::Credentials(_) => "credentials",
            UpstreamFailure::Broken => "reset",
        }
    }
}

/// A provider stream, read chunk by chunk under the idle-gap and total timeouts.
pub struct UpstreamStream {
    pub status: StatusCode,
    pub headers: HeaderMap,
    /// The first chunk, already received (None if the stream was empty).
    pub first: Option<Bytes>,
    body: UpstreamBody,
    idle: Duration,
    deadline: Instant,
    /// How the body ended while a chunk gathered frames; the next call reports it.
    ended: Option<Result<(), StreamError>>,
}

/// The most a chunk gathers of the frames already received after its first.
const GATHER_MAX: usize = 64 * 1024;

/// A stream that ended abnormally.
#[derive(Debug, Clone)]
pub enum StreamError {
    Idle(Duration),
    Total,
    Broken,
}

impl UpstreamStream {
    /// The next non-empty chunk, `None` at the end of the stream. A chunk holds every
    /// frame that has already arrived (up to [`GATHER_MAX`]): events that queued up while
    /// the last chunk was written, as they do under load, go out in one write, not one
    /// each. An idle stream's events still go one by one, as they arrive.
    pub async fn next_chunk(&mut self) -> Result<Option<Bytes>, StreamError> {
        if let Some(end) = self.ended.take() {
            return end.map(|()| None);
        }
        let first = loop {
            let now = Instant::now();
            if now >= self.deadline {
                return Err(StreamError::Total);
            }
            let idle_at = now + self.idle;
            let (limit, err) = if idle_at < self.deadline {
                (idle_at, StreamError::Idle(self.idle))
            } else {
                (self.deadline, StreamError::Total)
            };
            match timeout_at(limit, self.body.frame()).await {
                Err(_) => return Err(err),
                Ok(None) => return Ok(None),
                Ok(Some(Err(_))) => return Err(StreamError::Broken),
                Ok(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data()
                        && !data.is_empty()
                    {
                        break data;
                    }
                }
            }
        };
        Ok(Some(self.gather(first)))
    }

    /// `first` and the data frames already received after it, without waiting for more.
    fn gather(&mut self, first: Bytes) -> Bytes {
        let mut cx = Context::from_waker(Waker::noop());
        let mut gathered: Option<BytesMut> = None;
        while gathered.as_ref().map_or(first.len(), BytesMut::len) < GATHER_MAX {
            match Pin::new(&mut self.body).poll_frame(&mut cx) {
                Poll::Pending => break,
                Poll::Ready(None) => {
                    self.ended = Some(Ok(()));
                    break;
                }
                Poll::Ready(Some(Err(_))) => {
                    self.ended = Some(Err(StreamError::Broken));
                    break;
                }
                Poll::Ready(Some(Ok(frame))) => {
                    if let Ok(data) = frame.into_data() {
                        gathered
                            .get_or_insert_with(|| BytesMut::from(&first[..]))
                            .extend_from_slice(&data);
                    }
                }
            }
        }
        gathered.map_or(first, BytesMut::freeze)
    }
}

/// Dispatches `call` to `route`'s targets.
pub async fn dispatch(
    upstreams: &Upstreams,
    route: &ModelRoute,
    retry: &RetrySettings,
    call: Call<'_>,
) -> Dispatched {
    let order = attempt_order(&route.targets, &mut rand::rng());
    let stream = call.request.is_stream();
    let endpoint = call.request.endpoint();
    // The body each target gets, made on its first attempt.
    let mut bodies: std::collections::HashMap<usize, Bytes> = Default::default();
    let mut last_failure = None;
    let mut last_target = None;
    let mut spans = Vec::new();
    for (attempt, index) in (0..retry.max_attempts).zip(order.iter().copied().cycle()) {
        let Some((target, provider)) = route
            .targets
            .get(index)
            .and_then(|t| Some((t, upstreams.providers.get(t.provider)?)))
        else {
            break;
        };
        if attempt > 0 {
            tokio::time::sleep(backoff(retry, attempt)).await;
            metrics()
                .upstream_retries
                .with_label_values(&[provider.name.as_str()])
                .inc();
        }
        let body = bodies
            .entry(index)
            .or_insert_with(|| body_for(&call, provider, &target.upstream_model))
            .clone();
        let started = Instant::now();
        let trace = call.trace.as_ref().map(Carrier::call);
        let outbound = Outbound {
            method: http::Method::POST,
            endpoint,
            resource: None,
            upstream_model: &target.upstream_model,
            body,
            request_id: call.request_id,
            stream,
            trace: trace.as_ref(),
        };
        let result = attempt_once(provider, outbound).await;
        if let Some(span) = trace.filter(CallTrace::recorded).and_then(|t| {
            let operation = endpoint.gen_ai_operation();
            let name = format!("{} {}", operation.unwrap_or("chat"), target.upstream_model);
            attempt_span(
                &t,
                name,
                operation,
                provider,
                &target.upstream_model,
                attempt,
                started,
                &result,
            )
        }) {
            spans.push(span);
        }
        last_target = Some((provider.name.clone(), target.upstream_model.clone()));
        match result {
            Ok((reply, latency)) => {
                let status = match &reply {
                    Reply::Full { status, .. } => *status,
                    Reply::Stream(s) => s.status,
                };
                metrics()
                    .upstream_requests
                    .with_label_values(&[provider.name.as_str(), status.as_str()])
                    .inc();
                metrics()
                    .upstream_latency
                    .with_label_values(&[provider.name.as_str()])
                    .observe(latency.as_secs_f64());
                return Dispatched {
                    reply: Ok(reply),
                    provider: Some(provider.name.clone()),
                    upstream_model: Some(target.upstream_model.clone()),
                    attempts: attempt + 1,
                    upstream_latency: Some(latency),
                    usage_injected: injects_usage(&call, provider),
                    spans,
                };
            }
            Err(failure) => {
                metrics()
                    .upstream_errors
                    .with_label_values(&[provider.name.as_str(), failure.label()])
                    .inc();
                tracing::warn!(
                    request_id = call.request_id,
                    provider = %provider.name,
                    attempt = attempt + 1,
                    error = failure.label(),
                    elapsed_ms = started.elapsed().as_millis() as u64,
                    "upstream attempt failed"
                );
                last_failure = Some(failure);
            }
        }
    }
    let (provider, upstream_model) = last_target.unzip();
    Dispatched {
        reply: Err(last_failure.unwrap_or(UpstreamFailure::Broken)),
        provider,
        upstream_model,
        attempts: retry.max_attempts,
        upstream_latency: None,
        usage_injected: false,
        spans,
    }
}

/// The span of one attempt, `name`d: which provider and model, how it ended; a model
/// request's carries its GenAI `operation`.
#[allow(clippy::too_many_arguments)]
fn attempt_span(
    trace: &CallTrace,
    name: String,
    operation: Option<&'static str>,
    provider: &Provider,
    upstream_model: &str,
    attempt: u32,
    started: Instant,
    result: &Result<(Reply, Duration), UpstreamFailure>,
) -> Option<Span> {
    let mut attributes = Vec::with_capacity(7);
    if let Some(operation) = operation {
        attributes.push(KeyValue::new("gen_ai.operation.name", operation));
    }
    attributes.extend([
        KeyValue::new("gen_ai.provider.name", provider.kind.gen_ai_name()),
        KeyValue::new("gen_ai.request.model", upstream_model.to_string()),
        KeyValue::new("warden.provider", provider.name.clone()),
        KeyValue::new("warden.attempt", i64::from(attempt) + 1),
    ]);
    let error = match result {
        Ok((reply, _)) => {
            let status = match reply {
                Reply::Full { status, .. } => *status,
                Reply::Stream(s) => s.status,
            };
            attributes.push(KeyValue::new(
                "http.response.status_code",
                i64::from(status.as_u16()),
            ));
            (status.is_client_error() || status.is_server_error())
                .then(|| std::borrow::Cow::Owned(status.as_str().to_string()))
        }
        Err(failure) => Some(std::borrow::Cow::Borrowed(failure.label())),
    };
    trace.finished(name, started.into_std(), attributes, error)
}

/// Whether the body sent to `provider` asks for a usage chunk the client did not.
fn injects_usage(call: &Call<'_>, provider: &Provider) -> bool {
    provider.stream_usage && call.request.is_stream() && !call.request.wants_stream_usage()
}

/// The body `provider` gets: the client's, unless the model name, the usage request or
/// a stage changed it. Azure names the deployment in the path, except for its Responses
/// API, which reads it from the body's `model`.
fn body_for(call: &Call<'_>, provider: &Provider, upstream_model: &str) -> Bytes {
    let deployment_in_path = provider.kind == crate::config::ProviderKind::Azure
        && call.request.endpoint() != Endpoint::Responses;
    let keeps_model = call.request.model() == upstream_model || deployment_in_path;
    let inject = injects_usage(call, provider);
    if keeps_model && !call.body_changed && !inject {
        return call.original.clone();
    }
    let mut req = call.request.clone();
    if !deployment_in_path {
        req.set_model(upstream_model);
    }
    if inject {
        req.request_stream_usage();
    }
    Bytes::from(req.to_json())
}

/// Exponential backoff with jitter in [d/2, d].
fn backoff(retry: &RetrySettings, attempt: u32) -> Duration {
    let exp = retry
        .backoff_initial_ms
        .saturating_mul(1u64 << (attempt - 1).min(16));
    let capped = exp.min(retry.backoff_max_ms);
    let jittered = capped / 2 + rand::random_range(0..=capped / 2);
    Duration::from_millis(jittered)
}

/// A stored response at the provider that keeps it: `GET` or `DELETE` of `resource`
/// (`resp_123`, `resp_123/input_items`) below `/responses`. One attempt: the response
/// lives at that provider only.
pub async fn stored(
    provider: &Provider,
    method: http::Method,
    resource: &str,
    upstream_model: &str,
    request_id: &str,
    trace: Option<Carrier>,
) -> Dispatched {
    let trace = trace.as_ref().map(Carrier::call);
    let started = Instant::now();
    let span_name = format!("{method} responses");
    let outbound = Outbound {
        method,
        endpoint: Endpoint::Responses,
        resource: Some(resource),
        upstream_model,
        body: Bytes::new(),
        request_id,
        stream: false,
        trace: trace.as_ref(),
    };
    let result = attempt_once(provider, outbound).await;
    let spans = trace
        .filter(CallTrace::recorded)
        .and_then(|t| {
            attempt_span(
                &t,
                span_name,
                None,
                provider,
                upstream_model,
                0,
                started,
                &result,
            )
        })
        .into_iter()
        .collect();
    let status = match &result {
        Ok((Reply::Full { status, .. }, _)) => status.as_str().to_string(),
        Ok((Reply::Stream(s), _)) => s.status.as_str().to_string(),
        Err(f) => f.label().to_string(),
    };
    metrics()
        .upstream_requests
        .with_label_values(&[provider.name.as_str(), status.as_str()])
        .inc();
    let latency = result.as_ref().ok().map(|(_, l)| *l);
    Dispatched {
        reply: result.map(|(reply, _)| reply),
        provider: Some(provider.name.clone()),
        upstream_model: Some(upstream_model.to_string()),
        attempts: 1,
        upstream_latency: latency,
        usage_injected: false,
        spans,
    }
}

async fn attempt_once(
    provider: &Provider,
    call: Outbound<'_>,
) -> Result<(Reply, Duration), UpstreamFailure> {
    let stream = call.stream;
    let t = provider.timeouts;
    let started = Instant::now();
    let deadline = started + t.total();
    let first_byte_at = started + t.first_byte().min(t.total());
    let first_byte_timeout = UpstreamFailure::Timeout {
        what: "first-byte",
        after: t.first_byte(),
    };
    let response = timeout_at(first_byte_at, provider.transport.send(call))
        .await
        .map_err(|_| first_byte_timeout)?
        .map_err(|e| match e {
            SendError::Connect => UpstreamFailure::Connect,
            SendError::Broken => UpstreamFailure::Broken,
        })?;
    let latency = started.elapsed();
    let (parts, body) = response.into_parts();
    let headers = passed_headers(&parts.headers);
    let status = parts.status;
    if status.is_success() {
        let is_sse = parts
            .headers
            .get(http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if stream && is_sse {
            let mut s = UpstreamStream {
                status,
                headers,
                first: None,
                body,
                idle: t.idle(),
                deadline,
                ended: None,
            };
            let first = timeout_at(first_byte_at, s.next_chunk())
                .await
                .map_err(|_| UpstreamFailure::Timeout {
                    what: "first-byte",
                    after: t.first_byte(),
                })?
                .map_err(|e| match e {
                    StreamError::Broken => UpstreamFailure::Broken,
                    StreamError::Idle(after) => UpstreamFailure::Timeout {
                        what: "idle",
                        after,
                    },
                    StreamError::Total => UpstreamFailure::Timeout {
                        what: "total",
                        after: t.total(),
                    },
                })?;
            s.first = first;
            return Ok((Reply::Stream(s), latency));
        }
        let bytes = timeout_at(deadline, collect(body, MAX_RESPONSE_BYTES))
            .await
            .map_err(|_| UpstreamFailure::Timeout {
                what: "total",
                after: t.total(),
            })?
            .ok_or(UpstreamFailure::Broken)?;
        return Ok((
            Reply::Full {
                status,
                headers,
                body: bytes,
            },
            latency,
        ));
    }
    let bytes = match timeout_at(deadline, collect(body, MAX_ERROR_BYTES)).await {
        Ok(Some(b)) => b,
        _ => Bytes::new(),
    };
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() {
        return Err(UpstreamFailure::Status(status));
    }
    if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        return Err(UpstreamFailure::Credentials(status));
    }
    Ok((
        Reply::Full {
            status,
            headers,
            body: bytes,
        },
        latency,
    ))
}

/// Reads a whole body of at most `limit` bytes; `None` if it failed or was too large.
async fn collect(mut body: UpstreamBody, limit: usize) -> Option<Bytes> {
    let mut buf = bytes::BytesMut::new();
    while let Some(frame) = body.frame().await {
        if let Ok(data) = frame.ok()?.into_data() {
            if buf.len() + data.len() > limit {
                return None;
            }
            buf.extend_from_slice(&data);
        }
    }
    Some(buf.freeze())
}

fn passed_headers(from: &HeaderMap) -> HeaderMap {
    let mut out = HeaderMap::new();
    for name in PASSED_HEADERS {
        if let Some(v) = from.get(name) {
            out.insert(HeaderName::from_static(name), v.clone());
        }
    }
    if let Some(v) = from.get("x-request-id") {
        out.insert(HeaderName::from_static("x-upstream-request-id"), v.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        let r = RetrySettings {
            max_attempts: 5,
            backoff_initial_ms: 100,
            backoff_max_ms: 300,
        };
        for _ in 0..50 {
            let b1 = backoff(&r, 1).as_millis();
            assert!((50..=100).contains(&b1), "{b1}");
            let b3 = backoff(&r, 3).as_millis();
            assert!((150..=300).contains(&b3), "{b3}");
        }
    }

    #[test]
    fn only_safe_headers_pass() {
        let mut h = HeaderMap::new();
        h.insert("content-type", "application/json".parse().unwrap());
        h.insert("set-cookie", "a=b".parse().unwrap());
        h.insert("x-ratelimit-remaining-requests", "1".parse().unwrap());
        h.insert("x-request-id", "up-1".parse().unwrap());
        let out = passed_headers(&h);
        assert_eq!(out.len(), 2);
        assert_eq!(out["x-upstream-request-id"], "up-1");
    }

    /// A stream whose body yields what `rx` receives: a piece of text, or an error.
    fn stream_from(
        rx: tokio::sync::mpsc::UnboundedReceiver<Result<&'static str, ()>>,
    ) -> UpstreamStream {
        let frames = futures_util::stream::unfold(rx, |mut rx| async move {
            let next = rx.recv().await?;
            let frame = next
                .map(|text| hyper::body::Frame::data(Bytes::from_static(text.as_bytes())))
                .map_err(|()| crate::http_client::BoxError::from("reset"));
            Some((frame, rx))
        });
        UpstreamStream {
            status: StatusCode::OK,
            headers: HeaderMap::new(),
            first: None,
            body: BodyExt::boxed(http_body_util::StreamBody::new(frames)),
            idle: Duration::from_secs(5),
            deadline: Instant::now() + Duration::from_secs(5),
            ended: None,
        }
    }

    #[tokio::test]
    async fn a_chunk_gathers_the_frames_already_received_and_no_more() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut s = stream_from(rx);
        for piece in ["data: a\n\n", "data: b\n\n", "data: c\n\n"] {
            tx.send(Ok(piece)).unwrap();
        }
        let first = s.next_chunk().await.unwrap().unwrap();
        assert_eq!(&first[..], b"data: a\n\ndata: b\n\ndata: c\n\n");
        // Nothing else has arrived: the next chunk waits for the next frame.
        let later = tokio::spawn(async move {
            let chunk = s.next_chunk().await;
            (chunk, s)
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!later.is_finished());
        tx.send(Ok("data: d\n\n")).unwrap();
        tx.send(Err(())).unwrap();
        let (chunk, mut s) = later.await.unwrap();
        assert_eq!(&chunk.unwrap().unwrap()[..], b"data: d\n\n");
        // The break that came with it is reported on the next call, after its data.
        assert!(matches!(s.next_chunk().await, Err(StreamError::Broken)));
    }

    #[tokio::test]
    async fn the_end_gathered_with_the_last_frames_ends_the_next_call() {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut s = stream_from(rx);
        tx.send(Ok("data: [DONE]\n\n")).unwrap();
        drop(tx);
        assert_eq!(
            &s.next_chunk().await.unwrap().unwrap()[..],
            b"data: [DONE]\n\n"
        );
        assert!(matches!(s.next_chunk().await, Ok(None)));
    }
}
