//! Streaming contract, breaker, all-failed bodies and the local tier, against llm-mocks.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use common::*;
use llm_mocks::{FaultKind, FaultSpec};

#[tokio::test]
async fn a_stream_cut_after_the_first_token_ends_with_an_error_event_never_done() {
    let s = stand().await;
    for (name, _) in PROVIDERS {
        for kind in [FaultKind::TruncatedStream, FaultKind::StreamError] {
            s.fakes[name]
                .add_fault(FaultSpec::new(kind).times(1).after_chunks(2))
                .unwrap();
            let r = call(
                &s.app,
                "POST",
                "/v1/chat/completions",
                Some(chat(true)),
                &[("x-llm-provider", name)],
            )
            .await;
            let label = format!("{name}/{kind:?}");
            assert_eq!(r.status, 200, "{label}");
            assert_eq!(r.header("x-llm-actual-provider"), name, "{label}");
            assert!(
                !r.body.contains("[DONE]"),
                "{label}: a broken stream must not look finished:\n{}",
                r.body
            );
            assert!(
                r.body.contains("event: error\ndata: {\"error\""),
                "{label}:\n{}",
                r.body
            );
            assert!(r.body.contains("\"code\":\"stream_interrupted\""), "{label}");
            assert!(
                !r.sse_text().is_empty(),
                "{label}: the first tokens did reach the client"
            );
        }
    }
}

#[tokio::test]
async fn a_stream_that_breaks_before_its_first_token_fails_over_invisibly() {
    let s = stand().await;
    s.fakes["openai"]
        .add_fault(
            FaultSpec::new(FaultKind::TruncatedStream)
                .times(1)
                .after_chunks(0),
        )
        .unwrap();
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(true)), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-llm-actual-provider"), "kimi", "{}", r.body);
    assert_eq!(r.header("x-llm-fallbacks"), "1");
    assert!(r.body.trim_end().ends_with("data: [DONE]"), "{}", r.body);
    assert!(
        r.sse_text().starts_with("[kimi]"),
        "only the answer of the provider that served: {}",
        r.body
    );
}

#[tokio::test]
async fn stream_errors_before_first_byte_fail_over_for_every_class() {
    let s = stand().await;
    for kind in [
        FaultKind::RateLimited,
        FaultKind::Overloaded,
        FaultKind::Malformed,
        FaultKind::DropConnection,
    ] {
        s.fakes["openai"].clear_faults();
        // after_chunks(0): stream faults strike before the first token.
        s.fakes["openai"]
            .add_fault(FaultSpec::new(kind).after_chunks(0))
            .unwrap();
        let (_, app) = gateway(&yaml(&s.fakes, "openai, kimi", "", "compatible"));
        let r = call(&app, "POST", "/v1/chat/completions", Some(chat(true)), &[]).await;
        assert_eq!(r.status, 200, "{kind:?}: {}", r.body);
        assert_eq!(r.header("x-llm-actual-provider"), "kimi", "{kind:?}");
        assert!(r.body.trim_end().ends_with("data: [DONE]"), "{kind:?}");
    }
}

