//! One report per request, whatever way it ends: answered whole or streamed, refused
//! before its body was read, refused by a limit, failed at the provider, abandoned by its
//! client mid-stream, or broken by the provider mid-stream. Each ends with exactly one
//! audit record, one access log line, and its usage settled once.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const KEYS: [&str; 6] = [
    "answered",
    "stream",
    "malformed",
    "limited",
    "failing",
    "gone",
];

/// Three providers: healthy and paced, always failing with 500, and breaking streams.
fn config(healthy: &str, failing: &str, broken: &str, spool: &str, archive: &str) -> String {
    let keys: String = KEYS
        .iter()
        .chain(["broken"].iter())
        .map(|k| {
            format!(
                "    - id: {k}\n      sha256: {}\n      tenant: acme\n",
                hex::encode(Sha256::digest(format!("key-{k}").as_bytes()))
            )
        })
        .collect();
    format!(
        "admin_token: admin-secret\n\
         providers:\n  healthy:\n    kind: vllm\n    base_url: {healthy}\n  \
         failing:\n    kind: vllm\n    base_url: {failing}\n  \
         broken:\n    kind: vllm\n    base_url: {broken}\n\
         models:\n  gpt-4o-mini:\n    targets:\n      - provider: healthy\n  \
         failing-model:\n    targets:\n      - provider: failing\n  \
         broken-model:\n    targets:\n      - provider: broken\n\
         retry:\n  max_attempts: 1\n\
         auth:\n  api_keys:\n{keys}\
         limits:\n  default_profile: standard\n  profiles:\n    standard:\n      \
         requests:\n        - {{limit: 1, per: minute, key: [subject]}}\n\
         audit:\n  chain_id: exits\n  spool_dir: {spool}\n  sink:\n    kind: file\n    dir: {archive}\n"
    )
}

fn chat(model: &str, stream: bool) -> Vec<u8> {
    serde_json::to_vec(&json!({"model": model, "stream": stream,
        "messages": [{"role": "user", "content": "one two three four five six seven eight"}]}))
    .unwrap()
}

async fn call(w: &Warden, key: &str, id: &str, body: Vec<u8>) -> Reply {
    send(
        "POST",
        &w.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer key-{key}")),
            ("x-request-id", id),
        ],
        body,
    )
    .await
}

/// Opens a stream, reads its first chunk and hangs up.
fn abandon_stream(w: &Warden, key: &str, id: &str) {
    let auth = format!("Bearer key-{key}");
    let headers = [("Authorization", auth.as_str()), ("X-Request-Id", id)];
    drop(open_stream(w.addr, &headers, &chat("gpt-4o-mini", true)));
}

async fn usage(w: &Warden) -> Value {
    admin_get(w, "/admin/v1/usage?tenant=acme").await.json()
}

/// Access log lines of the request `id`.
fn access_lines(logs: &str, id: &str) -> usize {
    logs.lines()
        .filter(|l| l.contains("warden::access") && l.contains(&format!("request_id={id} ")))
        .count()
}

#[tokio::test]
async fn every_exit_path_reports_once() {
    let healthy = MockProvider::start(&["--tokens-per-sec", "20"]);
    let failing = MockProvider::start(&["--fail-status", "500"]);
    let broken = MockProvider::start(&["--fail-after-chunks", "3", "--tokens-per-sec", "50"]);
    let dir = tempfile::tempdir().unwrap();
    let (spool, archive) = (dir.path().join("spool"), dir.path().join("archive"));
    let w = Warden::start(&config(
        &healthy.base_url(),
        &failing.base_url(),
        &broken.base_url(),
        &spool.display().to_string(),
        &archive.display().to_string(),
    ));

    let r = call(&w, "answered", "exit-answered", chat("gpt-4o-mini", false)).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(&w, "stream", "exit-stream", chat("gpt-4o-mini", true)).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("[DONE]"), "{}", r.text());
    let r = call(&w, "malformed", "exit-malformed", b"{\"model\": ".to_vec()).await;
    assert_eq!(r.status, 400, "{}", r.text());
    let r = call(
        &w,
        "limited",
        "exit-limited-first",
        chat("gpt-4o-mini", false),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = call(&w, "limited", "exit-limited", chat("gpt-4o-mini", false)).await;
    assert_eq!(r.status, 429, "{}", r.text());
    let r = call(&w, "failing", "exit-failing", chat("failing-model", false)).await;
    assert_eq!(r.status, 502, "{}", r.text());
    let r = call(&w, "broken", "exit-broken", chat("broken-model", true)).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("upstream_error"), "{}", r.text());
    abandon_stream(&w, "gone", "exit-gone");

    // The abandoned stream is reported once the upstream is cancelled.
    let reported = eventually(Duration::from_secs(10), || async {
        access_lines(&w.logs(), "exit-gone") > 0
    })
    .await;
    assert!(reported, "{}", w.logs());
    let ids = [
        "exit-answered",
        "exit-stream",
        "exit-malformed",
        "exit-limited-first",
        "exit-limited",
        "exit-failing",
        "exit-broken",
        "exit-gone",
    ];
    // Settled usage: the answers and the abandoned stream; refusals are not usage.
    let settled = eventually(Duration::from_secs(5), || async {
        usage(&w).await["today"]["gpt-4o-mini"]["requests"] == 4
    })
    .await;
    let u = usage(&w).await;
    assert!(settled, "{u}");
    assert_eq!(u["today"]["broken-model"]["requests"], 1, "{u}");
    // The failed call was admitted: settled once, with no tokens.
    assert_eq!(u["today"]["failing-model"]["requests"], 1, "{u}");
    assert_eq!(u["today"]["failing-model"]["total_tokens"], 0, "{u}");
    let logs = w.logs();
    stop(w);

    let records = audit_records(&archive, &spool);
    for id in ids {
        let mine: Vec<&Value> = records.iter().filter(|r| r["request_id"] == id).collect();
        assert_eq!(mine.len(), 1, "{id}: {mine:?}");
        assert_eq!(access_lines(&logs, id), 1, "{id}: {logs}");
    }
    let status = |id: &str| {
        records
            .iter()
            .find(|r| r["request_id"] == id)
            .map(|r| r["status"].clone())
            .unwrap()
    };
    assert_eq!(status("exit-malformed"), 400);
    assert_eq!(status("exit-limited"), 429);
    assert_eq!(status("exit-failing"), 502);
    assert_eq!(records.len(), ids.len(), "no other records");
    // Settled once each: a second settlement would have doubled these.
    assert_eq!(
        u["today"]["gpt-4o-mini"]["completion_tokens"],
        records
            .iter()
            .filter(|r| r["model"] == "gpt-4o-mini")
            .map(|r| r["usage"]["completion_tokens"].as_u64().unwrap_or(0))
            .sum::<u64>(),
        "{u}"
    );
}
