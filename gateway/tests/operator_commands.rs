//! `llm-gateway smoke` and `llm-gateway offline-dry-run` end to end: the built binary against the fakes (port 0),
//! with a config written for the run.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use std::path::PathBuf;
use std::process::{Command, Output};

use common::*;
use llm_mocks::{FaultKind, FaultSpec};

fn dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("llm-gw-ops-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn own(args: &[&str]) -> Vec<String> {
    args.iter().map(|a| a.to_string()).collect()
}

fn run(args: &[String]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_llm-gateway"))
        .args(args)
        .env_remove("LLM_GATEWAY_CONFIG")
        .env_remove("LLM_GATEWAY_MODE")
        .env("RUST_LOG", "warn")
        .output()
        .expect("binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn smoke_passes_against_healthy_fakes_and_hints_at_a_bad_key() {
    let fakes = fakes().await;
    let d = dir("smoke");
    let cfg = d.join("gateway.yaml");
    std::fs::write(
        &cfg,
        yaml(&fakes, "openai, kimi, qwen, gigachat, ollama", "", "compatible"),
    )
    .unwrap();
    let report = d.join("out/smoke.json");
    let args = own(&[
        "smoke",
        "--config",
        cfg.to_str().unwrap(),
        "--full",
        "--report",
        report.to_str().unwrap(),
    ]);
    let o = tokio::task::spawn_blocking(move || run(&args)).await.unwrap();
    assert!(o.status.success(), "{}", text(&o));
    let r: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(r["failed"], 0);
    let checks = r["checks"].as_array().unwrap();
    assert_eq!(checks.iter().filter(|c| c["check"] == "chat").count(), 5);
    assert_eq!(checks.iter().filter(|c| c["check"] == "stream").count(), 5);
    assert!(checks
        .iter()
        .any(|c| c["check"] == "embeddings" && c["provider"] == "qwen" && c["ok"] == true));
    for secret in [
        "sk-test-openai-secret",
        "sk-test-kimi-secret",
        "Y2xpZW50OnNlY3JldA==",
    ] {
        assert!(!text(&o).contains(secret));
    }

    fakes["kimi"].add_fault(FaultSpec::new(FaultKind::Auth)).unwrap();
    let args = own(&[
        "smoke",
        "--config",
        cfg.to_str().unwrap(),
        "--provider",
        "kimi",
        "--report",
        report.to_str().unwrap(),
    ]);
    let o = tokio::task::spawn_blocking(move || run(&args)).await.unwrap();
    assert!(!o.status.success(), "{}", text(&o));
    assert!(
        text(&o).contains("401 from kimi: check KIMI_API_KEY"),
        "{}",
        text(&o)
    );
    let _ = std::fs::remove_dir_all(&d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_dry_run_passes_on_package_prompts_and_fails_on_a_miss() {
    let fakes = fakes().await;
    fakes["ollama"]
        .add_fault(FaultSpec::new(FaultKind::DropConnection))
        .unwrap();
    let d = dir("dry");
    let cfg = d.join("gateway.yaml");
    let extra = format!(
        "offline: {{ packages: [\"{}/../config/offline\"] }}\n",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::write(
        &cfg,
        yaml(
            &fakes,
            "openai, kimi, qwen, gigachat, ollama",
            &extra,
            "compatible",
        ),
    )
    .unwrap();
    let prompts = d.join("prompts.txt");
    std::fs::write(
        &prompts,
        "# analytics prompts\nСделай SQL-фильтр по продажам\nсделайте sql фильтры по продажам\nMake an SQL filter for sales\nкак посчитать LTV клиента\n",
    )
    .unwrap();
    let report = d.join("dry.json");
    let (c, p, r) = (cfg.clone(), prompts.clone(), report.clone());
    let o = tokio::task::spawn_blocking(move || {
        run(&own(&[
            "offline-dry-run",
            "--config",
            c.to_str().unwrap(),
            "--prompts",
            p.to_str().unwrap(),
            "--report",
            r.to_str().unwrap(),
        ]))
    })
    .await
    .unwrap();
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("hit rate 100.0%"), "{}", text(&o));
    let rep: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&report).unwrap()).unwrap();
    assert_eq!(rep["by_source"]["offline-package"], 4);
    assert_eq!(rep["offline_hits_total"], 4.0);
    assert!(rep["latency_ms"]["p99"].as_f64().is_some());
    for remote in ["openai", "kimi", "qwen", "gigachat"] {
        assert_eq!(
            fakes[remote].request_count(),
            0,
            "{remote} called by the offline dry run"
        );
    }

    std::fs::write(
        &prompts,
        "Сделай SQL-фильтр по продажам\nWrite a haiku about a network outage\n",
    )
    .unwrap();
    let (c, p, r) = (cfg.clone(), prompts.clone(), report.clone());
    let o = tokio::task::spawn_blocking(move || {
        run(&own(&[
            "offline-dry-run",
            "--config",
            c.to_str().unwrap(),
            "--prompts",
            p.to_str().unwrap(),
            "--report",
            r.to_str().unwrap(),
        ]))
    })
    .await
    .unwrap();
    assert!(
        !o.status.success(),
        "a 503 offline_miss fails the run: {}",
        text(&o)
    );
    assert!(text(&o).contains("503"), "{}", text(&o));
    let _ = std::fs::remove_dir_all(&d);
}
