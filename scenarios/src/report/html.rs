//! The HTML page of a run: a summary, then per scenario the SVG timeline, a table per stage and every check with
//! its measured value and bound. Self-contained: inline CSS and SVG, no scripts, no external assets.

use std::collections::BTreeSet;
use std::fmt::Write;
use std::path::Path;

use super::svg::{colour, key, timeline};
use super::{create_parent, escape, RunReport, ScenarioReport};

const STYLE: &str = "body{font-family:sans-serif;margin:24px;color:#222;max-width:1000px}\
table{border-collapse:collapse;margin:8px 0;font-size:13px}td,th{border:1px solid #ccc;padding:3px 7px;text-align:left}\
th{background:#f3f3f3}.pass{color:#1a7f37;font-weight:bold}.fail{color:#d62728;font-weight:bold}\
.num{text-align:right}section{border-top:2px solid #ddd;margin-top:28px}.key{display:inline-block;width:10px;height:10px;margin:0 4px 0 10px}\
code{background:#f6f6f6;padding:0 3px}";

fn verdict(ok: bool) -> &'static str {
    if ok {
        "<span class=\"pass\">PASS</span>"
    } else {
        "<span class=\"fail\">FAIL</span>"
    }
}

fn ms(v: f64) -> String {
    format!("{:.1}", v * 1e3)
}

fn legend(r: &ScenarioReport) -> String {
    let keys: BTreeSet<String> = r.samples.iter().map(key).collect();
    keys.iter()
        .map(|k| {
            format!(
                "<span class=\"key\" style=\"background:{}\"></span>{}",
                colour(k),
                escape(k)
            )
        })
        .collect()
}

fn scenario(o: &mut String, s: &ScenarioReport) {
    let _ = write!(
        o,
        "<section id=\"{}\"><h2>{} {}</h2><p>{}</p><p><code>{}</code> · seed {} · {} requests · {:.2} s</p>",
        escape(&s.name),
        verdict(s.passed),
        escape(&s.name),
        escape(&s.description),
        escape(&s.file),
        s.seed,
        s.requests,
        s.wall_seconds
    );
    for e in &s.errors {
        let _ = write!(o, "<p class=\"fail\">{}</p>", escape(e));
    }
    o.push_str(&timeline(s));
    let _ = write!(o, "<p>{}</p>", legend(s));
    o.push_str("<table><tr><th>stage</th><th>faults</th><th>requests</th><th>ok %</th><th>p50 ms</th><th>p95 ms</th><th>p99 ms</th><th>max ms</th><th>served by</th><th>fell back</th><th>verdict</th></tr>");
    for st in &s.stages {
        let sm = &st.summary;
        let ok = if sm.requests == 0 {
            "-".into()
        } else {
            format!("{:.1}", 100.0 * sm.ok as f64 / sm.requests as f64)
        };
        let served: Vec<String> = sm
            .served_by
            .iter()
            .map(|(k, n)| format!("{} {n}", escape(k)))
            .collect();
        let faults: Vec<String> = st.faults.iter().map(|f| escape(f)).collect();
        let _ = write!(
            o,
            "<tr><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{ok}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{}</td><td class=\"num\">{}</td><td>{}</td></tr>",
            escape(&st.name),
            faults.join("<br>"),
            sm.requests,
            ms(sm.p50),
            ms(sm.p95),
            ms(sm.p99),
            ms(sm.max),
            served.join(", "),
            sm.fell_back,
            if st.skipped { "skipped".to_string() } else { verdict(st.passed()).to_string() }
        );
    }
    o.push_str(
        "</table><table><tr><th>stage</th><th>expectation</th><th>measured</th><th>bound</th><th></th></tr>",
    );
    for st in &s.stages {
        for e in &st.errors {
            let _ = write!(
                o,
                "<tr><td>{}</td><td colspan=\"3\">{}</td><td>{}</td></tr>",
                escape(&st.name),
                escape(e),
                verdict(false)
            );
        }
        for c in &st.checks {
            let _ = write!(
                o,
                "<tr><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&st.name),
                escape(&c.label),
                escape(&c.measured),
                escape(&c.bound),
                verdict(c.passed)
            );
        }
    }
    for rb in &s.rollback {
        let _ = write!(
            o,
            "<tr><td>rollback</td><td><code>{}</code></td><td colspan=\"2\">{}</td><td>{}</td></tr>",
            rb.action.as_str(),
            escape(&rb.detail),
            verdict(rb.ok)
        );
    }
    o.push_str("</table></section>");
}

/// Renders the page.
pub fn render(r: &RunReport) -> String {
    let mut o = String::new();
    let _ = write!(o, "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>llm-scenarios run</title><style>{STYLE}</style></head><body>");
    let failed = r.scenarios.iter().filter(|s| !s.passed).count();
    let _ = write!(
        o,
        "<h1>{} llm-scenarios: {} scenarios, {} failed</h1><p>{} requests in {:.1} s (started at unix time {}).</p>",
        verdict(r.passed),
        r.scenarios.len(),
        failed,
        r.total_requests,
        r.wall_seconds,
        r.started_unix
    );
    o.push_str("<table><tr><th>scenario</th><th>requests</th><th>seconds</th><th>checks failed</th><th>verdict</th></tr>");
    for s in &r.scenarios {
        let bad: usize = s
            .stages
            .iter()
            .map(|st| st.checks.iter().filter(|c| !c.passed).count())
            .sum();
        let _ = write!(
            o,
            "<tr><td><a href=\"#{n}\">{n}</a></td><td class=\"num\">{}</td><td class=\"num\">{:.2}</td><td class=\"num\">{bad}</td><td>{}</td></tr>",
            s.requests,
            s.wall_seconds,
            verdict(s.passed),
            n = escape(&s.name)
        );
    }
    o.push_str("</table>");
    for s in &r.scenarios {
        scenario(&mut o, s);
    }
    o.push_str("</body></html>\n");
    o
}

/// Writes the page.
pub fn write(r: &RunReport, path: &Path) -> std::io::Result<()> {
    create_parent(path)?;
    std::fs::write(path, render(r))
}
