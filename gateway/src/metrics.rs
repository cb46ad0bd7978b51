//! Every metric of DESIGN.md, defined in one place. Labels come from closed enums (provider labels are config
//! names, bounded and validated as `[a-z0-9_-]{1,40}`).

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::config::Mode;
use crate::providers::ErrorClass;

macro_rules! label_enum {
    ($(#[$m:meta])* $name:ident { $($(#[$vm:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$m])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vm])* $variant),+ }
        impl $name {
            /// The label text.
            pub fn as_str(self) -> &'static str { match self { $($name::$variant => $text),+ } }
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
        /// `POST /api/assistants/generate`.
        AssistantsGenerate => "assistants_generate",
        /// `/admin/*`.
        Admin => "admin",
        /// Anything else.
        Other => "other",
    }
);

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

type HistFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ])
}

fn overhead_histogram() -> Histogram {
    Histogram::new([
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    ])
}

/// Breaker state gauge values.
pub const BREAKER_CLOSED: i64 = 0;
/// Open.
pub const BREAKER_OPEN: i64 = 1;
/// Half-open.
pub const BREAKER_HALF_OPEN: i64 = 2;

/// All instruments plus the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `llm_gateway_requests_total{route,status,source}`.
    pub requests: Family<RequestLabels, Counter>,
    /// `llm_gateway_fallbacks_total{from,to,reason}`.
    pub fallbacks: Family<FallbackLabels, Counter>,
    /// `llm_gateway_offline_hits_total{source}`.
    pub offline_hits: Family<SourceLabels, Counter>,
    /// `llm_gateway_offline_misses_total`.
    pub offline_misses: Counter,
    /// `llm_gateway_provider_requests_total{provider,outcome}`.
    pub provider_requests: Family<ProviderOutcomeLabels, Counter>,
    /// `llm_gateway_request_duration_seconds{route}`.
    pub request_duration: HistFamily<RouteLabels>,
    /// `llm_gateway_provider_duration_seconds{provider}`.
    pub provider_duration: HistFamily<ProviderLabels>,
    /// `llm_gateway_time_to_first_token_seconds{provider}`.
    pub ttft: HistFamily<ProviderLabels>,
    /// `llm_gateway_overhead_seconds`: total minus time waiting on upstream.
    pub overhead: Histogram,
    /// `llm_gateway_breaker_state{provider}`: 0 closed, 1 open, 2 half-open.
    pub breaker_state: Family<ProviderLabels, Gauge>,
    /// `llm_gateway_cache_requests_total{result}`.
    pub cache_requests: Family<CacheLabels, Counter>,
    /// `llm_gateway_rate_limited_total{scope}`.
    pub rate_limited: Family<ScopeLabels, Counter>,
    /// `llm_gateway_tokens_total{provider,kind}`.
    pub tokens: Family<TokenLabels, Counter>,
    /// `llm_gateway_mode{mode}`: 1 for the current mode.
    pub mode: Family<ModeLabels, Gauge>,
}

impl Metrics {
    /// Registers every instrument; pre-creates the series that should read 0 before anything happens.
    pub fn new<'a>(providers: impl IntoIterator<Item = &'a str>, mode: Mode) -> Metrics {
        let mut r = Registry::with_prefix("llm_gateway");
        let m = Metrics {
            requests: Family::default(),
            fallbacks: Family::default(),
            offline_hits: Family::default(),
            offline_misses: Counter::default(),
            provider_requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram),
            provider_duration: Family::new_with_constructor(latency_histogram),
            ttft: Family::new_with_constructor(latency_histogram),
            overhead: overhead_histogram(),
            breaker_state: Family::default(),
            cache_requests: Family::default(),
            rate_limited: Family::default(),
            tokens: Family::default(),
            mode: Family::default(),
            registry: Registry::default(),
        };
        r.register(
            "requests",
            "API requests by route, status and source",
            m.requests.clone(),
        );
        r.register(
            "fallbacks",
            "Fallbacks from one provider to the next, by error class",
            m.fallbacks.clone(),
        );
        r.register(
            "offline_hits",
            "Requests answered without a remote provider",
            m.offline_hits.clone(),
        );
        r.register(
            "offline_misses",
            "Offline lookups that found no answer",
            m.offline_misses.clone(),
        );
        r.register(
            "provider_requests",
            "Provider attempts and skips by outcome",
            m.provider_requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "End-to-end request latency",
            m.request_duration.clone(),
        );
        r.register(
            "provider_duration_seconds",
            "Upstream attempt latency",
            m.provider_duration.clone(),
        );
        r.register(
            "time_to_first_token_seconds",
            "Stream time to first chunk",
            m.ttft.clone(),
        );
        r.register(
            "overhead_seconds",
            "Gateway time not spent waiting on upstream",
            m.overhead.clone(),
        );
        r.register(
            "breaker_state",
            "Breaker state: 0 closed, 1 open, 2 half-open",
            m.breaker_state.clone(),
        );
        r.register(
            "cache_requests",
            "Cache lookups by result",
            m.cache_requests.clone(),
        );
        r.register(
            "rate_limited",
            "Rate-limit events by scope",
            m.rate_limited.clone(),
        );
        r.register("tokens", "Tokens by provider and kind", m.tokens.clone());
        r.register(
            "mode",
            "Current mode (1) among auto, remote, offline",
            m.mode.clone(),
        );
        for p in providers {
            m.breaker_state
                .get_or_create(&ProviderLabels {
                    provider: p.to_string(),
                })
                .set(BREAKER_CLOSED);
        }
        for source in [OfflineSource::Local, OfflineSource::Package] {
            let _ = m.offline_hits.get_or_create(&SourceLabels { source });
        }
        // Closed label sets read 0 from the start, so dashboards and `increase()` alerts see them at once.
        for result in [CacheResult::Hit, CacheResult::Miss, CacheResult::Stale] {
            let _ = m.cache_requests.get_or_create(&CacheLabels { result });
        }
        for scope in [Scope::Client, Scope::Provider] {
            let _ = m.rate_limited.get_or_create(&ScopeLabels { scope });
        }
        m.set_mode(mode);
        Metrics { registry: r, ..m }
    }

    /// Sets the mode gauge.
    pub fn set_mode(&self, mode: Mode) {
        for mm in [Mode::Auto, Mode::Remote, Mode::Offline] {
            self.mode
                .get_or_create(&ModeLabels { mode: mm.into() })
                .set(i64::from(mm == mode));
        }
    }

    /// Counts one provider attempt outcome.
    pub fn provider_outcome(&self, provider: &str, outcome: Outcome) {
        self.provider_requests
            .get_or_create(&ProviderOutcomeLabels {
                provider: provider.to_string(),
                outcome,
            })
            .inc();
    }

    /// Text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}
