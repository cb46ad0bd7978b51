//! The parts of a scenario: fault targets and faults, loads, checks and what they measure.

use std::fmt;
use std::time::Duration;

use llm_chaos::{Stream, ToxicKind};
use llm_mocks::FaultSpec;
use serde::Serialize;

use super::bound::{Bound, MetricFunc, Selector};

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
        /// Pause between stream events.
        stream_delay_ms: Option<u64>,
    },
}

impl Fault {
    /// A short description for reports, e.g. `openai: toxic timeout upstream`.
    pub fn describe(&self) -> String {
        match self {
            Fault::Toxic {
                proxy,
                stream,
                kind,
                toxicity,
                ..
            } => {
                let attrs = kind.attributes();
                let t = if *toxicity < 1.0 {
                    format!(" toxicity {toxicity}")
                } else {
                    String::new()
                };
                format!(
                    "proxy {proxy}: {} {} {attrs}{t}",
                    kind.type_name(),
                    stream.as_str()
                )
            }
            Fault::Proxy { proxy, enabled } => format!("proxy {proxy}: enabled={enabled}"),
            Fault::Fake { fake, spec } => {
                format!(
                    "fake {fake}: {}",
                    serde_json::to_string(spec).unwrap_or_else(|_| spec.fault.to_string())
                )
            }
            Fault::FakeSettings { fake, latency_ms, token_ttl_ms, stream_delay_ms } => format!(
                "fake {fake}: settings latency_ms={latency_ms:?} token_ttl_ms={token_ttl_ms:?} stream_delay_ms={stream_delay_ms:?}"
            ),
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
    /// `POST /v1/responses` (the OpenAI Responses API of Codex and the Agents SDK): the prompt as `input`,
    /// `max_tokens` as `max_output_tokens`; a stream completes with `response.completed`.
    Responses,
    /// `POST /v1/messages` (Anthropic Messages, Claude Code): `max_tokens` required (256 when the load names
    /// none); a stream completes with `message_stop`; error codes are Anthropic's `error.type`.
    Messages,
    /// `POST /api/assistants/generate`.
    Assistants,
    /// `POST /v1/embeddings`.
    Embeddings,
    /// The MCP tool `llm_generate` on `/mcp` (`api: mcp`): one stateless (2026-07-28) `tools/call` per request;
    /// who answered comes from the result's `structuredContent`. Needs `mcp: { enabled: true }` in the gateway.
    Mcp,
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
    /// Fields merged into every request body (a JSON object; `messages` replaces the prompt).
    pub body: serde_json::Map<String, serde_json::Value>,
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
    /// Share of requests whose answer ended with this `finish_reason` (the last one of a stream).
    FinishReason(String),
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
