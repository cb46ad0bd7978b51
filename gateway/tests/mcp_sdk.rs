//! The official MCP Python SDK (`mcp`, pinned in tests/requirements.txt) as a client of the MCP server
//! `LLMProviderTool`, over Streamable HTTP (`/mcp` on a running gateway) and over stdio (`llm-gateway mcp`), with
//! the fakes behind it: gateway/tests/sdk/test_mcp_client.py. The venv is `.venv/` or `LLM_TEST_PYTHON`; under
//! CI=true a missing venv is a failure, otherwise a note and a skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use llm_mocks::FakeServer;

const ADMIN_TOKEN: &str = "s3cret-admin-mcp";
const CLIENT_KEY: &str = "client-key-mcp-123456";

/// The shared test config plus an admin token, a client key, the offline packages of `config/offline`, and
/// `/mcp`.
fn config(fakes: &HashMap<&'static str, FakeServer>) -> String {
    let base = common::yaml(fakes, "openai, kimi, qwen, gigachat, ollama", "", "compatible");
    let packages = llm_mocks::testing::workspace_root().join("config/offline");
    let base = base.replace(
        "body_limit_bytes: 65536 }",
        &format!("body_limit_bytes: 65536, admin_token: {{ value: {ADMIN_TOKEN} }} }}"),
    );
    assert!(base.contains(ADMIN_TOKEN));
    format!(
        "{base}\nlimits:\n  clients:\n    - {{ name: agent, key: {{ value: {CLIENT_KEY} }} }}\n\
         offline:\n  packages: [\"{}\"]\n  match_threshold: 0.5\n\
         mcp:\n  enabled: true\n",
        packages.display()
    )
}

fn pytest(py: PathBuf, fakes: &HashMap<&'static str, FakeServer>, env: &[(&str, String)]) -> Command {
    let mut cmd = Command::new(py);
    cmd.args([
        "-m",
        "pytest",
        "-q",
        "-p",
        "no:cacheprovider",
        "test_mcp_client.py",
    ])
    .current_dir(llm_mocks::testing::workspace_root().join("gateway/tests/sdk"))
    .env("MCP_ADMIN_TOKEN", ADMIN_TOKEN);
    for (k, v) in env {
        cmd.env(k, v);
    }
    for (name, _) in common::PROVIDERS {
        cmd.env(format!("LLM_MOCKS_{}", name.to_uppercase()), fakes[name].uri());
    }
    for v in [
        "LLM_MCP_ADMIN_TOKEN",
        "LLM_MCP_API_KEY",
        "LLM_GATEWAY_CONFIG",
        "LLM_GATEWAY_MODE",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost");
    cmd
}

async fn run(mut cmd: Command) {
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    assert!(out.status.success(), "pytest failed:\n{stdout}\n{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_sdk_over_streamable_http() {
    let Some(py) = llm_mocks::testing::venv_python().unwrap() else {
        return;
    };
    let fakes = common::fakes().await;
    let cfg = llm_gateway::config::Config::from_yaml(&config(&fakes), &|_| None).unwrap();
    let state = llm_gateway::AppState::new(cfg).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(llm_gateway::server::run(
        listener,
        None,
        state.clone(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let cmd = pytest(
        py,
        &fakes,
        &[
            ("MCP_TRANSPORT", "http".into()),
            ("MCP_URL", format!("http://{addr}/mcp")),
            ("MCP_CLIENT_KEY", CLIENT_KEY.into()),
        ],
    );
    run(cmd).await;
    // Tool calls by tool and outcome; llm_generate is also a request of its own route.
    let m = state.metrics.encode();
    let calls = |tool: &str, outcome: &str| {
        common::sample(
            &m,
            "llm_gateway_mcp_tool_calls_total",
            &[("tool", tool), ("outcome", outcome)],
        )
    };
    assert!(calls("llm_generate", "ok") >= 4.0, "{m}");
    assert!(calls("llm_generate", "invalid_arguments") >= 7.0, "{m}");
    assert!(calls("llm_set_mode", "unauthorized") >= 1.0, "{m}");
    assert!(calls("llm_set_mode", "ok") >= 2.0, "{m}");
    assert!(calls("llm_generate", "failed") >= 1.0, "{m}");
    let generated = common::sample(
        &m,
        "llm_gateway_requests_total",
        &[("route", "mcp"), ("status", "200"), ("source", "provider")],
    );
    assert!(generated >= 3.0, "{m}");
    let _ = stop_tx.send(());
    let _ = server.await;
}

/// `llm-gateway mcp --gateway-url`: the stdio server acting on a running gateway (its REST API, and its `/mcp`
/// for the route explanation).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_sdk_over_stdio_with_gateway_url() {
    let Some(py) = llm_mocks::testing::venv_python().unwrap() else {
        return;
    };
    let fakes = common::fakes().await;
    let text = config(&fakes);
    let dir = std::env::temp_dir().join(format!("llm-gw-mcp-remote-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gateway.yaml");
    std::fs::write(&file, &text).unwrap();
    let cfg = llm_gateway::config::Config::from_yaml(&text, &|_| None).unwrap();
    let state = llm_gateway::AppState::new(cfg).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(llm_gateway::server::run(
        listener,
        None,
        state.clone(),
        async move {
            let _ = stop_rx.await;
        },
    ));
    let cmd = pytest(
        py,
        &fakes,
        &[
            ("MCP_TRANSPORT", "stdio".into()),
            ("MCP_COMMAND", env!("CARGO_BIN_EXE_llm-gateway").into()),
            ("MCP_CONFIG", file.display().to_string()),
            ("MCP_GATEWAY_URL", format!("http://{addr}")),
            ("MCP_CLIENT_KEY", CLIENT_KEY.into()),
        ],
    );
    run(cmd).await;
    // The running gateway answered: llm_generate as its assistants route, the explanations on its /mcp.
    let m = state.metrics.encode();
    let generated = common::sample(
        &m,
        "llm_gateway_requests_total",
        &[("route", "assistants_generate"), ("status", "200")],
    );
    assert!(generated >= 4.0, "{m}");
    let explained = common::sample(
        &m,
        "llm_gateway_mcp_tool_calls_total",
        &[("tool", "llm_explain_route"), ("outcome", "ok")],
    );
    assert!(explained >= 4.0, "{m}");
    let _ = stop_tx.send(());
    let _ = server.await;
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcp_sdk_over_stdio() {
    let Some(py) = llm_mocks::testing::venv_python().unwrap() else {
        return;
    };
    let fakes = common::fakes().await;
    let dir = std::env::temp_dir().join(format!("llm-gw-mcp-stdio-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("gateway.yaml");
    std::fs::write(&file, config(&fakes)).unwrap();
    let cmd = pytest(
        py,
        &fakes,
        &[
            ("MCP_TRANSPORT", "stdio".into()),
            ("MCP_COMMAND", env!("CARGO_BIN_EXE_llm-gateway").into()),
            ("MCP_CONFIG", file.display().to_string()),
        ],
    );
    run(cmd).await;
    let _ = std::fs::remove_dir_all(&dir);
}
