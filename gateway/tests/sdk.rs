//! The official `openai` Python SDK as a client of a running gateway (fakes behind it). `scripts/test.sh` creates
//! `.venv/` with the pinned SDK; under CI=true a missing venv is a failure, otherwise a note and a skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::process::Command;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_against_the_gateway() {
    let Some(py) = llm_mocks::testing::venv_python().unwrap() else {
        return;
    };
    let fakes = common::fakes().await;
    let text = common::yaml(&fakes, "openai, kimi, qwen, gigachat, ollama", "", "compatible");
    let cfg = llm_gateway::config::Config::from_yaml(&text, &|_| None).unwrap();
    let state = llm_gateway::AppState::new(cfg).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(llm_gateway::server::run(listener, None, state, async move {
        let _ = stop_rx.await;
    }));
    let mut cmd = Command::new(py);
    cmd.args([
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "test_openai_client.py",
        "test_openai_responses.py",
    ])
    .current_dir(llm_mocks::testing::workspace_root().join("gateway/tests/sdk"))
    .env("LLM_GATEWAY_URL", format!("http://{addr}/v1"));
    for (name, _) in common::PROVIDERS {
        cmd.env(format!("LLM_MOCKS_{}", name.to_uppercase()), fakes[name].uri());
    }
    for v in [
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost");
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    let _ = stop_tx.send(());
    let _ = server.await;
    assert!(out.status.success(), "pytest failed:\n{stdout}\n{stderr}");
}
