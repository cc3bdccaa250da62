//! The shared state store against a real Redis, and the in-process one, through the same
//! calls: counters, once-marks, values with a TTL and compare-and-set behave alike. The
//! `state` section and its `limits` aliases configure it; the keys Warden writes carry
//! one Redis Cluster hash tag per tenant; replicas share limits through a TLS-only Redis
//! with client certificates and an ACL user, through a three-node Redis Cluster (a node
//! restart included) and through a primary named by Redis Sentinel (a failover included).

mod common;

use std::time::Duration;

use common::redis::Redis;
use common::redis_topologies::{Cluster, Sentinel, Tls};
use common::*;
use serde_json::json;
use sha2::{Digest, Sha256};
use warden::config::{Config, RedisConfig, StateBackend, StateConfig};
use warden::state::{Key, StateStore};

const MIN: Duration = Duration::from_secs(60);

async fn exercise(store: &StateStore) {
    let k = Key::new("test", "{t:acme}:counter");
    assert_eq!(store.add(k, 3, MIN).await.unwrap(), 3);
    assert_eq!(store.add(k, -1, MIN).await.unwrap(), 2);
    assert_eq!(store.get(k).await.unwrap(), Some(b"2".to_vec()));

    let mark = Key::new("test", "{t:acme}:mark");
    assert!(store.mark_once(mark, MIN).await.unwrap());
    assert!(!store.mark_once(mark, MIN).await.unwrap());

    let v = Key::new("test", "{t:acme}:value");
    assert_eq!(store.get(v).await.unwrap(), None);
    assert!(
        store
            .compare_and_set(v, None, b"pending", MIN)
            .await
            .unwrap()
    );
    assert!(!store.compare_and_set(v, None, b"other", MIN).await.unwrap());
    assert!(
        !store
            .compare_and_set(v, Some(b"done"), b"x", MIN)
            .await
            .unwrap()
    );
    assert!(
        store
            .compare_and_set(v, Some(b"pending"), b"done", MIN)
            .await
            .unwrap()
    );
    assert_eq!(store.get(v).await.unwrap(), Some(b"done".to_vec()));
    store.put(v, b"replaced", MIN).await.unwrap();
    assert_eq!(store.get(v).await.unwrap(), Some(b"replaced".to_vec()));

    let short = Key::new("test", "{t:acme}:short");
    store
        .put(short, b"v", Duration::from_millis(30))
        .await
        .unwrap();
    assert!(
        store
            .mark_once(Key::new("test", "{t:acme}:m2"), Duration::from_millis(30))
            .await
            .unwrap()
    );
    tokio::time::sleep(Duration::from_millis(80)).await;
    assert_eq!(store.get(short).await.unwrap(), None, "values expire");
    assert!(
        store
            .mark_once(Key::new("test", "{t:acme}:m2"), MIN)
            .await
            .unwrap(),
        "marks expire"
    );
}

#[tokio::test]
async fn memory_and_redis_stores_behave_alike() {
    let memory = StateStore::from_config(&StateConfig::default()).unwrap();
    exercise(&memory).await;

    let redis = Redis::start(free_port());
    let config = StateConfig {
        backend: StateBackend::Redis,
        redis: Some(RedisConfig {
            timeout_ms: 500,
            key_prefix: "st".into(),
            ..RedisConfig::at(format!("redis://127.0.0.1:{}/", redis.port))
        }),
        ..StateConfig::default()
    };
    let shared = StateStore::from_config(&config).unwrap();
    exercise(&shared).await;
    // Keys are named `<prefix>:<namespace>:<name>`.
    let client = ::redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port)).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let value: Option<String> = ::redis::cmd("GET")
        .arg("st:test:{t:acme}:value")
        .query_async(&mut conn)
        .await
        .unwrap();
    assert_eq!(value.as_deref(), Some("replaced"));

    // A store that cannot be reached fails with an error, within its timeout.
    drop(redis);
    let started = std::time::Instant::now();
    assert!(shared.get(Key::new("test", "x")).await.is_err());
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "{:?}",
        started.elapsed()
    );
}

