//! The console table: one block per scenario (a row per stage, then every check with its measured value next to
//! its bound), and a summary line for the run.

use std::fmt::Write;

use super::{RunReport, ScenarioReport, StageReport};
use crate::format::bound::show_value;
use crate::format::Unit;

fn ms(v: f64) -> String {
    show_value(v, Unit::Seconds)
}

fn served(st: &StageReport) -> String {
    let mut v: Vec<(&String, &u64)> = st.summary.served_by.iter().collect();
    v.sort_by(|a, b| b.1.cmp(a.1));
    v.iter()
        .take(4)
        .map(|(k, n)| format!("{k} {n}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// One scenario's block: every check when `verbose`, otherwise the failed ones and a count of the others.
pub fn scenario(r: &ScenarioReport, verbose: bool) -> String {
    let mut o = String::new();
    let verdict = if r.passed { "PASS" } else { "FAIL" };
    let _ = writeln!(
        o,
        "{verdict} {}  {:.2}s  {} requests  ({})",
        r.name, r.wall_seconds, r.requests, r.file
    );
    for e in &r.errors {
        let _ = writeln!(o, "  error: {e}");
    }
    if !r.stages.is_empty() {
        let _ = writeln!(
            o,
            "  {:<30} {:>6} {:>8} {:>9} {:>9} {:>9}  served by",
            "stage", "req", "ok", "p50", "p95", "max"
        );
    }
    for st in &r.stages {
        let s = &st.summary;
        let ok = if s.requests == 0 {
            "-".to_string()
        } else {
            format!("{:.1}%", 100.0 * s.ok as f64 / s.requests as f64)
        };
        let (p50, p95, max) = if s.requests == 0 {
            ("-".into(), "-".into(), "-".into())
        } else {
            (ms(s.p50), ms(s.p95), ms(s.max))
        };
        let _ = writeln!(
            o,
            "  {:<30} {:>6} {:>8} {:>9} {:>9} {:>9}  {}",
            st.name,
            s.requests,
            ok,
            p50,
            p95,
            max,
            served(st)
        );
        for f in &st.faults {
            let _ = writeln!(o, "      fault: {f}");
        }
        for e in &st.errors {
            let _ = writeln!(o, "      error: {e}");
        }
        for c in st.checks.iter().filter(|c| verbose || !c.passed) {
            let mark = if c.passed { "ok  " } else { "FAIL" };
            let _ = writeln!(
                o,
                "      {mark} {:<52} measured {:<18} bound {}",
                c.label, c.measured, c.bound
            );
            if !c.passed {
                let _ = writeln!(o, "           at {}", c.path);
            }
        }
        let ok = st.checks.iter().filter(|c| c.passed).count();
        if !verbose && ok > 0 {
            let _ = writeln!(o, "      ok   {ok} of {} checks", st.checks.len());
        }
    }
    for rb in &r.rollback {
        if !rb.ok {
            let _ = writeln!(o, "  rollback {} FAILED: {}", rb.action.as_str(), rb.detail);
        }
    }
    o
}

/// The run's summary.
pub fn summary(r: &RunReport) -> String {
    let mut o = String::new();
    let failed: Vec<&str> = r
        .scenarios
        .iter()
        .filter(|s| !s.passed)
        .map(|s| s.name.as_str())
        .collect();
    let passed = r.scenarios.len() - failed.len();
    let _ = writeln!(
        o,
        "{} scenarios: {passed} passed, {} failed; {} requests in {:.1}s",
        r.scenarios.len(),
        failed.len(),
        r.total_requests,
        r.wall_seconds
    );
    if !failed.is_empty() {
        let _ = writeln!(o, "failed: {}", failed.join(", "));
    }
    o
}
