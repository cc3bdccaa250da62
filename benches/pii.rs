//! Criterion benchmarks of PII detection with the pattern recognizers (throughput in bytes
//! per second on one core): shop conversation text without personal data — the common
//! case, one `RegexSet` pass — and the same text with planted values, detected and
//! pseudonymized; and restoring placeholders in an answer.

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use warden::config::PiiProfile;
use warden::pii::{Profile, Redactor};

const CLEAN: &str = "Do you have the Alpine 40L Backpack in green? I need it in size M before Friday. \
    Order ORD-2026-004512 had the TrailRunner GTX in EU 42 for €129.99; 3 units are in stock in \
    Rotterdam and 12 in Lyon according to the inventory API v2.1. SKU-88231-XL is back on 03.04.2026. ";

const WITH_PII: &str = "Hi, I'm Jane. Please send the invoice for ORD-2026-004512 to jane.doe@example.com \
    or call +44 20 7946 0958; refund to DE89 3704 0044 0532 0130 00. The TrailRunner GTX in EU 42 \
    was €129.99 and SKU-88231-XL ships from Rotterdam. ";

fn bench(c: &mut Criterion) {
    let settings: PiiProfile = serde_yaml_ng::from_str("{}").unwrap();
    let profile = Profile::new("bench", &settings).unwrap();
    let mut group = c.benchmark_group("pii/scan");
    for (name, unit) in [("clean_text", CLEAN), ("text_with_pii", WITH_PII)] {
        let text = unit.repeat(16); // ~5 KB, a long chat turn
        group.throughput(Throughput::Bytes(text.len() as u64));
        group.bench_function(format!("{name}_{}B", text.len()), |b| {
            b.iter(|| {
                let mut r = Redactor::new(&profile, b"key", Some("acme"));
                black_box(r.text(black_box(&text)))
            })
        });
    }
    group.finish();

    let mut r = Redactor::new(&profile, b"key", Some("acme"));
    let redacted = r.text(&WITH_PII.repeat(16)).unwrap();
    let vault = r.vault;
    let answer = format!("You said: {redacted}");
    let mut group = c.benchmark_group("pii/restore");
    group.throughput(Throughput::Bytes(answer.len() as u64));
    group.bench_function("answer", |b| {
        b.iter(|| black_box(vault.restore(black_box(&answer), false)))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
