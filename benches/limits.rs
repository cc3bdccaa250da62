//! Criterion benchmarks of limit admission — the in-process store, and one admission
//! through Redis (a real `redis-server` on a free loopback port), which must cost one
//! round trip — and of prompt token counting per 1k tokens.

#[path = "../tests/common/redis.rs"]
#[allow(dead_code)]
mod redis_server;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use warden::config::{
    Budget, BudgetPeriod, KeyPart, LimitProfile, LimitsConfig, OnStoreError, OnUnpriced, Period,
    RedisConfig, RequestLimit, StateBackend, StateConfig, TokenLimit,
};
use warden::limits::{Demand, KeyFacts, Limiter};
use warden::openai::{ApiRequest, Endpoint};
use warden::state::StateStore;
use warden::tokens::{Encoding, prompt_tokens};

fn state(backend: StateBackend, redis_port: u16) -> StateStore {
    StateStore::from_config(&StateConfig {
        backend,
        redis: Some(RedisConfig {
            timeout_ms: 1000,
            key_prefix: "bench".into(),
            ..RedisConfig::at(format!("redis://127.0.0.1:{redis_port}/"))
        }),
        ..StateConfig::default()
    })
    .unwrap()
}

fn config() -> LimitsConfig {
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
        tokens: vec![TokenLimit {
            limit: u64::MAX / 4,
            per: Period::Minute,
            key: vec![KeyPart::Tenant, KeyPart::Model],
        }],
        concurrent: Vec::new(),
        budgets: vec![Budget {
            name: None,
            usd: None,
            tokens: Some(u64::MAX / 4),
            per: BudgetPeriod::Month,
            key: vec![KeyPart::Tenant],
            soft: vec![0.8],
            on_store_error: OnStoreError::Deny,
            on_unpriced: OnUnpriced::Deny,
        }],
        on_store_error: OnStoreError::Deny,
    };
    LimitsConfig {
        backend: None,
        redis: None,
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
        subject: Some(warden::limits::subject_id("storefront-web")),
        model: Some("gpt-4o-mini"),
        route: "chat_completions",
        ..Default::default()
    };
    let demand = Demand {
        tokens: 1200,
        cost: 0,
        priced: true,
    };
    let ttl = std::time::Duration::from_secs(60);
    let admit = |limiter: &Limiter| {
        let outcome =
            rt.block_on(limiter.admit(None, black_box(&facts), demand, ("lease", ttl), false));
        assert!(outcome.refusal.is_none() && outcome.ticket.is_some());
    };
    let local = Limiter::from_config(Some(&config()), &state(StateBackend::Local, 0));
    c.bench_function("limits/local_admission_4_counters", |b| {
        b.iter(|| admit(&local))
    });

    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let redis = redis_server::Redis::start(port);
    let shared = Limiter::from_config(Some(&config()), &state(StateBackend::Redis, port));
    c.bench_function("limits/redis_admission_4_counters", |b| {
        b.iter(|| admit(&shared))
    });
    drop(redis);
}

/// English shop-assistant text of about `tokens` o200k tokens, as one chat message.
fn chat_of(tokens: usize) -> ApiRequest {
    let sentence =
        "Do you have the Alpine 40L backpack in green, and can it ship to Lyon by Friday? ";
    let text = sentence.repeat(tokens / 20 + 1);
    let body = serde_json::json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]});
    ApiRequest::parse(Endpoint::ChatCompletions, body.to_string().as_bytes()).unwrap()
}

fn token_counting(c: &mut Criterion) {
    let mut group = c.benchmark_group("tokens/prompt");
    for name in ["o200k_base", "cl100k_base", "estimate"] {
        let enc = Encoding::for_model(Some(name), "", std::path::Path::new(".")).unwrap();
        let request = chat_of(1000);
        let n = prompt_tokens(&enc, &request);
        group.throughput(criterion::Throughput::Elements(n));
        group.bench_function(format!("{name}_per_{n}_tokens"), |b| {
            b.iter(|| prompt_tokens(&enc, black_box(&request)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench, token_counting);
criterion_main!(benches);
