//! Gateway configuration: strict YAML parsing (phase one, `raw`), then validation into runtime types (phase two).
//!
//! Every unknown key is an error naming its YAML path; `validate` reports every problem at once.

mod aliases;
mod policy;
mod raw;
mod secrets;
mod state;
mod telemetry;
#[cfg(test)]
mod tests;
mod tiers;
mod validate;

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Serialize;

pub use crate::offline::OfflineConfig;
pub use aliases::Aliases;
pub use secrets::{Secret, SecretSource};
pub use state::{redact_url, OnError, RedisStateConfig, StateBackendKind, StateConfig};
pub use telemetry::OtlpConfig;
pub use tiers::{CacheBackend, CacheConfig, CacheScope, ClientKey, ConnectivityConfig, ProviderLimits};

/// Runtime mode: which tiers the router may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Remote chain, then the local tier (then offline packages).
    Auto,
    /// Remote providers only.
    Remote,
    /// Local tier only: not one remote call.
    Offline,
}

impl Mode {
    /// Parses `auto`, `remote` or `offline`.
    pub fn parse(s: &str) -> Option<Mode> {
        match s.trim() {
            "auto" => Some(Mode::Auto),
            "remote" => Some(Mode::Remote),
            "offline" => Some(Mode::Offline),
            _ => None,
        }
    }

    /// The name used in config, metrics and `/admin/mode`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Auto => "auto",
            Mode::Remote => "remote",
            Mode::Offline => "offline",
        }
    }
}

/// The kind of upstream API a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI.
    #[serde(rename = "openai")]
    OpenAi,
    /// Moonshot Kimi (OpenAI-compatible with quirks).
    Kimi,
    /// Alibaba Qwen via DashScope (compatible or native API).
    Qwen,
    /// Sber GigaChat (OAuth).
    #[serde(rename = "gigachat")]
    GigaChat,
    /// Local Ollama: the local tier.
    Ollama,
}

impl ProviderKind {
    /// Parses the `kind:` value.
    pub fn parse(s: &str) -> Option<ProviderKind> {
        match s {
            "openai" => Some(ProviderKind::OpenAi),
            "kimi" => Some(ProviderKind::Kimi),
            "qwen" => Some(ProviderKind::Qwen),
            "gigachat" => Some(ProviderKind::GigaChat),
            "ollama" => Some(ProviderKind::Ollama),
            _ => None,
        }
    }

    /// True for the local tier (Ollama), which follows the remote chain in `auto` mode.
    pub fn is_local(self) -> bool {
        matches!(self, ProviderKind::Ollama)
    }

    /// The environment variable holding this kind's secret by default.
    pub fn default_secret_env(self) -> Option<&'static str> {
        match self {
            ProviderKind::OpenAi => Some("OPENAI_API_KEY"),
            ProviderKind::Kimi => Some("KIMI_API_KEY"),
            ProviderKind::Qwen => Some("QWEN_API_KEY"),
            ProviderKind::GigaChat => Some("GIGACHAT_AUTH_TOKEN"),
            ProviderKind::Ollama => None,
        }
    }
}

/// Which DashScope API a Qwen provider uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QwenApi {
    /// `/compatible-mode/v1`, OpenAI shapes.
    Compatible,
    /// `/api/v1/services/...`, DashScope shapes.
    Native,
}

/// `server:` after validation.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// API listen address.
    pub listen: SocketAddr,
    /// Optional second listener that serves only `/metrics`.
    pub metrics_listen: Option<SocketAddr>,
    /// Request bodies above this many bytes get 413.
    pub body_limit_bytes: usize,
    /// How long shutdown waits for in-flight requests.
    pub shutdown_grace: Duration,
    /// When set, `/admin/*` requires it as a Bearer token (at least 16 characters); without it `/admin/*`
    /// answers loopback peers only.
    pub admin_token: Option<Secret>,
    /// From a connection's open (or the end of its last answer with bytes of a new request) to a complete
    /// request head.
    pub header_read_timeout: Duration,
    /// How long a keep-alive connection may sit idle between requests.
    pub idle_timeout: Duration,
    /// From a complete head to the last byte of the body (408 `body_timeout` past it).
    pub body_read_timeout: Duration,
    /// Open connections per listener; past it new connections are closed at once (a few more are kept for
    /// `/healthz`, `/readyz` and `/metrics`). Lowered at start to fit the process's open-file limit.
    pub max_connections: usize,
    /// Request line plus headers, in bytes (431 `headers_too_large` past it); a connection buffers at most twice
    /// this before a complete head.
    pub max_header_bytes: usize,
}

