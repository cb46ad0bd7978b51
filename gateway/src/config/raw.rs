//! Phase one of config loading: the YAML as written, strict (`deny_unknown_fields`), no cross-field checks.

use std::collections::BTreeMap;

use serde::Deserialize;

/// The whole file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConfig {
    #[serde(default)]
    pub(crate) server: RawServer,
    pub(crate) mode: Option<String>,
    #[serde(default)]
    pub(crate) models: BTreeMap<String, BTreeMap<String, RawModelRef>>,
    /// Alias or `*` pattern -> logical model.
    #[serde(default)]
    pub(crate) aliases: BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) providers: BTreeMap<String, RawProvider>,
    #[serde(default)]
    pub(crate) fallback_policy: RawPolicy,
    /// Offline packages.
    #[serde(default)]
    pub(crate) offline: RawOffline,
    /// Response cache.
    #[serde(default)]
    pub(crate) cache: RawCache,
    /// Client API keys and their limits.
    #[serde(default)]
    pub(crate) limits: RawLimits,
    /// Connectivity probes (absent: no probes).
    pub(crate) connectivity: Option<RawConnectivity>,
    /// Shared state backend (absent: memory).
    #[serde(default)]
    pub(crate) state: RawState,
    /// The MCP server at `/mcp`.
    #[serde(default)]
    pub(crate) mcp: RawMcp,
    /// Trace export (absent: the standard `OTEL_EXPORTER_OTLP_*` variables decide; off without them).
    pub(crate) telemetry: Option<super::telemetry::RawTelemetry>,
    /// The Responses surface.
    #[serde(default)]
    pub(crate) responses: RawResponses,
}

/// `mcp:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMcp {
    pub(crate) enabled: Option<bool>,
    pub(crate) allowed_hosts: Option<Vec<String>>,
    pub(crate) allowed_origins: Option<Vec<String>>,
}

/// `responses:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawResponses {
    pub(crate) hosted_tools: Option<String>,
}

/// `state:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawState {
    pub(crate) backend: Option<String>,
    pub(crate) redis: Option<RawRedisState>,
}

/// `state.redis:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRedisState {
    pub(crate) url: Option<String>,
    pub(crate) key_prefix: Option<String>,
    pub(crate) timeout: Option<String>,
    pub(crate) on_error: Option<String>,
}

/// `offline:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawOffline {
    #[serde(default)]
    pub(crate) packages: Vec<String>,
    pub(crate) match_threshold: Option<f64>,
    pub(crate) embeddings: Option<bool>,
    #[serde(default)]
    pub(crate) misses: RawMisses,
}

/// `offline.misses:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawMisses {
    pub(crate) record: Option<String>,
    pub(crate) max_entries: Option<u64>,
}

/// `cache:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCache {
    pub(crate) enabled: Option<bool>,
    pub(crate) ttl: Option<String>,
    pub(crate) max_entries: Option<u64>,
    pub(crate) max_bytes: Option<u64>,
    pub(crate) scope: Option<String>,
    pub(crate) serve_stale_on_error: Option<bool>,
    pub(crate) stale_for: Option<String>,
    pub(crate) backend: Option<String>,
}

/// `limits:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawLimits {
    #[serde(default)]
    pub(crate) clients: Vec<RawClient>,
}

/// One entry of `limits.clients`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawClient {
    pub(crate) name: String,
    pub(crate) key: RawSecret,
    pub(crate) requests_per_minute: Option<u32>,
    pub(crate) tokens_per_minute: Option<u64>,
}

/// `providers.<name>.limits`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProviderLimits {
    pub(crate) requests_per_minute: Option<u32>,
    pub(crate) tokens_per_minute: Option<u64>,
    pub(crate) tokens_per_day: Option<u64>,
}

/// `connectivity:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawConnectivity {
    pub(crate) probe_interval: Option<String>,
    pub(crate) probe_timeout: Option<String>,
}

/// `server:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    pub(crate) listen: Option<String>,
    pub(crate) metrics_listen: Option<String>,
    pub(crate) body_limit_bytes: Option<u64>,
    pub(crate) shutdown_grace: Option<String>,
    /// When set, `/admin/*` requires `Authorization: Bearer <token>`.
    pub(crate) admin_token: Option<RawSecret>,
    pub(crate) header_read_timeout: Option<String>,
    pub(crate) idle_timeout: Option<String>,
    pub(crate) body_read_timeout: Option<String>,
    pub(crate) max_connections: Option<u64>,
    pub(crate) max_header_bytes: Option<u64>,
}

