//! Every error class of every provider (faults injected in llm-mocks): the router's action (fallback or not,
//! retry, cooldown, breaker) and the metrics it leaves.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use llm_mocks::{FaultKind, FaultSpec};
use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Expect {
    /// Served by the next provider; the first cools down for this reason (or none).
    Fallback(Option<&'static str>),
    /// Retried on the same provider, which then answers.
    Retried,
    /// 4xx to the client, no other provider called.
    Rejected(u16),
    /// The client's error (refused content): served by the next provider, and the first one's health is
    /// untouched (no cooldown, no last error).
    ClientsFault(&'static str),
    /// "Too long": served by the next provider whose context window is larger, else 400; health untouched.
    TooLong,
}

/// Context windows of the test config's default models (the gateway's defaults for them).
fn window(p: &str) -> u32 {
    match p {
        "openai" => 128_000,
        "kimi" => 8_192,
        "qwen" | "ollama" => 131_072,
        _ => 32_768,
    }
}

fn next_of(p: &str) -> &'static str {
    if p == "openai" {
        "kimi"
    } else {
        "openai"
    }
}

fn chat_calls(s: &Stand, p: &str) -> usize {
    s.fakes[p]
        .journal()
        .iter()
        .filter(|e| e.path.contains("chat") || e.path.contains("generation"))
        .count()
}

async fn case(s: &Stand, p: &'static str, qwen_api: &str, fault: FaultSpec, expect: Expect) {
    // A fresh gateway per case (no cooldown or breaker carried over) on reset fakes.
    for f in s.fakes.values() {
        f.reset();
    }
    let (state, app) = gateway(&yaml(
        &s.fakes,
        "openai, kimi, qwen, gigachat, ollama",
        "",
        qwen_api,
    ));
    // Warm up (GigaChat token) so the fault hits the API call, then forget the journal.
    let r = call(
        &app,
        "POST",
        "/v1/chat/completions",
        Some(chat(false)),
        &[("x-llm-provider", p)],
    )
    .await;
    assert_eq!(r.status, 200, "{p} warm-up: {}", r.body);
    for f in s.fakes.values() {
        f.state().clear_journal();
    }
    let kind = fault.fault;
    s.fakes[p].add_fault(fault).unwrap();
    let r = call(
        &app,
        "POST",
        "/v1/chat/completions",
        Some(chat(false)),
        &[("x-llm-provider", p)],
    )
    .await;
    let label = format!("{p}/{kind:?}");
    let next = next_of(p);
    let m = metrics(&app).await;
    let admin = call(&app, "GET", "/admin/providers", None, &[]).await.json();
    let status_of = |name: &str| -> Value {
        admin["providers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|x| x["name"] == name)
            .cloned()
            .unwrap()
    };
    match expect {
        Expect::Fallback(cooldown) => {
            assert_eq!(r.status, 200, "{label}: {}", r.body);
            assert_eq!(r.header("x-llm-actual-provider"), next, "{label}");
            assert_eq!(r.header("x-llm-fallbacks"), "1", "{label}");
            assert_eq!(chat_calls(s, p), 1, "{label}: not retried");
            let reason = status_of(p)["last_error"]["error"].as_str().unwrap().to_string();
            let fallbacks = sample(
                &m,
                "llm_gateway_fallbacks_total",
                &[("from", p), ("to", next), ("reason", &reason)],
            );
            assert_eq!(fallbacks, 1.0, "{label}\n{m}");
            assert_eq!(
                status_of(p)["cooldown_reason"].as_str(),
                cooldown,
                "{label}: {admin}"
            );
            let outcome = sample(
                &m,
                "llm_gateway_provider_requests_total",
                &[("provider", p), ("outcome", &reason)],
            );
            assert_eq!(outcome, 1.0, "{label}");
        }
        Expect::Retried => {
            assert_eq!(r.status, 200, "{label}: {}", r.body);
            assert_eq!(r.header("x-llm-actual-provider"), p, "{label}");
            assert_eq!(r.header("x-llm-fallbacks"), "0", "{label}");
            assert_eq!(chat_calls(s, p), 2, "{label}: one retry");
            assert_eq!(chat_calls(s, next), 0, "{label}");
            let ok = sample(
                &m,
                "llm_gateway_provider_requests_total",
                &[("provider", p), ("outcome", "success")],
            );
            assert_eq!(ok, 2.0, "{label}: warm-up and the retry\n{m}");
            let failed: f64 = ["overloaded", "auth"]
                .iter()
                .map(|o| {
                    sample(
                        &m,
                        "llm_gateway_provider_requests_total",
                        &[("provider", p), ("outcome", o)],
                    )
                })
                .sum();
            // GigaChat's 401 is refreshed inside the adapter: the router sees one success, not a failure.
            let expected = if kind == FaultKind::Auth { 0.0 } else { 1.0 };
            assert_eq!(failed, expected, "{label}: the first attempt failed\n{m}");
            assert_eq!(sample(&m, "llm_gateway_fallbacks_total", &[]), 0.0, "{label}");
            assert_eq!(status_of(p)["breaker"], "closed", "{label}");
        }
        Expect::ClientsFault(_) | Expect::TooLong => {
            let order = ["openai", "kimi", "qwen", "gigachat", "ollama"];
            let (served, passed) = match expect {
                Expect::TooLong => {
                    let rest: Vec<&str> = order.iter().copied().filter(|x| *x != p).collect();
                    let larger = rest.iter().position(|x| window(x) > window(p));
                    (larger.map(|i| rest[i]), larger.map_or(0, |i| i + 1))
                }
                _ => (Some(next), 1),
            };
            let reason = match expect {
                Expect::ClientsFault(r) => r,
                _ => "context_length",
            };
            match served {
                Some(n) => {
                    assert_eq!(r.status, 200, "{label}: {}", r.body);
                    assert_eq!(r.header("x-llm-actual-provider"), n, "{label}");
                    assert_eq!(r.header("x-llm-fallbacks"), passed.to_string(), "{label}");
                }
                None => {
                    assert_eq!(r.status, 400, "{label}: {}", r.body);
                    assert_eq!(r.json()["error"]["code"], "context_length_exceeded", "{label}");
                }
            }
            assert_eq!(chat_calls(s, p), 1, "{label}: not retried");
            let outcome = sample(
                &m,
                "llm_gateway_provider_requests_total",
                &[("provider", p), ("outcome", reason)],
            );
            assert_eq!(outcome, 1.0, "{label}");
            let st = status_of(p);
            assert!(
                st["cooldown_reason"].is_null() && st["last_error"].is_null() && st["breaker"] == "closed",
                "{label}: the client's error says nothing about the provider's health: {st}"
            );
        }
        Expect::Rejected(status) => {
            assert_eq!(r.status, status, "{label}: {}", r.body);
            assert_eq!(chat_calls(s, next), 0, "{label}: no fallback");
            let v = r.json();
            assert_eq!(v["error"]["attempts"][0]["provider"], p, "{label}");
            assert!(v["error"]["code"].is_string(), "{label}");
            let bad = sample(
                &m,
                "llm_gateway_provider_requests_total",
                &[("provider", p), ("outcome", "bad_request")],
            );
            assert_eq!(bad, 1.0, "{label}");
            assert_eq!(sample(&m, "llm_gateway_fallbacks_total", &[]), 0.0, "{label}");
            assert!(
                status_of(p)["cooldown_reason"].is_null(),
                "{label}: a bad request says nothing about health"
            );
        }
    }
    // Cooldowns and breaker never leak across: the state belongs to this gateway only.
    drop(state);
}

fn f(kind: FaultKind) -> FaultSpec {
    FaultSpec::new(kind).times(1)
}

async fn matrix(p: &'static str, qwen_api: &str) {
    use Expect::*;
    let s = stand_with("openai, kimi, qwen, gigachat, ollama", "", qwen_api).await;
    let mut cases = vec![
        (
            f(FaultKind::RateLimited).retry_after_s(7),
            Fallback(Some("rate_limited")),
        ),
        (f(FaultKind::QuotaExhausted), Fallback(Some("quota_exhausted"))),
        (f(FaultKind::Overloaded), Retried),
        (f(FaultKind::ServerError), Retried),
        (f(FaultKind::BadRequest), Rejected(400)),
        (f(FaultKind::ContextLength), TooLong),
        (f(FaultKind::Malformed), Fallback(None)),
        (f(FaultKind::DropConnection), Fallback(None)),
        (f(FaultKind::Slow).delay_ms(2500), Fallback(None)),
    ];
    if p == "gigachat" {
        cases.push((f(FaultKind::Auth), Retried)); // 401: token refreshed once, call retried
    } else {
        cases.push((f(FaultKind::Auth), Fallback(Some("auth"))));
    }
    if p != "ollama" {
        cases.push((f(FaultKind::ContentFilter), ClientsFault("content_filter")));
    }
    for (fault, expect) in cases {
        case(&s, p, qwen_api, fault, expect).await;
    }
}

#[tokio::test]
async fn openai_error_classes() {
    matrix("openai", "compatible").await;
}

#[tokio::test]
async fn kimi_error_classes() {
    matrix("kimi", "compatible").await;
}

#[tokio::test]
async fn qwen_error_classes() {
    matrix("qwen", "compatible").await;
}

#[tokio::test]
async fn gigachat_error_classes() {
    matrix("gigachat", "compatible").await;
}

#[tokio::test]
async fn ollama_error_classes() {
    matrix("ollama", "compatible").await;
}

#[tokio::test]
async fn qwen_native_error_classes() {
    matrix("qwen", "native").await;
}
