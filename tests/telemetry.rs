//! Traces end to end: a real OTLP/HTTP receiver on 127.0.0.1 (protobuf decoded with the
//! `opentelemetry-proto` types) gets each request's span with its stage spans and provider
//! attempts, the GenAI and Warden attributes, and the client's trace id, which the provider
//! and the audit record see as well; a planted PII value appears in no span, metric or log
//! line; a request the client's trace does not sample exports nothing but still propagates;
//! and a collector that is down costs requests nothing.

mod common;

use std::time::{Duration, Instant};

use common::otlp::*;
use common::*;
use serde_json::{Value, json};

const PLANTED_EMAIL: &str = "noor.planted@example.com";
const PLANTED_PHONE: &str = "+44 20 7946 0958";
const KEY: &str = "sk-telemetry-test";
const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

struct Setup {
    _tmp: tempfile::TempDir,
    spool: std::path::PathBuf,
    archive: std::path::PathBuf,
    config: String,
}

fn setup(provider: &str, traces: &str) -> Setup {
    use sha2::Digest;
    let tmp = tempfile::tempdir().unwrap();
    let spool = tmp.path().join("spool");
    let archive = tmp.path().join("archive");
    let config = format!(
        "providers:\n  up:\n    kind: openai\n    base_url: {provider}\n    api_key: sk-upstream\n\
         models:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n\
         auth:\n  api_keys:\n    - id: storefront\n      sha256: {}\n      tenant: acme-retail\n\
         pii:\n  default_profile: default\n  profiles:\n    default:\n      default_action: pseudonymize\n\
         limits:\n  default_profile: default\n  profiles:\n    default:\n      requests:\n        - {{limit: 1000, per: minute, key: [tenant]}}\n\
         audit:\n  spool_dir: {}\n  sink:\n    kind: file\n    dir: {}\n\
         telemetry:\n  traces:\n    export_interval_ms: 100\n{traces}",
        hex::encode(sha2::Sha256::digest(KEY.as_bytes())),
        spool.display(),
        archive.display(),
    );
    Setup {
        _tmp: tmp,
        spool,
        archive,
        config,
    }
}

/// Warden in front of a mock provider, sending its traces to a receiver; `traces` adds
/// keys to `telemetry.traces`.
async fn traced(traces: &str) -> (Receiver, MockProvider, Setup, Warden) {
    let receiver = Receiver::start().await;
    let provider = MockProvider::start(&[]);
    let s = setup(
        &provider.base_url(),
        &format!("    endpoint: {}\n{traces}", receiver.endpoint()),
    );
    let w = Warden::start(&s.config);
    (receiver, provider, s, w)
}

fn chat(stream: bool) -> Value {
    json!({
        "model": "gpt-4o-mini",
        "max_tokens": 50,
        "stream": stream,
        "messages": [{"role": "user", "content": format!(
            "Please email the receipt to {PLANTED_EMAIL} or call {PLANTED_PHONE}."
        )}]
    })
}

async fn post(w: &Warden, body: &Value, traceparent: Option<&str>) -> Reply {
    let auth = format!("Bearer {KEY}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    if let Some(tp) = traceparent {
        headers.push(("traceparent", tp));
        headers.push(("tracestate", "shop=storefront"));
    }
    send(
        "POST",
        &w.url("/v1/chat/completions"),
        &headers,
        body.to_string(),
    )
    .await
}

