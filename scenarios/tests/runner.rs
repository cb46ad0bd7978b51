//! The runner's contract: a failing scenario is reported (measured value next to the bound) and exits non-zero;
//! the rollback always runs, also after a failing phase; JSON and JUnit reports are written.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;
use std::process::Command;

use llm_scenarios::format;
use llm_scenarios::progress::Progress;
use llm_scenarios::report::StageKind;
use llm_scenarios::{run_scenario, RunOptions};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

fn out_dir(test: &str) -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(test);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn a_scenario_that_must_fail_is_reported_and_exits_non_zero() {
    let dir = out_dir("must_fail");
    let (json, junit, html) = (dir.join("r.json"), dir.join("junit.xml"), dir.join("r.html"));
    let out = Command::new(env!("CARGO_BIN_EXE_llm-scenarios"))
        .arg("run")
        .arg(fixture("must_fail.yaml"))
        .arg("--no-progress")
        .arg(format!("--json={}", json.display()))
        .arg(format!("--junit={}", junit.display()))
        .arg(format!("--html={}", html.display()))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(1),
        "exit code\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("FAIL must-fail"), "{stdout}");
    // The failing expectation, with the measured value next to the bound, and its YAML path.
    let line = stdout
        .lines()
        .find(|l| l.contains("FAIL served_by.kimi >= 90%"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        line.contains("measured 0.00%") && line.contains("bound >= 90.00%"),
        "{line}"
    );
    assert!(stdout.contains("at phases[0].expect.served_by.kimi"), "{stdout}");
    assert!(stdout.contains("FAIL latency.p99 < 1us"), "{stdout}");
    assert!(stdout.contains("ok   1 of 3 checks"), "{stdout}");
    assert!(
        stdout.contains("1 scenarios: 0 passed, 1 failed; 20 requests"),
        "{stdout}"
    );
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    assert_eq!(j["passed"], false);
    assert_eq!(j["total_requests"], 20);
    assert_eq!(
        j["scenarios"][0]["stages"][0]["checks"].as_array().unwrap().len(),
        3
    );
    let x = std::fs::read_to_string(&junit).unwrap();
    assert!(
        x.contains("<testsuite name=\"must-fail\" tests=\"6\" failures=\"2\""),
        "{x}"
    );
    assert!(
        x.contains("<failure message=\"served_by.kimi &gt;= 90%: measured 0.00%, expected &gt;= 90.00%\""),
        "{x}"
    );
    let h = std::fs::read_to_string(&html).unwrap();
    assert!(
        h.contains("must-fail") && h.contains("<svg"),
        "the HTML page has the timeline"
    );
}

#[test]
fn format_errors_exit_2_and_name_the_file() {
    let dir = out_dir("format_errors");
    let bad = dir.join("bad.yaml");
    let text = std::fs::read_to_string(fixture("valid.yaml"))
        .unwrap()
        .replace("toxic: latency", "toxic: latncy");
    // Keep the relative gateway config path valid from the temporary folder.
    let config = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../config/llm_gateway_simulation.yaml");
    let text = text.replace(
        "../../config/llm_gateway_simulation.yaml",
        &config.display().to_string(),
    );
    std::fs::write(&bad, text).unwrap();
    for cmd in ["validate", "run"] {
        let out = Command::new(env!("CARGO_BIN_EXE_llm-scenarios"))
            .arg(cmd)
            .arg(&bad)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{cmd}: {stderr}");
        assert!(
            stderr.contains(&format!("{}: 1 problem(s):", bad.display())),
            "{cmd}: {stderr}"
        );
        assert!(
            stderr.contains("phases[0].faults[0].toxic: unknown toxic type \"latncy\""),
            "{cmd}: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rollback_runs_after_a_failing_phase() {
    let path = fixture("rollback_after_failure.yaml");
    let sc = format::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let report = run_scenario(&sc, &RunOptions::default(), &Progress::new(false)).await;
    let table = llm_scenarios::report::console::scenario(&report, true);
    assert!(!report.passed, "{table}");
    let phase = report.stages.iter().find(|s| s.kind == StageKind::Phase).unwrap();
    assert!(!phase.passed(), "the phase fails\n{table}");
    assert_eq!(
        phase.summary.served_by.get("ollama"),
        Some(&10),
        "offline during the phase\n{table}"
    );
    let actions: Vec<(&str, bool)> = report
        .rollback
        .iter()
        .map(|r| (r.action.as_str(), r.ok))
        .collect();
    assert_eq!(
        actions,
        [
            ("reset_chaos", true),
            ("reset_fakes", true),
            ("restore_mode", true)
        ],
        "{table}"
    );
    let after = report
        .stages
        .iter()
        .find(|s| s.kind == StageKind::SteadyAfter)
        .unwrap();
    assert!(
        after.passed(),
        "the steady state holds again after the rollback\n{table}"
    );

    // Control: without restore_mode the gateway stays offline and the steady state after does not hold.
    let text = std::fs::read_to_string(&path).unwrap().replace(
        "rollback: [reset_chaos, reset_fakes, restore_mode]",
        "rollback: [reset_chaos, reset_fakes]",
    );
    let sc = format::parse(&text, &path).unwrap();
    let report = run_scenario(&sc, &RunOptions::default(), &Progress::new(false)).await;
    let after = report
        .stages
        .iter()
        .find(|s| s.kind == StageKind::SteadyAfter)
        .unwrap();
    assert!(
        !after.passed(),
        "{}",
        llm_scenarios::report::console::scenario(&report, true)
    );
    assert_eq!(after.summary.served_by.get("ollama"), Some(&10));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_steady_state_skips_the_phases_but_not_the_rollback() {
    let text = std::fs::read_to_string(fixture("rollback_after_failure.yaml"))
        .unwrap()
        .replace(
            "served_by: { openai: \"== 100%\" } }",
            "served_by: { kimi: \"== 100%\" } }",
        );
    let sc = format::parse(&text, &fixture("rollback_after_failure.yaml")).unwrap();
    let report = run_scenario(&sc, &RunOptions::default(), &Progress::new(false)).await;
    assert!(!report.passed);
    let kinds: Vec<(StageKind, bool)> = report.stages.iter().map(|s| (s.kind, s.skipped)).collect();
    assert_eq!(
        kinds,
        [(StageKind::SteadyBefore, false), (StageKind::Phase, true)]
    );
    assert_eq!(report.rollback.len(), 3);
    assert_eq!(report.requests, 10);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rehearsal_writes_the_incident_report_from_its_own_scrapes() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("suites/06_primary_quota_exhausted.yaml");
    let sc = format::load(&path).unwrap_or_else(|e| panic!("{e}"));
    let dir = out_dir("incident");
    let opts = RunOptions {
        incident_reports: Some(dir.clone()),
        ..RunOptions::default()
    };
    let report = run_scenario(&sc, &opts, &Progress::new(false)).await;
    assert!(
        report.passed,
        "{}",
        llm_scenarios::report::console::scenario(&report, true)
    );
    let file = dir.join("primary-quota-exhausted.md");
    assert_eq!(report.incident_report.as_deref(), Some(file.to_str().unwrap()));
    let md = std::fs::read_to_string(&file).unwrap();
    assert!(!md.contains("{{"), "{md}");
    // The counts are the run's own: every request it sent, none 5xx, one quota error and one cooldown.
    assert!(
        md.contains(&format!(
            "- {} requests on the inference routes; 0 answered 5xx",
            report.requests
        )),
        "{md}"
    );
    // openai answers the 20 steady-state and 20 baseline requests, then is skipped for the other 419 after one
    // quota error.
    assert!(
        md.contains(
            "| openai | 40 | quota_exhausted 1 | skipped_cooldown 419 | quota_exhausted 1 | 0 | closed |"
        ),
        "{md}"
    );
    let at = |s: &str| md.find(s).unwrap_or_else(|| panic!("{s:?} not in\n{md}"));
    assert!(
        at("rehearsal stage quota-runs-out started") < at("openai cooled down for quota_exhausted (once)")
    );
    assert!(
        at("openai cooled down for quota_exhausted (once)")
            < at("rehearsal stage still-cooling-down-after-the-fault started")
    );
    assert!(md.contains("| openai | kimi | quota_exhausted | 1 |"), "{md}");
}
