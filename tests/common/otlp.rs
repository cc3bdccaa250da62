//! A real OTLP/HTTP trace collector on a loopback port for the tests: it decodes every
//! export with the `opentelemetry-proto` types and keeps the spans and the raw bodies.
//! Stopped with the test's runtime.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
pub use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
pub use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message;

use super::eventually;

/// An OTLP/HTTP collector: every span of every export it receives, with the raw bodies.
pub struct Receiver {
    pub addr: SocketAddr,
    pub spans: Arc<Mutex<Vec<Span>>>,
    pub raw: Arc<Mutex<Vec<u8>>>,
    _server: tokio::task::JoinHandle<()>,
}

impl Receiver {
    pub async fn start() -> Receiver {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let spans = Arc::new(Mutex::new(Vec::new()));
        let raw = Arc::new(Mutex::new(Vec::new()));
        let (s, r) = (spans.clone(), raw.clone());
        let server = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                let (s, r) = (s.clone(), r.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(
                        move |req: hyper::Request<hyper::body::Incoming>| {
                            let (s, r) = (s.clone(), r.clone());
                            async move {
                                let ok = req.uri().path() == "/v1/traces"
                                    && req.headers()["content-type"] == "application/x-protobuf";
                                let body = req.into_body().collect().await.unwrap().to_bytes();
                                r.lock().unwrap().extend_from_slice(&body);
                                let export = ExportTraceServiceRequest::decode(body).unwrap();
                                for resource in export.resource_spans {
                                    for scope in resource.scope_spans {
                                        s.lock().unwrap().extend(scope.spans);
                                    }
                                }
                                let status = if ok { 200 } else { 400 };
                                Ok::<_, std::convert::Infallible>(
                                    hyper::Response::builder()
                                        .status(status)
                                        .header("content-type", "application/x-protobuf")
                                        .body(Full::new(Bytes::new()))
                                        .unwrap(),
                                )
                            }
                        },
                    );
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Receiver {
            addr,
            spans,
            raw,
            _server: server,
        }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}/v1/traces", self.addr)
    }

    pub fn trace(&self, trace_id: &str) -> Vec<Span> {
        self.spans
            .lock()
            .unwrap()
            .iter()
            .filter(|s| hex::encode(&s.trace_id) == trace_id)
            .cloned()
            .collect()
    }

    /// The spans of `trace_id` once the request's own span (the last one ended) arrived.
    pub async fn wait_for(&self, trace_id: &str) -> Vec<Span> {
        let arrived = eventually(Duration::from_secs(15), || {
            let found = self.trace(trace_id).iter().any(|s| s.kind == SERVER);
            async move { found }
        })
        .await;
        let spans = self.trace(trace_id);
        assert!(
            arrived,
            "no request span for {trace_id}: {:?}",
            names(&spans)
        );
        spans
    }
}

pub const SERVER: i32 = 2;
pub const CLIENT: i32 = 3;

/// The request's own span.
pub fn request_span(spans: &[Span]) -> &Span {
    let roots: Vec<&Span> = spans.iter().filter(|s| s.kind == SERVER).collect();
    assert_eq!(roots.len(), 1, "{:?}", names(spans));
    roots[0]
}

pub fn names(spans: &[Span]) -> Vec<String> {
    spans.iter().map(|s| s.name.clone()).collect()
}

pub fn attributes(span: &Span) -> BTreeMap<String, Any> {
    span.attributes
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.as_ref()?.value.clone()?)))
        .collect()
}

pub fn text(a: &BTreeMap<String, Any>, key: &str) -> String {
    match a.get(key) {
        Some(Any::StringValue(s)) => s.clone(),
        other => panic!("{key} is not a string: {other:?}"),
    }
}

pub fn int(a: &BTreeMap<String, Any>, key: &str) -> i64 {
    match a.get(key) {
        Some(Any::IntValue(v)) => *v,
        other => panic!("{key} is not an integer: {other:?}"),
    }
}

pub fn list(a: &BTreeMap<String, Any>, key: &str) -> Vec<String> {
    match a.get(key) {
        Some(Any::ArrayValue(v)) => v
            .values
            .iter()
            .filter_map(|v| match &v.value {
                Some(Any::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .collect(),
        other => panic!("{key} is not a list: {other:?}"),
    }
}
