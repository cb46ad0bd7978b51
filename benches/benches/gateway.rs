//! Criterion micro-benchmarks of the gateway's hot path: request and response translation per provider,
//! SSE and NDJSON parsing, and the router's decision. Bodies come from the fakes, so they are the real
//! wire formats.
//!
//! Run: `cargo bench -p llm-benches --bench gateway`.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use llm_gateway::bench::{decode, parse_response, request_body, Read, Wire};
use llm_gateway::canonical::ChatRequest;
use llm_gateway::config::Config;
use llm_gateway::metrics::Metrics;
use llm_gateway::router::Router;
use llm_mocks::{FakeServer, Provider};
use std::hint::black_box;
use std::sync::Arc;

fn chat_request() -> ChatRequest {
    serde_json::from_value(serde_json::json!({
        "model": "default",
        "messages": [
            {"role": "system", "content": "You are the analytics assistant of a sales product."},
            {"role": "user", "content": "Сделай SQL-фильтр по продажам за прошлый квартал по региону Урал"}
        ],
        "temperature": 0.3,
        "max_tokens": 512,
        "tools": [{"type": "function", "function": {"name": "run_sql", "description": "Run a query",
            "parameters": {"type": "object", "properties": {"sql": {"type": "string"}}, "required": ["sql"]}}}]
    }))
    .unwrap()
}

/// Real answers of the fakes: (wire, plain JSON body, stream body, stream is NDJSON).
fn fixtures() -> Vec<(Wire, Vec<u8>, Vec<u8>, bool)> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let http = reqwest::Client::new();
        let mut out = Vec::new();
        for wire in Wire::ALL {
            let (provider, path, model) = match wire {
                Wire::OpenAi => (Provider::OpenAi, "/v1/chat/completions", "gpt-4o-mini"),
                Wire::Kimi => (Provider::Kimi, "/v1/chat/completions", "moonshot-v1-8k"),
                Wire::QwenNative => (
                    Provider::Qwen,
                    "/api/v1/services/aigc/text-generation/generation",
                    "qwen-plus",
                ),
                Wire::GigaChat => (Provider::GigaChat, "/api/v1/chat/completions", "GigaChat"),
                Wire::Ollama => (Provider::Ollama, "/api/chat", "llama3.2"),
            };
            let fake = FakeServer::start(provider).await.unwrap();
            let token = if wire == Wire::GigaChat {
                let r = http
                    .post(format!("{}/api/v2/oauth", fake.uri()))
                    .header("authorization", "Basic Y2xpZW50OnNlY3JldA==")
                    .header("rquid", "6f0b1291-c7f3-43c6-bb2e-9f3efb2dc98e")
                    .body("scope=GIGACHAT_API_PERS")
                    .send()
                    .await
                    .unwrap();
                r.json::<serde_json::Value>().await.unwrap()["access_token"]
                    .as_str()
                    .unwrap()
                    .to_string()
            } else {
                "sk-bench".to_string()
            };
            let mut bodies = Vec::new();
            for stream in [false, true] {
                let mut body: serde_json::Value =
                    serde_json::from_slice(&request_body(wire, &chat_request(), model, stream)).unwrap();
                // Ask for a text answer: drop the tools so the stream has many content chunks.
                for key in ["tools", "functions"] {
                    if let Some(o) = body.as_object_mut() {
                        o.remove(key);
                    }
                    if let Some(p) = body.get_mut("parameters").and_then(|p| p.as_object_mut()) {
                        p.remove(key);
                    }
                }
                let mut rb = http
                    .post(format!("{}{path}", fake.uri()))
                    .bearer_auth(&token)
                    .json(&body);
                if wire == Wire::QwenNative && stream {
                    rb = rb.header("x-dashscope-sse", "enable");
                }
                bodies.push(rb.send().await.unwrap().bytes().await.unwrap().to_vec());
            }
            let stream = bodies.pop().unwrap();
            let plain = bodies.pop().unwrap();
            out.push((wire, plain, stream, wire == Wire::Ollama));
        }
        out
    })
}

