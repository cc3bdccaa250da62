//! OAuth2 authentication end to end against a real issuer on 127.0.0.1 (discovery, JWKS,
//! token endpoint, introspection): accepted tokens and their principal, an attack suite
//! that must all end in 401, key rotation, issuer outage with bounded stale keys, and
//! introspection with its cache.

mod common;

use std::path::Path;
use std::time::Duration;

use base64::Engine;
use common::issuer::{Key, TestIssuer};
use common::*;
use serde_json::{Value, json};

const POLICY: &str = "apiVersion: warden/v1\nkind: Policy\nrules:\n  - name: storefront\n    effect: allow\n    match:\n      tenants: [acme-retail]\n      roles: [storefront-assistant]\n      models: [gpt-4o-mini]\n";

fn config(issuer: &TestIssuer, policy_dir: &Path, jwks: &str, extra_issuer: &str) -> String {
    format!(
        "providers:\n  mock:\n    kind: mock\nmodels:\n  gpt-4o-mini:\n    targets:\n      - provider: mock\n\
         auth:\n  jwt_issuers:\n    - issuer: {}\n      audiences: [warden]\n      algorithms: [RS256, ES256]\n      \
         clock_skew_seconds: 5\n      claims:\n        tenant: tenant_id\n{extra_issuer}      jwks:\n{jwks}\
         policy:\n  dir: {}\n",
        issuer.url(),
        policy_dir.display()
    )
}

fn policy_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("p.yaml"), POLICY).unwrap();
    dir
}

async fn call(w: &Warden, token: &str) -> Reply {
    chat_with_key(
        w,
        token,
        &json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}),
    )
    .await
}

fn claims(issuer: &TestIssuer) -> Value {
    let now = jsonwebtoken::get_current_timestamp();
    json!({"iss": issuer.url(), "sub": "user-1", "aud": "warden", "exp": now + 300, "iat": now,
           "tenant_id": "acme-retail", "roles": ["storefront-assistant"]})
}

