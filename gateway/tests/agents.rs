//! Real agent clients against a running gateway (the fakes behind it), each unchanged and pinned:
//! the OpenAI Agents SDK (`openai-agents` in `.venv/`, tests/requirements.txt), the npm `openai` SDK, the
//! Codex CLI (`@openai/codex`) and Claude Code (`@anthropic-ai/claude-code`), the CLIs' native binaries
//! optional npm dependencies; all in gateway/tests/node/, installed by `npm ci` in scripts/test.sh). Everything stays on loopback. Under CI=true a missing tool is a
//! failure, otherwise a note and a skip.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use llm_mocks::{FakeServer, FaultKind, FaultSpec};
use serde_json::Value;

/// A gateway served on a free loopback port, in process, with the five fakes behind it.
struct Running {
    addr: SocketAddr,
    fakes: HashMap<&'static str, FakeServer>,
    stop: tokio::sync::oneshot::Sender<()>,
    server: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl Running {
    async fn start() -> Running {
        let fakes = common::fakes().await;
        let text = common::yaml(&fakes, "openai, kimi, qwen, gigachat, ollama", "", "compatible");
        let cfg = llm_gateway::config::Config::from_yaml(&text, &|_| None).unwrap();
        let state = llm_gateway::AppState::new(cfg).unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(llm_gateway::server::run(listener, None, state, async move {
            let _ = stop_rx.await;
        }));
        Running {
            addr,
            fakes,
            stop,
            server,
        }
    }

    fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The model calls (chat or native generation) a fake received: (fault that hit it, JSON body).
    fn model_calls(&self, provider: &str) -> Vec<(Option<&'static str>, Value)> {
        self.fakes[provider]
            .journal()
            .iter()
            .filter(|e| {
                e.path.contains("chat") || e.path.contains("generation") || e.path.contains("responses")
            })
            .map(|e| (e.fault, e.body_json().unwrap_or(Value::Null)))
            .collect()
    }

    async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.server.await;
    }
}

/// A child process with a clean environment for loopback: no proxies, no OpenAI variables of the machine.
fn loopback_command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut cmd = Command::new(program);
    for v in [
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "OPENAI_ORG_ID",
        "OPENAI_PROJECT_ID",
        "CODEX_HOME",
        "CODEX_API_KEY",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "http_proxy",
        "https_proxy",
        "ALL_PROXY",
        "all_proxy",
    ] {
        cmd.env_remove(v);
    }
    cmd.env("NO_PROXY", "127.0.0.1,localhost")
        .env("no_proxy", "127.0.0.1,localhost")
        .stdin(Stdio::null());
    cmd
}

async fn output(mut cmd: Command) -> Output {
    tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .unwrap()
}

/// The last stdout line that is a JSON object (what the client scripts print).
fn last_json(out: &Output) -> Value {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "client failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str::<Value>(l).ok().filter(Value::is_object))
        .unwrap_or_else(|| panic!("no JSON line in the output:\n{stdout}\n{stderr}"))
}

fn node_dir() -> PathBuf {
    llm_mocks::testing::workspace_root().join("gateway/tests/node")
}