#[tokio::test]
async fn breaker_opens_after_repeated_failures_and_is_skipped_at_zero_cost() {
    let s = stand().await;
    let (_, app) = gateway(&yaml(&s.fakes, "openai, kimi", "", "compatible"));
    s.fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::Malformed))
        .unwrap();
    for _ in 0..3 {
        let r = call(&app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
        assert_eq!(r.header("x-llm-actual-provider"), "kimi");
    }
    let calls = s.fakes["openai"].request_count();
    assert_eq!(calls, 3);
    for _ in 0..5 {
        let r = call(&app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
        assert_eq!(r.header("x-llm-actual-provider"), "kimi");
        assert_eq!(r.header("x-llm-fallbacks"), "1");
    }
    assert_eq!(
        s.fakes["openai"].request_count(),
        calls,
        "open breaker: openai not called"
    );
    let m = metrics(&app).await;
    assert_eq!(
        sample(&m, "llm_gateway_breaker_state", &[("provider", "openai")]),
        1.0,
        "{m}"
    );
    assert_eq!(
        sample(
            &m,
            "llm_gateway_provider_requests_total",
            &[("provider", "openai"), ("outcome", "skipped_breaker_open")]
        ),
        5.0
    );
    assert_eq!(
        sample(
            &m,
            "llm_gateway_provider_requests_total",
            &[("provider", "openai"), ("outcome", "malformed")]
        ),
        3.0
    );
    let admin = call(&app, "GET", "/admin/providers", None, &[]).await.json();
    let openai = admin["providers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "openai")
        .unwrap()
        .clone();
    assert_eq!(openai["breaker"], "open");
    assert_eq!(openai["last_error"]["error"], "malformed");
}

#[tokio::test]
async fn when_every_remote_fails_the_local_tier_answers() {
    let s = stand().await;
    for name in ["openai", "kimi", "qwen", "gigachat"] {
        s.fakes[name]
            .add_fault(FaultSpec::new(FaultKind::DropConnection))
            .unwrap();
    }
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.header("x-llm-actual-provider"), "ollama");
    assert_eq!(r.header("x-llm-source"), "local");
    assert_eq!(r.header("x-llm-fallbacks"), "4");
    let m = metrics(&s.app).await;
    assert_eq!(
        sample(&m, "llm_gateway_offline_hits_total", &[("source", "local")]),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "llm_gateway_fallbacks_total",
            &[("from", "gigachat"), ("to", "ollama")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "llm_gateway_requests_total",
            &[
                ("route", "chat_completions"),
                ("status", "200"),
                ("source", "local")
            ]
        ),
        1.0
    );
}

#[tokio::test]
async fn all_failed_lists_every_provider_error_in_order() {
    let s = stand().await;
    let (_, app) = gateway(&yaml(&s.fakes, "openai, kimi, qwen", "", "compatible"));
    s.fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::Malformed))
        .unwrap();
    s.fakes["kimi"]
        .add_fault(FaultSpec::new(FaultKind::DropConnection))
        .unwrap();
    s.fakes["qwen"]
        .add_fault(FaultSpec::new(FaultKind::Auth))
        .unwrap();
    let r = call(&app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
    assert_eq!(r.status, 503, "{}", r.body);
    let v = r.json();
    assert_eq!(v["error"]["code"], "all_providers_failed");
    let attempts = v["error"]["attempts"].as_array().unwrap();
    let got: Vec<(&str, &str)> = attempts
        .iter()
        .map(|a| (a["provider"].as_str().unwrap(), a["error"].as_str().unwrap()))
        .collect();
    assert_eq!(
        got,
        vec![("openai", "malformed"), ("kimi", "connect"), ("qwen", "auth")]
    );
    assert!(!r.body.contains("sk-test-qwen-secret"));
    let m = metrics(&app).await;
    assert_eq!(
        sample(
            &m,
            "llm_gateway_fallbacks_total",
            &[("from", "qwen"), ("to", "none"), ("reason", "auth")]
        ),
        1.0
    );
    assert_eq!(
        sample(
            &m,
            "llm_gateway_requests_total",
            &[("status", "503"), ("source", "none")]
        ),
        1.0
    );
}

#[tokio::test]
async fn all_rate_limited_is_a_429_with_retry_after() {
    let s = stand().await;
    let (_, app) = gateway(&yaml(&s.fakes, "openai, kimi", "", "compatible"));
    s.fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::RateLimited).retry_after_s(9))
        .unwrap();
    s.fakes["kimi"]
        .add_fault(FaultSpec::new(FaultKind::RateLimited).retry_after_s(3))
        .unwrap();
    let r = call(&app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.json()["error"]["code"], "all_providers_rate_limited");
    let ra: u64 = r.header("retry-after").parse().unwrap();
    assert!((1..=5).contains(&ra), "retry-after {ra}");
    // Both cool down now: the next request calls nobody.
    let before = s.fakes["openai"].request_count() + s.fakes["kimi"].request_count();
    let r = call(&app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
    assert_eq!(r.status, 429);
    assert_eq!(
        s.fakes["openai"].request_count() + s.fakes["kimi"].request_count(),
        before
    );
}