#[tokio::test]
async fn a_request_is_one_trace_with_its_stages_attempts_and_genai_attributes() {
    let (receiver, provider, s, w) = traced("    sampling_ratio: 0.0\n").await;

    // The client's trace is sampled: Warden follows it, whatever its own ratio.
    let traceparent = format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01");
    let r = post(&w, &chat(false), Some(&traceparent)).await;
    assert_eq!(r.status, 200, "{}", r.text());

    let spans = receiver.wait_for(CLIENT_TRACE).await;
    let root = request_span(&spans);
    assert_eq!(root.name, "chat gpt-4o-mini");
    assert_eq!(
        hex::encode(&root.parent_span_id),
        CLIENT_SPAN,
        "the client's span is the parent"
    );
    let root_id = root.span_id.clone();

    // One span per stage, under the request's; the provider attempt under the dispatch stage.
    let children: Vec<&str> = spans
        .iter()
        .filter(|s| s.parent_span_id == root_id)
        .map(|s| s.name.as_str())
        .collect();
    for stage in [
        "warden.authn",
        "warden.read",
        "warden.authz",
        "warden.tools",
        "warden.redact",
        "warden.admission",
        "warden.dispatch",
        "warden.answer",
        "warden.audit",
    ] {
        assert!(children.contains(&stage), "no {stage} span: {children:?}");
    }
    let dispatch = spans
        .iter()
        .find(|s| s.name == "warden.dispatch")
        .unwrap_or_else(|| panic!("{:?}", names(&spans)));
    let attempt = spans
        .iter()
        .find(|s| s.parent_span_id == dispatch.span_id)
        .expect("an attempt span under the dispatch stage");
    assert_eq!(attempt.name, "chat gpt-4o-mini");
    assert_eq!(attempt.kind, CLIENT);
    let a = attributes(attempt);
    assert_eq!(text(&a, "gen_ai.provider.name"), "openai");
    assert_eq!(int(&a, "http.response.status_code"), 200);
    for s in &spans {
        assert!(s.start_time_unix_nano <= s.end_time_unix_nano, "{}", s.name);
        assert!(
            s.start_time_unix_nano >= root.start_time_unix_nano
                && s.end_time_unix_nano <= root.end_time_unix_nano,
            "{} lies outside the request",
            s.name
        );
    }

    // The provider was called under the attempt's span, in the client's trace.
    let seen = provider.last_request().await;
    let sent = seen["headers"]["traceparent"].as_str().unwrap().to_string();
    assert_eq!(
        sent,
        format!("00-{CLIENT_TRACE}-{}-01", hex::encode(&attempt.span_id))
    );
    assert_eq!(seen["headers"]["tracestate"], "shop=storefront");

    // GenAI and Warden attributes on the request's span.
    let a = attributes(root);
    assert_eq!(text(&a, "gen_ai.operation.name"), "chat");
    assert_eq!(text(&a, "gen_ai.provider.name"), "openai");
    assert_eq!(text(&a, "gen_ai.request.model"), "gpt-4o-mini");
    assert!(!text(&a, "gen_ai.response.model").is_empty());
    assert_eq!(int(&a, "gen_ai.request.max_tokens"), 50);
    assert!(int(&a, "gen_ai.usage.input_tokens") > 0);
    assert!(int(&a, "gen_ai.usage.output_tokens") > 0);
    assert_eq!(list(&a, "gen_ai.response.finish_reasons"), vec!["stop"]);
    assert_eq!(text(&a, "warden.tenant"), "acme-retail");
    assert_eq!(int(&a, "warden.pii.findings.EMAIL"), 1);
    assert_eq!(int(&a, "warden.pii.findings.PHONE"), 1);
    assert_eq!(text(&a, "warden.limits.outcome"), "admitted");
    assert_eq!(int(&a, "http.response.status_code"), 200);
    let redact = spans.iter().find(|s| s.name == "warden.redact").unwrap();
    assert_eq!(int(&attributes(redact), "warden.pii.findings.EMAIL"), 1);
    let authn = spans.iter().find(|s| s.name == "warden.authn").unwrap();
    assert_eq!(text(&attributes(authn), "warden.auth.method"), "api_key");

    // A stream: time to first token.
    let traceparent = format!("00-{}-{CLIENT_SPAN}-01", "a".repeat(32));
    let r = post(&w, &chat(true), Some(&traceparent)).await;
    assert_eq!(r.status, 200);
    let spans = receiver.wait_for(&"a".repeat(32)).await;
    let a = attributes(request_span(&spans));
    match a.get("gen_ai.server.time_to_first_token") {
        Some(Any::DoubleValue(v)) => assert!(*v > 0.0 && *v < 10.0, "{v}"),
        other => panic!("no time to first token: {other:?}"),
    }
    assert_eq!(list(&a, "gen_ai.response.finish_reasons"), vec!["stop"]);

    // The trace id is in the audit record and the access line.
    let records = records_for(&s.archive, &s.spool, "chat_completions", 2).await;
    assert!(
        records.iter().any(|r| r["trace_id"] == CLIENT_TRACE),
        "{records:?}"
    );
    assert!(
        w.logs().contains(CLIENT_TRACE),
        "access line without the trace id"
    );

    // No planted value anywhere: spans as exported, metrics, logs.
    let exported = String::from_utf8_lossy(&receiver.raw.lock().unwrap()).to_string();
    let metrics = get(&w.admin_url("/metrics")).await.text();
    for planted in [PLANTED_EMAIL, "noor.planted", PLANTED_PHONE, "7946 0958"] {
        assert!(!exported.contains(planted), "{planted} exported in a span");
        assert!(!metrics.contains(planted), "{planted} in /metrics");
        assert!(!w.logs().contains(planted), "{planted} in the logs");
    }
    let shipped = "warden_trace_spans_total{result=\"exported\"}";
    assert!(
        metrics_show(&w, shipped, Duration::from_secs(5)).await,
        "exports not counted"
    );
}