/// A fresh, empty folder under the system temp dir (removed by the test at its end).
fn scratch(name: &str) -> PathBuf {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos();
    let p = std::env::temp_dir().join(format!("llm-gw-{name}-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&p).unwrap();
    p
}

/// The OpenAI Agents SDK, default Responses mode: one agent, one function tool, `Runner.run`. The primary
/// (openai) has used up its quota, so the gateway answers both turns (the tool call, then the answer after
/// the tool's output) from kimi.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_sdk_function_tool_through_a_fallback() {
    let Some(py) = llm_mocks::testing::venv_python().unwrap() else {
        return;
    };
    let gw = Running::start().await;
    gw.fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::QuotaExhausted))
        .unwrap();
    let mut cmd = loopback_command(py);
    cmd.arg("agents_sdk_run.py")
        .current_dir(llm_mocks::testing::workspace_root().join("gateway/tests/agents"))
        .env("LLM_GATEWAY_URL", gw.base_url());
    let out = last_json(&output(cmd).await);
    println!("{out}");

    // The tool ran once, with the arguments the fake derived from the prompt.
    assert_eq!(
        out["calls"],
        serde_json::json!(["What is the weather in Oslo?"]),
        "{out}"
    );
    // Two model turns: a function call, then the answer; both from the fallback.
    assert_eq!(out["requests"], 2, "{out}");
    let items: Vec<&str> = out["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(
        items,
        ["tool_call_item", "tool_call_output_item", "message_output_item"],
        "{out}"
    );
    let final_output = out["final_output"].as_str().unwrap();
    assert!(final_output.starts_with("[kimi] "), "{final_output}");
    assert!(
        final_output.contains("What is the weather in Oslo?"),
        "{final_output}"
    );
    assert!(out["total_tokens"].as_u64().unwrap() > 0, "{out}");
    for id in out["response_ids"].as_array().unwrap() {
        assert!(id.as_str().unwrap().starts_with("resp_"), "{out}");
    }

    // The primary was tried and refused; the fallback got both turns, the second with the tool's output.
    let primary = gw.model_calls("openai");
    assert!(!primary.is_empty(), "the primary was never tried");
    assert!(
        primary.iter().all(|(f, _)| *f == Some("quota_exhausted")),
        "{primary:?}"
    );
    let served = gw.model_calls("kimi");
    assert_eq!(served.len(), 2, "{served:?}");
    assert_eq!(served[0].1["tools"][0]["function"]["name"], "get_weather");
    let last = served[1].1["messages"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(last["role"], "tool", "{last}");
    assert!(last["content"].as_str().unwrap().contains("overcast"), "{last}");
    gw.stop().await;
}

