//! Metric labels: closed enums and the label sets built from them.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

use crate::config::Mode;
use crate::providers::ErrorClass;

macro_rules! label_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant),+ }
        impl $name {
            /// Every value, for series exported at 0 from the start.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            /// The label text.
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $text),+ } }
            /// The value whose label text this is (as an `X-LLM-*` header carries it).
            pub fn from_label(text: &[u8]) -> Option<$name> {
                [$($name::$variant),+].into_iter().find(|v| v.as_str().as_bytes() == text)
            }
        }
        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
        impl EncodeLabelValue for $name {
            fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
                EncodeLabelValue::encode(&self.as_str(), encoder)
            }
        }
    };
}

label_enum!(
    /// API route (by matched path).
    Route {
        /// `POST /v1/chat/completions`.
        ChatCompletions => "chat_completions",
        /// `POST /v1/embeddings`.
        Embeddings => "embeddings",
        /// `GET /v1/models`.
        Models => "models",
        /// `POST /v1/responses`.
        Responses => "responses",
        /// `POST /v1/messages`.
        Messages => "messages",
        /// `POST /v1/messages/count_tokens`.
        CountTokens => "count_tokens",
        /// `POST /api/assistants/generate`.
        AssistantsGenerate => "assistants_generate",
        /// `/admin/*`.
        Admin => "admin",
        /// The MCP tool `llm_generate` (stdio or `/mcp`).
        Mcp => "mcp",
        /// Anything else.
        Other => "other",
    }
);

label_enum!(
    /// A hosted tool type of the Responses API that no provider runs (the `tool` of `dropped_tools_total`).
    HostedTool {
        /// `web_search`, `web_search_preview`, ...
        WebSearch => "web_search",
        /// `file_search`.
        FileSearch => "file_search",
        /// `code_interpreter`.
        CodeInterpreter => "code_interpreter",
        /// `computer`, `computer_use_preview`, ...
        Computer => "computer",
        /// `mcp`.
        Mcp => "mcp",
        /// `image_generation`.
        ImageGeneration => "image_generation",
        /// `shell`.
        Shell => "shell",
        /// `local_shell`.
        LocalShell => "local_shell",
        /// `apply_patch`.
        ApplyPatch => "apply_patch",
        /// `custom`.
        Custom => "custom",
        /// `tool_search`.
        ToolSearch => "tool_search",
        /// `namespace` (tool groups).
        Namespace => "namespace",
    }
);

impl HostedTool {
    /// The hosted tool a Responses tool `type` is, if it is one.
    pub fn of(kind: &str) -> Option<HostedTool> {
        if kind.starts_with("web_search") {
            return Some(HostedTool::WebSearch);
        }
        if kind.starts_with("computer") {
            return Some(HostedTool::Computer);
        }
        HostedTool::from_label(kind.as_bytes())
    }
}

label_enum!(
    /// Who answered (`X-LLM-Source`).
    Source {
        /// A remote provider.
        Provider => "provider",
        /// The cache.
        Cache => "cache",
        /// The local tier (Ollama).
        Local => "local",
        /// An offline package.
        OfflinePackage => "offline-package",
        /// Nobody: an error.
        None => "none",
    }
);

label_enum!(
    /// Offline hit source.
    OfflineSource {
        /// Local model.
        Local => "local",
        /// Offline package.
        Package => "package",
    }
);

label_enum!(
    /// Outcome of one provider attempt (or skip).
    Outcome {
        /// 2xx answer.
        Success => "success",
        /// Skipped: breaker open.
        SkippedBreakerOpen => "skipped_breaker_open",
        /// Skipped: cooling down.
        SkippedCooldown => "skipped_cooldown",
        /// Skipped: its context window is not larger than one that already said "too long".
        SkippedContextWindow => "skipped_context_window",
        /// Skipped: a budget of `providers.<name>.limits` is used up.
        SkippedBudget => "skipped_budget",
        /// Skipped: its last connectivity probe failed.
        SkippedUnreachable => "skipped_unreachable",
        /// Skipped: the model cannot serve this request faithfully (images, tools, JSON schema, context size,
        /// embeddings space or input).
        SkippedCapability => "skipped_capability",
        /// connect.
        Connect => "connect",
        /// timeout.
        Timeout => "timeout",
        /// rate_limited.
        RateLimited => "rate_limited",
        /// quota_exhausted.
        QuotaExhausted => "quota_exhausted",
        /// overloaded.
        Overloaded => "overloaded",
        /// auth.
        Auth => "auth",
        /// bad_request.
        BadRequest => "bad_request",
        /// not_found.
        NotFound => "not_found",
        /// context_length.
        ContextLength => "context_length",
        /// content_filter.
        ContentFilter => "content_filter",
        /// malformed.
        Malformed => "malformed",
    }
);

impl From<ErrorClass> for Outcome {
    fn from(c: ErrorClass) -> Outcome {
        match c {
            ErrorClass::Connect => Outcome::Connect,
            ErrorClass::Timeout => Outcome::Timeout,
            ErrorClass::RateLimited => Outcome::RateLimited,
            ErrorClass::QuotaExhausted => Outcome::QuotaExhausted,
            ErrorClass::Overloaded => Outcome::Overloaded,
            ErrorClass::Auth => Outcome::Auth,
            ErrorClass::BadRequest => Outcome::BadRequest,
            ErrorClass::NotFound => Outcome::NotFound,
            ErrorClass::ContextLength => Outcome::ContextLength,
            ErrorClass::ContentFilter => Outcome::ContentFilter,
            ErrorClass::Malformed => Outcome::Malformed,
        }
    }
}

