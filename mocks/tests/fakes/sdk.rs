//! The providers' official SDKs (Python) against the fakes: each pytest file runs as one test here.
//! `scripts/test.sh` creates `.venv/` with the pinned SDKs (tests/requirements.txt).

use llm_mocks::{Fakes, Provider};
use std::process::Command;

async fn run_pytest(file: &str) {
    let Some(py) = llm_mocks::testing::venv_python().unwrap() else {
        return;
    };
    let fakes = Fakes::start_all_ephemeral().await.unwrap();
    let dir = llm_mocks::testing::workspace_root().join("mocks/tests/sdk");
    let mut cmd = Command::new(py);
    cmd.args(["-m", "pytest", "-q", "-p", "no:cacheprovider", file])
        .current_dir(&dir);
    for p in Provider::ALL {
        cmd.env(
            format!("LLM_MOCKS_{}", p.name().to_uppercase()),
            fakes.get(p).unwrap().uri(),
        );
    }
    // Keep the SDKs away from any real endpoint or proxy configured on the machine.
    for v in [
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "DASHSCOPE_HTTP_BASE_URL",
        "DASHSCOPE_API_KEY",
        "GIGACHAT_CREDENTIALS",
        "GIGACHAT_BASE_URL",
        "GIGACHAT_AUTH_URL",
        "OLLAMA_HOST",
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
    assert!(out.status.success(), "pytest {file} failed:\n{stdout}\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk() {
    run_pytest("test_openai_sdk.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashscope_sdk() {
    run_pytest("test_dashscope_sdk.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gigachat_sdk() {
    run_pytest("test_gigachat_sdk.py").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ollama_sdk() {
    run_pytest("test_ollama_sdk.py").await;
}