/// The npm `openai` SDK: `responses.create`, plain and streamed; the two give the same deterministic text of
/// the primary fake, and the stream has the grammar the SDK parses.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_openai_sdk_responses_plain_and_streamed() {
    if llm_mocks::testing::npm_package(&node_dir(), "openai")
        .unwrap()
        .is_none()
    {
        return;
    }
    let gw = Running::start().await;
    let mut cmd = loopback_command("node");
    cmd.arg("responses_check.mjs")
        .current_dir(node_dir())
        .env("LLM_GATEWAY_URL", gw.base_url());
    let out = last_json(&output(cmd).await);
    println!("{out}");

    let plain = &out["plain"];
    assert!(plain["id"].as_str().unwrap().starts_with("resp_"), "{out}");
    assert_eq!(plain["status"], "completed", "{out}");
    let text = plain["output_text"].as_str().unwrap();
    assert!(text.starts_with("[openai] Answer "), "{text}");
    assert!(text.contains("\"Tell me about fallbacks\""), "{text}");
    let usage = &plain["usage"];
    assert!(usage["input_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert!(usage["output_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["input_tokens"].as_u64().unwrap() + usage["output_tokens"].as_u64().unwrap()
    );

    let stream = &out["stream"];
    let types: Vec<&str> = stream["types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(types.first(), Some(&"response.created"), "{types:?}");
    assert_eq!(types.last(), Some(&"response.completed"), "{types:?}");
    assert!(
        types
            .iter()
            .filter(|t| **t == "response.output_text.delta")
            .count()
            > 1,
        "{types:?}"
    );
    let delta_at = types
        .iter()
        .position(|t| *t == "response.output_text.delta")
        .unwrap();
    let added_at = types
        .iter()
        .position(|t| *t == "response.output_item.added")
        .unwrap();
    assert!(added_at < delta_at, "{types:?}");
    let seq: Vec<u64> = stream["sequence"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_u64)
        .collect();
    assert_eq!(
        seq,
        (0..types.len() as u64).collect::<Vec<_>>(),
        "sequence_number counts from 0"
    );
    // Same prompt, same fake: the streamed deltas are the plain answer, and the completed response holds them.
    assert_eq!(stream["deltas"].as_str().unwrap(), text);
    assert_eq!(stream["completed_status"], "completed");
    assert_eq!(stream["completed_text"].as_str().unwrap(), text);
    assert!(stream["usage"]["total_tokens"].as_u64().unwrap() > 0, "{out}");

    // Both served by the primary, each as one upstream call.
    assert_eq!(gw.model_calls("openai").len(), 2);
    assert!(gw.model_calls("kimi").is_empty());
    gw.stop().await;
}

/// Codex's config for a gateway at `base_url`: a custom provider with the Responses wire (the only one Codex
/// speaks), the key from `GW_KEY`, and nothing that would leave loopback (no plugins, no analytics, no hosted
/// web search, no update check). Codex's own retries are off, so a fallback is the gateway's doing.
fn codex_config(base_url: &str) -> String {
    format!(
        r#"model_provider = "gw"
model = "default"
approval_policy = "never"
sandbox_mode = "danger-full-access"
web_search = "disabled"
check_for_update_on_startup = false

[model_providers.gw]
name = "gw"
base_url = "{base_url}"
env_key = "GW_KEY"
wire_api = "responses"
request_max_retries = 0
stream_max_retries = 0

[features]
plugins = false

[analytics]
enabled = false
"#
    )
}

/// Codex CLI (`codex exec`) with a `wire_api = "responses"` provider pointed at the gateway, while the primary
/// is overloaded. The fake answers the first turn with a call of the first tool Codex offers (`exec_command`)
/// whose `cmd` is the prompt, `echo hi`; Codex runs it and sends the history back ending with `function_call`
/// + `function_call_output`; the fake answers that with text, which Codex prints as its last message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_exec_runs_a_command_through_a_fallback() {
    if llm_mocks::testing::npm_package(&node_dir(), "@openai/codex")
        .unwrap()
        .is_none()
    {
        return;
    }
    let codex = node_dir().join("node_modules/.bin/codex");
    let gw = Running::start().await;
    gw.fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::Overloaded))
        .unwrap();
    let home = scratch("codex-home");
    let work = scratch("codex-work");
    std::fs::write(home.join("config.toml"), codex_config(&gw.base_url())).unwrap();
    let last_message = home.join("last-message.txt");
    let mut cmd = loopback_command(&codex);
    cmd.args([
        "exec",
        "--skip-git-repo-check",
        "--ephemeral",
        "--json",
        "--color",
        "never",
    ])
    .args(["--sandbox", "danger-full-access"])
    .arg("-o")
    .arg(&last_message)
    .arg("-C")
    .arg(&work)
    .arg("echo hi")
    .current_dir(&work)
    .env("CODEX_HOME", &home)
    .env("HOME", &home)
    .env("GW_KEY", "gateway-test-key");
    let out = output(cmd).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let last = std::fs::read_to_string(&last_message).unwrap_or_default();
    let _ = std::fs::remove_dir_all(&home);
    let _ = std::fs::remove_dir_all(&work);
    println!("{stdout}");
    assert!(
        out.status.success(),
        "codex exec failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let events: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    let done: Vec<&Value> = events
        .iter()
        .filter(|e| e["type"] == "item.completed")
        .map(|e| &e["item"])
        .collect();

    // The command ran and its output went back to the model.
    let command = done
        .iter()
        .find(|i| i["type"] == "command_execution")
        .unwrap_or_else(|| panic!("no command ran:\n{stdout}"));
    assert!(
        command["command"].as_str().unwrap().contains("echo hi"),
        "{command}"
    );
    assert_eq!(command["exit_code"], 0, "{command}");
    assert_eq!(
        command["aggregated_output"].as_str().unwrap().trim(),
        "hi",
        "{command}"
    );
    // The answer to the prompt, from the fallback.
    let message = done
        .iter()
        .rev()
        .find(|i| i["type"] == "agent_message")
        .unwrap_or_else(|| panic!("no answer:\n{stdout}"));
    let text = message["text"].as_str().unwrap();
    assert!(text.starts_with("[kimi] Answer "), "{text}");
    assert!(text.contains("\"echo hi\""), "{text}");
    assert_eq!(last.trim(), text.trim());
    assert!(events.iter().any(|e| e["type"] == "turn.completed"), "{stdout}");

    // Upstream: the primary refused every turn it was offered; kimi took the tool call turn and then the
    // turn that ends with the call and its output.
    let primary = gw.model_calls("openai");
    assert!(!primary.is_empty(), "the primary was never tried");
    assert!(
        primary.iter().all(|(f, _)| *f == Some("overloaded")),
        "{primary:?}"
    );
    let served = gw.model_calls("kimi");
    assert_eq!(served.len(), 2, "{served:?}");
    let first = &served[0].1;
    assert_eq!(first["tools"][0]["function"]["name"], "exec_command", "{first}");
    let msgs = served[1].1["messages"].as_array().unwrap();
    let (call, result) = (&msgs[msgs.len() - 2], &msgs[msgs.len() - 1]);
    assert_eq!(call["role"], "assistant", "{call}");
    assert_eq!(
        call["tool_calls"][0]["function"]["name"], "exec_command",
        "{call}"
    );
    assert_eq!(result["role"], "tool", "{result}");
    assert_eq!(result["tool_call_id"], call["tool_calls"][0]["id"], "{result}");
    assert!(result["content"].as_str().unwrap().contains("hi"), "{result}");
    gw.stop().await;
}

