//! The scenario format (`version: 1`): strict YAML parsing (phase one, `raw`), then validation into the runtime
//! types below (phase two, `validate`), every error naming the file, the YAML path and what was expected.

pub mod bound;
mod raw;
mod validate;

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use llm_chaos::{Stream, ToxicKind};
use llm_mocks::FaultSpec;
use serde::Serialize;

pub use bound::{Bound, MetricFunc, Op, Selector, Unit};

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

/// Which proxies or fakes a fault targets.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Target {
    /// `"*"`: every one.
    All,
    /// One by provider name.
    Named(String),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::All => f.write_str("*"),
            Target::Named(n) => f.write_str(n),
        }
    }
}

/// A fault, scoped to its phase.
#[derive(Debug, Clone)]
pub enum Fault {
    /// A chaos toxic on a proxy.
    Toxic {
        /// Proxy (named after the provider it fronts).
        proxy: Target,
        /// Toxic name (default `<type>_<stream>`).
        name: String,
        /// Direction.
        stream: Stream,
        /// Probability per connection.
        toxicity: f32,
        /// Type and attributes.
        kind: ToxicKind,
    },
    /// A proxy switched off (`enabled: false`: connections refused) or on.
    Proxy {
        /// Proxy.
        proxy: Target,
        /// The state during the phase.
        enabled: bool,
    },
    /// A fault of a fake provider.
    Fake {
        /// Fake (by provider name).
        fake: Target,
        /// The fault as the fakes' admin API takes it.
        spec: FaultSpec,
    },
    /// Fake settings during the phase.
    FakeSettings {
        /// Fake.
        fake: Target,
        /// Latency added to every answer.
        latency_ms: Option<u64>,
        /// GigaChat token lifetime.
        token_ttl_ms: Option<u64>,
    },
}

impl Fault {
    /// A short description for reports, e.g. `openai: toxic timeout upstream`.
    pub fn describe(&self) -> String {
        match self {
            Fault::Toxic { proxy, stream, kind, toxicity, .. } => {
                let attrs = kind.attributes();
                let t = if *toxicity < 1.0 { format!(" toxicity {toxicity}") } else { String::new() };
                format!("proxy {proxy}: {} {} {attrs}{t}", kind.type_name(), stream.as_str())
            }
            Fault::Proxy { proxy, enabled } => format!("proxy {proxy}: enabled={enabled}"),
            Fault::Fake { fake, spec } => {
                format!("fake {fake}: {}", serde_json::to_string(spec).unwrap_or_else(|_| spec.fault.to_string()))
            }
            Fault::FakeSettings { fake, latency_ms, token_ttl_ms } => {
                format!("fake {fake}: settings latency_ms={latency_ms:?} token_ttl_ms={token_ttl_ms:?}")
            }
        }
    }
}

/// When the load stops.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stop {
    /// After this many requests.
    Count(u64),
    /// After this long (requests in flight finish).
    Duration(Duration),
}

/// How requests are paced.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Pacing {
    /// N workers, each sending the next request when its last one is done (closed model).
    Concurrency(u32),
    /// Arrivals per second whatever the latency (open model), at most `max_in_flight` at once.
    Rate {
        /// Requests per second.
        per_second: f64,
        /// Cap on requests in flight.
        max_in_flight: u32,
    },
}

/// Which API route the load calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Route {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /api/assistants/generate`.
    Assistants,
}

/// `load:`.
#[derive(Debug, Clone)]
pub struct Load {
    /// Count or duration.
    pub stop: Stop,
    /// Concurrency or rate.
    pub pacing: Pacing,
    /// `stream: true` for SSE.
    pub stream: bool,
    /// Route.
    pub route: Route,
    /// Model name.
    pub model: String,
    /// Extra request headers (e.g. `X-LLM-Provider`).
    pub headers: Vec<(String, String)>,
    /// Prompts, picked with the scenario's seed.
    pub prompts: Vec<String>,
    /// `max_tokens`, if set.
    pub max_tokens: Option<u32>,
    /// Client-side timeout per request.
    pub timeout: Duration,
}

/// What a check measures.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case", tag = "kind", content = "arg")]
pub enum Measure {
    /// Requests sent.
    Requests,
    /// Share of requests answered 2xx (and, for streams, completed).
    SuccessRate,
    /// Responses with a 5xx status (or a share with `%`).
    Status5xx,
    /// Responses with this status.
    Status(u16),
    /// Share of requests whose `X-LLM-Actual-Provider` is this provider.
    ServedBy(String),
    /// Share of requests whose `X-LLM-Source` is this source.
    Source(String),
    /// Requests with `X-LLM-Fallbacks` > 0.
    FellBack,
    /// A latency statistic over all requests.
    Latency(Stat),
    /// A latency statistic over the requests that fell back.
    FallbackLatency(Stat),
    /// A metric's increase over the phase or its value at the end.
    Metric {
        /// Increase or value.
        func: MetricFunc,
        /// Which series.
        selector: Selector,
    },
    /// Requests a fake received during the phase.
    Journal {
        /// Provider name.
        fake: String,
        /// Which requests.
        what: JournalWhat,
    },
    /// Streams that ended this way.
    Stream(StreamEnd),
    /// Error responses with this `error.code`.
    ErrorCode(String),
    /// Share of error responses whose `error.attempts` name these providers in this order.
    ErrorLists(Vec<String>),
}

/// A latency statistic.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Stat {
    /// Percentile (0-100).
    P(f64),
    /// Mean.
    Mean,
    /// Minimum.
    Min,
    /// Maximum.
    Max,
}

/// Which journal entries count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum JournalWhat {
    /// Inference calls (chat, generation, embeddings).
    Inference,
    /// GigaChat OAuth token requests.
    Oauth,
    /// Everything.
    All,
}

/// How a client stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum StreamEnd {
    /// `data: [DONE]` and no error event.
    Completed,
    /// An explicit `event: error` and no `[DONE]`.
    ErrorEvent,
    /// Neither: the stream stopped silently (what the gateway must never do).
    Cut,
    /// An error event followed by `[DONE]` (a lie).
    ErrorThenDone,
    /// Not a stream answer (non-200).
    NotStreamed,
}

impl StreamEnd {
    /// The YAML key.
    pub fn as_str(self) -> &'static str {
        match self {
            StreamEnd::Completed => "completed",
            StreamEnd::ErrorEvent => "error_event",
            StreamEnd::Cut => "cut",
            StreamEnd::ErrorThenDone => "error_then_done",
            StreamEnd::NotStreamed => "not_streamed",
        }
    }
}

/// One expectation.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// YAML path, e.g. `phases[1].expect.latency.p95`.
    pub path: String,
    /// As the user wrote it, e.g. `latency.p95 < 500ms`.
    pub label: String,
    /// What is measured.
    pub measure: Measure,
    /// The bound.
    pub bound: Bound,
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
    let text = std::fs::read_to_string(path)
        .map_err(|source| FormatError::Io { file: path.display().to_string(), source })?;
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
        FormatError::Parse { file: file.clone(), path: p, message }
    })?;
    validate::validate(raw, path).map_err(|problems| FormatError::Invalid { file, problems })
}

/// Scenario files under `paths` (files as given, directories: their `*.yaml`/`*.yml`, sorted).
pub fn discover(paths: &[PathBuf]) -> Result<Vec<PathBuf>, FormatError> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let rd = std::fs::read_dir(p).map_err(|source| FormatError::Io { file: p.display().to_string(), source })?;
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