fn parse(yaml: &str) -> Result<Config, String> {
    Config::from_str_named(yaml, "warden.yaml").map_err(|e| e.to_string())
}

#[test]
fn the_state_section_and_its_limits_aliases() {
    let base =
        "providers:\n  m:\n    kind: mock\nmodels:\n  x:\n    targets:\n      - provider: m\n";
    let profiles =
        "  profiles:\n    p:\n      requests:\n        - {limit: 1, per: minute, key: [tenant]}\n";
    let state = parse(&format!(
        "{base}state:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:1/\nlimits:\n{profiles}"
    ))
    .unwrap();
    let alias = parse(&format!(
        "{base}limits:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:1/\n{profiles}"
    ))
    .unwrap();
    for c in [&state, &alias] {
        let s = c.state();
        assert_eq!(s.backend, StateBackend::Redis);
        assert_eq!(s.redis.unwrap().key_prefix, "warden");
    }
    assert_eq!(
        parse(&format!("{base}limits:\n{profiles}"))
            .unwrap()
            .state()
            .backend,
        StateBackend::Local,
        "in process by default"
    );
    let both = parse(&format!(
        "{base}state:\n  backend: local\nlimits:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:1/\n{profiles}"
    ))
    .unwrap_err();
    assert!(both.contains("aliases of the `state` section"), "{both}");
    let missing = parse(&format!("{base}state:\n  backend: redis\n")).unwrap_err();
    assert!(
        missing.contains("state: `redis` (`url`, `cluster` or `sentinel`) is required"),
        "{missing}"
    );
    let braces = parse(&format!(
        "{base}state:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:1/\n    key_prefix: \"a{{b}}\"\n"
    ))
    .unwrap_err();
    assert!(braces.contains("hash tags"), "{braces}");
    assert_eq!(
        parse(&format!("{base}state:\n  local_max_entries: 5000\n"))
            .unwrap()
            .state()
            .local_max_entries,
        5000
    );
    let tiny = parse(&format!("{base}state:\n  local_max_entries: 10\n")).unwrap_err();
    assert!(tiny.contains("must be at least 1000"), "{tiny}");
}

/// Every key one request's admission and settlement touch carries its tenant's hash tag
/// when the profile keys its limits by tenant: one Redis Cluster slot per tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_keys_share_one_hash_tag() {
    let redis = Redis::start(free_port());
    let key_hash = hex::encode(Sha256::digest(b"key-a"));
    let w = Warden::start(&mock_config(&format!(
        "admin_token: admin-secret\n\
         auth:\n  api_keys:\n    - id: app-a\n      sha256: {key_hash}\n      tenant: acme\n\
         state:\n  backend: redis\n  redis:\n    url: redis://127.0.0.1:{}/\n    timeout_ms: 200\n\
         limits:\n  default_profile: p\n  profiles:\n    p:\n      \
         requests:\n        - {{limit: 100, per: minute, key: [tenant]}}\n      \
         tokens:\n        - {{limit: 1000000, per: minute, key: [tenant, model]}}\n      \
         concurrent:\n        - {{limit: 5, key: [tenant]}}\n      \
         budgets:\n        - {{tokens: 1000000, per: day, key: [tenant], soft: [0.000001]}}\n",
        redis.port
    )));
    let r = chat_with_key(
        &w,
        "key-a",
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let client = ::redis::Client::open(format!("redis://127.0.0.1:{}/", redis.port)).unwrap();
    let settled = eventually(Duration::from_secs(5), || async {
        let mut conn = client.get_multiplexed_async_connection().await.unwrap();
        let keys: Vec<String> = ::redis::cmd("KEYS")
            .arg("warden:limits:*settled|*")
            .query_async(&mut conn)
            .await
            .unwrap();
        !keys.is_empty()
    })
    .await;
    assert!(settled, "the settlement reached Redis");
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let keys: Vec<String> = ::redis::cmd("KEYS")
        .arg("*")
        .query_async(&mut conn)
        .await
        .unwrap();
    // The keys that outlive the request (a token-rate key expires with its short
    // window, a free slot's set and a settled admission's marker are deleted).
    let kinds = ["|r0|", "|b0|", "settled|", "usage|", "soft="];
    for kind in kinds {
        assert!(
            keys.iter().any(|k| k.contains(kind)),
            "no {kind} key: {keys:?}"
        );
    }
    for k in &keys {
        assert!(k.starts_with("warden:limits:"), "{k}");
        let tag = k
            .split_once('{')
            .and_then(|(_, rest)| rest.split_once('}'))
            .map(|(t, _)| t);
        assert_eq!(tag, Some("t:acme"), "{k}");
    }
}

