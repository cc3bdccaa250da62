//! Criterion benchmarks of rate-limit admission: the in-process GCRA store, and one
//! admission through Redis (a real `redis-server` started on a free loopback port), which
//! must cost one round trip.

#[path = "../tests/common/redis.rs"]
#[allow(dead_code)]
mod redis_server;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use warden::config::{
    KeyPart, LimitBackend, LimitProfile, LimitsConfig, OnStoreError, Period, RedisConfig,
    RequestLimit,
};
use warden::limits::{KeyFacts, Limiter, Outcome};

fn config(backend: LimitBackend, redis_port: u16) -> LimitsConfig {
    let profile = LimitProfile {
        requests: vec![
            RequestLimit {
                limit: u32::MAX / 2,
                per: Period::Minute,
                key: vec![KeyPart::Tenant],
            },
            RequestLimit {
                limit: u32::MAX / 2,
                per: Period::Second,
                key: vec![KeyPart::Subject, KeyPart::Model],
            },
        ],
        on_store_error: OnStoreError::Deny,
    };
    LimitsConfig {
        backend,
        redis: Some(RedisConfig {
            url: format!("redis://127.0.0.1:{redis_port}/"),
            timeout_ms: 1000,
            key_prefix: "bench".into(),
        }),
        default_profile: Some("p".into()),
        profiles: [("p".to_string(), profile)].into_iter().collect(),
    }
}

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let facts = KeyFacts {
        tenant: Some("acme-retail"),
        subject: Some("storefront-web"),
        model: Some("gpt-4o-mini"),
        route: "chat_completions",
        ..Default::default()
    };
    let local = Limiter::from_config(&config(LimitBackend::Local, 0)).unwrap();
    c.bench_function("limits/local_admission_2_counters", |b| {
        b.iter(|| match rt.block_on(local.admit(None, black_box(&facts))) {
            Outcome::Checked(a) => assert!(a.allowed),
            _ => panic!("not checked"),
        })
    });

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = redis_server::Redis::start(port);
    let shared = Limiter::from_config(&config(LimitBackend::Redis, port)).unwrap();
    c.bench_function("limits/redis_admission_2_counters", |b| {
        b.iter(
            || match rt.block_on(shared.admit(None, black_box(&facts))) {
                Outcome::Checked(a) => assert!(a.allowed),
                _ => panic!("not checked"),
            },
        )
    });
    drop(redis);
}

criterion_group!(benches, bench);
criterion_main!(benches);