label_enum!(
    /// Token kind.
    TokenKind {
        /// Prompt tokens.
        Prompt => "prompt",
        /// Completion tokens.
        Completion => "completion",
    }
);

label_enum!(
    /// Cache lookup result.
    CacheResult {
        /// Fresh hit.
        Hit => "hit",
        /// Miss.
        Miss => "miss",
        /// Stale answer served on error.
        Stale => "stale",
        /// Not looked up: `Cache-Control: no-cache`.
        Bypass => "bypass",
    }
);

label_enum!(
    /// Rate-limit scope.
    Scope {
        /// The gateway limited a client.
        Client => "client",
        /// An upstream limited the gateway.
        Provider => "provider",
    }
);

label_enum!(
    /// Mode label.
    ModeLabel {
        /// auto.
        Auto => "auto",
        /// remote.
        Remote => "remote",
        /// offline.
        Offline => "offline",
    }
);

impl From<Mode> for ModeLabel {
    fn from(m: Mode) -> ModeLabel {
        match m {
            Mode::Auto => ModeLabel::Auto,
            Mode::Remote => ModeLabel::Remote,
            Mode::Offline => ModeLabel::Offline,
        }
    }
}

/// `{route,status,source}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RequestLabels {
    /// Route.
    pub route: Route,
    /// HTTP status code sent to the client.
    pub status: u16,
    /// Who answered.
    pub source: Source,
}

/// `{from,to,reason}`; `to` is `none` when no candidate was left.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct FallbackLabels {
    /// Provider that failed.
    pub from: String,
    /// Provider tried next.
    pub to: String,
    /// Error class.
    pub reason: Outcome,
}

/// `{provider,outcome}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ProviderOutcomeLabels {
    /// Provider name.
    pub provider: String,
    /// Outcome.
    pub outcome: Outcome,
}

/// `{provider,reason}` of `llm_gateway_cooldowns_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CooldownLabels {
    /// Provider name.
    pub provider: String,
    /// The error class that started the cooldown (`rate_limited`, `quota_exhausted`, `auth`).
    pub reason: Outcome,
}

/// `{provider}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ProviderLabels {
    /// Provider name.
    pub provider: String,
}

/// `{provider,kind}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct TokenLabels {
    /// Provider name.
    pub provider: String,
    /// Prompt or completion.
    pub kind: TokenKind,
}

label_enum!(
    /// An MCP tool of the `LLMProviderTool` server.
    McpTool {
        /// `llm_generate`.
        Generate => "llm_generate",
        /// `llm_providers`.
        Providers => "llm_providers",
        /// `llm_explain_route`.
        ExplainRoute => "llm_explain_route",
        /// `llm_offline_lookup`.
        OfflineLookup => "llm_offline_lookup",
        /// `llm_smoke`.
        Smoke => "llm_smoke",
        /// `llm_mode`.
        Mode => "llm_mode",
        /// `llm_set_mode`.
        SetMode => "llm_set_mode",
    }
);

label_enum!(
    /// How an MCP tool call ended.
    McpOutcome {
        /// A result without `isError`.
        Ok => "ok",
        /// The arguments were wrong (an `isError` result naming the field).
        InvalidArguments => "invalid_arguments",
        /// An admin tool without a valid admin token.
        Unauthorized => "unauthorized",
        /// The tool ran and failed (every provider down, unknown model, an offline miss...): an `isError` result.
        Failed => "failed",
    }
);

/// `{tool,outcome}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct McpLabels {
    /// Tool.
    pub tool: McpTool,
    /// Outcome.
    pub outcome: McpOutcome,
}

/// `{route,tool}` of `llm_gateway_dropped_tools_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct DroppedToolLabels {
    /// Route.
    pub route: Route,
    /// The hosted tool left out.
    pub tool: HostedTool,
}

/// `{route}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct RouteLabels {
    /// Route.
    pub route: Route,
}

/// `{source}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct SourceLabels {
    /// Local or package.
    pub source: OfflineSource,
}

/// `{result}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct CacheLabels {
    /// Hit, miss, stale.
    pub result: CacheResult,
}

/// `{scope}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ScopeLabels {
    /// Client or provider.
    pub scope: Scope,
}

/// `{mode}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct ModeLabels {
    /// Mode.
    pub mode: ModeLabel,
}

label_enum!(
    /// A provider budget of `providers.<name>.limits`.
    BudgetKind {
        /// Requests per minute.
        RequestsMinute => "requests_minute",
        /// Tokens per minute.
        TokensMinute => "tokens_minute",
        /// Tokens per day.
        TokensDay => "tokens_day",
    }
);

/// `{provider,budget}`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct BudgetLabels {
    /// Provider name.
    pub provider: String,
    /// Which budget.
    pub budget: BudgetKind,
}

label_enum!(
    /// What a call to the shared state backend was for (the `op` of `state_backend_errors_total`).
    StateOp {
        /// A client key's requests/min and tokens/min.
        ClientLimit => "client_limit",
        /// A provider's budgets.
        ProviderBudget => "provider_budget",
        /// A provider's cooldown.
        Cooldown => "cooldown",
        /// A provider's breaker.
        Breaker => "breaker",
        /// The mode.
        Mode => "mode",
        /// The shared cache tier (`cache.backend: redis`).
        Cache => "cache",
    }
);

/// `{op}` of `llm_gateway_state_backend_errors_total`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, EncodeLabelSet)]
pub struct StateOpLabels {
    /// What the call was for.
    pub op: StateOp,
}
