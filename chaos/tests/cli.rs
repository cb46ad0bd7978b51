//! The `llm-chaos` binary: help text, `serve --config`, failures, and the shipped `config/chaos_proxies.json`.
#![allow(clippy::unwrap_used, clippy::panic)] // Tests: helpers fail loudly, like the tests themselves.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use llm_chaos::{Client, NewProxy};

const BIN: &str = env!("CARGO_BIN_EXE_llm-chaos");

#[test]
fn help_explains_the_commands() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success());
    assert!(
        text.contains("Toxiproxy-compatible") && text.contains("serve"),
        "{text}"
    );
    let out = Command::new(BIN).args(["serve", "--help"]).output().unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    for needle in [
        "--host",
        "--port",
        "--config",
        "--seed",
        "8474",
        "latency",
        "reset_peer",
        "TOXIPROXY_URL",
    ] {
        assert!(text.contains(needle), "serve --help lacks {needle}:\n{text}");
    }
}

#[test]
fn bad_config_fails_with_a_clear_message() {
    let out = Command::new(BIN)
        .args(["serve", "--port", "0", "--config", "/nonexistent/proxies.json"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("cannot read proxy config /nonexistent/proxies.json"),
        "{err}"
    );

    let dir = std::env::temp_dir().join(format!("llm-chaos-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("bad.json");
    std::fs::write(&file, r#"[{"name":"x"}]"#).unwrap();
    let out = Command::new(BIN)
        .args(["serve", "--port", "0", "--config"])
        .arg(&file)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("missing required field: upstream at proxy 1"),
        "{err}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_populates_from_config_and_answers() {
    let dir = std::env::temp_dir().join(format!("llm-chaos-serve-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("proxies.json");
    let proxies = [
        NewProxy::new("a", "127.0.0.1:0", "127.0.0.1:18081"),
        NewProxy::new("b", "127.0.0.1:0", "x:1"),
    ];
    std::fs::write(&file, serde_json::to_string(&proxies).unwrap()).unwrap();
    /// Kills the server even when an assertion fails first.
    struct KillOnDrop(std::process::Child);
    impl Drop for KillOnDrop {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut child = Command::new(BIN)
        .args([
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--seed",
            "7",
            "--config",
        ])
        .arg(&file)
        .env("LOG_LEVEL", "info")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let child = KillOnDrop(child);
    // Readiness: the "Ready." log line carries the API URL.
    let ready = tokio::task::spawn_blocking(move || {
        for line in BufReader::new(stderr).lines() {
            let line = line.unwrap();
            if let Some(at) = line.find("url=") {
                return line[at + 4..].split_whitespace().next().unwrap().to_owned();
            }
        }
        panic!("no Ready line");
    });
    let url = tokio::time::timeout(std::time::Duration::from_secs(30), ready)
        .await
        .unwrap()
        .unwrap();
    let client = Client::new(url).unwrap();
    let listed = client.proxies().await.unwrap();
    assert_eq!(listed.keys().collect::<Vec<_>>(), ["a", "b"]);
    assert!(listed.values().all(|p| p.enabled && !p.listen.ends_with(":0")));
    assert_eq!(client.version().await.unwrap(), "2.12.0");
    drop(child);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn shipped_config_maps_the_chaos_ports_to_the_fakes() {
    let path = common::crate_dir().join("../config/chaos_proxies.json");
    let proxies: Vec<NewProxy> = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let got: Vec<(&str, &str, &str)> = proxies
        .iter()
        .map(|p| (p.name.as_str(), p.listen.as_str(), p.upstream.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("openai", "127.0.0.1:28081", "127.0.0.1:18081"),
            ("kimi", "127.0.0.1:28082", "127.0.0.1:18082"),
            ("qwen", "127.0.0.1:28083", "127.0.0.1:18083"),
            ("gigachat", "127.0.0.1:28084", "127.0.0.1:18084"),
        ]
    );
}
