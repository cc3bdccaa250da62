//! Criterion benchmark of the audit log's hot path: appending a hash-chained entry to the
//! spool (JCS canonicalisation, chain placement, SHA-256, write to the page cache; fsync
//! runs in groups on its own thread). Shipping to S3 is measured by `benches/audit_s3.rs`.

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden::config::AuditConfig;

#[path = "support/records.rs"]
mod records;

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
            black_box(audit.record(records::record(i)).unwrap())
        })
    });
    group.finish();
    audit.flush();
}

criterion_group!(benches, bench);
criterion_main!(benches);
