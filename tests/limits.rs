//! Limits end to end: request and token rates with OpenAI's headers and 429s, profiles
//! chosen by policy, limits shared exactly by three replicas through a real Redis, Redis
//! going away and coming back (allow / deny as configured, then recovery), budgets cut off
//! exactly at their boundary (tokens and USD, in process and in Redis), usage equal to the
//! provider's — or counted by Warden when the provider sends none — concurrency slots, and
//! the admin API.

mod common;

use std::time::Duration;

use common::redis::Redis;
use common::*;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use warden::openai::{ApiRequest, Endpoint};

const ADMIN: &str = "admin_token: admin-secret\n";

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
    chat_with_key(
        w,
        key,
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
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
    let admin = get(&w.admin_url("/admin/v1/usage?tenant=acme")).await;
    assert_eq!(
        admin.status,
        403,
        "no admin_token configured: {}",
        admin.text()
    );
    assert_eq!(admin.json()["error"]["code"], "admin_api_disabled");
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

/// Counter keys in a shared store name subjects only by a hash, so a token subject that is
/// an e-mail address never becomes a Redis key name; the admin API still finds them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_keys_name_subjects_only_by_a_hash() {
    let redis = Redis::start(free_port());
    let w = Warden::start(&format!(
        "{ADMIN}{}",
        base(&format!(
            "limits:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:{}/\n  default_profile: s\n  \
             profiles:\n    s:\n      requests:\n        - {{limit: 5, per: minute, key: [subject]}}\n",
            redis.port
        ))
    ));
    let first = call(&w, "key-a").await;
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-ratelimit-remaining-requests"), Some("4"));
    let client = ::redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port)).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let names: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    let hashed = format!("subject={}", warden::limits::subject_id("app-a"));
    assert!(names.iter().any(|n| n.contains(&hashed)), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("app-a")), "{names:?}");
    let r = admin_get(&w, "/admin/v1/limits?key=subject:app-a").await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(r.text().contains("\"remaining\":4"), "{}", r.text());
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
    // Budgets refuse without their store by default, even in a profile whose rates allow.
    let budget = Warden::start(&base(&redis_budget(
        port,
        "outage",
        "      budgets:\n        - {tokens: 1000000, per: month, key: [tenant]}\n",
    )));
    assert_eq!(call(&allow, "key-a").await.status, 200);
    assert_eq!(call(&deny, "key-a").await.status, 200);
    assert_eq!(call(&budget, "key-a").await.status, 200);

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
    assert_eq!(
        call(&budget, "key-a").await.status,
        503,
        "budgets default to deny"
    );
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
    assert_eq!(call(&budget, "key-a").await.status, 200);
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(call(&allow, "key-a").await.status);
    }
    assert_eq!(statuses, vec![200, 200, 429], "limits are enforced again");
}

/// The chat request the budget tests send, and its prompt and completion tokens as the
/// provider (the mock, counting like OpenAI) bills them.
fn priced_chat(max_tokens: u64) -> (Value, u64, u64) {
    let body = json!({"model": "gpt-4o-mini", "max_tokens": max_tokens,
        "messages": [{"role": "user", "content": "Is the Alpine 40L backpack in stock?"}]});
    let request =
        ApiRequest::parse(Endpoint::ChatCompletions, body.to_string().as_bytes()).unwrap();
    let o200k =
        warden::tokens::Encoding::for_model(Some("o200k_base"), "", std::path::Path::new("."))
            .unwrap();
    let prompt = warden::tokens::prompt_tokens(&o200k, &request);
    let completion = o200k_tokens("You said: Is the Alpine 40L backpack in stock?");
    (body, prompt, completion)
}