/// Claude Code (`claude -p`) with `ANTHROPIC_BASE_URL` at the gateway, while the primary is overloaded. It
/// is offered one tool (`--tools Bash`, allowed without a prompt by `--allowedTools Bash`: root may not skip
/// permissions); the fake answers the first turn with a `tool_use` of Bash whose `command` is the prompt,
/// `echo hi`; Claude Code runs it and sends the `tool_result` in the next user turn; the fake answers that
/// with text, Claude Code's result. The model id is a `claude-*` id the gateway's aliases map to `default`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_runs_a_tool_through_a_fallback() {
    if llm_mocks::testing::npm_package(&node_dir(), "@anthropic-ai/claude-code")
        .unwrap()
        .is_none()
    {
        return;
    }
    let claude = node_dir().join("node_modules/.bin/claude");
    let gw = Running::start().await;
    gw.fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::Overloaded))
        .unwrap();
    let home = scratch("claude-home");
    let work = scratch("claude-work");
    let mut cmd = loopback_command(&claude);
    cmd.args(["-p", "echo hi", "--output-format", "stream-json", "--verbose"])
        .args(["--model", "claude-sonnet-4-5", "--tools", "Bash"])
        .args(["--allowedTools", "Bash", "--max-turns", "4"])
        .current_dir(&work)
        .env("HOME", &home)
        .env("CLAUDE_CONFIG_DIR", home.join(".claude"))
        .env("ANTHROPIC_BASE_URL", format!("http://{}", gw.addr))
        .env("ANTHROPIC_API_KEY", "gateway-test-key")
        .env("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1")
        .env("DISABLE_AUTOUPDATER", "1")
        .env("DISABLE_TELEMETRY", "1")
        .env_remove("ANTHROPIC_AUTH_TOKEN")
        .env_remove("ANTHROPIC_MODEL")
        .env_remove("CLAUDE_CODE_USE_BEDROCK")
        .env_remove("CLAUDE_CODE_USE_VERTEX");
    let out = output(cmd).await;
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let _ = std::fs::remove_dir_all(&home);
    let _ = std::fs::remove_dir_all(&work);
    assert!(
        out.status.success(),
        "claude -p failed ({}):\n{stdout}\n{stderr}",
        out.status
    );
    let events: Vec<Value> = stdout
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect();
    // Claude Code asked for Bash with the prompt as its command, and got the command's output back.
    let blocks: Vec<&Value> = events
        .iter()
        .filter_map(|e| e["message"]["content"].as_array())
        .flatten()
        .collect();
    let tool_use = blocks
        .iter()
        .find(|b| b["type"] == "tool_use")
        .unwrap_or_else(|| panic!("no tool_use:\n{stdout}\n{stderr}"));
    assert_eq!(tool_use["name"], "Bash", "{tool_use}");
    assert_eq!(tool_use["input"]["command"], "echo hi", "{tool_use}");
    let tool_result = blocks
        .iter()
        .find(|b| b["type"] == "tool_result")
        .unwrap_or_else(|| panic!("no tool_result:\n{stdout}"));
    assert_eq!(tool_result["tool_use_id"], tool_use["id"], "{tool_result}");
    assert_ne!(tool_result["is_error"], true, "{tool_result}");
    // The result is the fallback's answer to the turn after the tool's output.
    let result = events
        .iter()
        .rev()
        .find(|e| e["type"] == "result")
        .unwrap_or_else(|| panic!("no result:\n{stdout}"));
    assert_eq!(result["subtype"], "success", "{result}");
    assert_eq!(result["is_error"], false, "{result}");
    assert!(
        result["result"].as_str().unwrap().starts_with("[kimi] Answer "),
        "{result}"
    );

    // Upstream: the primary refused every turn it was offered; kimi answered them, the last one ending with
    // the tool's output as a tool message.
    let primary = gw.model_calls("openai");
    assert!(!primary.is_empty(), "the primary was never tried");
    assert!(
        primary.iter().all(|(f, _)| *f == Some("overloaded")),
        "{primary:?}"
    );
    let served = gw.model_calls("kimi");
    let last = served.last().map(|(_, b)| b).unwrap();
    let msgs = last["messages"].as_array().unwrap();
    let result_msg = msgs.last().unwrap();
    assert_eq!(result_msg["role"], "tool", "{result_msg}");
    assert!(
        result_msg["content"].as_str().unwrap_or("").contains("hi"),
        "{result_msg}"
    );
    assert!(
        served
            .iter()
            .any(|(_, b)| b["tools"][0]["function"]["name"] == "Bash"),
        "{served:?}"
    );
    gw.stop().await;
}

