//! Faults under load: while clients send chat requests (whole and streamed, OAuth2 JWTs,
//! limits in Redis, the audit log shipping to S3 with Object Lock), Redis is frozen, the
//! S3 store is killed, the IdP goes down and the provider is killed, each at random moments
//! (seeded: `CHAOS_SEED`) for `CHAOS_SECONDS` (15 in `make test`, longer in `make chaos`).
//! Afterwards, and after a restart of Warden: no panic, every answered request has
//! exactly one audit record, no concurrency slot is left in Redis, and the log verifies.

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::issuer::{Key, TestIssuer};
use common::redis::Redis;
use common::s3::{ACCESS_KEY, S3Server, SECRET_KEY};
use common::*;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const POLICY: &str = "apiVersion: warden/v1\nkind: Policy\nrules:\n  - name: shop\n    effect: allow\n    match:\n      tenants: [acme-retail]\n    settings:\n      limits: shop\n      pii: shop\n";

fn config(
    issuer: &TestIssuer,
    provider: &MockProvider,
    redis: u16,
    s3: &S3Server,
    dir: &std::path::Path,
) -> String {
    format!(
        "providers:\n  up:\n    kind: openai\n    base_url: {provider}\n    api_key: sk-test\n    \
         timeouts: {{connect_ms: 500, first_byte_ms: 3000, idle_ms: 3000, total_ms: 10000}}\n\
         models:\n  gpt-4o-mini:\n    targets:\n      - provider: up\n\
         retry:\n  max_attempts: 2\n  backoff_initial_ms: 20\n\
         auth:\n  jwt_issuers:\n    - issuer: {iss}\n      audiences: [warden]\n      algorithms: [RS256]\n      \
         claims:\n        tenant: tenant_id\n      jwks:\n        refresh_seconds: 1\n        \
         min_refresh_interval_seconds: 1\n        max_stale_seconds: 600\n\
         policy:\n  dir: {dir}/policies\n\
         limits:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:{redis}/\n    timeout_ms: 50\n  \
         profiles:\n    shop:\n      on_store_error: allow\n      concurrent:\n        - {{limit: 64, key: [tenant]}}\n      \
         tokens:\n        - {{limit: 100000000, per: minute, key: [tenant]}}\n      \
         budgets:\n        - {{tokens: 1000000000, per: day, key: [tenant], on_store_error: allow}}\n\
         pii:\n  profiles:\n    shop:\n      default_action: pseudonymize\n\
         audit:\n  chain_id: chaos-replica\n  spool_dir: {dir}/spool\n  signing_key_file: {dir}/signing.pem\n  \
         segment_max_age_seconds: 1\n  digest_interval_seconds: 2\n  sink:\n    kind: s3\n    bucket: chaos\n    \
         prefix: audit\n    endpoint: {s3}\n    path_style: true\n    access_key_id: {ACCESS_KEY}\n    \
         secret_access_key: {SECRET_KEY}\n    timeout_ms: 3000\n    object_lock:\n      mode: compliance\n      retain_days: 1\n",
        provider = provider.base_url(),
        iss = issuer.url(),
        dir = dir.display(),
        s3 = s3.endpoint(),
    )
}

/// What one client request came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    /// A whole answer, or a stream that ended with `[DONE]`.
    Answered,
    /// Anything else (an error status, a broken stream, a refused connection).
    Failed,
}