/// Waits until the tenant's usage shows `requests` settled requests; returns the usage.
async fn settled(w: &Warden, requests: i64) -> Value {
    let mut last = Value::Null;
    for _ in 0..200 {
        last = admin_get(w, "/admin/v1/usage?tenant=acme").await.json();
        if last["today"]["gpt-4o-mini"]["requests"].as_i64() == Some(requests) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("usage did not reach {requests} requests: {last}");
}

#[tokio::test]
async fn token_limits_charge_the_estimate_and_settle_with_usage() {
    let w = Warden::start(&base(&format!(
        "{ADMIN}limits:\n  default_profile: standard\n  profiles:\n    standard:\n      tokens:\n        - {{limit: 1000, per: day, key: [tenant]}}\n"
    )));
    let (body, prompt, completion) = priced_chat(100);
    let r = chat_with_key(&w, "key-a", &body).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.header("x-ratelimit-limit-tokens"), Some("1000"));
    let after_estimate = 1000 - (prompt + 100);
    assert_eq!(
        r.header("x-ratelimit-remaining-tokens"),
        Some(after_estimate.to_string().as_str()),
        "admission charges prompt ({prompt}) + max_tokens"
    );
    assert!(r.header("x-ratelimit-reset-tokens").is_some());
    assert!(
        r.header("x-ratelimit-limit-requests").is_none(),
        "no request limit configured"
    );

    // After the response, the unused part of the estimate is credited back.
    settled(&w, 1).await;
    let limits = admin_get(&w, "/admin/v1/limits?key=tenant:acme").await;
    assert_eq!(limits.status, 200, "{}", limits.text());
    let tokens = &limits.json()["limits"][0];
    assert_eq!(tokens["kind"], "tokens");
    assert_eq!(tokens["key"], json!({"tenant": "acme"}));
    assert_eq!(
        tokens["used"].as_f64(),
        Some((prompt + completion) as f64),
        "{tokens}"
    );
    let r = chat_with_key(&w, "key-b", &body).await;
    assert_eq!(
        r.header("x-ratelimit-remaining-tokens"),
        Some(
            (1000 - (prompt + completion) - (prompt + 100))
                .to_string()
                .as_str()
        ),
        "the tenant's counter is shared by its keys"
    );

    let (huge, _, _) = priced_chat(5000);
    let refused = chat_with_key(&w, "key-a", &huge).await;
    assert_eq!(refused.status, 429, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "rate_limit_exceeded");
    assert!(
        refused.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Request too large"),
        "{}",
        refused.text()
    );
    assert_eq!(refused.header("x-ratelimit-limit-tokens"), Some("1000"));
}

/// Sends the same request until the budget refuses; the budget is sized so that exactly
/// four fit: three settled requests plus the fourth's full estimate is the cap itself.
async fn budget_cuts_off_at_the_boundary(w: &Warden, body: &Value, per_request_settled: f64) {
    let mut statuses = Vec::new();
    for i in 0..5 {
        let r = chat_with_key(w, "key-a", body).await;
        statuses.push(r.status);
        if r.status == 200 {
            settled(w, i + 1).await;
        } else {
            assert_eq!(r.status, 429, "{}", r.text());
            let e = &r.json()["error"];
            assert_eq!(e["code"], "insufficient_quota");
            assert_eq!(e["type"], "insufficient_quota");
            assert!(e["message"].as_str().unwrap().contains("day budget"), "{e}");
        }
    }
    assert_eq!(statuses, vec![200, 200, 200, 200, 429]);
    let usage = admin_get(w, "/admin/v1/usage?tenant=acme").await.json();
    let budget = &usage["budgets"][0];
    let used = budget["used"].as_f64().unwrap();
    assert!(
        (used - 4.0 * per_request_settled).abs() < 1e-9,
        "settled with the provider's usage: {budget}"
    );
    assert!(
        used <= budget["limit"].as_f64().unwrap(),
        "never beyond the cap: {budget}"
    );
    let metrics = get(&w.admin_url("/metrics")).await.text();
    assert!(
        metrics.lines().any(
            |l| l.starts_with("warden_budget_threshold_crossings_total{") && l.ends_with(" 1")
        ),
        "the 80 % threshold was crossed once: {metrics}"
    );
}

fn token_budget(prompt: u64, completion: u64, max_tokens: u64) -> String {
    let cap = 3 * (prompt + completion) + prompt + max_tokens;
    format!("      budgets:\n        - {{tokens: {cap}, per: day, key: [tenant]}}\n")
}

