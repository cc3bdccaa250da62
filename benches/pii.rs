//! Criterion benchmarks of PII detection with the pattern recognizers (throughput in bytes
//! per second on one core): shop conversation text without personal data — the common
//! case, where one pass over the bytes finds nowhere for most recognizers to look — and
//! the same text with planted values, detected and pseudonymized; restoring placeholders
//! in an answer; the keep-list of commerce terms
//! (100,000 terms) over a message's findings; and the NER model (from
//! `scripts/fetch-models.sh`) on a ~128-token message, inferred and from its cache; and
//! output scanning of a streamed answer (three sentences, 4-byte fragments) by patterns and
//! with the model reading each sentence (`scan_output: ner`).

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

    // Each detector of the pattern pass on its own, on the clean text: the pass over its
    // cue words, then the detectors (those that read the cue words are given them).
    let text = CLEAN.repeat(16);
    let mut group = c.benchmark_group("pii/scan_parts");
    group.throughput(Throughput::Bytes(text.len() as u64));
    group.bench_function("cue_words", |b| {
        b.iter(|| black_box(warden::pii::cues::find(black_box(&text))))
    });
    let hits = warden::pii::cues::find(&text);
    let recognizers = |text: &str, out: &mut Vec<warden::pii::Finding>| {
        warden::pii::recognize::scan(text, &hits, out)
    };
    let name_cues = |text: &str, out: &mut Vec<warden::pii::Finding>| {
        warden::pii::names::scan(text, &hits, out)
    };
    type Scan<'a> = &'a dyn Fn(&str, &mut Vec<warden::pii::Finding>);
    let parts: [(&str, Scan); 4] = [
        ("recognizers", &recognizers),
        ("address_shapes", &warden::pii::address::scan),
        ("name_cues", &name_cues),
        ("known_names", &warden::pii::known_names::scan),
    ];
    for (name, scan) in parts {
        group.bench_function(name, |b| {
            b.iter(|| {
                let mut out = Vec::new();
                scan(black_box(&text), &mut out);
                black_box(out)
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

fn ner(c: &mut Criterion) {
    // ~128 tokens of a support message with a name and an address.
    let message = "Hello, this is Amelie Dubois. I ordered the Summit Down Jacket in size M and the \
        Merino Base Layer on Monday with express delivery to 14 Rue de la Republique, Lyon, but the \
        tracking page still shows the parcel in the Rotterdam warehouse. Could you check whether it \
        left, and if not, cancel the jacket and refund it to the original payment method? My \
        neighbour Lukas Weber can accept the other parcel if I am not at home on Thursday.";
    let mut group = c.benchmark_group("pii/ner");
    group.throughput(Throughput::Bytes(message.len() as u64));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ner-models");
    let mut loaded = None;
    // The int8 model Warden uses by default, and the published 4-bit one it is derived from.
    for (name, file) in [
        ("int8", "onnx/model_int8.onnx"),
        ("q4", "onnx/model_q4.onnx"),
    ] {
        let files = warden::pii::ner::NerFiles {
            model_dir: root.join("rampart"),
            model_file: file.into(),
            runtime: root.join("libonnxruntime.so.1.32.0"),
            cache_entries: 1,
            threads: 1,
            sessions: 1,
        };
        let ner = match warden::pii::ner::Ner::load(&files) {
            Ok(n) => n,
            Err(e) => {
                eprintln!("skipping the {name} NER benchmark: {e} (run scripts/fetch-models.sh)");
                continue;
            }
        };
        let mut i = 0u64;
        group.bench_function(format!("inferred_128_tokens_{name}"), |b| {
            b.iter(|| {
                // A new text every time: a cache miss (the cache holds one entry).
                i += 1;
                black_box(ner.detect(&format!("{message} #{i}")).unwrap())
            })
        });
        loaded.get_or_insert(ner);
    }
    let Some(ner) = loaded else {
        return;
    };
    ner.detect(message).unwrap();
    group.bench_function("cache_hit", |b| {
        b.iter(|| black_box(ner.detect(black_box(message)).unwrap()))
    });
    group.finish();
}

/// The keep-list: a message's pattern findings checked against 100,000 commerce terms, two
/// of which occur in the message.
fn keep(c: &mut Criterion) {
    let mut terms: Vec<String> = (0..100_000)
        .map(|i| format!("Brand{} Line{} {}", i % 997, i / 997, i % 13))
        .collect();
    terms.push("TrailRunner GTX".into());
    terms.push("Alpine 40L Backpack".into());
    let keep = warden::pii::keep::KeepTerms::new(terms).unwrap();
    let settings: PiiProfile = serde_yaml_ng::from_str("{}").unwrap();
    let profile = Profile::new("bench", &settings).unwrap();
    let text = format!("{WITH_PII}{CLEAN}");
    let found = profile.detect(&text);
    let mut group = c.benchmark_group("pii/keep");
    group.throughput(Throughput::Elements(found.len() as u64));
    group.bench_function(format!("100k_terms_{}_findings", found.len()), |b| {
        b.iter(|| {
            let mut f = found.clone();
            keep.drop_inside(black_box(&text), &mut f);
            black_box(f)
        })
    });
    group.finish();
}

/// A streamed answer through output scanning: what the scan costs per answer with
/// patterns only and with the model reading each released sentence.
fn output(c: &mut Criterion) {
    let root = env!("CARGO_MANIFEST_DIR");
    let config: warden::config::PiiConfig = serde_yaml_ng::from_str(&format!(
        "ner:\n  model_dir: {root}/ner-models/rampart\n  runtime: {root}/ner-models/libonnxruntime.so.1.32.0\n  cache_entries: 1\n  sessions: 1\n\
         profiles:\n  patterns:\n    scan_output: patterns\n  ner:\n    scan_output: ner\n"
    ))
    .unwrap();
    let profiles = match warden::pii::Profiles::from_config(Some(&config)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("skipping the output benchmark: {e}");
            return;
        }
    };
    let answer = "Your parcel left our Rotterdam warehouse on Monday and was packed by Margaret \
        Thompson. The courier will deliver it to 12 Baker Street, London NW1 6XE, before noon on \
        Thursday. If nobody is home, it goes to the pickup point on the same street, order";
    let mut group = c.benchmark_group("pii/output");
    group.throughput(Throughput::Bytes(answer.len() as u64));
    for name in ["patterns", "ner"] {
        let profile = profiles.get(name).unwrap();
        let mut i = 0u64;
        group.bench_function(format!("stream_{name}_{}B", answer.len()), |b| {
            b.iter(|| {
                i += 1;
                let text = format!("{answer} {i}.");
                let mut r = Redactor::for_answer(&profile, b"key", None);
                let mut w = warden::pii::output::ScanWindow::new(64).by_sentence(name == "ner");
                let mut out = String::new();
                for chunk in text.as_bytes().chunks(4) {
                    out.push_str(&w.push(&mut r, std::str::from_utf8(chunk).unwrap()));
                }
                out.push_str(&w.flush(&mut r));
                black_box(out)
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench, keep, ner, output);
criterion_main!(benches);