/// A test CA's PEM, and a certificate and key it signed for `name` (a server's names:
/// localhost and 127.0.0.1).
fn issued(ca: &rcgen::Issuer<'_, rcgen::KeyPair>, name: &str) -> (String, String) {
    let key = rcgen::KeyPair::generate().unwrap();
    let mut params =
        rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
            .unwrap();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    (
        params.signed_by(&key, ca).unwrap().pem(),
        key.serialize_pem(),
    )
}

/// PEM files in a directory: a test CA, and a server's and a client's certificate and key
/// that it signed.
struct Pki {
    ca: String,
    server_cert: String,
    server_key: String,
    client_cert: String,
    client_key: String,
}

fn pki(dir: &std::path::Path) -> Pki {
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca_pem = ca_params.self_signed(&ca_key).unwrap().pem();
    let ca = rcgen::Issuer::new(ca_params, ca_key);
    let (server_cert, server_key) = issued(&ca, "redis");
    let (client_cert, client_key) = issued(&ca, "warden");
    Pki {
        ca: write("ca.pem", &ca_pem),
        server_cert: write("redis.crt", &server_cert),
        server_key: write("redis.key", &server_key),
        client_cert: write("client.crt", &client_cert),
        client_key: write("client.key", &client_key),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_limits_through_a_tls_only_redis_with_an_acl_user() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    let pki = pki(dir.path());
    let ca_file = pki.ca.clone();

    // TLS only, client certificates required, the default user off, one ACL user (in a
    // config file: on the command line an ACL rule's spaces would be taken as a name's).
    let acl = write(
        "redis.conf",
        "user default off\nuser warden on >s3cret-redis-pass ~* &* +@all\n",
    );
    let port = free_port();
    let _redis = Redis::start_with(
        port,
        &[
            &acl,
            "--port",
            "0",
            "--tls-port",
            &port.to_string(),
            "--tls-cert-file",
            &pki.server_cert,
            "--tls-key-file",
            &pki.server_key,
            "--tls-ca-cert-file",
            &ca_file,
            "--tls-auth-clients",
            "yes",
        ],
    );
    let key_hash = hex::encode(Sha256::digest(b"key-a"));
    let config = |password: &str, client: bool| {
        let client_files = if client {
            format!(
                "    cert_file: {}\n    key_file: {}\n",
                pki.client_cert, pki.client_key
            )
        } else {
            String::new()
        };
        mock_config(&format!(
            "auth:\n  api_keys:\n    - id: app-a\n      sha256: {key_hash}\n      tenant: acme\n\
             state:\n  backend: redis\n  redis:\n    url: rediss://127.0.0.1:{port}/\n    timeout_ms: 500\n    \
             username: warden\n    password: {password}\n    ca_file: {ca_file}\n{client_files}\
             limits:\n  default_profile: p\n  profiles:\n    p:\n      on_store_error: deny\n      \
             requests:\n        - {{limit: 3, per: minute, key: [tenant]}}\n"
        ))
    };
    let chat = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});

    // Two replicas, the password from the environment: three requests between them, the
    // fourth refused by the shared count.
    let shared = config("${REDIS_PASSWORD}", true);
    let env = [("REDIS_PASSWORD", "s3cret-redis-pass")];
    let a = Warden::start_with_env(&shared, &env);
    let b = Warden::start_with_env(&shared, &env);
    for (w, want) in [(&a, 200), (&b, 200), (&a, 200), (&b, 429)] {
        let r = chat_with_key(w, "key-a", &chat).await;
        assert_eq!(r.status, want, "{}\n{}", r.text(), w.logs());
    }

    // A wrong password, or no client certificate: the store is unreachable and the
    // profile refuses; the password is in no log line.
    for (w, what) in [
        (
            Warden::start(&config("not-the-password", true)),
            "wrong password",
        ),
        (
            Warden::start_with_env(&config("${REDIS_PASSWORD}", false), &env),
            "no client certificate",
        ),
    ] {
        let r = chat_with_key(&w, "key-a", &chat).await;
        assert_eq!(r.status, 503, "{what}: {}", r.text());
        assert_eq!(
            r.json()["error"]["code"],
            "rate_limit_unavailable",
            "{what}"
        );
        for secret in ["not-the-password", "s3cret-redis-pass"] {
            assert!(!w.logs().contains(secret), "{what}: {}", w.logs());
            assert!(!r.text().contains(secret), "{what}");
        }
    }
    for w in [&a, &b] {
        assert!(!w.logs().contains("s3cret-redis-pass"), "{}", w.logs());
    }
}

