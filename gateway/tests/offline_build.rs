//! `llm-gateway offline build` end to end: the built binary asks the fakes through the in-process chain; the
//! package it writes loads without problems and `offline-dry-run` answers every prompt from it; a killed build
//! resumes without asking twice; failed prompts are reported and retried; `--from-misses` turns a live
//! gateway's recorded misses (`GET /admin/offline/misses`) into entries, secrets never included.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::*;
use llm_gateway::offline::{OfflineConfig, OfflineStore};
use llm_mocks::{FaultKind, FaultSpec, SettingsPatch};
use serde_json::Value;

/// A fresh folder for one test, removed when the test ends (failed or not).
fn dir(name: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("llm-gw-build-{name}-"))
        .tempdir()
        .unwrap()
}

fn cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_llm-gateway"));
    c.args(args)
        .env_remove("LLM_GATEWAY_CONFIG")
        .env_remove("LLM_GATEWAY_MODE")
        .env_remove("LLM_GATEWAY_ADMIN_TOKEN")
        .env("RUST_LOG", "warn");
    c
}

fn run(args: &[&str]) -> Output {
    cmd(args).output().expect("binary runs")
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const PROMPTS: &str = "# questions the analysts ask\nСделай SQL-фильтр по продажам за март\nHow do I export the sales report?\n\nсделай sql фильтр по продажам за МАРТ\nWhat does churn mean in our dashboard?\nПокажи топ-10 клиентов по выручке\n";

fn write_config(d: &Path, body: &str) -> PathBuf {
    let p = d.join("gateway.yaml");
    std::fs::write(&p, body).unwrap();
    p
}

fn build_args<'a>(
    cfg: &'a str,
    prompts: &'a str,
    out: &'a str,
    version: &'a str,
    report: &'a str,
) -> Vec<&'a str> {
    vec![
        "offline",
        "build",
        "--config",
        cfg,
        "--prompts",
        prompts,
        "--out",
        out,
        "--name",
        "kb",
        "--version",
        version,
        "--report",
        report,
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_built_package_loads_cleanly_and_the_dry_run_answers_every_prompt() {
    let fakes = fakes().await;
    let tmp = dir("full");
    let d = tmp.path();
    let cfg = write_config(d, &yaml(&fakes, "openai, kimi", "", "compatible"));
    let prompts = d.join("prompts.txt");
    std::fs::write(&prompts, PROMPTS).unwrap();
    let out = d.join("packages");
    let report = d.join("build.json");
    let mut args = build_args(
        cfg.to_str().unwrap(),
        prompts.to_str().unwrap(),
        out.to_str().unwrap(),
        "2026.12.1",
        report.to_str().unwrap(),
    );
    args.push("--embeddings");
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o));
    let r = json(&report);
    assert_eq!(
        r["prompts"], 4,
        "duplicates after normalisation are asked once: {r}"
    );
    assert_eq!((r["asked"].as_u64(), r["answered"].as_u64()), (Some(4), Some(4)));
    assert_eq!(r["written"], true);
    // Asked once each: 4 chats and 4 embeddings reached the OpenAI fake, nothing else.
    let journal = fakes["openai"].journal();
    assert_eq!(
        journal
            .iter()
            .filter(|e| e.path.ends_with("/chat/completions"))
            .count(),
        4
    );
    assert_eq!(
        journal.iter().filter(|e| e.path.ends_with("/embeddings")).count(),
        4
    );

    let pkg = out.join("kb-2026.12.1");
    let manifest = std::fs::read_to_string(pkg.join("manifest.yaml")).unwrap();
    assert!(manifest.contains("checksum: sha256:"), "{manifest}");
    assert!(!pkg.join(llm_gateway::ops::build::PROGRESS_FILE).exists());
    let store = OfflineStore::load(&OfflineConfig {
        packages: vec![pkg.clone()],
        ..OfflineConfig::default()
    });
    assert!(store.issues().is_empty(), "{:?}", store.issues());
    let status = serde_json::to_value(store.status()).unwrap();
    assert_eq!(status["entries"], 4);
    assert_eq!(status["packages"][0]["checksum_ok"], true);
    let emb = &status["packages"][0]["embeddings"];
    assert_eq!(emb["model"], "text-embedding-3-small", "{status}");
    let dim = emb["dimension"].as_u64().unwrap() as usize;
    let hit = store.lookup("How do I export the sales report?").unwrap();
    assert!(hit.entry.answer.starts_with("[openai]"), "{}", hit.entry.answer);
    assert_eq!(hit.entry.embedding.as_ref().unwrap().len(), dim);

    // offline-dry-run proves it: every prompt of the file answered from the package, no 5xx.
    let dry_cfg = write_config(
        d,
        &format!(
            "{}\noffline: {{ packages: [\"{}\"] }}\n",
            yaml(&fakes, "openai, kimi", "", "compatible"),
            pkg.display()
        ),
    );
    let dry_report = d.join("dry.json");
    let o = run(&[
        "offline-dry-run",
        "--config",
        dry_cfg.to_str().unwrap(),
        "--prompts",
        prompts.to_str().unwrap(),
        "--report",
        dry_report.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    let dr = json(&dry_report);
    assert_eq!(dr["hit_rate"], 1.0, "{dr}");
    assert_eq!(dr["by_source"]["offline-package"], 5, "{dr}");
    assert!(dr["package_issues"].as_array().unwrap().is_empty());

    // The same version again is refused, and the package is untouched.
    let before = std::fs::read(pkg.join("entries.jsonl")).unwrap();
    let o = run(&args);
    assert!(!o.status.success());
    assert!(text(&o).contains("already exists"), "{}", text(&o));
    assert_eq!(std::fs::read(pkg.join("entries.jsonl")).unwrap(), before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_prompts_are_reported_and_only_they_are_asked_again() {
    let fakes = fakes().await;
    let tmp = dir("failed");
    let d = tmp.path();
    let cfg = write_config(d, &yaml(&fakes, "openai", "", "compatible"));
    let prompts = d.join("prompts.txt");
    std::fs::write(&prompts, PROMPTS).unwrap();
    let (out, report) = (d.join("packages"), d.join("build.json"));
    let args = build_args(
        cfg.to_str().unwrap(),
        prompts.to_str().unwrap(),
        out.to_str().unwrap(),
        "1",
        report.to_str().unwrap(),
    );
    // The second prompt is refused (a 400 goes back to the client, no fallback); the third hits a quota.
    fakes["openai"]
        .add_fault(FaultSpec::new(FaultKind::BadRequest).after_requests(1).times(1))
        .unwrap();
    let o = run(&args);
    assert!(!o.status.success(), "{}", text(&o));
    let r = json(&report);
    assert_eq!(r["written"], false);
    assert_eq!(r["failed"].as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r["failed"][0]["prompt"], "How do I export the sales report?");
    assert!(r["failed"][0]["error"].as_str().unwrap().contains("400"), "{r}");
    assert!(text(&o).contains("run the same command again"), "{}", text(&o));
    assert!(!out.join("kb-1/manifest.yaml").exists());

    let chats = |f: &llm_mocks::FakeServer| {
        f.journal()
            .iter()
            .filter(|e| e.path.ends_with("/chat/completions"))
            .count()
    };
    let before = chats(&fakes["openai"]);
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o));
    let r = json(&report);
    assert_eq!(
        (r["resumed"].as_u64(), r["asked"].as_u64()),
        (Some(3), Some(1)),
        "{r}"
    );
    assert_eq!(
        chats(&fakes["openai"]) - before,
        1,
        "only the failed prompt is asked again"
    );
    assert_eq!(r["entries"], 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_build_resumes_without_asking_twice() {
    let fakes = fakes().await;
    let tmp = dir("killed");
    let d = tmp.path();
    let cfg = write_config(d, &yaml(&fakes, "openai", "", "compatible"));
    let prompts = d.join("prompts.txt");
    let list: Vec<String> = (0..8).map(|i| format!("Вопрос номер {i} про отчёт")).collect();
    std::fs::write(&prompts, list.join("\n")).unwrap();
    let (out, report) = (d.join("packages"), d.join("build.json"));
    let args = build_args(
        cfg.to_str().unwrap(),
        prompts.to_str().unwrap(),
        out.to_str().unwrap(),
        "1",
        report.to_str().unwrap(),
    );
    // Slow answers, so the build is still running when it is killed.
    fakes["openai"].update_settings(SettingsPatch {
        latency_ms: Some(300),
        ..SettingsPatch::default()
    });
    let mut child = cmd(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let progress = out.join("kb-1").join(llm_gateway::ops::build::PROGRESS_FILE);
    let lines = |p: &Path| {
        std::fs::read_to_string(p)
            .map(|t| t.matches('\n').count())
            .unwrap_or(0)
    };
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        while lines(&progress) < 3 {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    child.kill().unwrap();
    let _ = child.wait();
    waited.expect("three prompts answered before the kill");
    let kept = lines(&progress);
    assert!(kept < 8, "killed before the end");
    assert!(!out.join("kb-1/manifest.yaml").exists());
    fakes["openai"].update_settings(SettingsPatch {
        latency_ms: Some(0),
        ..SettingsPatch::default()
    });
    let second_started = std::time::SystemTime::now();
    let o = run(&args);
    assert!(o.status.success(), "{}", text(&o));
    let r = json(&report);
    assert_eq!(r["resumed"].as_u64().unwrap() as usize, kept, "{r}");
    assert_eq!(r["asked"].as_u64().unwrap() as usize, 8 - kept, "{r}");
    let asked_again = fakes["openai"]
        .journal()
        .iter()
        .filter(|e| e.time >= second_started && e.path.ends_with("/chat/completions"))
        .count();
    assert_eq!(asked_again, 8 - kept, "no prompt asked twice");
    let store = OfflineStore::load(&OfflineConfig {
        packages: vec![out.join("kb-1")],
        ..OfflineConfig::default()
    });
    assert!(store.issues().is_empty(), "{:?}", store.issues());
    assert_eq!(store.status().entries, 8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_misses_become_entries_and_secrets_stay_out() {
    let fakes = fakes().await;
    let tmp = dir("misses");
    let d = tmp.path();
    // A live gateway in offline mode with a one-entry package: other questions miss.
    let pkg = d.join("seed");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(
        pkg.join("manifest.yaml"),
        "name: seed\nversion: \"1\"\ncreated: 2026-12-01\n",
    )
    .unwrap();
    std::fs::write(
        pkg.join("entries.jsonl"),
        "{\"id\": \"hello\", \"prompts\": [\"Say hello\"], \"answer\": \"Hello!\"}\n",
    )
    .unwrap();
    let live_yaml = format!(
        "{}\noffline: {{ packages: [\"{}\"] }}\n",
        yaml(&fakes, "openai, kimi", "", "compatible").replace("mode: auto", "mode: offline"),
        pkg.display()
    );
    let (state, _) = gateway(&live_yaml);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(llm_gateway::server::run(listener, None, state, async move {
        let _ = stop_rx.await;
    }));
    let client = reqwest::Client::new();
    let ask = |q: &str| {
        let body = serde_json::json!({"model": "default", "messages": [{"role": "user", "content": q}]});
        let c = client.clone();
        async move {
            c.post(format!("http://{addr}/v1/chat/completions"))
                .json(&body)
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(ask("Say hello").await, 200);
    for q in [
        "Как посчитать маржу по региону?",
        "как посчитать маржу по РЕГИОНУ",
        "Which KPI shows retention?",
        "my key sk-test-openai-secret fails, why?",
    ] {
        assert_eq!(ask(q).await, 503, "{q}");
    }
    // An embeddings input the packages have no vector for is a miss too.
    let r = client
        .post(format!("http://{addr}/v1/embeddings"))
        .json(&serde_json::json!({"model": "embeddings", "input": ["Quarterly revenue by region"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 503);
    let url = format!("http://{addr}/admin/offline/misses");
    let one: Value = client
        .get(format!("{url}?limit=1"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(one["misses"].as_array().unwrap().len(), 1, "{one}");
    let bad = client.get(format!("{url}?limit=many")).send().await.unwrap();
    assert_eq!(bad.status(), 400);
    let misses: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
    assert_eq!(misses["total_misses"], 5, "{misses}");
    assert_eq!(misses["entries"], 4, "{misses}");
    assert_eq!(misses["misses"][0]["count"], 2);
    assert!(!misses.to_string().contains("sk-test-openai-secret"), "{misses}");
    assert!(!misses.to_string().contains("openai secret"), "{misses}");

    // The build asks the fakes (a config in auto mode) for each recorded, unredacted miss.
    let cfg = write_config(d, &yaml(&fakes, "kimi", "", "compatible"));
    let (out, report) = (d.join("packages"), d.join("build.json"));
    let o = run(&[
        "offline",
        "build",
        "--config",
        cfg.to_str().unwrap(),
        "--from-misses",
        &url,
        "--out",
        out.to_str().unwrap(),
        "--name",
        "from-misses",
        "--version",
        "1",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", text(&o));
    assert!(text(&o).contains("a secret was removed from it"), "{}", text(&o));
    let store = OfflineStore::load(&OfflineConfig {
        packages: vec![out.join("from-misses-1")],
        ..OfflineConfig::default()
    });
    assert!(store.issues().is_empty(), "{:?}", store.issues());
    assert_eq!(store.status().entries, 3);
    assert!(store.lookup("Quarterly revenue by region").is_some());
    let hit = store.lookup("Как посчитать маржу по региону?").unwrap();
    assert!(hit.entry.answer.starts_with("[kimi]"), "{}", hit.entry.answer);
    assert!(store.lookup("Which KPI shows retention?").is_some());
    let entries = std::fs::read_to_string(out.join("from-misses-1/entries.jsonl")).unwrap();
    assert!(!entries.contains("secret"), "{entries}");

    // A bad URL is a clear error, not a panic.
    let o = run(&[
        "offline",
        "build",
        "--config",
        cfg.to_str().unwrap(),
        "--from-misses",
        &format!("http://{addr}/admin/providers"),
        "--out",
        out.to_str().unwrap(),
        "--name",
        "x",
        "--version",
        "1",
    ]);
    assert!(!o.status.success());
    assert!(text(&o).contains("no \"misses\" list"), "{}", text(&o));
    let _ = stop_tx.send(());
    let _ = tokio::time::timeout(Duration::from_secs(10), server).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn careless_input_gets_clear_errors_and_secrets_never_reach_a_package() {
    let fakes = fakes().await;
    let tmp = dir("careless");
    let d = tmp.path();
    let cfg = write_config(d, &yaml(&fakes, "openai", "", "compatible"));
    let c = cfg.to_str().unwrap();
    let out = d.join("packages");
    let o = out.to_str().unwrap();
    let prompts = d.join("prompts.txt");
    std::fs::write(&prompts, "Repeat after me: sk-test-kimi-secret\nWhat is a KPI?\n").unwrap();
    let p = prompts.to_str().unwrap();
    let report = d.join("r.json");
    let r = report.to_str().unwrap();
    // A prompt holding a configured secret is never asked nor stored, even with --skip-failed.
    let run_ok = run(&[
        "offline",
        "build",
        "--config",
        c,
        "--prompts",
        p,
        "--out",
        o,
        "--name",
        "kb",
        "--version",
        "1",
        "--report",
        r,
        "--skip-failed",
    ]);
    assert!(run_ok.status.success(), "{}", text(&run_ok));
    let rep = json(&report);
    assert!(
        rep["failed"][0]["error"]
            .as_str()
            .unwrap()
            .contains("configured secret"),
        "{rep}"
    );
    assert!(!std::fs::read_to_string(&report)
        .unwrap()
        .contains("sk-test-kimi-secret"));
    let entries = std::fs::read_to_string(out.join("kb-1/entries.jsonl")).unwrap();
    assert_eq!(entries.lines().count(), 1);
    assert!(!entries.contains("secret"), "{entries}");
    assert!(fakes["openai"]
        .journal()
        .iter()
        .all(|e| !String::from_utf8_lossy(&e.body).contains("sk-test-kimi-secret")));

    for (args, want) in [
        (vec!["--name", "../evil", "--version", "1"], "--name \"../evil\""),
        (vec!["--name", "kb", "--version", "a/b"], "--version \"a/b\""),
        (
            vec!["--name", "kb", "--version", "2", "--provider", "nosuch"],
            "--provider \"nosuch\" is not in the config",
        ),
        (
            vec!["--name", "kb", "--version", "3", "--model", "no-such-model"],
            "cannot ask model \"no-such-model\"",
        ),
    ] {
        let mut a = vec![
            "offline",
            "build",
            "--config",
            c,
            "--prompts",
            p,
            "--out",
            o,
            "--report",
            r,
        ];
        a.extend(args);
        let res = run(&a);
        assert_eq!(res.status.code(), Some(1), "{a:?}: {}", text(&res));
        assert!(text(&res).contains(want), "{a:?}: {}", text(&res));
    }
    assert!(!d.join("evil-1").exists() && !out.join("kb-2").exists());
    // Unreachable misses URL; both sources at once (a usage error).
    let res = run(&[
        "offline",
        "build",
        "--config",
        c,
        "--from-misses",
        "http://127.0.0.1:1/admin/offline/misses",
        "--out",
        o,
        "--name",
        "kb",
        "--version",
        "9",
    ]);
    assert_eq!(res.status.code(), Some(1));
    assert!(
        text(&res).contains("cannot reach http://127.0.0.1:1/admin/offline/misses"),
        "{}",
        text(&res)
    );
    let res = run(&[
        "offline",
        "build",
        "--config",
        c,
        "--prompts",
        p,
        "--from-misses",
        "http://x",
        "--out",
        o,
        "--name",
        "kb",
        "--version",
        "9",
    ]);
    assert_eq!(res.status.code(), Some(2), "{}", text(&res));

    // incident-report: bad times and an unreachable Prometheus are clear errors.
    let res = run(&[
        "incident-report",
        "--prometheus",
        "http://127.0.0.1:1",
        "--from",
        "yesterday",
    ]);
    assert_eq!(res.status.code(), Some(2));
    assert!(
        text(&res).contains("--from: \"yesterday\" is not a time"),
        "{}",
        text(&res)
    );
    let res = run(&[
        "incident-report",
        "--prometheus",
        "http://127.0.0.1:1",
        "--from",
        "now-1h",
    ]);
    assert_eq!(res.status.code(), Some(1));
    assert!(
        text(&res).contains("cannot reach Prometheus at http://127.0.0.1:1"),
        "{}",
        text(&res)
    );
    let res = run(&[
        "incident-report",
        "--prometheus",
        "http://127.0.0.1:1",
        "--from",
        "now",
        "--to",
        "now-1h",
    ]);
    assert_eq!(res.status.code(), Some(1));
    assert!(text(&res).contains("must be after --from"), "{}", text(&res));
    let res = run(&["incident-report", "--prometheus", "not a url", "--from", "now-1h"]);
    assert_eq!(res.status.code(), Some(1));
    assert!(text(&res).contains("is not a URL"), "{}", text(&res));
}
