//! Offline tier: package lookups over 10,000 entries (target: at least 50,000 lookups/s) and the response-cache
//! key computation.
//!
//! Run: `cargo bench -p llm-benches --bench offline -- --warm-up-time 1 --measurement-time 3`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic, missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use llm_gateway::bench::offline_corpus;
use llm_gateway::canonical::ChatRequest;

fn lookups(c: &mut Criterion) {
    let (store, queries) = offline_corpus(10_000, 0.5);
    let hits = queries.iter().filter(|q| store.lookup(q).is_some()).count();
    eprintln!(
        "offline corpus: 10000 entries, {hits}/{} queries hit",
        queries.len()
    );
    let mut g = c.benchmark_group("offline");
    g.throughput(Throughput::Elements(queries.len() as u64));
    g.bench_function("lookup_10k_entries_x10k_queries", |b| {
        b.iter(|| {
            let mut n = 0usize;
            for q in &queries {
                n += usize::from(store.lookup(black_box(q)).is_some());
            }
            n
        })
    });
    g.finish();
    let mut g = c.benchmark_group("offline_single");
    g.throughput(Throughput::Elements(1));
    let exact = store.prompts().next().unwrap_or_default().to_string();
    g.bench_function("exact", |b| b.iter(|| store.lookup(black_box(&exact))));
    g.bench_function("similar_ru", |b| b.iter(|| store.lookup(black_box(&queries[0]))));
    g.bench_function("miss", |b| {
        b.iter(|| store.lookup(black_box("Write a haiku about a network outage")))
    });
    g.finish();
}

fn cache_key(c: &mut Criterion) {
    let req: ChatRequest = serde_json::from_value(serde_json::json!({
        "model": "default", "temperature": 0,
        "messages": [
            {"role": "system", "content": "You are the analytics assistant of a sales dashboard."},
            {"role": "user", "content": "Сделай SQL-фильтр по продажам за прошлый месяц по региону North"}
        ]
    }))
    .unwrap_or_else(|e| panic!("{e}"));
    let mut g = c.benchmark_group("cache");
    g.throughput(Throughput::Elements(1));
    g.bench_function("key_sha256_of_canonical_request", |b| {
        b.iter(|| llm_gateway::cache::key(black_box(&req)))
    });
    g.finish();
}

criterion_group!(benches, lookups, cache_key);
criterion_main!(benches);
