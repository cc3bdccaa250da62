//! Criterion benchmarks of the data plane's per-request CPU work: parsing and
//! re-serialising request bodies, and parsing provider SSE streams.

use std::hint::black_box;

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::json;
use warden::openai::sse::Parser;
use warden::openai::{ApiRequest, Endpoint};

/// A realistic shopping-assistant request: system prompt, a few turns, two tools.
fn chat_body(turns: usize, words_per_turn: usize) -> Vec<u8> {
    let mut messages = vec![
        json!({"role": "system", "content": "You are the storefront assistant of Acme Outdoor. Answer briefly."}),
    ];
    for i in 0..turns {
        let text = (0..words_per_turn)
            .map(|w| format!("word{}", (w * 7 + i) % 97))
            .collect::<Vec<_>>()
            .join(" ");
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        messages.push(json!({"role": role, "content": text}));
    }
    let tool = |name: &str| {
        json!({"type": "function", "function": {"name": name, "description": "Look up catalog data",
            "parameters": {"type": "object", "properties": {"sku": {"type": "string"}}, "required": ["sku"]}}})
    };
    serde_json::to_vec(
        &json!({"model": "gpt-4o-mini", "messages": messages, "temperature": 0.2,
        "tools": [tool("search_catalog"), tool("check_inventory")], "stream": true,
        "stream_options": {"include_usage": true}}),
    )
    .unwrap()
}

fn sse_stream(chunks: usize) -> Vec<u8> {
    let mut out = Vec::new();
    for i in 0..chunks {
        let chunk = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4o-mini",
            "choices": [{"index": 0, "delta": {"content": format!(" token{i}")}, "finish_reason": null}]});
        out.extend_from_slice(format!("data: {chunk}\n\n").as_bytes());
    }
    out.extend_from_slice(b"data: [DONE]\n\n");
    out
}

fn parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("request_parse");
    for (name, body) in [
        ("1_turn", chat_body(1, 30)),
        ("10_turns", chat_body(10, 60)),
        ("1_MiB", chat_body(40, 4000)),
    ] {
        group.throughput(Throughput::Bytes(body.len() as u64));
        group.bench_with_input(BenchmarkId::new("parse", name), &body, |b, body| {
            b.iter(|| ApiRequest::parse(Endpoint::ChatCompletions, black_box(body)).unwrap())
        });
        let parsed = ApiRequest::parse(Endpoint::ChatCompletions, &body).unwrap();
        group.bench_with_input(BenchmarkId::new("serialize", name), &parsed, |b, req| {
            b.iter(|| black_box(req.to_json()))
        });
    }
    group.finish();
}

fn sse(c: &mut Criterion) {
    let stream = sse_stream(200);
    let mut group = c.benchmark_group("sse_parse");
    group.throughput(Throughput::Bytes(stream.len() as u64));
    group.bench_function("whole_body", |b| {
        b.iter(|| {
            let mut p = Parser::default();
            let mut out = Vec::with_capacity(256);
            p.feed(black_box(&stream), &mut out).unwrap();
            out.len()
        })
    });
    group.bench_function("network_sized_chunks", |b| {
        b.iter(|| {
            let mut p = Parser::default();
            let mut out = Vec::with_capacity(256);
            for piece in stream.chunks(61) {
                p.feed(black_box(piece), &mut out).unwrap();
            }
            out.len()
        })
    });
    group.finish();
}

criterion_group!(benches, parsing, sse);
criterion_main!(benches);
