//! The HTML page of a run (self-contained, no external assets).

use std::path::Path;

use super::{create_parent, escape, RunReport};

/// Renders the page.
pub fn render(r: &RunReport) -> String {
    let mut o = String::from("<!doctype html><html><head><meta charset=\"utf-8\"><title>llm-scenarios</title></head><body>");
    for s in &r.scenarios {
        o.push_str(&format!("<h2>{} {}</h2>", escape(&s.name), if s.passed { "PASS" } else { "FAIL" }));
    }
    o.push_str("</body></html>\n");
    o
}

/// Writes the page.
pub fn write(r: &RunReport, path: &Path) -> std::io::Result<()> {
    create_parent(path)?;
    std::fs::write(path, render(r))
}