#[tokio::test]
async fn an_unsampled_request_exports_nothing_but_carries_the_trace_on() {
    let (receiver, provider, _s, w) = traced("").await;
    let unsampled = "b".repeat(32);
    let r = post(
        &w,
        &chat(false),
        Some(&format!("00-{unsampled}-{CLIENT_SPAN}-00")),
    )
    .await;
    assert_eq!(r.status, 200);
    let sent = provider.last_request().await["headers"]["traceparent"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        sent.starts_with(&format!("00-{unsampled}-")) && sent.ends_with("-00"),
        "{sent}"
    );

    // Without a client trace the ratio (1.0 here) decides: a new trace, recorded.
    let r = post(&w, &chat(false), None).await;
    assert_eq!(r.status, 200);
    let sent = provider.last_request().await["headers"]["traceparent"]
        .as_str()
        .unwrap()
        .to_string();
    let own = sent.split('-').nth(1).unwrap().to_string();
    assert_ne!(own, unsampled);
    let spans = receiver.wait_for(&own).await;
    assert!(
        request_span(&spans).parent_span_id.is_empty(),
        "a new trace has no parent"
    );
    assert!(
        receiver.trace(&unsampled).is_empty(),
        "the unsampled request was exported"
    );

    // A malformed or oversized `traceparent` (an all-zero trace id, bad hex, a wrong
    // version, 8 KiB of junk) is ignored: the request is served in a trace of its own.
    let junk = format!("00-{}-{CLIENT_SPAN}-01", "z".repeat(8192));
    for bad in [
        format!("00-{}-{CLIENT_SPAN}-01", "0".repeat(32)),
        format!("00-{}-{CLIENT_SPAN}-01", "g".repeat(32)),
        format!("ff-{CLIENT_TRACE}-{CLIENT_SPAN}-01"),
        junk,
    ] {
        let r = post(&w, &chat(false), Some(&bad)).await;
        assert_eq!(r.status, 200, "{}", r.text());
        let sent = provider.last_request().await["headers"]["traceparent"]
            .as_str()
            .unwrap()
            .to_string();
        let parts: Vec<&str> = sent.split('-').collect();
        assert_eq!(parts.len(), 4, "{sent}");
        assert_eq!(parts[1].len(), 32, "{sent}");
        assert!(parts[1].bytes().all(|b| b.is_ascii_hexdigit()), "{sent}");
        assert_ne!(parts[1], "0".repeat(32), "{sent}");
        assert!(
            !bad.contains(parts[1]),
            "the client's bad id was kept: {sent}"
        );
    }
}