fn translation(c: &mut Criterion) {
    let req = chat_request();
    let mut g = c.benchmark_group("translate_request");
    for wire in Wire::ALL {
        g.bench_with_input(BenchmarkId::from_parameter(wire.name()), &wire, |b, w| {
            b.iter(|| black_box(request_body(*w, black_box(&req), "model-x", false)))
        });
    }
    g.finish();
    let fx = fixtures();
    let mut g = c.benchmark_group("translate_response");
    for (wire, plain, _, _) in &fx {
        g.throughput(Throughput::Bytes(plain.len() as u64));
        g.bench_with_input(BenchmarkId::from_parameter(wire.name()), plain, |b, body| {
            b.iter(|| black_box(parse_response(*wire, black_box(body), "model-x", Read::Full).unwrap()))
        });
    }
    // What `/v1/chat/completions` reads of an OpenAI answer it sends on as it came: the head only.
    if let Some((wire, plain, _, _)) = fx.iter().find(|f| f.0 == Wire::OpenAi) {
        g.bench_with_input(BenchmarkId::from_parameter("openai_head"), plain, |b, body| {
            b.iter(|| {
                black_box(parse_response(*wire, black_box(body), "model-x", Read::PassThrough).unwrap())
            })
        });
    }
    g.finish();
    let mut g = c.benchmark_group("stream_decode");
    for (wire, _, stream, ndjson) in &fx {
        g.throughput(Throughput::Bytes(stream.len() as u64));
        let name = format!("{}_{}", wire.name(), if *ndjson { "ndjson" } else { "sse" });
        // Fed in 512-byte pieces, as a socket would deliver them.
        g.bench_with_input(BenchmarkId::from_parameter(name), stream, |b, body| {
            b.iter(|| black_box(decode(black_box(body), *ndjson, 512).unwrap()))
        });
    }
    g.finish();
}

const CONFIG: &str = r#"
server: { listen: 127.0.0.1:0 }
mode: auto
models:
  default: { openai: gpt-4o-mini, kimi: moonshot-v1-8k, qwen: qwen-plus, gigachat: GigaChat, ollama: llama3.2 }
providers:
  openai: { kind: openai, base_url: "http://127.0.0.1:1/v1", secret: { value: k } }
  kimi: { kind: kimi, base_url: "http://127.0.0.1:1/v1", secret: { value: k } }
  qwen: { kind: qwen, api: compatible, base_url: "http://127.0.0.1:1/compatible-mode/v1", secret: { value: k } }
  gigachat:
    kind: gigachat
    base_url: "http://127.0.0.1:1/api/v1"
    auth: { url: "http://127.0.0.1:1/api/v2/oauth", scope: GIGACHAT_API_PERS }
    secret: { value: Y2xpZW50OnNlY3JldA== }
  ollama: { kind: ollama, base_url: "http://127.0.0.1:1" }
fallback_policy:
  order: [openai, kimi, qwen, gigachat, ollama]
"#;

fn router(c: &mut Criterion) {
    let cfg = Config::from_yaml(CONFIG, &|_| None).unwrap();
    let names: Vec<String> = cfg.providers.keys().cloned().collect();
    let metrics = Arc::new(Metrics::new(names.iter().map(String::as_str), cfg.mode));
    let router = Router::new(&cfg, metrics);
    c.bench_function("router_plan/default", |b| {
        b.iter(|| black_box(router.plan(black_box("default"), router.mode(), None).unwrap()))
    });
    c.bench_function("router_plan/preferred_provider", |b| {
        b.iter(|| {
            black_box(
                router
                    .plan(black_box("default"), router.mode(), Some("qwen"))
                    .unwrap(),
            )
        })
    });
}

criterion_group!(benches, translation, router);
criterion_main!(benches);