/// `server.body_limit_bytes` default: 20 MiB, room for a few base64 images.
pub const DEFAULT_BODY_LIMIT: u64 = 20 * 1024 * 1024;

/// GigaChat OAuth settings.
#[derive(Debug, Clone)]
pub struct GigaChatAuth {
    /// OAuth endpoint (`.../api/v2/oauth`).
    pub url: String,
    /// `GIGACHAT_API_PERS`, `GIGACHAT_API_B2B` or `GIGACHAT_API_CORP`.
    pub scope: String,
    /// Refresh the token when it expires within this margin.
    pub refresh_before: Duration,
}

/// One provider after validation.
#[derive(Debug, Clone)]
pub struct ProviderConfig {
    /// The name used in `order`, `models`, headers and metric labels.
    pub name: String,
    /// The API it speaks.
    pub kind: ProviderKind,
    /// Base URL, without a trailing slash.
    pub base_url: String,
    /// Where the secret was looked for (shown by `check-config`, never the value).
    pub secret_source: SecretSource,
    /// The secret, if one was found.
    pub secret: Option<Secret>,
    /// TCP/TLS connect timeout for this provider.
    pub connect_timeout: Duration,
    /// Per-attempt timeout for this provider.
    pub attempt_timeout: Duration,
    /// GigaChat OAuth (GigaChat only).
    pub gigachat_auth: Option<GigaChatAuth>,
    /// Extra PEM root certificates.
    pub ca_bundle: Option<PathBuf>,
    /// Qwen API flavour (ignored for other kinds).
    pub qwen_api: QwenApi,
    /// Budgets that keep the gateway below this provider's own quota.
    pub limits: ProviderLimits,
}

/// Retry settings.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Retries per provider per request, for retryable classes only.
    pub max_retries: u32,
    /// Full-jitter backoff base.
    pub backoff_base: Duration,
    /// Backoff cap.
    pub backoff_max: Duration,
    /// Retries allowed per first attempt, across requests (the budget).
    pub budget_ratio: f64,
    /// Retries always allowed per second, whatever the ratio.
    pub budget_min_per_second: u32,
}

/// Breaker settings.
#[derive(Debug, Clone)]
pub struct BreakerPolicy {
    /// Outcomes older than this are forgotten.
    pub window: Duration,
    /// No opening below this many outcomes in the window.
    pub min_requests: u32,
    /// Open when failures / outcomes reaches this.
    pub failure_ratio: f64,
    /// How long the breaker stays open before one half-open probe.
    pub open_for: Duration,
}

/// Cooldowns per error class.
#[derive(Debug, Clone)]
pub struct Cooldowns {
    /// Used for a 429 without Retry-After.
    pub rate_limited: Duration,
    /// Retry-After is clamped to this.
    pub rate_limited_max: Duration,
    /// Quota or billing exhaustion.
    pub quota_exhausted: Duration,
    /// Authentication failure.
    pub auth: Duration,
}

/// What to do when a provider refuses content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ContentFilterPolicy {
    /// Try the next candidate.
    Fallback,
    /// Return the refusal to the client.
    Return,
}

/// What to do when a stream breaks after the first byte reached the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StreamFailurePolicy {
    /// End the client's stream with an explicit SSE error event.
    ErrorEvent,
    /// Opt-in: continue the answer on the next candidate (partial answer sent as context), then `[DONE]`.
    Continue,
}

