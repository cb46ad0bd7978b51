//! Operator commands behind `llm-gateway smoke`, `offline-dry-run`, `offline build` and `incident-report`:
//! library calls so tests and the binary share them; each returns a report that is printed and written.

pub mod build;
pub mod dry_run;
pub mod incident;
pub mod smoke;

use std::path::Path;

use serde::Serialize;

/// Writes `report` as pretty JSON, creating parent folders.
pub fn write_report(path: &Path, report: &impl Serialize) -> Result<(), String> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    }
    let text = serde_json::to_string_pretty(report).map_err(|e| e.to_string())?;
    std::fs::write(path, text + "\n").map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Nearest-rank percentile of sorted values (0 when empty).
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}