#[tokio::test]
async fn token_budgets_cut_off_exactly_in_process() {
    let (body, prompt, completion) = priced_chat(40);
    let w = Warden::start(&base(&format!(
        "{ADMIN}limits:\n  default_profile: metered\n  profiles:\n    metered:\n{}",
        token_budget(prompt, completion, 40)
    )));
    budget_cuts_off_at_the_boundary(&w, &body, (prompt + completion) as f64).await;
    let usage = admin_get(&w, "/admin/v1/usage?tenant=acme").await.json();
    let model = &usage["today"]["gpt-4o-mini"];
    assert_eq!(
        model["requests"], 4,
        "refused requests are not usage: {usage}"
    );
    assert_eq!(model["prompt_tokens"].as_u64(), Some(4 * prompt));
    assert_eq!(model["completion_tokens"].as_u64(), Some(4 * completion));
    assert_eq!(usage["this_month"], usage["today"]);

    for auth in [None, Some("Bearer wrong")] {
        let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", *a)).collect();
        let r = send(
            "GET",
            &w.admin_url("/admin/v1/usage?tenant=acme"),
            &headers,
            Vec::new(),
        )
        .await;
        assert_eq!(r.status, 401, "{}", r.text());
    }
    assert_eq!(admin_get(&w, "/admin/v1/usage").await.status, 400);
    assert_eq!(
        admin_get(&w, "/admin/v1/limits?key=colour:blue")
            .await
            .status,
        400
    );
}