/// `fallback_policy:` after validation.
#[derive(Debug, Clone)]
pub struct Policy {
    /// Provider names in fallback order.
    pub order: Vec<String>,
    /// End-to-end budget per request.
    pub deadline: Duration,
    /// Default connect timeout.
    pub connect_timeout: Duration,
    /// Streams: time to the first chunk.
    pub first_token_timeout: Duration,
    /// Streams: longest gap between chunks.
    pub stall_timeout: Duration,
    /// Streams: cap on the whole stream once it reached the client (the deadline bounds routing, not a healthy
    /// answer that keeps flowing).
    pub max_stream_duration: Duration,
    /// Default per-attempt timeout.
    pub attempt_timeout: Duration,
    /// Retries.
    pub retries: RetryPolicy,
    /// Breaker.
    pub breaker: BreakerPolicy,
    /// Cooldowns.
    pub cooldowns: Cooldowns,
    /// Content-filter policy.
    pub content_filter: ContentFilterPolicy,
    /// Stream-failure policy.
    pub stream_failure: StreamFailurePolicy,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Listeners and limits.
    pub server: ServerConfig,
    /// Starting mode (after `LLM_GATEWAY_MODE`).
    pub mode: Mode,
    /// Logical model -> provider name -> provider model name.
    pub models: BTreeMap<String, BTreeMap<String, String>>,
    /// Other names (and `*` patterns) of logical models, e.g. `claude-*` for Anthropic clients.
    pub aliases: Aliases,
    /// Logical model -> provider name -> capabilities set in config (over the defaults), where any is set.
    pub model_caps: BTreeMap<String, BTreeMap<String, CapsOverride>>,
    /// Providers by name.
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Fallback policy.
    pub policy: Policy,
    /// Offline packages.
    pub offline: OfflineConfig,
    /// Response cache.
    pub cache: CacheConfig,
    /// Client API keys (empty: the API is open).
    pub clients: Vec<ClientKey>,
    /// Connectivity probes (`None`: off).
    pub connectivity: Option<ConnectivityConfig>,
    /// Shared state backend (memory by default).
    pub state: StateConfig,
    /// The MCP server at `/mcp` on the API listener.
    pub mcp: McpConfig,
    /// OpenTelemetry trace export (`None`: off).
    pub telemetry: Option<OtlpConfig>,
    /// `POST /v1/responses` settings.
    pub responses: ResponsesConfig,
}

/// `mcp:` after validation: the Streamable HTTP MCP endpoint `/mcp` (`llm-gateway mcp` on stdio needs none of it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpConfig {
    /// Serve `/mcp` (default false).
    pub enabled: bool,
    /// `Host` values accepted (DNS-rebinding guard), `host` or `host:port`; default loopback names.
    pub allowed_hosts: Vec<String>,
    /// `Origin` values accepted when a request carries one (`scheme://host[:port]`); `None` (the default): only
    /// loopback origins, on any port.
    pub allowed_origins: Option<Vec<String>>,
}

impl Default for McpConfig {
    fn default() -> McpConfig {
        McpConfig {
            enabled: false,
            allowed_hosts: ["localhost", "127.0.0.1", "::1"].map(String::from).to_vec(),
            allowed_origins: None,
        }
    }
}

/// `responses:`: the Responses surface.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResponsesConfig {
    /// What to do with hosted tools (`web_search`, ...) the providers cannot run.
    pub hosted_tools: HostedTools,
}

/// `responses.hosted_tools`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum HostedTools {
    /// Leave them out of the upstream call and name them in `X-LLM-Dropped-Tools` (default).
    #[default]
    Drop,
    /// A 400 `unsupported_tool` naming the first one.
    Reject,
}

/// Capabilities of one provider model set in config (`models.<logical>.<provider>: { model, ... }`); each
/// replaces the default of [`crate::providers::capabilities::defaults`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CapsOverride {
    /// Context window in tokens.
    pub context_window: Option<u32>,
    /// Most output tokens of one answer (a larger `max_tokens` is lowered to it).
    pub max_output_tokens: Option<u32>,
    /// Images.
    pub vision: Option<crate::providers::capabilities::Vision>,
    /// Function tools.
    pub tools: Option<bool>,
    /// `response_format`.
    pub structured: Option<crate::providers::capabilities::Structured>,
    /// Embeddings: vector size.
    pub dimensions: Option<u32>,
    /// Embeddings: vector space name.
    pub space: Option<String>,
    /// Embeddings: token-id input.
    pub token_input: Option<bool>,
}