async fn one_request(w_url: &str, token: &str, id: &str, stream: bool) -> Outcome {
    let body = json!({"model": "gpt-4o-mini", "stream": stream,
        "messages": [{"role": "user", "content": format!("where is order {id} for jane.doe@example.com")}]});
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let req = http::Request::builder()
        .method("POST")
        .uri(format!("{w_url}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("authorization", format!("Bearer {token}"))
        .header("x-request-id", id)
        .body(http_body_util::Full::new(bytes::Bytes::from(
            body.to_string(),
        )))
        .unwrap();
    let Ok(Ok(resp)) = tokio::time::timeout(Duration::from_secs(20), client.request(req)).await
    else {
        return Outcome::Failed;
    };
    if resp.status() != 200 {
        return Outcome::Failed;
    }
    use http_body_util::BodyExt;
    let Ok(Ok(collected)) =
        tokio::time::timeout(Duration::from_secs(20), resp.into_body().collect()).await
    else {
        return Outcome::Failed;
    };
    let bytes = collected.to_bytes();
    if stream {
        let events = sse_data(&bytes);
        if events.last().is_some_and(|e| e == "[DONE]") {
            Outcome::Answered
        } else {
            Outcome::Failed
        }
    } else if serde_json::from_slice::<Value>(&bytes).is_ok_and(|v| v["choices"].is_array()) {
        Outcome::Answered
    } else {
        Outcome::Failed
    }
}

/// Sets SIGSTOP / SIGCONT on a process (a frozen server keeps its data).
fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill").args([sig, &pid.to_string()]).status();
}

/// SIGTERM, a clean exit, and everything Warden logged.
fn stop_with_logs(mut w: Warden) -> String {
    w.terminate();
    assert_eq!(
        w.wait_exit(Duration::from_secs(20)),
        Some(0),
        "{}",
        w.logs()
    );
    w.logs()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn faults_under_load_lose_no_record_and_leak_no_slot() {
    let seconds: u64 = std::env::var("CHAOS_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(15);
    let seed: u64 = std::env::var("CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(7);
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("policies")).unwrap();
    std::fs::write(dir.path().join("policies/p.yaml"), POLICY).unwrap();
    let keygen = Command::new(BIN)
        .args(["audit", "keygen", "--out"])
        .arg(dir.path().join("signing.pem"))
        .output()
        .unwrap();
    assert!(keygen.status.success());

    let key = Key::rsa("rsa-1");
    let issuer = TestIssuer::start(vec![key.clone()]).await;
    let now = jsonwebtoken::get_current_timestamp();
    let token = key.sign(
        &json!({"iss": issuer.url(), "sub": "svc-shop", "aud": "warden", "exp": now + 3600,
                "tenant_id": "acme-retail"}),
        None,
    );
    let provider = Arc::new(Mutex::new(MockProvider::start(&[
        "--tokens-per-sec",
        "200",
    ])));
    let redis = Redis::start(free_port());
    let redis_port = redis.port;
    let redis_pid = redis.pid();
    let mut s3 = S3Server::start();
    s3.create_locked_bucket("chaos").await;
    let config = {
        let p = provider.lock().unwrap();
        config(&issuer, &p, redis_port, &s3, dir.path())
    };
    let w = Warden::start(&config);
    let url = format!("http://{}", w.addr);

    // Clients: each sends requests one after another, half of them streamed.
    let outcomes: Arc<Mutex<HashMap<String, Outcome>>> = Arc::default();
    let stop_at = Instant::now() + Duration::from_secs(seconds);
    let mut clients = Vec::new();
    for c in 0..6 {
        let (url, token, outcomes) = (url.clone(), token.clone(), outcomes.clone());
        clients.push(tokio::spawn(async move {
            let mut n = 0u64;
            while Instant::now() < stop_at {
                let id = format!("chaos-{c}-{n}");
                let outcome = one_request(&url, &token, &id, n % 2 == 1).await;
                outcomes.lock().unwrap().insert(id, outcome);
                n += 1;
            }
        }));
    }

    // Faults at random moments.
    // Every kind of fault comes once per round, in a random order.
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut faults: Vec<String> = Vec::new();
    let mut round: Vec<u8> = Vec::new();
    while Instant::now() + Duration::from_secs(2) < stop_at {
        if round.is_empty() {
            round = vec![0, 1, 2, 3];
            rand::seq::SliceRandom::shuffle(round.as_mut_slice(), &mut rng);
        }
        tokio::time::sleep(Duration::from_millis(rng.random_range(200..1000))).await;
        let hold = Duration::from_millis(rng.random_range(200..1500));
        match round.pop().unwrap_or(0) {
            0 => {
                signal(redis_pid, "-STOP");
                tokio::time::sleep(hold).await;
                signal(redis_pid, "-CONT");
                faults.push(format!("redis frozen {hold:?}"));
            }
            1 => {
                s3.stop();
                tokio::time::sleep(hold).await;
                tokio::task::block_in_place(|| s3.resume());
                faults.push(format!("s3 killed {hold:?}"));
            }
            2 => {
                issuer.set_down(true);
                tokio::time::sleep(hold).await;
                issuer.set_down(false);
                faults.push(format!("idp down {hold:?}"));
            }
            _ => {
                provider.lock().unwrap().kill();
                tokio::time::sleep(hold).await;
                tokio::task::block_in_place(|| provider.lock().unwrap().restart());
                faults.push(format!("provider killed {hold:?}"));
            }
        }
    }
    for c in clients {
        c.await.unwrap();
    }
    let outcomes = outcomes.lock().unwrap().clone();
    let answered: Vec<&String> = outcomes
        .iter()
        .filter(|(_, o)| **o == Outcome::Answered)
        .map(|(id, _)| id)
        .collect();
    eprintln!(
        "chaos: seed {seed}, {} requests, {} answered, faults: {faults:?}",
        outcomes.len(),
        answered.len()
    );
    assert!(!answered.is_empty() && faults.len() >= 4, "{faults:?}");

    // No panic; then a restart (spool recovery) and a clean stop ship everything.
    let metrics = get(&w.admin_url("/metrics")).await.text();
    assert!(metrics.contains("warden_panics_total 0"), "{metrics}");
    let logs = stop_with_logs(w);
    assert!(!logs.contains("panicked"), "{logs}");
    let restart_logs = stop_with_logs(Warden::start(&config));
    let audit_errors: Vec<String> = logs
        .lines()
        .chain(restart_logs.lines())
        .filter(|l| l.contains("audit:") && (l.contains("ERROR") || l.contains("WARN")))
        .map(str::to_string)
        .collect();
    let stopped = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);

    // No concurrency slot is left behind in Redis.
    let client = ::redis::Client::open(format!("redis://127.0.0.1:{redis_port}/")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*:shop|c0|*")
        .query_async(&mut conn)
        .await
        .unwrap();
    for k in keys {
        let n: i64 = ::redis::cmd("ZCARD")
            .arg(&k)
            .query_async(&mut conn)
            .await
            .unwrap();
        assert_eq!(n, 0, "{k} holds {n} slots");
    }

    // Every answered request has exactly one record; the log verifies up to now.
    let download = tempfile::tempdir().unwrap();
    let sink = s3.sink_config("chaos", "audit");
    let target = download.path().to_path_buf();
    let got = tokio::task::spawn_blocking(move || {
        warden::audit::s3::S3Sink::download_all(&sink, &target).unwrap()
    })
    .await
    .unwrap();
    assert!(got.problems.is_empty(), "{:?}", got.problems);
    let mut seen: HashMap<String, usize> = HashMap::new();
    for line in all_text(download.path()).lines() {
        if let Ok(v) = serde_json::from_str::<Value>(line)
            && let Some(id) = v["request_id"].as_str()
        {
            *seen.entry(id.to_string()).or_default() += 1;
        }
    }
    for id in &answered {
        assert_eq!(
            seen.get(*id),
            Some(&1),
            "request {id}: {:?} records",
            seen.get(*id)
        );
    }
    assert!(seen.values().all(|n| *n == 1), "a request recorded twice");
    let out = Command::new(BIN)
        .args(["audit", "verify", "--dir"])
        .arg(download.path())
        .arg("--public-key")
        .arg(dir.path().join("signing.pub.pem"))
        .args(["--to", &stopped])
        .output()
        .unwrap();
    let report = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{report}\n{}",
        audit_errors.join("\n")
    );
    drop(redis);
}
