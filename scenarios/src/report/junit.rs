//! JUnit XML for CI: one `<testsuite>` per scenario, one `<testcase>` per expectation (plus one per stage error and
//! rollback action), failures carrying the measured value and the bound.

use std::fmt::Write;
use std::path::Path;

use super::{create_parent, escape, RunReport};

/// Renders the report as JUnit XML.
pub fn render(r: &RunReport) -> String {
    let mut o = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    let total: usize = r.scenarios.iter().map(cases).sum();
    let failures: usize = r.scenarios.iter().map(failed_cases).sum();
    let _ = writeln!(
        o,
        "<testsuites name=\"llm-scenarios\" tests=\"{total}\" failures=\"{failures}\" time=\"{:.3}\">",
        r.wall_seconds
    );
    for s in &r.scenarios {
        let _ = writeln!(
            o,
            "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" time=\"{:.3}\" file=\"{}\">",
            escape(&s.name),
            cases(s),
            failed_cases(s),
            s.wall_seconds,
            escape(&s.file)
        );
        for e in &s.errors {
            case(&mut o, &s.name, "stand", Some(e));
        }
        for st in &s.stages {
            let class = format!("{}.{}", s.name, st.name);
            for e in &st.errors {
                case(&mut o, &class, "stage", Some(e));
            }
            for c in &st.checks {
                let msg = format!("{}: measured {}, expected {}", c.label, c.measured, c.bound);
                case(&mut o, &class, &c.label, (!c.passed).then_some(&msg));
            }
        }
        for rb in &s.rollback {
            let class = format!("{}.rollback", s.name);
            case(&mut o, &class, rb.action.as_str(), (!rb.ok).then_some(&rb.detail));
        }
        o.push_str("  </testsuite>\n");
    }
    o.push_str("</testsuites>\n");
    o
}

fn cases(s: &super::ScenarioReport) -> usize {
    s.errors.len()
        + s.rollback.len()
        + s.stages
            .iter()
            .map(|st| st.errors.len() + st.checks.len())
            .sum::<usize>()
}

fn failed_cases(s: &super::ScenarioReport) -> usize {
    s.errors.len()
        + s.rollback.iter().filter(|r| !r.ok).count()
        + s.stages
            .iter()
            .map(|st| st.errors.len() + st.checks.iter().filter(|c| !c.passed).count())
            .sum::<usize>()
}

fn case(o: &mut String, class: &str, name: &str, failure: Option<&String>) {
    let _ = write!(
        o,
        "    <testcase classname=\"{}\" name=\"{}\"",
        escape(class),
        escape(name)
    );
    match failure {
        None => o.push_str("/>\n"),
        Some(msg) => {
            let _ = writeln!(
                o,
                "><failure message=\"{}\">{}</failure></testcase>",
                escape(msg),
                escape(msg)
            );
        }
    }
}

/// Writes the JUnit file.
pub fn write(r: &RunReport, path: &Path) -> std::io::Result<()> {
    create_parent(path)?;
    std::fs::write(path, render(r))
}