impl CapsOverride {
    /// The defaults with what is set here put over them.
    pub fn apply(
        &self,
        mut caps: crate::providers::capabilities::Caps,
    ) -> crate::providers::capabilities::Caps {
        if let Some(w) = self.context_window {
            caps.context_window = Some(w);
        }
        if let Some(n) = self.max_output_tokens {
            caps.max_output_tokens = Some(n);
        }
        if let Some(v) = self.vision {
            caps.vision = v;
        }
        if let Some(t) = self.tools {
            caps.tools = t;
        }
        if let Some(s) = self.structured {
            caps.structured = s;
        }
        if let Some(d) = self.dimensions {
            caps.dimensions = Some(d);
        }
        if let Some(s) = &self.space {
            caps.space.clone_from(s);
        }
        if let Some(t) = self.token_input {
            caps.token_input = t;
        }
        caps
    }
}

/// One validation problem, with the YAML path it concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted YAML path, e.g. `fallback_policy.order[2]`.
    pub path: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read config {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// YAML syntax, a wrong type or an unknown key.
    #[error("config parse error at {path}: {message}")]
    Parse {
        /// YAML path of the problem.
        path: String,
        /// What serde said.
        message: String,
    },
    /// The file parsed but its values do not make sense together.
    #[error("invalid config ({} problems):\n{}", .0.len(), list(.0))]
    Invalid(Vec<Problem>),
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  - {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Reads environment variables; tests pass a map instead of touching the process env.
pub type EnvLookup<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The process environment as an [`EnvLookup`].
pub fn process_env(name: &str) -> Option<String> {
    std::env::var(name).ok()
}

impl Config {
    /// Loads and validates a YAML file, applying env overrides; relative paths in it are resolved as
    /// [`Config::resolve_paths_from`] says.
    pub fn load(path: &Path, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Io {
            path: path.display().to_string(),
            source,
        })?;
        let mut cfg = Config::from_yaml(&text, env)?;
        cfg.resolve_paths_from(path);
        Ok(cfg)
    }

    /// Every secret value the config holds (provider secrets, client keys, the admin token), for redaction of
    /// text the gateway keeps or shows.
    pub fn secret_values(&self) -> Vec<String> {
        let providers = self.providers.values().filter_map(|p| p.secret.as_ref());
        let clients = self.clients.iter().map(|c| &c.key);
        providers
            .chain(clients)
            .chain(self.server.admin_token.as_ref())
            .chain(self.state.redis.as_ref().map(|r| &r.url))
            .map(|s| s.expose().to_string())
            .collect()
    }

    /// A relative `offline.packages` path names a folder beside `config_file` when one is there (so a config
    /// works from any working directory); otherwise it stays relative to the working directory, as configs
    /// written for the workspace root expect (`config/offline`).
    pub fn resolve_paths_from(&mut self, config_file: &Path) {
        let Some(dir) = config_file.parent() else {
            return;
        };
        for p in self.offline.packages.iter_mut().filter(|p| p.is_relative()) {
            let beside = dir.join(&*p);
            if beside.exists() {
                *p = beside;
            }
        }
    }

    /// Parses and validates YAML text, applying env overrides.
    pub fn from_yaml(text: &str, env: EnvLookup<'_>) -> Result<Config, ConfigError> {
        let de = serde_norway::Deserializer::from_str(text);
        let raw: raw::RawConfig = serde_path_to_error::deserialize(de).map_err(|e| {
            let path = e.path().to_string();
            ConfigError::Parse {
                path,
                message: e.into_inner().to_string(),
            }
        })?;
        validate::validate(raw, env).map_err(ConfigError::Invalid)
    }

    /// Providers in fallback order.
    pub fn ordered_providers(&self) -> impl Iterator<Item = &ProviderConfig> {
        self.policy.order.iter().filter_map(|n| self.providers.get(n))
    }
}
