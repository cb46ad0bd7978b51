//! The binary's `check-config`, the metrics listener, and GigaChat's proactive token refresh.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

use common::*;
use llm_mocks::SettingsPatch;

fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_llm-gateway"));
    for v in [
        "OPENAI_API_KEY",
        "KIMI_API_KEY",
        "QWEN_API_KEY",
        "GIGACHAT_AUTH_TOKEN",
        "LLM_GATEWAY_MODE",
        "LLM_GATEWAY_CONFIG",
    ] {
        c.env_remove(v);
    }
    c
}

fn shipped(name: &str) -> String {
    format!("{}/../config/{name}", env!("CARGO_MANIFEST_DIR"))
}

#[test]
fn check_config_lists_secrets_and_fails_on_problems() {
    let out = bin()
        .args(["check-config", "--config", &shipped("llm_providers.yaml")])
        .env("OPENAI_API_KEY", "sk-abcdef123456")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("openai") && stdout.contains("secret present (from env)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("secret MISSING (set KIMI_API_KEY or KIMI_API_KEY_FILE)"),
        "{stdout}"
    );
    assert!(!stdout.contains("sk-abcdef123456"), "never print a secret");
    let strict = bin()
        .args([
            "check-config",
            "--require-secrets",
            "--config",
            &shipped("llm_providers.yaml"),
        ])
        .output()
        .unwrap();
    assert!(!strict.status.success());
    let sim = bin()
        .args(["check-config"])
        .env("LLM_GATEWAY_CONFIG", shipped("llm_gateway_simulation.yaml"))
        .output()
        .unwrap();
    assert!(sim.status.success(), "{}", String::from_utf8_lossy(&sim.stderr));

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let bad = dir.join("bad.yaml");
    std::fs::write(&bad, "providers:\n  x: { kind: foo, base_url: nope }\nfallback_policy: { order: [y], deadline: 1s, attempt_timeout: 2s }\n").unwrap();
    let out = bin()
        .args(["check-config", "--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    for needle in [
        "providers.x.kind",
        "providers.x.base_url",
        "fallback_policy.order[0]",
        "fallback_policy.attempt_timeout",
    ] {
        assert!(stderr.contains(needle), "{needle} missing from:\n{stderr}");
    }
    let typo = dir.join("typo.yaml");
    std::fs::write(&typo, "servr: {}\n").unwrap();
    let out = bin()
        .args(["check-config", "--config", typo.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown field `servr`"));
    let out = bin()
        .args(["check-config", "--config", "/nonexistent.yaml"])
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[tokio::test]
async fn metrics_are_also_served_on_metrics_listen() {
    let fakes = fakes().await;
    let cfg =
        llm_gateway::config::Config::from_yaml(&yaml(&fakes, "openai", "", "compatible"), &|_| None).unwrap();
    let state = llm_gateway::AppState::new(cfg).unwrap();
    let api = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let metrics = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (api_addr, metrics_addr) = (api.local_addr().unwrap(), metrics.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(llm_gateway::server::run(api, Some(metrics), state, async move {
        let _ = rx.await;
    }));
    let client = reqwest::Client::new();
    let r = client
        .post(format!("http://{api_addr}/v1/chat/completions"))
        .json(&chat(false))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body = client
        .get(format!("http://{metrics_addr}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("llm_gateway_requests_total{"), "{body}");
    assert!(body.contains("llm_gateway_overhead_seconds_count"), "{body}");
    let other = client
        .get(format!("http://{metrics_addr}/v1/models"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404, "the metrics port serves only /metrics");
    let _ = tx.send(());
    server.await.unwrap().unwrap();
}

#[tokio::test]
async fn every_metric_of_the_design_is_exposed() {
    let s = stand().await;
    // Families appear once they have a series: one fallback and one stream give every family one.
    s.fakes["openai"]
        .add_fault(llm_mocks::FaultSpec::new(llm_mocks::FaultKind::DropConnection).times(1))
        .unwrap();
    call(&s.app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
    call(&s.app, "POST", "/v1/chat/completions", Some(chat(true)), &[]).await;
    let m = metrics(&s.app).await;
    for name in [
        "llm_gateway_requests_total",
        "llm_gateway_fallbacks_total",
        "llm_gateway_offline_hits_total",
        "llm_gateway_offline_misses_total",
        "llm_gateway_provider_requests_total",
        "llm_gateway_request_duration_seconds",
        "llm_gateway_provider_duration_seconds",
        "llm_gateway_time_to_first_token_seconds",
        "llm_gateway_overhead_seconds",
        "llm_gateway_breaker_state",
        "llm_gateway_cache_requests_total",
        "llm_gateway_rate_limited_total",
        "llm_gateway_tokens_total",
        "llm_gateway_mode",
    ] {
        let family = name.trim_end_matches("_total");
        assert!(m.contains(&format!("# TYPE {family} ")), "{name} missing:\n{m}");
    }
    assert!(
        m.contains("llm_gateway_offline_hits_total{source=\"package\"} 0"),
        "{m}"
    );
}

#[tokio::test]
async fn gigachat_token_is_refreshed_before_it_expires() {
    let s = stand_with("gigachat", "", "compatible").await;
    // A token that lives 30 s is inside the default 60 s refresh margin: every call refreshes first.
    s.fakes["gigachat"].update_settings(SettingsPatch {
        token_ttl_ms: Some(30_000),
        ..SettingsPatch::default()
    });
    for _ in 0..3 {
        let r = call(&s.app, "POST", "/v1/chat/completions", Some(chat(false)), &[]).await;
        assert_eq!(r.status, 200, "{}", r.body);
    }
    let oauth = s.fakes["gigachat"]
        .journal()
        .iter()
        .filter(|e| e.path.ends_with("/oauth"))
        .count();
    assert_eq!(oauth, 3);
    let api_401 = s.fakes["gigachat"]
        .journal()
        .iter()
        .filter(|e| e.path.ends_with("/chat/completions"))
        .count();
    assert_eq!(api_401, 3, "no call was wasted on an expired token");
}
