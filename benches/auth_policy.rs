//! Criterion benchmarks of the authentication and authorization stages: JWT verification
//! (RS256, ES256) with a warm JWKS cache — the full signature check, and the repeat of a
//! token already verified — a policy decision over a realistic 62-rule set, and both
//! together as a request pays them.

#[path = "../tests/common/issuer.rs"]
#[allow(dead_code)]
mod issuer;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use warden::auth::{AuthMethod, Authenticator, Principal};
use warden::config::{AuthConfig, ClaimMapping, JwksSettings, JwtAlgorithm, JwtIssuerConfig};
use warden::policy::{EndpointName, Facts, PolicySet, load_sources};

/// 60 rules: per-tenant allows with roles and models, some with CEL, and global denials.
fn policy_set() -> PolicySet {
    let mut text = String::from("apiVersion: warden/v1\nkind: Policy\nrules:\n");
    for t in 0..15 {
        for (i, (role, model)) in [
            ("storefront", "gpt-4o-mini"),
            ("support", "gpt-4o*"),
            ("pricing", "gpt-4o"),
            ("batch", "text-embedding-*"),
        ]
        .iter()
        .enumerate()
        {
            text.push_str(&format!(
                "  - name: tenant{t}-{role}\n    effect: allow\n    match:\n      tenants: [tenant-{t}]\n      roles: [{role}]\n      models: [\"{model}\"]\n"
            ));
            if i == 0 {
                text.push_str("    when: \"!has(request.max_tokens) || request.max_tokens == null || request.max_tokens <= 1000\"\n");
            }
            text.push_str("    settings:\n      limits: default\n      tools:\n        allow: [search_catalog, check_inventory]\n");
        }
    }
    text.push_str(
        "  - name: no-preview\n    effect: deny\n    match:\n      models: [\"*-preview*\"]\n",
    );
    text.push_str(
        "  - name: no-refunds\n    effect: deny\n    match:\n      tools: [issue_refund]\n",
    );
    let set = load_sources(&[("bench.yaml", &text)]).expect("valid bench policy");
    assert!(set.rules.len() >= 60);
    set
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let rsa = issuer::Key::rsa("rsa-1");
    let ec = issuer::Key::ec("ec-1");
    let test_issuer = rt.block_on(issuer::TestIssuer::start(vec![rsa.clone(), ec.clone()]));
    let config = |verified_cache_seconds| AuthConfig {
        jwt_issuers: vec![JwtIssuerConfig {
            issuer: test_issuer.url(),
            jwks_uri: None,
            audiences: vec!["warden".into()],
            algorithms: vec![JwtAlgorithm::RS256, JwtAlgorithm::ES256],
            clock_skew_seconds: 60,
            required_claims: vec![],
            claims: ClaimMapping {
                tenant: Some("tenant_id".into()),
                ..ClaimMapping::default()
            },
            jwks: JwksSettings::default(),
            verified_cache_seconds,
            ca_file: None,
        }],
        ..AuthConfig::default()
    };
    let cold = Authenticator::from_config(&config(0)).unwrap();
    let auth = Authenticator::from_config(&config(60)).unwrap();
    let now = jsonwebtoken::get_current_timestamp();
    let claims = json!({"iss": test_issuer.url(), "sub": "app-1", "aud": "warden", "exp": now + 3600,
                        "tenant_id": "tenant-12", "roles": ["storefront"], "scope": "chat"});
    let rs_token = rsa.sign(&claims, None);
    let es_token = ec.sign(&claims, None);
    for t in [&rs_token, &es_token] {
        rt.block_on(auth.authenticate(Some(t.clone()), None, None))
            .expect("warm-up verification");
    }

    let mut group = c.benchmark_group("jwt_verify_warm_jwks");
    for (name, token) in [("RS256", &rs_token), ("ES256", &es_token)] {
        group.bench_function(format!("{name}_signature_check"), |b| {
            b.iter(|| {
                rt.block_on(cold.authenticate(Some(black_box(token.clone())), None, None))
                    .unwrap()
            })
        });
        group.bench_function(format!("{name}_already_verified"), |b| {
            b.iter(|| {
                rt.block_on(auth.authenticate(Some(black_box(token.clone())), None, None))
                    .unwrap()
            })
        });
    }
    group.finish();

    let set = policy_set();
    let principal = Principal {
        tenant: Some("tenant-12".into()),
        subject: "app-1".into(),
        method: AuthMethod::Jwt,
        roles: vec!["storefront".into()],
        scopes: vec!["chat".into()],
        claims: serde_json::Map::new(),
        issuer: None,
    };
    let tools = vec!["search_catalog".to_string()];
    let facts = Facts {
        principal: &principal,
        endpoint: EndpointName::ChatCompletions,
        model: Some("gpt-4o-mini"),
        tools: &tools,
        max_tokens: Some(500),
        stream: true,
    };
    assert!(set.decide(&facts).allowed());
    c.bench_function("policy_decide_62_rules", |b| {
        b.iter(|| black_box(set.decide(black_box(&facts))))
    });

    for (name, authenticator) in [("signature_check", &cold), ("already_verified", &auth)] {
        c.bench_function(&format!("authn_rs256_{name}_plus_authz"), |b| {
            b.iter(|| {
                let p = rt
                    .block_on(authenticator.authenticate(Some(rs_token.clone()), None, None))
                    .unwrap();
                let f = Facts {
                    principal: &p,
                    ..facts.clone()
                };
                black_box(set.decide(&f))
            })
        });
    }
    drop(test_issuer);
}

criterion_group!(benches, bench);
criterion_main!(benches);
