//! The shared state store against a real Redis, and the in-process one, through the same
//! calls: counters, once-marks, values with a TTL and compare-and-set behave alike. The
//! `state` section and its `limits` aliases configure it; the keys Warden writes carry
//! one Redis Cluster hash tag per tenant; replicas share limits through a TLS-only Redis
//! with client certificates and an ACL user.

mod common;

use std::time::Duration;

use common::redis::Redis;
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
        missing.contains("state: `redis: {url}` is required"),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_share_limits_through_a_tls_only_redis_with_an_acl_user() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
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
    let ca_file = write("ca.pem", &ca_pem);

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
            &write("redis.crt", &server_cert),
            "--tls-key-file",
            &write("redis.key", &server_key),
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
                write("client.crt", &client_cert),
                write("client.key", &client_key)
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
