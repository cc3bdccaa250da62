//! Process behaviour: admin endpoints, configuration errors at start, and graceful
//! shutdown that drains in-flight streams before exiting 0.

mod common;

use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

#[tokio::test]
async fn admin_endpoints_report_health_readiness_and_metrics() {
    let w = Warden::start(&mock_config(""));
    let health = get(&w.admin_url("/healthz")).await;
    assert_eq!(health.status, 200);
    let ready = get(&w.admin_url("/readyz")).await;
    assert_eq!(ready.status, 200);
    assert_eq!(ready.json()["status"], "ready");
    assert_eq!(ready.json()["models"], 2);

    let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(
        post_json(&w.url("/v1/chat/completions"), &body)
            .await
            .status,
        200
    );
    // The access log and metrics are recorded right after the last byte is written.
    let recorded = eventually(Duration::from_secs(2), || async {
        let m = get(&w.admin_url("/metrics")).await.text();
        m.contains("status=\"200\"} 1") && m.contains("warden_in_flight_requests 0")
    })
    .await;
    assert!(recorded);
    let metrics = get(&w.admin_url("/metrics")).await.text();
    for needle in [
        "warden_requests_total{model=\"gpt-4o-mini\",route=\"chat_completions\",status=\"200\"} 1",
        "warden_request_duration_seconds_bucket{route=\"chat_completions\"",
        "warden_upstream_requests_total{provider=\"mock\",status=\"200\"} 1",
        "warden_in_flight_requests 0",
    ] {
        assert!(
            metrics.contains(needle),
            "missing `{needle}` in:\n{metrics}"
        );
    }
    assert!(!metrics.contains("\"hi\""), "no prompt text in metrics");
    assert_eq!(get(&w.admin_url("/nope")).await.status, 404);
    // The admin port is separate: the proxy port does not serve metrics.
    assert_eq!(get(&w.url("/metrics")).await.status, 404);
}

#[test]
fn a_bad_config_fails_at_start_with_file_line_and_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.yaml");
    std::fs::write(
        &path,
        "providers:\n  m:\n    kind: mock\n    colour: blue\nmodels: {}\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}:4:", path.display())), "{err}");
    assert!(err.contains("colour"), "{err}");

    std::fs::write(
        &path,
        "providers:\n  m:\n    kind: mock\nmodels:\n  a:\n    targets:\n      - provider: ghost\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        err.contains(":5:3: models.a: unknown provider `ghost`"),
        "{err}"
    );

    let out = Command::new(BIN)
        .args(["serve", "--config", "/nonexistent/warden.yaml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn version_flag_prints_the_version() {
    let out = Command::new(BIN).arg("--version").output().unwrap();
    assert!(out.status.success());
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("warden {}", env!("CARGO_PKG_VERSION"))
    );
}

#[tokio::test]
async fn sigterm_drains_an_in_flight_stream_then_exits_zero() {
    // A stream of ~12 chunks at 10 per second is in flight when SIGTERM arrives.
    let slow = MockProvider::start(&["--tokens-per-sec", "10"]);
    let mut w = Warden::start(&format!(
        "providers:\n  up:\n    kind: vllm\n    base_url: {}\nmodels:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n\
         server:\n  shutdown_grace_seconds: 10\n",
        slow.base_url()
    ));
    let url = w.url("/v1/chat/completions");
    let body = json!({"model": "gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": "one two three four five six seven eight"}]});
    let stream = tokio::spawn(async move { post_stream(&url, &body).await });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let sent = Instant::now();
    w.terminate();

    let (status, chunks) = stream.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(
        stream_events(&chunks).last().map(String::as_str),
        Some("[DONE]"),
        "the stream finished"
    );

    let code = tokio::task::spawn_blocking(move || {
        let code = w.wait_exit(Duration::from_secs(8));
        (code, w)
    })
    .await
    .unwrap();
    assert_eq!(code.0, Some(0));
    assert!(
        sent.elapsed() < Duration::from_secs(8),
        "exited once drained, not after the grace period"
    );
    let w = code.1;
    assert!(TcpStream::connect(w.addr).is_err(), "no longer accepting");
    assert!(w.logs().contains("drained"), "{}", w.logs());
}

#[tokio::test]
async fn sigterm_while_idle_exits_promptly() {
    let mut w = Warden::start(&mock_config(""));
    let started = Instant::now();
    w.terminate();
    let code = tokio::task::spawn_blocking(move || w.wait_exit(Duration::from_secs(5)))
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    assert!(started.elapsed() < Duration::from_secs(3));
}
