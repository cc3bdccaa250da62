//! Provider adapters and failure handling against real mock providers over loopback:
//! credentials, unknown fields, Azure URLs, retries and fallback, timeouts, mid-stream
//! failures and client disconnects.

mod common;

use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn chat(content: &str) -> Value {
    json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}]})
}

/// One provider `up` of `kind` at `base`, serving `gpt-4o-mini`, plus extra provider YAML.
fn single(kind: &str, base: &str, provider_extra: &str, top_extra: &str) -> String {
    format!(
        "providers:\n  up:\n    kind: {kind}\n    base_url: {base}\n{provider_extra}models:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n{top_extra}"
    )
}

#[tokio::test]
async fn provider_key_replaces_client_credentials_and_unknown_fields_pass() {
    let mock = MockProvider::start(&[]);
    let w = Warden::start(&single(
        "vllm",
        &mock.base_url(),
        "    api_key: provider-secret-key\n",
        "",
    ));
    let mut body = chat("hi");
    body["vendor_extension"] = json!({"nested": [1, 2, 3]});
    body["response_format"] = json!({"type": "json_object"});
    body["logprobs"] = json!(true);
    body["messages"][0]["x_meta"] = json!("kept");
    let r = send(
        "POST",
        &w.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("authorization", "Bearer client-own-token"),
        ],
        serde_json::to_vec(&body).unwrap(),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = mock.last_request().await;
    assert_eq!(seen["path"], "/v1/chat/completions");
    assert_eq!(
        seen["headers"]["authorization"],
        "Bearer provider-secret-key"
    );
    assert_eq!(
        seen["body"], body,
        "the provider receives every field the client sent"
    );
    assert!(!seen.to_string().contains("client-own-token"));
    assert!(!w.logs().contains("provider-secret-key"));
}

#[tokio::test]
async fn env_substitution_supplies_secrets() {
    let mock = MockProvider::start(&[]);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.yaml");
    std::fs::write(
        &path,
        single(
            "vllm",
            &mock.base_url(),
            "    api_key: ${WARDEN_TEST_PROVIDER_KEY}\n",
            "",
        ),
    )
    .unwrap();
    let (port, admin) = (free_port(), free_port());
    let mut child = std::process::Command::new(BIN)
        .args(["serve", "--config"])
        .arg(&path)
        .args([
            "--listen",
            &format!("127.0.0.1:{port}"),
            "--admin-listen",
            &format!("127.0.0.1:{admin}"),
        ])
        .env("WARDEN_TEST_PROVIDER_KEY", "from-env-123")
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");
    let ok = eventually(Duration::from_secs(10), || async {
        TcpStream::connect(("127.0.0.1", port)).is_ok()
    })
    .await;
    assert!(ok);
    let r = post_json(&url, &chat("x")).await;
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(r.status, 200);
    assert_eq!(
        mock.last_request().await["headers"]["authorization"],
        "Bearer from-env-123"
    );
}