#[test]
fn redis_tls_settings_are_checked_at_start() {
    for (redis, complaint) in [
        (
            "url: redis://127.0.0.1:6379/\n    ca_file: ca.pem\n",
            "need a rediss:// URL",
        ),
        (
            "url: rediss://127.0.0.1:6379/\n    cert_file: c.pem\n",
            "go together",
        ),
        ("url: http://127.0.0.1:6379/\n", "redis:// or rediss://"),
        (
            "url: redis://u:p@127.0.0.1:6379/\n    password: x\n",
            "not both",
        ),
    ] {
        let err = parse(&mock_config(&format!(
            "state:\n  backend: redis\n  redis:\n    {redis}"
        )))
        .unwrap_err();
        assert!(err.contains(complaint), "{redis}: {err}");
    }
}

const CHAT: &str = r#"{"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}"#;

/// `n` API keys, `key-0`…, each of its own tenant `shop-0`…, and the admin token.
fn shops(n: usize) -> String {
    let mut out = String::from("admin_token: admin-secret\nauth:\n  api_keys:\n");
    for i in 0..n {
        let hash = hex::encode(Sha256::digest(format!("key-{i}").as_bytes()));
        out.push_str(&format!(
            "    - id: app-{i}\n      sha256: {hash}\n      tenant: shop-{i}\n"
        ));
    }
    out
}

/// A Warden config for `shops(n)` whose default profile `p` is `profile`, its state in
/// `redis` (the body of `state.redis`).
fn shared_limits(n: usize, redis: &str, profile: &str) -> String {
    mock_config(&format!(
        "{}state:\n  backend: redis\n  redis:\n{redis}limits:\n  default_profile: p\n  profiles:\n    p:\n{profile}",
        shops(n)
    ))
}

fn cluster_redis(cluster: &Cluster, prefix: &str) -> String {
    format!(
        "    cluster: [{}]\n    timeout_ms: 200\n    key_prefix: {prefix}\n",
        cluster.urls().join(", ")
    )
}

async fn shop_call(w: &Warden, shop: usize) -> Reply {
    chat_with_key(
        w,
        &format!("key-{shop}"),
        &serde_json::from_str(CHAT).unwrap(),
    )
    .await
}