#[tokio::test]
async fn a_collector_that_is_down_costs_requests_nothing() {
    // Nothing listens on this port; the export fails and is counted.
    let closed = format!("http://127.0.0.1:{}/v1/traces", free_port());
    let provider = MockProvider::start(&[]);
    let s = setup(
        &provider.base_url(),
        &format!("    endpoint: {closed}\n    timeout_ms: 500\n"),
    );
    let w = Warden::start(&s.config);
    let started = Instant::now();
    for _ in 0..20 {
        let r = post(&w, &chat(false), None).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "requests waited on the collector: {:?}",
        started.elapsed()
    );
    let failed = "warden_trace_spans_total{result=\"failed\"}";
    assert!(
        metrics_show(&w, failed, Duration::from_secs(15)).await,
        "failed exports not counted"
    );
    assert_eq!(
        get(&w.admin_url("/readyz")).await.status,
        200,
        "a collector is not a readiness dependency"
    );
}

#[test]
fn bad_trace_settings_stop_the_start() {
    let provider = "http://127.0.0.1:9/v1";
    for (traces, complaint) in [
        (
            "    endpoint: otel-collector:4318\n",
            "telemetry.traces.endpoint",
        ),
        (
            "    endpoint: http://127.0.0.1:4318/v1/traces\n    sampling_ratio: 1.5\n",
            "telemetry.traces.sampling_ratio",
        ),
        ("    sampling_ratio: 0.5\n", "endpoint"),
        (
            "    endpoint: http://127.0.0.1:4318/v1/traces\n    max_export_batch_spans: 0\n",
            "telemetry.traces.max_export_batch_spans",
        ),
        (
            "    endpoint: http://127.0.0.1:4318/v1/traces\n    max_queue_spans: 100\n    max_export_batch_spans: 101\n",
            "telemetry.traces.max_export_batch_spans",
        ),
    ] {
        let err = Warden::refused(&setup(provider, traces).config);
        assert!(err.contains(complaint), "{traces}: {err}");
    }
}

#[tokio::test]
async fn a_stored_response_is_read_under_the_clients_trace() {
    let (receiver, provider, _s, w) = traced("").await;
    let auth = format!("Bearer {KEY}");
    let headers = [
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    let created = send(
        "POST",
        &w.url("/v1/responses"),
        &headers,
        json!({"model": "gpt-4o-mini", "input": "Is the Trailblazer 2 waterproof?"}).to_string(),
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.text());
    let id = created.json()["id"].as_str().unwrap().to_string();

    let trace = "d".repeat(32);
    let traceparent = format!("00-{trace}-{CLIENT_SPAN}-01");
    let mut with_trace = headers.to_vec();
    with_trace.push(("traceparent", &traceparent));
    let read = send(
        "GET",
        &w.url(&format!("/v1/responses/{id}")),
        &with_trace,
        "",
    )
    .await;
    assert_eq!(read.status, 200, "{}", read.text());

    let spans = receiver.wait_for(&trace).await;
    let root = request_span(&spans);
    assert_eq!(root.name, "warden responses_get");
    let dispatch = spans
        .iter()
        .find(|s| s.name == "warden.dispatch")
        .unwrap_or_else(|| panic!("{:?}", names(&spans)));
    let call = spans.iter().find(|s| s.kind == CLIENT).unwrap();
    assert_eq!(call.name, "GET responses");
    assert_eq!(call.parent_span_id, dispatch.span_id);
    let seen = provider.last_request().await;
    assert_eq!(seen["method"], "GET");
    assert_eq!(
        seen["headers"]["traceparent"],
        format!("00-{trace}-{}-01", hex::encode(&call.span_id))
    );
}