#[tokio::test]
async fn azure_uses_deployment_urls_and_api_key_header() {
    let mock = MockProvider::start(&[]);
    let w = Warden::start(&format!(
        "providers:\n  az:\n    kind: azure\n    endpoint: http://{}\n    api_version: 2024-10-21\n    api_key: azure-key-1\n\
         models:\n  gpt-4o-mini:\n    targets:\n      - provider: az\n        model: prod-4o-mini\n",
        mock.addr
    ));
    let r = post_json(&w.url("/v1/chat/completions"), &chat("hi")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let seen = mock.last_request().await;
    assert_eq!(
        seen["path"],
        "/openai/deployments/prod-4o-mini/chat/completions?api-version=2024-10-21"
    );
    assert_eq!(seen["headers"]["api-key"], "azure-key-1");
    assert!(seen["headers"].get("authorization").is_none());
}

#[tokio::test]
async fn upstream_model_name_is_rewritten_per_target() {
    let mock = MockProvider::start(&[]);
    let w = Warden::start(&format!(
        "providers:\n  up:\n    kind: vllm\n    base_url: {}\nmodels:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n        model: meta-llama/Llama-3.1-8B\n",
        mock.base_url()
    ));
    let mut body = chat("hi");
    body["temperature"] = json!(0.3);
    assert_eq!(
        post_json(&w.url("/v1/chat/completions"), &body)
            .await
            .status,
        200
    );
    let seen = mock.last_request().await;
    assert_eq!(seen["body"]["model"], "meta-llama/Llama-3.1-8B");
    assert_eq!(seen["body"]["temperature"], 0.3);
}

#[tokio::test]
async fn connection_refused_is_a_502() {
    let dead = format!("http://127.0.0.1:{}/v1", free_port());
    let w = Warden::start(&single(
        "vllm",
        &dead,
        "",
        "retry:\n  max_attempts: 2\n  backoff_initial_ms: 10\n",
    ));
    let r = post_json(&w.url("/v1/chat/completions"), &chat("hi")).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "upstream_error");
    let metrics = get(&w.admin_url("/metrics")).await.text();
    assert!(
        metrics.contains("warden_upstream_errors_total{kind=\"connect\",provider=\"up\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_failing_target_falls_back_to_the_next() {
    let failing = MockProvider::start(&["--fail-status", "500"]);
    let healthy = MockProvider::start(&[]);
    let w = Warden::start(&format!(
        "providers:\n  primary:\n    kind: vllm\n    base_url: {}\n  backup:\n    kind: vllm\n    base_url: {}\n\
         models:\n  gpt-4o-mini:\n    targets:\n      - provider: primary\n        priority: 0\n      - provider: backup\n        priority: 1\n\
         retry:\n  max_attempts: 3\n  backoff_initial_ms: 10\n",
        failing.base_url(),
        healthy.base_url()
    ));
    for stream in [false, true] {
        let mut body = chat("fallback please");
        body["stream"] = json!(stream);
        let r = post_json(&w.url("/v1/chat/completions"), &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(r.text().contains("fallback"), "{}", r.text());
    }
    assert_eq!(
        failing.stats().await["requests"],
        2,
        "one failed try per request"
    );
    assert_eq!(healthy.stats().await["requests"], 2);
}

#[tokio::test]
async fn upstream_rate_limit_is_retried_then_reported_as_429() {
    let limited = MockProvider::start(&["--fail-status", "429"]);
    let w = Warden::start(&single(
        "vllm",
        &limited.base_url(),
        "",
        "retry:\n  max_attempts: 2\n  backoff_initial_ms: 10\n",
    ));
    let r = post_json(&w.url("/v1/chat/completions"), &chat("hi")).await;
    assert_eq!(r.status, 429, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "rate_limit_exceeded");
    assert!(r.header("retry-after").is_some());
    assert_eq!(limited.stats().await["requests"], 2);
}

#[tokio::test]
async fn provider_credential_rejection_is_a_502_without_details() {
    let refusing = MockProvider::start(&["--fail-status", "401"]);
    let w = Warden::start(&single(
        "vllm",
        &refusing.base_url(),
        "    api_key: sk-live-abcdef\n",
        "retry:\n  max_attempts: 1\n",
    ));
    let r = post_json(&w.url("/v1/chat/completions"), &chat("hi")).await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert!(!r.text().contains("sk-live"));
}

#[tokio::test]
async fn provider_client_errors_pass_through() {
    let picky = MockProvider::start(&["--fail-status", "400"]);
    let w = Warden::start(&single("vllm", &picky.base_url(), "", ""));
    let r = post_json(&w.url("/v1/chat/completions"), &chat("hi")).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], "mock_failure");
    assert_eq!(picky.stats().await["requests"], 1, "4xx is not retried");
}

#[tokio::test]
async fn first_byte_timeout_is_a_504() {
    let slow = MockProvider::start(&["--latency-ms", "3000"]);
    let w = Warden::start(&single(
        "vllm",
        &slow.base_url(),
        "    timeouts:\n      first_byte_ms: 300\n",
        "retry:\n  max_attempts: 1\n",
    ));
    let started = Instant::now();
    let r = post_json(&w.url("/v1/chat/completions"), &chat("hi")).await;
    assert_eq!(r.status, 504, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "upstream_timeout");
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_stream_broken_mid_way_ends_with_an_error_event() {
    // Paced so the first chunks are flushed before the connection breaks.
    let broken = MockProvider::start(&["--fail-after-chunks", "3", "--tokens-per-sec", "50"]);
    let w = Warden::start(&single("vllm", &broken.base_url(), "", ""));
    let mut body = chat("one two three four five six");
    body["stream"] = json!(true);
    let (status, chunks) = post_stream(&w.url("/v1/chat/completions"), &body).await;
    assert_eq!(status, 200);
    let data = stream_events(&chunks);
    assert!(data.len() >= 2, "{data:?}");
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_error", "{last}");
    assert!(!data.iter().any(|d| d == "[DONE]"));
    assert_eq!(
        broken.stats().await["requests"],
        1,
        "a started stream is never retried"
    );
}

#[tokio::test]
async fn a_stalled_stream_hits_the_idle_timeout() {
    // 1 chunk per 2 s with a 500 ms idle limit: the first chunk arrives, then the gap trips.
    let stalling = MockProvider::start(&["--tokens-per-sec", "1"]);
    let w = Warden::start(&single(
        "vllm",
        &stalling.base_url(),
        "    timeouts:\n      idle_ms: 500\n",
        "",
    ));
    let mut body = chat("one two three");
    body["stream"] = json!(true);
    let (_, chunks) = post_stream(&w.url("/v1/chat/completions"), &body).await;
    let data = stream_events(&chunks);
    let last: Value = serde_json::from_str(data.last().unwrap()).unwrap();
    assert_eq!(last["error"]["code"], "upstream_timeout", "{data:?}");
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_stream() {
    let slow = MockProvider::start(&["--tokens-per-sec", "5"]);
    let w = Warden::start(&single("vllm", &slow.base_url(), "", ""));
    let body = serde_json::to_vec(&json!({"model": "gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": "a b c d e f g h i j k l m n o p"}]}))
    .unwrap();
    let reader = open_stream(w.addr, &[], &body);
    drop(reader); // the client goes away mid-stream

    let cancelled = eventually(Duration::from_secs(5), || async {
        slow.stats().await["streams_cancelled"] == 1
    })
    .await;
    assert!(
        cancelled,
        "upstream stream not cancelled: {}",
        slow.stats().await
    );
    assert_eq!(slow.stats().await["streams_completed"], 0);
}

/// A test CA and a `localhost` leaf certificate signed by it, made with the openssl CLI.
fn make_test_pki(dir: &std::path::Path) {
    let run = |args: &[&str]| {
        common::issuer::openssl(dir, args);
    };
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    run(&[
        &["req", "-x509"][..],
        &ec,
        &[
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "2",
            "-subj",
            "/CN=Warden Test CA",
        ],
    ]
    .concat());
    run(&[
        &["req"][..],
        &ec,
        &[
            "-keyout",
            "leaf.key",
            "-out",
            "leaf.csr",
            "-subj",
            "/CN=localhost",
        ],
    ]
    .concat());
    std::fs::write(
        dir.join("leaf.ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    run(&[
        "x509",
        "-req",
        "-in",
        "leaf.csr",
        "-CA",
        "ca.pem",
        "-CAkey",
        "ca.key",
        "-CAcreateserial",
        "-out",
        "leaf.pem",
        "-days",
        "2",
        "-extfile",
        "leaf.ext",
    ]);
}

#[tokio::test]
async fn upstream_tls_trusts_an_extra_ca_file_only_when_configured() {
    let pki = tempfile::tempdir().unwrap();
    make_test_pki(pki.path());
    let cert = pki.path().join("leaf.pem");
    let key = pki.path().join("leaf.key");
    let tls_mock = MockProvider::start(&[
        "--tls-cert",
        cert.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ]);
    let base = format!("https://localhost:{}/v1", tls_mock.addr.port());
    let ca = pki.path().join("ca.pem");

    let trusted = Warden::start(&single(
        "vllm",
        &base,
        &format!("    ca_file: {}\n", ca.display()),
        "",
    ));
    let r = post_json(&trusted.url("/v1/chat/completions"), &chat("over tls")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(
        r.json()["choices"][0]["message"]["content"],
        "You said: over tls"
    );

    let untrusted = Warden::start(&single("vllm", &base, "", "retry:\n  max_attempts: 1\n"));
    let r = post_json(&untrusted.url("/v1/chat/completions"), &chat("over tls")).await;
    assert_eq!(
        r.status,
        502,
        "an unknown issuer must be refused: {}",
        r.text()
    );
    let metrics = get(&untrusted.admin_url("/metrics")).await.text();
    assert!(
        metrics.contains("warden_upstream_errors_total{kind=\"connect\",provider=\"up\"} 1"),
        "the handshake failure is a connect error: {metrics}"
    );
}

#[tokio::test]
async fn stream_usage_is_requested_upstream_and_hidden_from_the_client() {
    let mock = MockProvider::start(&[]);
    let w = Warden::start(&single("vllm", &mock.base_url(), "", ""));
    let mut body = chat("count these words");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"vendor_option": 1});
    let (status, chunks) = post_stream(&w.url("/v1/chat/completions"), &body).await;
    assert_eq!(status, 200);
    let seen = mock.last_request().await;
    assert_eq!(
        seen["body"]["stream_options"],
        json!({"vendor_option": 1, "include_usage": true})
    );
    let data = stream_events(&chunks);
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    assert!(
        !data.iter().any(|d| d.contains("usage")),
        "the client did not ask for usage: {data:?}"
    );
    let text = stream_text(&data[..data.len() - 1]);
    assert_eq!(text, "You said: count these words");

    // A client that asks gets the provider's usage chunk untouched.
    body["stream_options"] = json!({"include_usage": true});
    let (_, chunks) = post_stream(&w.url("/v1/chat/completions"), &body).await;
    let data = stream_events(&chunks);
    let usage: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(
        usage["usage"]["completion_tokens"],
        o200k_tokens("You said: count these words")
    );
}