/// Sends `per_shop` requests for each of `shops` shops at once, spread over `replicas`;
/// the statuses by shop.
async fn burst(replicas: &[Warden], shops: usize, per_shop: usize) -> Vec<Vec<u16>> {
    let mut tasks = Vec::new();
    for i in 0..shops * per_shop {
        let url = replicas[i % replicas.len()].url("/v1/chat/completions");
        let shop = i % shops;
        tasks.push(tokio::spawn(async move {
            let status = send(
                "POST",
                &url,
                &[
                    ("content-type", "application/json"),
                    ("authorization", &format!("Bearer key-{shop}")),
                ],
                CHAT.as_bytes().to_vec(),
            )
            .await
            .status;
            (shop, status)
        }));
    }
    let mut by_shop = vec![Vec::new(); shops];
    for t in tasks {
        let (shop, status) = t.await.unwrap();
        by_shop[shop].push(status);
    }
    by_shop
}

/// The requests of `tenant`'s usage today, as the admin API reports it.
async fn usage_requests(w: &Warden, tenant: &str) -> i64 {
    admin_get(w, &format!("/admin/v1/usage?tenant={tenant}"))
        .await
        .json()["today"]["gpt-4o-mini"]["requests"]
        .as_i64()
        .unwrap_or(0)
}

/// Three replicas over a three-node Redis Cluster admit exactly each tenant's limit of a
/// burst; tenants' counters spread over the shards, and their settlements (markers,
/// usage) run on their slots. A profile keyed by no tenant is exact too, its usage
/// settled in each tenant's own slot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_limits_exactly_over_a_redis_cluster() {
    let cluster = Cluster::start();
    let shops_n = 6;
    let config = shared_limits(
        shops_n,
        &cluster_redis(&cluster, "tenants"),
        "      on_store_error: deny\n      requests:\n        - {limit: 5, per: minute, key: [tenant]}\n      \
         tokens:\n        - {limit: 1000000, per: minute, key: [tenant]}\n",
    );
    let replicas = [
        Warden::start(&config),
        Warden::start(&config),
        Warden::start(&config),
    ];
    let statuses = burst(&replicas, shops_n, 12).await;
    for (shop, s) in statuses.iter().enumerate() {
        let admitted = s.iter().filter(|s| **s == 200).count();
        let limited = s.iter().filter(|s| **s == 429).count();
        assert_eq!((admitted, limited), (5, 7), "shop-{shop}: {s:?}");
    }
    let holding = cluster
        .nodes
        .iter()
        .filter(|n| n.cli(&["DBSIZE"]).trim() != "0")
        .count();
    assert!(holding >= 2, "tenants' counters spread over the shards");
    for shop in 0..shops_n {
        let tenant = format!("shop-{shop}");
        let settled = eventually(Duration::from_secs(10), || async {
            usage_requests(&replicas[0], &tenant).await == 5
        })
        .await;
        assert!(settled, "{tenant}'s usage is settled in its slot");
    }
    assert!(
        !replicas.iter().any(|w| w.logs().contains("CROSSSLOT")),
        "{}",
        replicas[0].logs()
    );

    // Keyed by model only: every counter carries the global tag, the usage its tenant's.
    let global = Warden::start(&shared_limits(
        2,
        &cluster_redis(&cluster, "global"),
        "      on_store_error: deny\n      requests:\n        - {limit: 4, per: minute, key: [model]}\n      \
         tokens:\n        - {limit: 1000000, per: minute, key: [model]}\n",
    ));
    assert!(
        global.logs().contains("keys no limit by tenant"),
        "start-up says the profile uses one slot: {}",
        global.logs()
    );
    let statuses = burst(std::slice::from_ref(&global), 2, 4).await;
    let admitted = statuses.concat().iter().filter(|s| **s == 200).count();
    assert_eq!(admitted, 4, "{statuses:?}");
    let settled = eventually(Duration::from_secs(10), || async {
        usage_requests(&global, "shop-0").await + usage_requests(&global, "shop-1").await == 4
    })
    .await;
    assert!(
        settled,
        "usage of a global profile is settled: {}",
        global.logs()
    );
}