/// One entry of `providers:`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawProvider {
    pub(crate) kind: String,
    pub(crate) base_url: String,
    pub(crate) secret: Option<RawSecret>,
    pub(crate) connect_timeout: Option<String>,
    pub(crate) attempt_timeout: Option<String>,
    /// GigaChat only: OAuth endpoint and scope.
    pub(crate) auth: Option<RawGigaChatAuth>,
    /// Extra PEM root certificates (GigaChat's Russian Trusted Root CA).
    pub(crate) ca_bundle: Option<String>,
    /// Qwen only: `compatible` (OpenAI shape) or `native` (DashScope).
    pub(crate) api: Option<String>,
    /// Budgets kept below the provider's own quota.
    pub(crate) limits: Option<RawProviderLimits>,
}

/// Where a provider's secret comes from.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawSecret {
    pub(crate) env: Option<String>,
    pub(crate) file: Option<String>,
    /// Literal value, meant for fakes and rehearsal stands only.
    pub(crate) value: Option<String>,
}

/// GigaChat OAuth settings.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawGigaChatAuth {
    pub(crate) url: String,
    pub(crate) scope: Option<String>,
    pub(crate) refresh_before: Option<String>,
}

/// `fallback_policy:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawPolicy {
    #[serde(default)]
    pub(crate) order: Vec<String>,
    pub(crate) deadline: Option<String>,
    pub(crate) connect_timeout: Option<String>,
    pub(crate) first_token_timeout: Option<String>,
    pub(crate) stall_timeout: Option<String>,
    pub(crate) max_stream_duration: Option<String>,
    pub(crate) attempt_timeout: Option<String>,
    #[serde(default)]
    pub(crate) retries: RawRetries,
    #[serde(default)]
    pub(crate) breaker: RawBreaker,
    #[serde(default)]
    pub(crate) cooldowns: RawCooldowns,
    pub(crate) content_filter: Option<String>,
    pub(crate) stream_failure: Option<String>,
}

/// `fallback_policy.retries:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawRetries {
    pub(crate) max_retries: Option<u32>,
    pub(crate) backoff_base: Option<String>,
    pub(crate) backoff_max: Option<String>,
    pub(crate) budget_ratio: Option<f64>,
    pub(crate) budget_min_per_second: Option<u32>,
}

/// `fallback_policy.breaker:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawBreaker {
    pub(crate) window: Option<String>,
    pub(crate) min_requests: Option<u32>,
    pub(crate) failure_ratio: Option<f64>,
    pub(crate) open_for: Option<String>,
}

/// `fallback_policy.cooldowns:`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawCooldowns {
    pub(crate) rate_limited: Option<String>,
    pub(crate) rate_limited_max: Option<String>,
    pub(crate) quota_exhausted: Option<String>,
    pub(crate) auth: Option<String>,
}

/// A provider's model for a logical model: a name, or a name with its context window.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawModelRef {
    /// `openai: gpt-4o-mini`.
    Name(String),
    /// `openai: { model: gpt-4.1, context_window: 1047576 }`.
    Detailed(RawModelDetail),
}

/// The long form of a model reference.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawModelDetail {
    pub(crate) model: String,
    /// Tokens; a context-length failure skips later candidates whose window is not larger.
    pub(crate) context_window: Option<u32>,
    /// Most output tokens of one answer; a request's larger `max_tokens` is lowered to it.
    pub(crate) max_output_tokens: Option<u32>,
    /// Takes image parts: `true`, `false` or `data_urls` (inline images only).
    pub(crate) vision: Option<RawVision>,
    /// Takes function tools.
    pub(crate) tools: Option<bool>,
    /// `json_schema`, `json_object` or `none`.
    pub(crate) structured_output: Option<String>,
    /// Embeddings: vector size.
    pub(crate) dimensions: Option<u32>,
    /// Embeddings: the vector space (default: the model name); only candidates of one space serve a request.
    pub(crate) space: Option<String>,
    /// Embeddings: takes token-id input.
    pub(crate) token_input: Option<bool>,
}

/// `vision:` is a bool or `data_urls`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(crate) enum RawVision {
    /// `true` / `false`.
    Flag(bool),
    /// `data_urls`.
    Kind(String),
}
