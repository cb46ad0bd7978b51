//! LLM gateway: a deployable service in front of OpenAI, Kimi, Qwen, GigaChat and a local Ollama that keeps
//! answering through provider failures.
//!
//! # Layout
//! - [`config`]: strict YAML config, validated with every problem reported at once.
//! - [`canonical`]: OpenAI chat/embeddings types, the lingua franca.
//! - [`providers`]: one adapter per upstream API, error classes.

pub mod api;
pub mod canonical;
pub mod config;
pub mod metrics;
pub mod providers;
pub mod router;
pub mod server;

pub use api::{app, AppState};