/// Redis Cluster over TLS only (client and cluster bus), as managed services run it:
/// two replicas share one limit through it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_limits_over_a_tls_only_redis_cluster() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let cluster = Cluster::start_with(&Tls::new(&pki.server_cert, &pki.server_key, &pki.ca));
    let urls: Vec<String> = cluster
        .urls()
        .iter()
        .map(|u| u.replace("redis://", "rediss://"))
        .collect();
    let config = shared_limits(
        1,
        &format!(
            "    cluster: [{}]\n    timeout_ms: 500\n    ca_file: {}\n",
            urls.join(", "),
            pki.ca
        ),
        "      on_store_error: deny\n      requests:\n        - {limit: 3, per: minute, key: [tenant]}\n",
    );
    let (a, b) = (Warden::start(&config), Warden::start(&config));
    let mut statuses = Vec::new();
    for w in [&a, &b, &a, &b] {
        statuses.push(shop_call(w, 0).await.status);
    }
    assert_eq!(statuses, [200, 200, 200, 429], "{}", a.logs());
}

/// A cluster node that goes away: its tenants follow `on_store_error` (deny: 503) while
/// the other shards keep serving theirs; restarted (empty), it serves again and the
/// limits hold again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_restart_follows_on_store_error_and_recovers() {
    let mut cluster = Cluster::start();
    let shops_n = 6;
    let w = Warden::start(&shared_limits(
        shops_n,
        &cluster_redis(&cluster, "restart"),
        "      on_store_error: deny\n      requests:\n        - {limit: 3, per: minute, key: [tenant]}\n",
    ));
    let node_of = |shop: usize| cluster.node_for(&format!("{{t:shop-{shop}}}"));
    let down = node_of(0);
    let other = (1..shops_n)
        .find(|s| node_of(*s) != down)
        .expect("a shop on another node");
    for shop in [0, other] {
        assert_eq!(shop_call(&w, shop).await.status, 200);
    }

    cluster.nodes[down].kill();
    let refused = shop_call(&w, 0).await;
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert_eq!(refused.json()["error"]["code"], "rate_limit_unavailable");
    let served = shop_call(&w, other).await;
    assert_eq!(served.status, 200, "other shards serve: {}", served.text());

    cluster.nodes[down].restart();
    cluster.wait_ok();
    let recovered = eventually(Duration::from_secs(20), || async {
        shop_call(&w, 0).await.status == 200
    })
    .await;
    assert!(recovered, "the restarted node serves again: {}", w.logs());
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(shop_call(&w, 0).await.status);
    }
    assert_eq!(statuses, vec![200, 200, 429], "limits hold again");
    assert_eq!(
        shop_call(&w, other).await.status,
        200,
        "the other shard's counts were kept"
    );
}

/// Through Sentinel: the primary it names holds the counters; when it dies and the
/// replica is promoted, Warden asks again and the limits hold on the new primary.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sentinel_failover_moves_limits_to_the_new_primary() {
    let mut redis = Sentinel::start();
    let w = Warden::start(&shared_limits(
        1,
        &format!(
            "    sentinel:\n      master: main\n      nodes: [redis://127.0.0.1:{}]\n    timeout_ms: 200\n",
            redis.sentinel.port
        ),
        "      on_store_error: deny\n      requests:\n        - {limit: 3, per: minute, key: [tenant]}\n",
    ));
    let first = shop_call(&w, 0).await;
    assert_eq!(first.status, 200, "{}\n{}", first.text(), w.logs());
    assert_ne!(
        redis.primary.cli(&["DBSIZE"]).trim(),
        "0",
        "the primary counts"
    );

    redis.fail_over();
    let recovered = eventually(Duration::from_secs(20), || async {
        shop_call(&w, 0).await.status == 200
    })
    .await;
    assert!(recovered, "Warden follows the failover: {}", w.logs());
    assert!(redis.replica.cli(&["ROLE"]).starts_with("master"));
    assert_ne!(
        redis.replica.cli(&["DBSIZE"]).trim(),
        "0",
        "the new primary counts"
    );
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(shop_call(&w, 0).await.status);
    }
    assert!(
        statuses.ends_with(&[429]) && statuses.iter().filter(|s| **s == 429).count() <= 3,
        "the limit holds on the new primary: {statuses:?}"
    );
}

