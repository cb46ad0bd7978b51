//! The scenario format (`version: 1`): strict YAML parsing (phase one, `raw`), then validation into the runtime
//! types below (phase two, `validate`), every error naming the file, the YAML path and what was expected.

pub mod bound;
mod raw;
mod spec;
mod validate;

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use bound::{Bound, MetricFunc, Op, Selector, Unit};
pub use spec::{Check, Fault, JournalWhat, Load, Measure, Pacing, Route, Stat, Stop, StreamEnd, Target};

/// A validated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// The file it came from.
    pub file: PathBuf,
    /// Unique name (used for filters and reports).
    pub name: String,
    /// What it proves.
    pub description: String,
    /// Free tags (shown by `list`, matched by `--filter`).
    pub tags: Vec<String>,
    /// Seed for prompt choice and the embedded chaos server's toxicity rolls.
    pub seed: u64,
    /// The gateway under test.
    pub gateway: GatewaySpec,
    /// Checked before the phases (a gate) and again after the rollback.
    pub steady_state: Option<SteadyState>,
    /// In order.
    pub phases: Vec<Phase>,
    /// Always runs after the phases, even when one failed.
    pub rollback: Vec<RollbackAction>,
}

/// The gateway config: a file plus overrides merged into it.
#[derive(Debug, Clone)]
pub struct GatewaySpec {
    /// Resolved path of the config file.
    pub config: PathBuf,
    /// The YAML after the overrides were merged in (what the in-process gateway loads).
    pub yaml: String,
    /// The validated config (provider names, order, mode).
    pub parsed: llm_gateway::config::Config,
    /// Whether the scenario has overrides (a deployed gateway cannot take them).
    pub overridden: bool,
    /// `gateway.replicas`: gateways in process sharing one Redis (1: one gateway, state in memory as configured).
    pub replicas: u32,
}

/// `steady_state:`.
#[derive(Debug, Clone)]
pub struct SteadyState {
    /// Pause between the rollback and the check after the phases (lets breakers and cooldowns expire).
    pub recovery_wait: Duration,
    /// The probe load.
    pub load: Load,
    /// What must hold.
    pub expect: Vec<Check>,
}

/// One timed phase.
#[derive(Debug, Clone)]
pub struct Phase {
    /// Name (unique in the scenario).
    pub name: String,
    /// Minimum wall time of the phase; the load runs for it when it has no `requests`/`duration`.
    pub duration: Option<Duration>,
    /// Wait after the faults are applied, before the load starts.
    pub pause_before: Duration,
    /// Switch the gateway's mode (`POST /admin/mode`) for this phase.
    pub mode: Option<String>,
    /// Applied at the start of the phase, removed at its end.
    pub faults: Vec<Fault>,
    /// Traffic sent during the phase.
    pub load: Option<Load>,
    /// What must hold over the phase.
    pub expect: Vec<Check>,
}

/// Rollback actions; all run, in order, whatever happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RollbackAction {
    /// Remove every toxic and enable every proxy of the stand.
    ResetChaos,
    /// Clear every fake's faults and settings.
    ResetFakes,
    /// Put the gateway back in its configured mode.
    RestoreMode,
}

impl RollbackAction {
    /// The YAML name.
    pub fn as_str(self) -> &'static str {
        match self {
            RollbackAction::ResetChaos => "reset_chaos",
            RollbackAction::ResetFakes => "reset_fakes",
            RollbackAction::RestoreMode => "restore_mode",
        }
    }
}

/// One validation problem.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// YAML path.
    pub path: String,
    /// What is wrong and what was expected.
    pub message: String,
}

/// Why a scenario could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The file could not be read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file.
        file: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// YAML syntax, a wrong type, a missing or unknown key.
    #[error("{file}: {path}: {message}")]
    Parse {
        /// The file.
        file: String,
        /// YAML path.
        path: String,
        /// What serde said.
        message: String,
    },
    /// Parsed, but values are wrong; every problem is listed.
    #[error("{file}: {} problem(s):\n{}", .problems.len(), .problems.iter().map(|p| format!("  - {}: {}", p.path, p.message)).collect::<Vec<_>>().join("\n"))]
    Invalid {
        /// The file.
        file: String,
        /// Every problem.
        problems: Vec<Problem>,
    },
}

/// Loads and validates one scenario file.
pub fn load(path: &Path) -> Result<Scenario, FormatError> {
    let text = std::fs::read_to_string(path).map_err(|source| FormatError::Io {
        file: path.display().to_string(),
        source,
    })?;
    parse(&text, path)
}

/// Parses and validates scenario text; `path` names the file in errors and anchors relative paths.
pub fn parse(text: &str, path: &Path) -> Result<Scenario, FormatError> {
    let file = path.display().to_string();
    let de = serde_norway::Deserializer::from_str(text);
    let raw: raw::RawScenario = serde_path_to_error::deserialize(de).map_err(|e| {
        let p = e.path().to_string();
        let p = if p == "." { "(top level)".to_string() } else { p };
        let mut message = e.into_inner().to_string();
        // serde_norway prefixes its own (shorter) path; ours is already in front.
        if let Some((head, rest)) = message.split_once(": ") {
            if !head.contains(' ') && p.starts_with(head) {
                message = rest.to_string();
            }
        }
        FormatError::Parse {
            file: file.clone(),
            path: p,
            message,
        }
    })?;
    validate::validate(raw, path).map_err(|problems| FormatError::Invalid { file, problems })
}

/// Scenario files under `paths` (files as given, directories: their `*.yaml`/`*.yml`, sorted).
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, FormatError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|source| FormatError::Io {
                file: p.display().to_string(),
                source,
            })?;
            let mut files: Vec<PathBuf> = rd
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|f| f.extension().is_some_and(|x| x == "yaml" || x == "yml"))
                .collect();
            files.sort();
            out.extend(files);
        } else {
            out.push(p.clone());
        }
    }
    Ok(out)
}
