//! The cost of a request's trace on the request's own thread: taking its place in the
//! client's trace (`traceparent`), marking nine stages, one provider call's span, and
//! handing the finished spans (eleven, with the attributes a chat request carries) to the
//! export queue — recorded, and not recorded (the client's trace unsampled). Export runs
//! on its own threads into a sink on loopback, as in production.

use std::io::{BufRead, BufReader, Read, Write};
use std::time::{Instant, SystemTime};

use criterion::{Criterion, criterion_group, criterion_main};
use opentelemetry::KeyValue;
use warden::telemetry::trace::{RequestTrace, Root, Stage};

/// An OTLP/HTTP collector that reads each export and answers 200.
fn sink() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut length = 0usize;
                    loop {
                        let mut line = String::new();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        if line == "\r\n" {
                            break;
                        }
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    if reader.read_exact(&mut body).is_err() {
                        return;
                    }
                    let ok = b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
                    if writer.write_all(ok).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}/v1/traces")
}

/// One request's trace, from its headers to its queued spans.
fn request(headers: &http::HeaderMap) {
    let started = Instant::now();
    let Some(mut trace) = RequestTrace::begin(headers, started, SystemTime::now()) else {
        return;
    };
    // A chat request's stages: all but a tool call's execution.
    for stage in Stage::ALL.into_iter().filter(|s| *s != Stage::Execute) {
        trace.stage(stage);
        if stage == Stage::Dispatch {
            let call = trace.carrier().call();
            let mut outbound = http::HeaderMap::new();
            call.apply(&mut outbound);
            if !call.recorded() {
                continue;
            }
            let attributes = vec![
                KeyValue::new("gen_ai.operation.name", "chat"),
                KeyValue::new("gen_ai.provider.name", "openai"),
                KeyValue::new("gen_ai.request.model", "gpt-4o-mini".to_string()),
                KeyValue::new("warden.provider", "openai-eu".to_string()),
                KeyValue::new("http.response.status_code", 200i64),
            ];
            if let Some(span) = call.finished("chat gpt-4o-mini", started, attributes, None) {
                trace.add(span);
            }
        }
    }
    // As `proxy::trace` does: a request that is not recorded builds no attributes.
    if !trace.sampled() {
        return;
    }
    let root = Root {
        name: "chat gpt-4o-mini".into(),
        attributes: vec![
            KeyValue::new(
                "warden.request_id",
                "7f1c2a9e-3b0d-4f8e-9a61-2c5d8e0b4f17".to_string(),
            ),
            KeyValue::new("warden.route", "chat_completions"),
            KeyValue::new("http.response.status_code", 200i64),
            KeyValue::new("gen_ai.operation.name", "chat"),
            KeyValue::new("gen_ai.request.model", "gpt-4o-mini".to_string()),
            KeyValue::new("gen_ai.provider.name", "openai"),
            KeyValue::new("warden.provider", "openai-eu".to_string()),
            KeyValue::new("warden.attempts", 1i64),
            KeyValue::new("warden.upstream_model", "gpt-4o-mini".to_string()),
            KeyValue::new(
                "gen_ai.response.model",
                "gpt-4o-mini-2024-07-18".to_string(),
            ),
            KeyValue::new("gen_ai.request.max_tokens", 1000i64),
            KeyValue::new("gen_ai.request.stream", false),
            KeyValue::new("gen_ai.usage.input_tokens", 212i64),
            KeyValue::new("gen_ai.usage.output_tokens", 96i64),
            KeyValue::new("warden.tenant", "acme-retail".to_string()),
            KeyValue::new("warden.auth.method", "jwt"),
            KeyValue::new("warden.policy.rule", "storefront-assistant".to_string()),
            KeyValue::new("warden.policy.effect", "allow"),
            KeyValue::new("warden.pii.findings.EMAIL", 1i64),
            KeyValue::new("warden.limits.outcome", "admitted"),
            KeyValue::new("warden.cost_usd", 0.000_089),
        ],
        error: None,
        failed: false,
    };
    trace.finish(Instant::now(), root, |stage| match stage {
        Stage::Authenticate => vec![KeyValue::new("warden.auth.method", "jwt")],
        Stage::Admit => vec![KeyValue::new("warden.limits.outcome", "admitted")],
        _ => Vec::new(),
    });
}

fn traces(c: &mut Criterion) {
    let config: warden::config::TracesConfig = serde_yaml_ng::from_str(&format!(
        "endpoint: {}\nsampling_ratio: 1.0\nexport_interval_ms: 200\n",
        sink()
    ))
    .unwrap();
    warden::telemetry::trace::init(&config).unwrap();
    let mut group = c.benchmark_group("request_trace");
    for (name, flags) in [("recorded", "01"), ("not_recorded", "00")] {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "traceparent",
            format!("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-{flags}")
                .parse()
                .unwrap(),
        );
        group.bench_function(name, |b| b.iter(|| request(&headers)));
    }
    group.finish();
}

criterion_group!(benches, traces);
criterion_main!(benches);
