//! Clients' `Idempotency-Key`s (Stripe's semantics) on chat completions and tool calls,
//! over real HTTP: a repeat gets the stored answer without reaching the provider or the
//! backend again, another body with the key is 422, a repeat while the first runs is 409,
//! a failure frees the key, and one principal's key never replays another's answer.

mod common;

use std::time::Duration;

use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

const POLICY: &str =
    "apiVersion: warden/v1\nkind: Policy\nrules:\n  - name: all\n    effect: allow\n";

struct Setup {
    w: Warden,
    provider: MockProvider,
    shop: MockCommerce,
    _dir: tempfile::TempDir,
}

fn setup() -> Setup {
    let provider = MockProvider::start(&[]);
    let shop = MockCommerce::start();
    // A catalog backend that accepts connections and never answers.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let silent_addr = silent.local_addr().unwrap();
    std::mem::forget(silent);
    let dir = tempfile::tempdir().unwrap();
    let policies = policies_with_registry(dir.path(), POLICY);
    let keys: String = ["alice", "bob"]
        .iter()
        .map(|k| {
            format!(
                "    - id: {k}\n      sha256: {}\n      tenant: acme\n",
                hex::encode(Sha256::digest(format!("key-{k}").as_bytes()))
            )
        })
        .collect();
    let shop_url = shop.base_url();
    let config = format!(
        "providers:\n  up:\n    kind: vllm\n    base_url: {}\nmodels:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n\
         auth:\n  api_keys:\n{keys}\
         policy:\n  dir: {}\n  watch: false\n\
         tools:\n  backends:\n    catalog: {{base_url: \"http://{silent_addr}\"}}\n    inventory: {{base_url: \"{shop_url}\"}}\n    \
         pricing: {{base_url: \"{shop_url}\"}}\n    orders: {{base_url: \"{shop_url}\"}}\n    services: {{base_url: \"{shop_url}\"}}\n",
        provider.base_url(),
        policies.display(),
    );
    Setup {
        w: Warden::start(&config),
        provider,
        shop,
        _dir: dir,
    }
}

async fn post(w: &Warden, who: &str, path: &str, body: &Value, key: Option<&str>) -> Reply {
    let auth = format!("Bearer key-{who}");
    let mut headers = vec![
        ("content-type", "application/json"),
        ("authorization", auth.as_str()),
    ];
    if let Some(k) = key {
        headers.push(("idempotency-key", k));
    }
    send(
        "POST",
        &w.url(path),
        &headers,
        serde_json::to_vec(body).unwrap(),
    )
    .await
}

fn chat(stream: bool, text: &str) -> Value {
    json!({"model": "gpt-4o-mini", "stream": stream, "messages": [{"role": "user", "content": text}]})
}

#[tokio::test]
async fn chat_repeats_with_a_key_get_the_stored_answer() {
    let s = setup();
    let path = "/v1/chat/completions";
    let first = post(
        &s.w,
        "alice",
        path,
        &chat(false, "hello there"),
        Some("chat-1"),
    )
    .await;
    assert_eq!(first.status, 200, "{}", first.text());
    let calls = s.provider.stats().await["requests"].as_u64().unwrap();
    let again = post(
        &s.w,
        "alice",
        path,
        &chat(false, "hello there"),
        Some("chat-1"),
    )
    .await;
    assert_eq!(again.status, 200);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    assert_eq!(
        s.provider.stats().await["requests"].as_u64().unwrap(),
        calls
    );

    // Another body under the key is refused; another principal's key is their own.
    let other = post(
        &s.w,
        "alice",
        path,
        &chat(false, "something else"),
        Some("chat-1"),
    )
    .await;
    assert_eq!(other.status, 422, "{}", other.text());
    assert_eq!(other.json()["error"]["code"], "idempotency_key_reused");
    let bob = post(
        &s.w,
        "bob",
        path,
        &chat(false, "hello there"),
        Some("chat-1"),
    )
    .await;
    assert_eq!(bob.status, 200);
    assert!(bob.header("idempotent-replayed").is_none());
    assert_eq!(
        s.provider.stats().await["requests"].as_u64().unwrap(),
        calls + 1
    );

    // A stream is stored as it was sent, and replayed whole.
    let streamed = post(
        &s.w,
        "alice",
        path,
        &chat(true, "stream this"),
        Some("chat-2"),
    )
    .await;
    assert_eq!(streamed.status, 200);
    let replayed = post(
        &s.w,
        "alice",
        path,
        &chat(true, "stream this"),
        Some("chat-2"),
    )
    .await;
    assert_eq!(replayed.header("idempotent-replayed"), Some("true"));
    assert_eq!(replayed.header("content-type"), Some("text/event-stream"));
    assert_eq!(replayed.body, streamed.body);
    assert!(replayed.text().ends_with("data: [DONE]\n\n"));

    let bad = post(&s.w, "alice", path, &chat(false, "x"), Some("has space")).await;
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["error"]["code"], "invalid_idempotency_key");
}

#[tokio::test]
async fn tool_calls_with_a_key_run_once_and_failures_free_the_key() {
    let s = setup();
    let order = "A70000";
    let cancel = json!({"arguments": {"order_id": order, "reason": "changed my mind"}});
    let path = "/v1/tools/cancel_order/invoke";
    let first = post(&s.w, "alice", path, &cancel, Some("cancel-1")).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let again = post(&s.w, "alice", path, &cancel, Some("cancel-1")).await;
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    assert_eq!(again.body, first.body);
    let reached = s
        .shop
        .requests()
        .await
        .iter()
        .filter(|r| r["path"] == format!("/orders/{order}/cancel"))
        .count();
    assert_eq!(reached, 1, "the repeat never reached the backend");
    let changed = json!({"arguments": {"order_id": order, "reason": "other"}});
    assert_eq!(
        post(&s.w, "alice", path, &changed, Some("cancel-1"))
            .await
            .status,
        422
    );

    // While the first call runs (the catalog never answers), the key is busy; its
    // failure frees it for a retry.
    let product = json!({"arguments": {"product_id": "P1001"}});
    let slow = "/v1/tools/get_product/invoke";
    let (first, second) = tokio::join!(
        post(&s.w, "alice", slow, &product, Some("product-1")),
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            post(&s.w, "alice", slow, &product, Some("product-1")).await
        }
    );
    assert_eq!(second.status, 409, "{}", second.text());
    assert_eq!(second.json()["error"]["code"], "idempotency_key_in_use");
    assert_eq!(first.json()["is_error"], true);
    let retry = post(&s.w, "alice", slow, &product, Some("product-1")).await;
    assert!(retry.header("idempotent-replayed").is_none());
    assert_eq!(
        retry.json()["result"]["error"]["type"],
        "tool_timeout",
        "{}",
        retry.text()
    );
}
