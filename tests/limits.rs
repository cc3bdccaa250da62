//! Rate limits end to end: in-process limits with OpenAI's headers and 429s, profiles
//! chosen by policy, limits shared exactly by three replicas through a real Redis, and
//! Redis going away and coming back (allow / deny as configured, then recovery).

mod common;

use std::time::Duration;

use common::redis::Redis;
use common::*;
use serde_json::json;
use sha2::{Digest, Sha256};

fn keys() -> String {
    let h = |k: &str| hex::encode(Sha256::digest(k.as_bytes()));
    format!(
        "auth:\n  api_keys:\n    - id: app-a\n      sha256: {}\n      tenant: acme\n      roles: [storefront]\n    \
         - id: app-b\n      sha256: {}\n      tenant: acme\n      roles: [batch]\n",
        h("key-a"),
        h("key-b")
    )
}

fn base(limits: &str) -> String {
    format!(
        "providers:\n  up:\n    kind: mock\nmodels:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n{}{limits}",
        keys()
    )
}

async fn call(w: &Warden, key: &str) -> Reply {
    send(
        "POST",
        &w.url("/v1/chat/completions"),
        &[
            ("content-type", "application/json"),
            ("authorization", &format!("Bearer {key}")),
        ],
        serde_json::to_vec(
            &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap(),
    )
    .await
}

#[tokio::test]
async fn local_limits_answer_429_with_openai_headers() {
    let w = Warden::start(&base(
        "limits:\n  default_profile: standard\n  profiles:\n    standard:\n      requests:\n        - {limit: 3, per: minute, key: [subject]}\n",
    ));
    for remaining in ["2", "1", "0"] {
        let r = call(&w, "key-a").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("x-ratelimit-limit-requests"), Some("3"));
        assert_eq!(r.header("x-ratelimit-remaining-requests"), Some(remaining));
        assert!(
            r.header("x-ratelimit-reset-requests")
                .is_some_and(|v| v.ends_with('s'))
        );
    }
    let limited = call(&w, "key-a").await;
    assert_eq!(limited.status, 429, "{}", limited.text());
    assert_eq!(limited.json()["error"]["code"], "rate_limit_exceeded");
    assert_eq!(limited.json()["error"]["type"], "rate_limit_error");
    let retry: u64 = limited.header("retry-after").unwrap().parse().unwrap();
    assert!((15..=20).contains(&retry), "{retry}");
    assert_eq!(limited.header("x-ratelimit-remaining-requests"), Some("0"));
    assert_eq!(
        call(&w, "key-b").await.status,
        200,
        "another subject has its own counter"
    );
}

#[tokio::test]
async fn the_policy_rule_chooses_the_profile() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        "apiVersion: warden/v1\nkind: Policy\nrules:\n  - name: storefront\n    effect: allow\n    match:\n      roles: [storefront]\n    settings:\n      limits: tight\n  \
         - name: batch\n    effect: allow\n    match:\n      roles: [batch]\n",
    )
    .unwrap();
    let w = Warden::start(&base(&format!(
        "limits:\n  default_profile: roomy\n  profiles:\n    tight:\n      requests:\n        - {{limit: 1, per: minute, key: [subject]}}\n    \
         roomy:\n      requests:\n        - {{limit: 100, per: minute, key: [subject]}}\npolicy:\n  dir: {}\n",
        dir.path().display()
    )));
    assert_eq!(call(&w, "key-a").await.status, 200);
    assert_eq!(
        call(&w, "key-a").await.status,
        429,
        "storefront rule's profile: 1 per minute"
    );
    let b = call(&w, "key-b").await;
    assert_eq!(b.status, 200);
    assert_eq!(
        b.header("x-ratelimit-limit-requests"),
        Some("100"),
        "default profile"
    );
}

fn redis_limits(port: u16, limit: u32, on_error: &str) -> String {
    base(&format!(
        "limits:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:{port}/\n    timeout_ms: 100\n    key_prefix: t{limit}{on_error}\n  default_profile: shared\n  profiles:\n    shared:\n      \
         on_store_error: {on_error}\n      requests:\n        - {{limit: {limit}, per: minute, key: [tenant]}}\n"
    ))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_replicas_share_one_redis_limit_exactly() {
    let redis = Redis::start(free_port());
    let config = redis_limits(redis.port, 30, "deny");
    let replicas = [
        Warden::start(&config),
        Warden::start(&config),
        Warden::start(&config),
    ];
    let mut tasks = Vec::new();
    for i in 0..90 {
        let url = replicas[i % 3].url("/v1/chat/completions");
        let key = if i % 2 == 0 { "key-a" } else { "key-b" }; // same tenant
        tasks.push(tokio::spawn(async move {
            send(
                "POST",
                &url,
                &[("content-type", "application/json"), ("authorization", &format!("Bearer {key}"))],
                serde_json::to_vec(&json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "burst"}]})).unwrap(),
            )
            .await
            .status
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    let allowed = statuses.iter().filter(|s| **s == 200).count();
    let limited = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(
        (allowed, limited),
        (30, 60),
        "exactly the limit is admitted across replicas: {statuses:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_outage_follows_on_store_error_and_recovers() {
    let port = free_port();
    let mut redis = Redis::start(port);
    let allow = Warden::start(&redis_limits(port, 2, "allow"));
    let deny = Warden::start(&redis_limits(port, 1000, "deny"));
    assert_eq!(call(&allow, "key-a").await.status, 200);
    assert_eq!(call(&deny, "key-a").await.status, 200);

    redis.kill();
    for _ in 0..3 {
        assert_eq!(
            call(&allow, "key-a").await.status,
            200,
            "allow: requests pass without the store"
        );
    }
    let refused = call(&deny, "key-a").await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "rate_limit_unavailable");
    let metrics = get(&allow.admin_url("/metrics")).await.text();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("warden_rate_limit_store_errors_total ") && !l.ends_with(" 0")),
        "{metrics}"
    );

    let _redis = Redis::start(port); // back, empty
    let recovered = eventually(Duration::from_secs(10), || async {
        call(&deny, "key-a").await.status == 200
    })
    .await;
    assert!(recovered, "deny profile recovers when Redis returns");
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(call(&allow, "key-a").await.status);
    }
    assert_eq!(statuses, vec![200, 200, 429], "limits are enforced again");
}
