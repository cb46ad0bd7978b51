//! Throughput of a fake provider for non-streaming chat, so later benchmarks measure the gateway and
//! not the fake. Target: above 10,000 requests/s on the project's 2-core machine.
//!
//! Run: `cargo bench -p llm-benches --bench fakes`. Criterion reports `thrpt` in requests/s (elements).
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures::stream::{self, StreamExt};
use llm_mocks::{FakeServer, Provider};
use std::time::Duration;
use tokio::time::Instant;

/// Requests in flight at once (a pooled client keeps this many keep-alive connections busy).
const CONCURRENCY: usize = 32;

fn bench_fake_throughput(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut group = c.benchmark_group("fake_chat");
    group.throughput(Throughput::Elements(1));
    group.measurement_time(Duration::from_secs(5));
    for provider in [Provider::OpenAi, Provider::Ollama] {
        let fake = rt.block_on(FakeServer::start(provider)).unwrap();
        let (path, model) = match provider {
            Provider::Ollama => ("/api/chat", "llama3.2"),
            _ => ("/v1/chat/completions", "gpt-4o-mini"),
        };
        let url = format!("{}{path}", fake.uri());
        let body = serde_json::json!({"model": model, "stream": false,
            "messages": [{"role": "user", "content": "Сделай SQL-фильтр по продажам"}]})
        .to_string();
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(CONCURRENCY)
            .build()
            .unwrap();
        group.bench_function(format!("{}_non_streaming", provider.name()), |b| {
            b.iter_custom(|iters| {
                let (client, url, body) = (client.clone(), url.clone(), body.clone());
                rt.block_on(async move {
                    let start = Instant::now();
                    stream::iter(0..iters)
                        .map(|_| {
                            let req = client
                                .post(&url)
                                .bearer_auth("sk-bench")
                                .header("content-type", "application/json");
                            let req = req.body(body.clone());
                            async move {
                                let r = req.send().await.unwrap();
                                assert!(r.status().is_success());
                                r.bytes().await.unwrap();
                            }
                        })
                        .buffer_unordered(CONCURRENCY)
                        .collect::<()>()
                        .await;
                    start.elapsed()
                })
            })
        });
    }
    group.finish();
}

criterion_group!(benches, bench_fake_throughput);
criterion_main!(benches);
