//! The admin API and the journal.

use crate::common::*;
use llm_mocks::Provider;
use serde_json::json;

#[tokio::test]
async fn malformed_admin_requests_get_400_naming_the_problem_and_the_fake_keeps_serving() {
    let f = start(Provider::OpenAi).await;
    let cases = [
        ("/__mock/faults", "{not json".to_string(), "invalid fault"),
        ("/__mock/faults", json!({"fault": "melted"}).to_string(), "melted"),
        (
            "/__mock/faults",
            json!({"fault": "slow", "tims": 2}).to_string(),
            "tims",
        ),
        (
            "/__mock/faults",
            json!({"fault": "slow", "times": "two"}).to_string(),
            "times",
        ),
        (
            "/__mock/faults",
            json!({"fault": "slow", "probability": 3.0}).to_string(),
            "probability",
        ),
        ("/__mock/faults", json!({"times": 2}).to_string(), "fault"),
        ("/__mock/faults", String::new(), "empty"),
        ("/__mock/settings", json!({"latency": 5}).to_string(), "latency"),
        (
            "/__mock/settings",
            json!({"latency_ms": -1}).to_string(),
            "latency_ms",
        ),
    ];
    for (path, body, needle) in cases {
        let r = post_raw(&f, path, None, body.clone()).await;
        assert_eq!(r.status, 400, "{path} {body}");
        let msg = r.json()["error"].as_str().unwrap().to_string();
        assert!(msg.contains(needle), "{body}: {msg}");
    }
    assert_eq!(
        post(
            &f,
            "/v1/chat/completions",
            Some("k"),
            chat_body("gpt-4o", "x", false)
        )
        .await
        .status,
        200
    );
    assert_eq!(get(&f, "/__mock/nothing", None).await.status, 404);
}

#[tokio::test]
async fn faults_are_listed_cleared_and_reset() {
    let f = start(Provider::Kimi).await;
    let r = post(
        &f,
        "/__mock/faults",
        None,
        json!({"fault": "server_error", "times": 3, "retry_after_s": 2}),
    )
    .await;
    assert_eq!(r.status, 201);
    let created = r.json();
    assert_eq!(created["fault"], "server_error");
    assert_eq!(created["times"], 3);
    assert!(created["id"].is_u64());
    let list = get(&f, "/__mock/faults", None).await.json();
    assert_eq!(list["faults"].as_array().unwrap().len(), 1);
    let cleared = send(
        reqwest::Method::DELETE,
        format!("{}/__mock/faults", f.uri()),
        &[],
        None,
    )
    .await
    .unwrap();
    assert_eq!(cleared.json()["cleared"], 1);
    assert_eq!(
        post(
            &f,
            "/v1/chat/completions",
            Some("k"),
            chat_body("moonshot-v1-8k", "x", false)
        )
        .await
        .status,
        200
    );
    let s = post(&f, "/__mock/settings", None, json!({"latency_ms": 1}))
        .await
        .json();
    assert_eq!(s["latency_ms"], 1);
    fault(&f, json!({"fault": "auth"})).await;
    assert_eq!(post(&f, "/__mock/reset", None, json!({})).await.status, 200);
    assert_eq!(get(&f, "/__mock/settings", None).await.json()["latency_ms"], 0);
    assert_eq!(
        post(
            &f,
            "/v1/chat/completions",
            Some("k"),
            chat_body("moonshot-v1-8k", "x", false)
        )
        .await
        .status,
        200
    );
    assert_eq!(get(&f, "/__mock/requests", None).await.json()["meta"]["total"], 1);
}

#[tokio::test]
async fn latency_setting_delays_api_answers() {
    let f = start(Provider::Ollama).await;
    post(&f, "/__mock/settings", None, json!({"latency_ms": 250})).await;
    let t0 = tokio::time::Instant::now();
    assert_eq!(get(&f, "/api/tags", None).await.status, 200);
    assert!(t0.elapsed() >= std::time::Duration::from_millis(250));
}

#[tokio::test]
async fn journal_records_requests_with_secrets_masked() {
    let f = start(Provider::OpenAi).await;
    let key = "sk-proj-abcdefghijklmnopqrstuvwxyz0123";
    post(
        &f,
        "/v1/chat/completions",
        Some(key),
        chat_body("gpt-4o", "journal me", false),
    )
    .await;
    get(&f, "/v1/models", Some("short")).await;
    let j = get(&f, "/__mock/requests", None).await;
    assert!(!j.text.contains("abcdefghijklmnop"), "secret leaked: {}", j.text);
    assert!(!j.text.contains("short"), "secret leaked: {}", j.text);
    let b = j.json();
    assert_eq!(b["meta"]["total"], 2);
    let first = &b["requests"][0];
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/v1/chat/completions");
    assert_eq!(first["body"]["messages"][0]["content"], "journal me");
    assert_eq!(first["headers"]["authorization"], "Bearer ***…0123");
    assert!(first["time"].as_str().unwrap().ends_with('Z'));
    assert_eq!(b["requests"][1]["headers"]["authorization"], "Bearer ***");
    // Admin calls are not journaled; the library sees the same.
    assert_eq!(f.journal().len(), 2);
    assert_eq!(f.request_count(), 2);
    let del = send(
        reqwest::Method::DELETE,
        format!("{}/__mock/requests", f.uri()),
        &[],
        None,
    )
    .await
    .unwrap();
    assert_eq!(del.status, 200);
    assert_eq!(f.request_count(), 0);
}

#[tokio::test]
async fn library_faults_match_the_admin_api() {
    let f = start(Provider::OpenAi).await;
    f.add_fault(llm_mocks::FaultSpec::new(llm_mocks::FaultKind::Overloaded).times(1))
        .unwrap();
    let r = post(
        &f,
        "/v1/chat/completions",
        Some("k"),
        chat_body("gpt-4o", "x", false),
    )
    .await;
    assert_eq!(r.status, 503);
    assert!(f
        .add_fault(llm_mocks::FaultSpec::new(llm_mocks::FaultKind::Slow).probability(-0.1))
        .is_err());
}

#[tokio::test]
async fn serve_binary_prints_urls_then_ready_and_stops_on_sigterm() {
    use std::io::{BufRead, BufReader};
    let bin = env!("CARGO_BIN_EXE_llm-mocks");
    let mut child = std::process::Command::new(bin)
        .args([
            "serve",
            "--only",
            "openai,gigachat",
            "--openai-port",
            "0",
            "--gigachat-port",
            "0",
        ])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let second = lines.next().unwrap().unwrap();
    assert_eq!(lines.next().unwrap().unwrap(), "ready");
    assert!(first.starts_with("openai") && first.contains("/v1"), "{first}");
    assert!(
        second.starts_with("gigachat") && second.contains("/api/v1") && second.contains("/api/v2/oauth"),
        "{second}"
    );
    let url = first.split_whitespace().nth(1).unwrap().to_string();
    let r = reqwest::Client::new()
        .get(format!("{url}/models"))
        .bearer_auth("k")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .unwrap()
        .success());
    let status = child.wait().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(lines.next().unwrap().unwrap(), "stopped");
}

#[tokio::test]
async fn serve_binary_fails_clearly_when_the_port_is_taken() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_llm-mocks"))
        .args(["serve", "--only", "kimi", "--kimi-port", &port])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("kimi") && err.contains(&port), "{err}");
}