fn assert_401(r: &Reply, token: &str, what: &str) {
    assert_eq!(r.status, 401, "{what}: {}", r.text());
    let www = r.header("www-authenticate").unwrap_or_default();
    assert!(
        www.starts_with("Bearer ") && www.contains("error=\"invalid_token\""),
        "{what}: {www}"
    );
    assert_eq!(r.json()["error"]["type"], "authentication_error", "{what}");
    if token.len() > 8 {
        assert!(
            !r.text().contains(token) && !www.contains(token),
            "{what}: token echoed"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_from_the_issuer_are_accepted_and_mapped() {
    let issuer = TestIssuer::start(vec![Key::rsa("rsa-1")]).await;
    let dir = policy_dir();
    let w = Warden::start(&config(
        &issuer,
        dir.path(),
        "        refresh_seconds: 300\n",
        "",
    ));
    let token = client_credentials_token(&issuer, "chat").await;
    let r = call(&w, &token).await;
    assert_eq!(r.status, 200, "{}", r.text());

    // Same issuer and key, but the principal lacks the role the policy requires.
    let ec = Key::ec("ec-1");
    issuer.publish(vec![Key::rsa("rsa-2"), ec.clone()]);
    let mut c = claims(&issuer);
    c["roles"] = json!(["marketing"]);
    c["sub"] = json!("jane.doe@example.com");
    let r = call(&w, &ec.sign(&c, None)).await;
    assert_eq!(
        r.status,
        403,
        "ES256 verified, then denied by policy: {}",
        r.text()
    );
    let recorded = eventually(Duration::from_secs(2), || async {
        w.logs().contains("rule=\"default-deny\"")
    })
    .await;
    assert!(recorded, "{}", w.logs());
    let logs = w.logs();
    assert!(!logs.contains(&token), "tokens never reach the logs");
    assert!(
        !logs.contains("jane.doe@example.com"),
        "token subjects are not logged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn attack_suite_is_refused_with_401() {
    let key = Key::rsa("rsa-1");
    let issuer = TestIssuer::start(vec![key.clone()]).await;
    let dir = policy_dir();
    let w = Warden::start(&config(
        &issuer,
        dir.path(),
        "        refresh_seconds: 300\n        min_refresh_interval_seconds: 30\n",
        "      required_claims: [tenant_id]\n",
    ));
    let good = key.sign(&claims(&issuer), None);
    assert_eq!(call(&w, &good).await.status, 200);
    let b64 = |v: &Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let now = jsonwebtoken::get_current_timestamp();

    let mut cases: Vec<(&str, String)> = Vec::new();
    cases.push((
        "alg none",
        format!(
            "{}.{}.",
            b64(&json!({"alg": "none", "typ": "JWT"})),
            b64(&claims(&issuer))
        ),
    ));
    let hs = jsonwebtoken::encode(
        &jsonwebtoken::Header {
            kid: Some("rsa-1".into()),
            ..jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256)
        },
        &claims(&issuer),
        &jsonwebtoken::EncodingKey::from_secret(&key.public_pem),
    )
    .unwrap();
    cases.push(("HS256 with the public key as secret", hs));
    let mut c = claims(&issuer);
    c["exp"] = json!(now - 3600);
    cases.push(("expired", key.sign(&c, None)));
    let mut c = claims(&issuer);
    c["nbf"] = json!(now + 3600);
    cases.push(("nbf in the future", key.sign(&c, None)));
    let mut c = claims(&issuer);
    c["iss"] = json!("https://evil.example");
    cases.push(("wrong iss", key.sign(&c, None)));
    let mut c = claims(&issuer);
    c["aud"] = json!("someone-else");
    cases.push(("wrong aud", key.sign(&c, None)));
    cases.push(("unknown kid", key.sign(&claims(&issuer), Some("rsa-404"))));
    cases.push((
        "kid path traversal",
        key.sign(&claims(&issuer), Some("../../../../etc/passwd")),
    ));
    cases.push((
        "kid SQL",
        key.sign(&claims(&issuer), Some("1' OR '1'='1; DROP TABLE keys;--")),
    ));
    let mut c = claims(&issuer);
    c["padding"] = json!("x".repeat(17 * 1024));
    cases.push(("token over 16 KiB", key.sign(&c, None)));
    cases.push((
        "malformed base64",
        "eyJhbGciOi!!.eyJzdWIiOi%%.c2lnbmF0dXJl".to_string(),
    ));
    cases.push(("garbage segments", "abc.def.ghi".to_string()));
    let mut c = claims(&issuer);
    c.as_object_mut().unwrap().remove("tenant_id");
    cases.push(("missing required claim", key.sign(&c, None)));
    let stranger = Key::rsa("rsa-1");
    cases.push((
        "signed by an untrusted key with the trusted kid",
        stranger.sign(&claims(&issuer), None),
    ));
    let other_issuer = TestIssuer::start(vec![stranger.clone()]).await;
    let mut c = claims(&issuer);
    c["iss"] = json!(other_issuer.url());
    cases.push((
        "token from a second, untrusted issuer",
        stranger.sign(&c, None),
    ));
    // RFC 7515 §4.1.11: a critical extension Warden does not understand is refused, even
    // under the trusted key.
    let mut header = jsonwebtoken::Header::new(key.alg);
    header.kid = Some(key.kid.clone());
    header.crit = Some(vec!["x-warden-unknown".into()]);
    header.extras.insert("x-warden-unknown", true);
    cases.push((
        "crit names an unknown extension",
        key.sign_with(&claims(&issuer), header),
    ));
    // Keys carried or pointed to by the token are never used: only the issuer's JWKS.
    let mut header = jsonwebtoken::Header::new(stranger.alg);
    header.kid = Some(key.kid.clone());
    header.jwk = Some(serde_json::from_value(stranger.jwk.clone()).unwrap());
    cases.push((
        "embedded jwk of the signer",
        stranger.sign_with(&claims(&issuer), header),
    ));
    let mut header = jsonwebtoken::Header::new(stranger.alg);
    header.jwk = Some(serde_json::from_value(stranger.jwk.clone()).unwrap());
    cases.push((
        "embedded jwk, no kid",
        stranger.sign_with(&claims(&issuer), header),
    ));
    let mut header = jsonwebtoken::Header::new(stranger.alg);
    header.kid = Some(stranger.kid.clone());
    header.jku = Some(format!("{}/jwks", other_issuer.url()));
    header.x5u = Some(format!("{}/cert.pem", other_issuer.url()));
    cases.push((
        "jku and x5u at the signer's server",
        stranger.sign_with(&claims(&issuer), header),
    ));
    let mut header = jsonwebtoken::Header::new(stranger.alg);
    header.kid = Some(key.kid.clone());
    header.x5c = Some(vec![stranger.self_signed_x5c()]);
    cases.push((
        "x5c with the signer's certificate",
        stranger.sign_with(&claims(&issuer), header),
    ));
    let mut tampered: Vec<String> = good.split('.').map(str::to_string).collect();
    let mut c = claims(&issuer);
    c["roles"] = json!(["admin"]);
    tampered[1] = b64(&c);
    cases.push(("tampered payload", tampered.join(".")));

    let signer_fetches = other_issuer.jwks_fetches();
    for (what, token) in &cases {
        // Header values must be visible ASCII; every case here is.
        let r = call(&w, token).await;
        assert_401(&r, token, what);
    }
    assert_eq!(
        other_issuer.jwks_fetches(),
        signer_fetches,
        "a token's jku never makes Warden fetch keys"
    );

    // A flood of random kids cannot hammer the issuer: refreshes are rate-limited.
    let before = issuer.jwks_fetches();
    for i in 0..20 {
        let r = call(
            &w,
            &key.sign(&claims(&issuer), Some(&format!("random-{i}"))),
        )
        .await;
        assert_eq!(r.status, 401);
    }
    assert!(
        issuer.jwks_fetches() - before <= 1,
        "{} JWKS fetches for 20 random kids",
        issuer.jwks_fetches() - before
    );
    assert_eq!(
        call(&w, &good).await.status,
        200,
        "still serving after the attacks"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_keys_are_picked_up_on_an_unknown_kid() {
    let old = Key::rsa("2026-01");
    let issuer = TestIssuer::start(vec![old.clone()]).await;
    let dir = policy_dir();
    let w = Warden::start(&config(
        &issuer,
        dir.path(),
        "        refresh_seconds: 300\n        min_refresh_interval_seconds: 1\n",
        "",
    ));
    assert_eq!(
        call(&w, &old.sign(&claims(&issuer), None)).await.status,
        200
    );

    let new = Key::ec("2026-02");
    issuer.publish(vec![old.clone(), new.clone()]);
    let r = call(&w, &new.sign(&claims(&issuer), None)).await;
    assert_eq!(r.status, 200, "new kid fetched on demand: {}", r.text());
    assert_eq!(
        call(&w, &old.sign(&claims(&issuer), None)).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_keys_serve_during_an_outage_for_a_bounded_time() {
    let key = Key::rsa("rsa-1");
    let issuer = TestIssuer::start(vec![key.clone()]).await;
    let dir = policy_dir();
    let w = Warden::start(&config(
        &issuer,
        dir.path(),
        "        refresh_seconds: 1\n        min_refresh_interval_seconds: 1\n        max_stale_seconds: 2\n",
        "",
    ));
    let token = key.sign(&claims(&issuer), None);
    assert_eq!(call(&w, &token).await.status, 200);

    issuer.set_down(true);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        call(&w, &token).await.status,
        200,
        "stale keys still verify inside the bound"
    );
    let expired = eventually(Duration::from_secs(6), || async {
        call(&w, &token).await.status == 503
    })
    .await;
    assert!(
        expired,
        "keys older than refresh + max_stale must not verify"
    );
    let r = call(&w, &token).await;
    assert_eq!(r.json()["error"]["code"], "auth_unavailable");
    // The failed refreshes are counted for this issuer.
    let metrics = get(&w.admin_url("/metrics")).await.text();
    let failures = format!(
        "warden_jwks_refreshes_total{{issuer=\"{}\",result=\"failure\"}}",
        issuer.url()
    );
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with(&failures) && !l.ends_with(" 0")),
        "{failures} in {metrics}"
    );

    issuer.set_down(false);
    let back = eventually(Duration::from_secs(5), || async {
        call(&w, &token).await.status == 200
    })
    .await;
    assert!(back, "recovers when the issuer is back");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_accepts_active_refuses_inactive_and_fails_closed() {
    let issuer = TestIssuer::start(vec![Key::rsa("rsa-1")]).await;
    let now = jsonwebtoken::get_current_timestamp();
    issuer.add_opaque(
        "opaque-active-1",
        json!({"active": true, "sub": "svc-1", "tenant_id": "acme-retail",
        "roles": ["storefront-assistant"], "scope": "chat", "exp": now + 600}),
    );
    issuer.add_opaque(
        "opaque-active-2",
        json!({"active": true, "sub": "svc-2", "tenant_id": "acme-retail",
        "roles": ["storefront-assistant"], "exp": now + 600}),
    );
    let dir = policy_dir();
    let w = Warden::start(&format!(
        "providers:\n  mock:\n    kind: mock\nmodels:\n  gpt-4o-mini:\n    targets:\n      - provider: mock\n\
         auth:\n  introspection:\n    endpoint: {}/introspect\n    client_id: {}\n    client_secret: {}\n    \
         cache_ttl_seconds: 60\n    claims:\n      tenant: tenant_id\npolicy:\n  dir: {}\n",
        issuer.url(),
        common::issuer::CLIENT_ID,
        common::issuer::CLIENT_SECRET,
        dir.path().display()
    ));
    assert_eq!(call(&w, "opaque-active-1").await.status, 200);
    assert_eq!(call(&w, "opaque-active-1").await.status, 200);
    assert_eq!(
        issuer.introspections(),
        1,
        "the second call is served from the cache"
    );
    assert_401(
        &call(&w, "opaque-unknown-token").await,
        "opaque-unknown-token",
        "inactive",
    );

    issuer.set_down(true);
    let r = call(&w, "opaque-active-2").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "auth_unavailable");
    assert_eq!(
        call(&w, "opaque-active-1").await.status,
        200,
        "cached result still valid"
    );
}

/// An active answer must be meant for Warden (`aud`, `iss`, `client_id` as configured,
/// `nbf` passed); a flood of random opaque tokens neither evicts the principals in use nor
/// costs more IdP calls than the client's budget (then 429).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn introspection_checks_what_the_token_is_for_and_bounds_unknown_tokens() {
    let issuer = TestIssuer::start(vec![Key::rsa("rsa-1")]).await;
    let now = jsonwebtoken::get_current_timestamp();
    let good = json!({"active": true, "sub": "svc-1", "tenant_id": "acme-retail",
        "roles": ["storefront-assistant"], "exp": now + 600, "aud": ["warden"],
        "iss": issuer.url(), "client_id": "storefront"});
    issuer.add_opaque("opaque-good", good.clone());
    let mut variants = Vec::new();
    for (name, field, value) in [
        ("opaque-other-aud", "aud", json!("billing")),
        ("opaque-other-iss", "iss", json!("https://evil.example")),
        ("opaque-other-client", "client_id", json!("someone-else")),
        ("opaque-not-yet", "nbf", json!(now + 3600)),
    ] {
        let mut answer = good.clone();
        answer[field] = value;
        issuer.add_opaque(name, answer);
        variants.push(name);
    }
    let dir = policy_dir();
    let w = Warden::start(&format!(
        "providers:\n  mock:\n    kind: mock\nmodels:\n  gpt-4o-mini:\n    targets:\n      - provider: mock\n\
         auth:\n  introspection:\n    endpoint: {url}/introspect\n    client_id: {}\n    client_secret: {}\n    \
         cache_ttl_seconds: 60\n    cache_entries: 40\n    audiences: [warden]\n    issuer: {url}\n    \
         client_ids: [storefront]\n    clock_skew_seconds: 5\n    misses_per_client_per_minute: 30\n    \
         claims:\n      tenant: tenant_id\npolicy:\n  dir: {}\n",
        common::issuer::CLIENT_ID,
        common::issuer::CLIENT_SECRET,
        dir.path().display(),
        url = issuer.url(),
    ));
    assert_eq!(call(&w, "opaque-good").await.status, 200);
    for name in &variants {
        assert_401(&call(&w, name).await, name, name);
    }
    // Random tokens: at most the client's budget reaches the IdP, then 429.
    let before = issuer.introspections();
    let mut throttled = 0;
    for i in 0..60 {
        let r = call(&w, &format!("opaque-random-{i}")).await;
        match r.status {
            401 => {}
            429 => {
                throttled += 1;
                assert_eq!(r.json()["error"]["code"], "auth_rate_limited");
                assert!(r.header("retry-after").is_some());
            }
            other => panic!("unexpected {other}: {}", r.text()),
        }
    }
    let calls = issuer.introspections() - before;
    assert!(
        throttled > 0 && calls <= 30,
        "{calls} IdP calls, {throttled} throttled"
    );
    // The principal in use is still served from the cache: no new IdP call.
    let before = issuer.introspections();
    assert_eq!(call(&w, "opaque-good").await.status, 200);
    assert_eq!(
        issuer.introspections(),
        before,
        "the good token stayed cached"
    );
}
