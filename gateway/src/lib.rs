//! LLM gateway: a deployable service in front of OpenAI, Kimi, Qwen, GigaChat and a local Ollama that keeps
//! answering through provider failures.
//!
//! # Layout
//! - [`config`]: strict YAML config (`deny_unknown_fields`, paths in every error), then `validate()` reporting
//!   every problem at once; env overrides (`LLM_GATEWAY_MODE`, secrets or `*_FILE`).
//! - [`canonical`]: OpenAI chat/embeddings types, the lingua franca.
//! - [`providers`]: one adapter per upstream API (`openai`, `kimi`, `qwen`, `gigachat`, `ollama`), stream framing,
//!   and the error classes every failure is sorted into by the provider's own codes.
//! - [`router`]: planning (logical model -> ordered candidates, local tier last, `X-LLM-Provider` first) and the
//!   attempt loop (one deadline, per-attempt timeouts, retries in a budget, cooldowns, breakers).
//! - [`offline`]: offline packages (format, validation with file:line, exact + lexical matching) and the bounded,
//!   redacted record of recent misses.
//! - [`cache`]: exact-match response cache (moka) with stale-on-error.
//! - [`limits`]: client keys and per-key limits, per-provider budgets.
//! - [`pipeline`]: the answer pipeline, the one chain every surface calls (cache -> plan -> attempts -> local
//!   tier -> stale cache -> offline packages -> error), its accounting and the `X-LLM-*` headers.
//! - [`api`]: the HTTP routes (parse, call the pipeline, render), the one error -> HTTP mapping, the chat SSE
//!   grammar.
//! - [`ops`]: the operator commands `smoke`, `offline-dry-run`, `offline build` and `incident-report`.
//! - [`metrics`]: every instrument, labels from closed enums.
//! - [`state`]: the state backend (memory, or Redis shared by replicas) behind limits, budgets, cooldowns,
//!   breakers and the mode.
//! - [`server`]: listeners, graceful shutdown, connectivity probes.
//! - [`telemetry`]: OpenTelemetry traces (a span per request, a child per provider attempt, W3C propagation),
//!   exported over OTLP/HTTP from a bounded queue; off unless configured.
//!
//! Tests build the app with [`app`] and call it with `oneshot`; `server::run` takes a bound listener (port 0).

pub mod api;
#[doc(hidden)]
pub mod bench;
pub mod cache;
pub mod canonical;
pub mod config;
pub mod limits;
pub mod mcp;
pub mod metrics;
pub mod offline;
pub mod ops;
pub mod pipeline;
pub mod providers;
pub mod router;
pub mod server;
pub mod state;
pub mod telemetry;

pub use api::{app, AppState};