#[tokio::test]
async fn offline_mode_without_local_answer_is_offline_miss() {
    let s = stand().await;
    s.fakes["ollama"]
        .add_fault(FaultSpec::new(FaultKind::DropConnection))
        .unwrap();
    let r = call(
        &s.app,
        "POST",
        "/admin/mode",
        Some(serde_json::json!({"mode": "offline"})),
        &[],
    )
    .await;
    assert_eq!(r.status, 200);
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error"]["code"], "offline_miss");
    assert_eq!(
        sample(&metrics(&s.app).await, "llm_gateway_offline_misses_total", &[]),
        1.0
    );
    for remote in ["openai", "kimi", "qwen", "gigachat"] {
        assert_eq!(
            s.fakes[remote].request_count(),
            0,
            "{remote} called in offline mode"
        );
    }
}

#[tokio::test]
async fn opt_in_continue_finishes_a_cut_answer_on_the_next_provider() {
    let s = stand_with("openai, kimi", "  stream_failure: continue\n", "compatible").await;
    s.fakes["openai"]
        .add_fault(
            FaultSpec::new(FaultKind::TruncatedStream)
                .times(1)
                .after_chunks(2),
        )
        .unwrap();
    let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(true)), &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("x-llm-actual-provider"),
        "openai",
        "headers name who started the answer"
    );
    assert!(!r.body.contains("event: error"), "{}", r.body);
    assert!(
        r.body.contains(": continued on kimi after malformed"),
        "{}",
        r.body
    );
    assert!(r.body.trim_end().ends_with("data: [DONE]"), "{}", r.body);
    let text = r.sse_text();
    assert!(text.starts_with("[openai]") && text.contains("[kimi]"), "{text}");
    let ids: std::collections::BTreeSet<String> = r
        .body
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .map(|v| v["id"].as_str().unwrap_or_default().to_string())
        .collect();
    assert_eq!(ids.len(), 1, "one completion id for the whole answer: {ids:?}");
    let roles = r
        .body
        .lines()
        .filter(|l| l.starts_with("data: {") && l.contains(r#""role""#))
        .count();
    assert_eq!(
        roles, 1,
        "the role once, not again where the answer continues: {}",
        r.body
    );
    let sent = s.fakes["kimi"].journal()[0].body_json().unwrap();
    let msgs = sent["messages"].as_array().unwrap();
    assert_eq!(
        msgs[msgs.len() - 2]["role"],
        "assistant",
        "the partial answer is passed on"
    );
    assert!(msgs[msgs.len() - 2]["content"]
        .as_str()
        .unwrap()
        .starts_with("[openai]"));
    let m = metrics(&s.app).await;
    assert_eq!(
        sample(
            &m,
            "llm_gateway_fallbacks_total",
            &[("from", "openai"), ("to", "kimi"), ("reason", "malformed")]
        ),
        1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_through_a_flaky_provider_all_get_answers() {
    let s = stand_with("openai, kimi, ollama", "", "compatible").await;
    s.fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::ServerError).probability(0.5))
        .unwrap();
    s.fakes["kimi"]
        .add_fault(FaultSpec::new(FaultKind::DropConnection).probability(0.3))
        .unwrap();
    let calls = (0..40).map(|i| {
        let app = s.app.clone();
        async move { call(&app, "POST", "/v1/chat/completions", Some(chat(i % 2 == 0)), &[]).await }
    });
    let replies = futures::future::join_all(calls).await;
    for r in &replies {
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(!r.body.contains("event: error"), "{}", r.body);
    }
    let served: std::collections::BTreeSet<&str> = replies
        .iter()
        .map(|r| r.header("x-llm-actual-provider"))
        .collect();
    assert!(served.len() >= 2, "failures spread the load: {served:?}");
}