/// Sentinel over TLS only (sentinel, primary and replica): the primary it names is
/// reached with the same CA, and the limit holds across a failover.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_through_a_tls_only_sentinel_and_its_failover() {
    let dir = tempfile::tempdir().unwrap();
    let pki = pki(dir.path());
    let mut redis = Sentinel::start_with(&Tls::new(&pki.server_cert, &pki.server_key, &pki.ca));
    let w = Warden::start(&shared_limits(
        1,
        &format!(
            "    sentinel:\n      master: main\n      nodes: [rediss://127.0.0.1:{}]\n    timeout_ms: 500\n    ca_file: {}\n",
            redis.sentinel.port, pki.ca
        ),
        "      on_store_error: deny\n      requests:\n        - {limit: 2, per: minute, key: [tenant]}\n",
    ));
    let first = shop_call(&w, 0).await;
    assert_eq!(first.status, 200, "{}\n{}", first.text(), w.logs());
    redis.fail_over();
    let recovered = eventually(Duration::from_secs(20), || async {
        shop_call(&w, 0).await.status == 200
    })
    .await;
    assert!(
        recovered,
        "Warden follows the failover over TLS: {}",
        w.logs()
    );
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(shop_call(&w, 0).await.status);
    }
    assert!(statuses.ends_with(&[429]), "the limit holds: {statuses:?}");
}

#[test]
fn redis_topologies_are_checked_at_start() {
    let state = |redis: &str, profile: &str| {
        parse(&mock_config(&format!(
            "state:\n  backend: redis\n  redis:\n{redis}limits:\n  default_profile: p\n  profiles:\n    p:\n{profile}"
        )))
    };
    let tenant = "      requests:\n        - {limit: 1, per: minute, key: [tenant]}\n";
    let mixed = "      requests:\n        - {limit: 1, per: minute, key: [tenant]}\n      \
                 tokens:\n        - {limit: 100, per: minute, key: [model]}\n";
    let cluster = "    cluster: [redis://127.0.0.1:7000, redis://127.0.0.1:7001]\n";
    let c = state(cluster, tenant).unwrap();
    assert!(matches!(
        c.state().redis.unwrap().topology(),
        warden::config::RedisTopology::Cluster(nodes) if nodes.len() == 2
    ));
    let err = state(cluster, mixed).unwrap_err();
    assert!(
        err.contains("limits.profiles.p") && err.contains("all its limits by `tenant` or none"),
        "{err}"
    );
    assert!(
        state("    url: redis://127.0.0.1:1/\n", mixed).is_ok(),
        "one server runs any script"
    );
    for (redis, complaint) in [
        (
            "    url: redis://127.0.0.1:1/\n    cluster: [redis://127.0.0.1:7000]\n",
            "exactly one of",
        ),
        ("    timeout_ms: 10\n", "exactly one of"),
        (
            "    sentinel: {master: main, nodes: []}\n",
            "at least one of its `nodes`",
        ),
        (
            "    cluster: [rediss://127.0.0.1:7000, redis://127.0.0.1:7001]\n",
            "all use TLS",
        ),
        (
            "    sentinel: {master: main, nodes: [http://127.0.0.1:26379]}\n",
            "redis:// or rediss://",
        ),
    ] {
        let err = state(redis, tenant).unwrap_err();
        assert!(err.contains(complaint), "{redis}: {err}");
    }
}
