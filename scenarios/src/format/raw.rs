//! Phase one of scenario loading: the YAML as written, strict (`deny_unknown_fields`), no cross-field checks.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawScenario {
    pub(crate) version: u32,
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) description: Option<String>,
    #[serde(default)]
    pub(crate) tags: Vec<String>,
    #[serde(default)]
    pub(crate) seed: Option<u64>,
    pub(crate) gateway: RawGateway,
    #[serde(default)]
    pub(crate) steady_state: Option<RawSteadyState>,
    #[serde(default)]
    pub(crate) phases: Vec<RawPhase>,
    #[serde(default)]
    pub(crate) rollback: Option<Vec<String>>,
}

/// `gateway:`: the config file and what to change in it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGateway {
    pub(crate) config: String,
    #[serde(default)]
    pub(crate) overrides: Option<serde_norway::Value>,
    #[serde(default)]
    pub(crate) replicas: Option<u32>,
}

/// `steady_state:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSteadyState {
    #[serde(default)]
    pub(crate) recovery_wait: Option<String>,
    pub(crate) load: RawLoad,
    #[serde(default)]
    pub(crate) expect: RawExpect,
}

/// One entry of `phases:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPhase {
    pub(crate) name: String,
    #[serde(default)]
    pub(crate) duration: Option<String>,
    #[serde(default)]
    pub(crate) pause_before: Option<String>,
    #[serde(default)]
    pub(crate) mode: Option<String>,
    #[serde(default)]
    pub(crate) faults: Vec<RawFault>,
    #[serde(default)]
    pub(crate) load: Option<RawLoad>,
    #[serde(default)]
    pub(crate) expect: RawExpect,
}

/// A fault: a chaos toxic or proxy state (`proxy:`), or a fake fault or setting (`fake:`).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawFault {
    pub(crate) proxy: Option<String>,
    pub(crate) toxic: Option<String>,
    pub(crate) name: Option<String>,
    pub(crate) stream: Option<String>,
    pub(crate) toxicity: Option<f64>,
    pub(crate) attributes: Option<BTreeMap<String, i64>>,
    pub(crate) enabled: Option<bool>,
    pub(crate) fake: Option<String>,
    pub(crate) fault: Option<String>,
    pub(crate) times: Option<u64>,
    pub(crate) probability: Option<f64>,
    pub(crate) after_requests: Option<u64>,
    pub(crate) retry_after_s: Option<u64>,
    pub(crate) after_chunks: Option<u64>,
    pub(crate) delay_ms: Option<u64>,
    pub(crate) latency_ms: Option<u64>,
    pub(crate) token_ttl_ms: Option<u64>,
    pub(crate) stream_delay_ms: Option<u64>,
}

/// `load:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLoad {
    pub(crate) requests: Option<u64>,
    pub(crate) duration: Option<String>,
    pub(crate) concurrency: Option<u32>,
    pub(crate) rate: Option<f64>,
    #[serde(default)]
    pub(crate) stream: bool,
    /// `chat`, `responses`, `messages`, `assistants`, `embeddings` or `mcp`; `api:` is the same key.
    #[serde(alias = "api")]
    pub(crate) route: Option<String>,
    pub(crate) model: Option<String>,
    #[serde(default)]
    pub(crate) headers: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) prompts: Vec<String>,
    pub(crate) max_tokens: Option<u32>,
    pub(crate) timeout: Option<String>,
    /// Fields merged into every request body (tools, image messages, response_format, dimensions...).
    pub(crate) body: Option<serde_json::Value>,
}

/// `expect:`: every key optional; bounds are strings such as `">= 99%"` or `"< 500ms"`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawExpect {
    pub(crate) requests: Option<String>,
    pub(crate) success_rate: Option<String>,
    pub(crate) status_5xx: Option<String>,
    #[serde(default)]
    pub(crate) status: BTreeMap<u16, String>,
    #[serde(default)]
    pub(crate) served_by: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) source: BTreeMap<String, String>,
    pub(crate) fell_back: Option<String>,
    #[serde(default)]
    pub(crate) latency: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) fallback_latency: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) metrics: Vec<String>,
    #[serde(default)]
    pub(crate) journal: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) streams: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) error_code: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) finish_reason: BTreeMap<String, String>,
    pub(crate) error_lists: Option<Vec<String>>,
}