fn redis_budget(port: u16, prefix: &str, budgets: &str) -> String {
    format!(
        "{ADMIN}limits:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:{port}/\n    timeout_ms: 200\n    key_prefix: {prefix}\n  default_profile: metered\n  profiles:\n    metered:\n{budgets}"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_budgets_cut_off_exactly_in_redis() {
    let redis = Redis::start(free_port());
    let (body, prompt, completion) = priced_chat(40);
    let w = Warden::start(&base(&redis_budget(
        redis.port,
        "budget-tokens",
        &token_budget(prompt, completion, 40),
    )));
    budget_cuts_off_at_the_boundary(&w, &body, (prompt + completion) as f64).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usd_budgets_use_the_pricing_table() {
    let redis = Redis::start(free_port());
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("p.yaml"),
        "apiVersion: warden/v1\nkind: Policy\nrules:\n  - name: shop\n    effect: allow\n    match:\n      roles: [storefront, batch]\n",
    )
    .unwrap();
    // 1000 and 2000 USD per 1M tokens: 0.001 and 0.002 USD per token.
    std::fs::write(
        dir.path().join("pricing.yaml"),
        "apiVersion: warden/v1\nkind: Pricing\nmodels:\n  gpt-4o-mini:\n    - {effective_from: 2020-01-01, input: 1000, output: 2000}\n",
    )
    .unwrap();
    let (body, prompt, completion) = priced_chat(40);
    let settled_cost = prompt as f64 * 0.001 + completion as f64 * 0.002;
    let estimate = prompt as f64 * 0.001 + 40.0 * 0.002;
    let cap = 3.0 * settled_cost + estimate;
    let budgets = format!("      budgets:\n        - {{usd: {cap}, per: day, key: [tenant]}}\n");
    let w = Warden::start(&base(&format!(
        "{}policy:\n  dir: {}\n",
        redis_budget(redis.port, "budget-usd", &budgets),
        dir.path().display()
    )));
    budget_cuts_off_at_the_boundary(&w, &body, settled_cost).await;
    let usage = admin_get(&w, "/admin/v1/usage?tenant=acme").await.json();
    let cost = usage["today"]["gpt-4o-mini"]["cost_usd"].as_f64().unwrap();
    assert!((cost - 4.0 * settled_cost).abs() < 1e-9, "{usage}");
    assert_eq!(usage["budgets"][0]["unit"], "usd");
}

/// The provider's stream usage when it sends one, Warden's count when it does not: the
/// same numbers either way, and equal to what the provider bills.
#[tokio::test]
async fn stream_usage_is_the_providers_or_counted_from_the_deltas() {
    let silent = MockProvider::start(&["--no-usage"]);
    let reporting = MockProvider::start(&[]);
    let config = |mock: &MockProvider| {
        format!(
            "{ADMIN}providers:\n  up:\n    kind: openai\n    base_url: {}\n    api_key: sk-test\nmodels:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n{}",
            mock.base_url(),
            keys()
        )
    };
    let (mut body, prompt, completion) = priced_chat(100);
    body["stream"] = json!(true);
    for mock in [&reporting, &silent] {
        let w = Warden::start(&config(mock));
        let r = chat_with_key(&w, "key-a", &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert!(
            !r.text().contains("\"usage\":{"),
            "the client did not ask for usage"
        );
        let usage = settled(&w, 1).await;
        let model = &usage["today"]["gpt-4o-mini"];
        assert_eq!(model["prompt_tokens"].as_u64(), Some(prompt), "{usage}");
        assert_eq!(
            model["completion_tokens"].as_u64(),
            Some(completion),
            "{usage}"
        );

        // A whole response without usage is counted from its body.
        body["stream"] = json!(false);
        let r = chat_with_key(&w, "key-a", &body).await;
        assert_eq!(r.status, 200);
        let usage = settled(&w, 2).await;
        assert_eq!(
            usage["today"]["gpt-4o-mini"]["completion_tokens"].as_u64(),
            Some(2 * completion)
        );
        body["stream"] = json!(true);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrency_slots_are_held_for_the_whole_stream() {
    // About five seconds of stream: the slot is held long enough to be seen on a busy machine.
    let slow = MockProvider::start(&["--tokens-per-sec", "2"]);
    let w = Warden::start(&format!(
        "{ADMIN}providers:\n  up:\n    kind: openai\n    base_url: {}\n    api_key: sk-test\nmodels:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n{}\
         limits:\n  default_profile: one\n  profiles:\n    one:\n      concurrent:\n        - {{limit: 1, key: [tenant]}}\n",
        slow.base_url(),
        keys()
    ));
    let (mut body, _, _) = priced_chat(100);
    body["stream"] = json!(true);
    let url = w.url("/v1/chat/completions");
    let streaming = {
        let body = body.clone();
        tokio::spawn(async move {
            send(
                "POST",
                &url,
                &[
                    ("content-type", "application/json"),
                    ("authorization", "Bearer key-a"),
                ],
                serde_json::to_vec(&body).unwrap(),
            )
            .await
        })
    };
    let in_flight = || async {
        admin_get(&w, "/admin/v1/limits?key=tenant:acme")
            .await
            .json()["limits"][0]["used"]
            .as_f64()
    };
    let started = eventually(Duration::from_secs(5), || async {
        in_flight().await == Some(1.0)
    })
    .await;
    assert!(started, "the stream holds the tenant's slot");
    let r = call(&w, "key-b").await;
    assert_eq!(
        r.status,
        429,
        "a second request waits for the stream's slot: {}",
        r.text()
    );
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("concurrent")
    );
    assert_eq!(streaming.await.unwrap().status, 200);
    let freed = eventually(Duration::from_secs(5), || async {
        call(&w, "key-b").await.status == 200
    })
    .await;
    assert!(freed, "the slot is freed when the stream ends");
    // The last request's slot is freed when it is settled, just after its answer.
    let idle = eventually(Duration::from_secs(5), || async {
        in_flight().await == Some(0.0)
    })
    .await;
    assert!(idle, "no slot outlives its request");
}

/// Keeps Redis busy for `ms` milliseconds (one Lua script runs at a time), as a stalled
/// server would: commands queue and run after it, their answers too late for Warden.
async fn stall(port: u16, ms: u64) {
    let client = ::redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let _: () = ::redis::cmd("EVAL")
        .arg(
            "local t = redis.call('TIME'); local start = t[1] * 1000 + t[2] / 1000 \
             repeat t = redis.call('TIME') until t[1] * 1000 + t[2] / 1000 - start > tonumber(ARGV[1])",
        )
        .arg(0)
        .arg(ms)
        .query_async(&mut conn)
        .await
        .unwrap_or(());
}

async fn redis_get(port: u16, cmd: &[&str]) -> ::redis::Value {
    let client = ::redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let mut c = ::redis::cmd(cmd[0]);
    for a in &cmd[1..] {
        c.arg(*a);
    }
    c.query_async(&mut conn).await.unwrap()
}

/// An admission Redis commits after Warden stopped waiting (a stalled server) holds no
/// concurrency slot and no estimate for long: the request goes on (`on_store_error:
/// allow`), its settlement — retried until Redis answers, exactly once — finds the
/// admission's marker, frees the slot and corrects the budget to what was spent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admission_committed_after_a_timeout_is_reconciled() {
    let redis = Redis::start(free_port());
    let port = redis.port;
    let w = Warden::start(&format!(
        "{ADMIN}{}",
        base(&format!(
            "state:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:{port}/\n    timeout_ms: 50\n    key_prefix: rc\n\
             limits:\n  default_profile: one\n  profiles:\n    one:\n      on_store_error: allow\n      \
             concurrent:\n        - {{limit: 1, key: [tenant]}}\n      \
             budgets:\n        - {{tokens: 1000000, per: day, key: [tenant], on_store_error: allow}}\n"
        ))
    ));
    assert_eq!(call(&w, "key-a").await.status, 200, "warm the connection");
    let stalled = tokio::spawn(stall(port, 800));
    tokio::time::sleep(Duration::from_millis(50)).await;
    // Admitted while Redis cannot answer; Redis commits the admission after the stall.
    let r = call(&w, "key-a").await;
    assert_eq!(r.status, 200, "{}", r.text());
    stalled.await.unwrap();
    // The settlement, refused during the stall, is retried: the slot comes free.
    let freed = eventually(Duration::from_secs(10), || async {
        let slots = redis_get(port, &["KEYS", "rc:limits:*:one|c0*"]).await;
        let ::redis::Value::Array(keys) = slots else {
            return false;
        };
        let mut busy = 0;
        for k in keys {
            if let ::redis::Value::BulkString(k) = k {
                let key = String::from_utf8(k).unwrap();
                if let ::redis::Value::Int(n) = redis_get(port, &["ZCARD", &key]).await {
                    busy += n;
                }
            }
        }
        busy == 0
    })
    .await;
    assert!(
        freed,
        "the concurrency slot of the reconciled admission was freed"
    );
    assert_eq!(call(&w, "key-a").await.status, 200);
    // The budget holds what the three requests used, not an estimate left behind.
    let usage = || async { admin_get(&w, "/admin/v1/usage?tenant=acme").await.json() };
    let settled = eventually(Duration::from_secs(5), || async {
        usage().await["today"]["gpt-4o-mini"]["requests"] == 3
    })
    .await;
    assert!(settled, "three settlements");
    let usage = usage().await;
    let used_tokens = usage["today"]["gpt-4o-mini"]["total_tokens"]
        .as_i64()
        .unwrap();
    let limits = admin_get(&w, "/admin/v1/limits?key=tenant:acme")
        .await
        .json();
    let budget = limits["limits"]
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["kind"] == "budget")
        .unwrap()
        .clone();
    assert_eq!(
        budget["used"].as_f64().unwrap() as i64,
        used_tokens,
        "{budget} vs usage {usage}"
    );
    // The retry queue empties once the retried settlement has landed.
    let drained = eventually(Duration::from_secs(5), || async {
        get(&w.admin_url("/metrics"))
            .await
            .text()
            .contains("warden_limit_settlements_queued 0")
    })
    .await;
    assert!(drained, "{}", get(&w.admin_url("/metrics")).await.text());
}

/// SIGTERM right after a request whose settlement cannot reach a stalled Redis: Warden
/// waits for it (a bounded time) before exiting, so the usage is counted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settlements_reach_redis_before_the_process_exits() {
    let redis = Redis::start(free_port());
    let port = redis.port;
    let mut w = Warden::start(&base(&format!(
        "limits:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:{port}/\n    timeout_ms: 50\n    key_prefix: sd\n  \
         default_profile: b\n  profiles:\n    b:\n      budgets:\n        - {{tokens: 1000000, per: day, key: [tenant], on_store_error: allow}}\n"
    )));
    assert_eq!(call(&w, "key-a").await.status, 200, "warm the connection");
    let stalled = tokio::spawn(stall(port, 1500));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(call(&w, "key-a").await.status, 200);
    w.terminate();
    let code = tokio::task::spawn_blocking(move || w.wait_exit(Duration::from_secs(15)))
        .await
        .unwrap();
    assert_eq!(code, Some(0));
    stalled.await.unwrap();
    let day = chrono::Utc::now().format("%Y-%m-%d").to_string();
    let requests = redis_get(
        port,
        &[
            "HGET",
            &format!("sd:limits:{{t:acme}}:usage|acme@{day}"),
            "gpt-4o-mini|requests",
        ],
    )
    .await;
    assert_eq!(
        requests,
        ::redis::Value::BulkString(b"2".to_vec()),
        "both requests settled"
    );
}
