//! Criterion benchmarks of semantic tool selection (one core, the int8 MiniLM from
//! `scripts/fetch-models.sh`): embedding a ~20-token message — inferred, and from the
//! cache as a repeated message is — and ranking 1,000 tools (each known by a description
//! and two examples, embedded beforehand) for an embedded message.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use warden::config::SelectionConfig;
use warden::tools::select::Selector;

const MESSAGE: &str = "Do these running shoes come in wide width and size 10 for under $120?";

fn selector() -> Option<Selector> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("ner-models");
    if !root.join("minilm/model_dynamic_int8.onnx").exists() {
        eprintln!("tools: ner-models/minilm missing; run scripts/fetch-models.sh");
        return None;
    }
    let config: SelectionConfig = serde_yaml_ng::from_str(&format!(
        "{{model_dir: {}, runtime: {}, cache_entries: 100000}}",
        root.join("minilm").display(),
        root.join("libonnxruntime.so.1.32.0").display()
    ))
    .ok()?;
    Selector::load(&config).ok()
}

/// A registry of `n` tools in a temporary policy directory, loaded as Warden loads it.
fn registry(n: usize) -> (tempfile::TempDir, Arc<warden::policy::PolicySet>) {
    const AREAS: [&str; 10] = [
        "catalog products",
        "warehouse stock",
        "prices and discounts",
        "customer orders",
        "returns and refunds",
        "parcel shipping",
        "loyalty points",
        "gift cards",
        "store locations",
        "warranty repairs",
    ];
    let dir = tempfile::tempdir().unwrap();
    let mut text = String::from("apiVersion: warden/v1\nkind: ToolRegistry\ntools:\n");
    for i in 0..n {
        let area = AREAS[i % AREAS.len()];
        text.push_str(&format!(
            "  - name: tool_{i}\n    description: Looks up {area}, variant {i}.\n    \
             examples: [\"question {i} about {area}\", \"help me with {area} number {i}\"]\n    \
             parameters: {{type: object, properties: {{id: {{type: string}}}}}}\n    \
             risk: read\n    backend: b\n    http: {{method: GET, path: \"/x/{{id}}\"}}\n"
        ));
    }
    std::fs::write(dir.path().join("tools.yaml"), text).unwrap();
    let set = warden::policy::load_dir(dir.path()).unwrap();
    (dir, Arc::new(set))
}

fn bench(c: &mut Criterion) {
    let Some(selector) = selector() else {
        return;
    };
    let mut group = c.benchmark_group("tools/select");
    let mut n = 0u64;
    group.bench_function("embed_20_tokens", |b| {
        b.iter(|| {
            n += 1; // a new text each time: no cache
            black_box(selector.embed(&format!("{MESSAGE} #{n}")).unwrap())
        })
    });
    selector.embed(MESSAGE).unwrap();
    group.bench_function("embed_20_tokens_cached", |b| {
        b.iter(|| black_box(selector.embed(black_box(MESSAGE)).unwrap()))
    });
    let (_dir, set) = registry(1000);
    selector.warm(&set.tools);
    group.bench_function("rank_1000_tools", |b| {
        b.iter(|| black_box(selector.rank(black_box(MESSAGE), set.tools.iter()).unwrap()))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(30);
    targets = bench
}
criterion_main!(benches);