/// The npm `openai` SDK streaming Responses while the primary's stream breaks: after the first delta the SDK
/// raises (the gateway ends the stream with `error` and `response.failed`, never `response.completed`);
/// before it, kimi serves the whole stream and the SDK sees nothing of the failure.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_openai_sdk_stream_broken_before_and_after_the_first_delta() {
    if llm_mocks::testing::npm_package(&node_dir(), "openai")
        .unwrap()
        .is_none()
    {
        return;
    }
    let gw = Running::start().await;
    let run = || {
        let mut cmd = loopback_command("node");
        cmd.arg("responses_check.mjs")
            .current_dir(node_dir())
            .env("LLM_GATEWAY_URL", gw.base_url())
            .env("MODE", "stream_only");
        cmd
    };

    gw.fakes["openai"]
        .add_fault(
            FaultSpec::new(FaultKind::TruncatedStream)
                .times(1)
                .after_chunks(2),
        )
        .unwrap();
    let after = last_json(&output(run()).await);
    println!("{after}");
    assert!(after["raised"].is_object(), "the SDK did not raise: {after}");
    assert!(!after["deltas"].as_str().unwrap().is_empty(), "{after}");
    let types: Vec<&str> = after["types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert!(!types.contains(&"response.completed"), "{types:?}");
    assert!(gw.model_calls("kimi").is_empty(), "no failover after a delta");

    gw.fakes["openai"]
        .add_fault(
            FaultSpec::new(FaultKind::TruncatedStream)
                .times(1)
                .after_chunks(0),
        )
        .unwrap();
    let before = last_json(&output(run()).await);
    println!("{before}");
    assert!(before["raised"].is_null(), "{before}");
    assert!(
        before["deltas"].as_str().unwrap().starts_with("[kimi] Answer "),
        "{before}"
    );
    assert_eq!(
        before["types"].as_array().unwrap().last().unwrap(),
        "response.completed",
        "{before}"
    );
    assert_eq!(gw.model_calls("kimi").len(), 1);
    gw.stop().await;
}
