//! Faithful fakes of the five upstream LLM APIs (OpenAI, Moonshot Kimi, Qwen on DashScope, Sber GigaChat,
//! Ollama), so each provider's own SDK works against them unchanged, with fault knobs and a journal.
//!
//! # Layout
//! - [`provider`]: the providers, default ports, model catalogues.
//! - [`server`]: [`FakeServer`] (one provider on its own HTTP server) and [`Fakes`] (several);
//!   [`wire`]: requests, responses, stream pacing and connection cuts.
//! - `providers/`: one module per wire format (OpenAI-shaped chat, errors and the rest; DashScope
//!   native; GigaChat with OAuth; Ollama native).
//! - [`fault`]: the 13 fault kinds and the book that decides which fires; [`state`]: per-fake state
//!   (faults, settings, issued tokens); [`journal`]: what each fake received, secrets masked.
//! - `admin`: the `/__mock/...` admin API on each fake's port.
//! - [`testing`]: finding the outside tools tests need (fail under CI, skip elsewhere).
//! - [`content`]: deterministic answers, token counts, embeddings and ids; `structured`: deterministic
//!   instances of JSON schemas for structured output (`response_format`, `text.format`, forced tool calls).
//! - `providers/responses`: `POST /v1/responses` of the OpenAI and Ollama fakes, on the same answers as chat.
//!
//! Answers are a function of the provider and the prompt: they start with `[provider]`, so a test can
//! tell who answered.

// Handlers return a `ResponseTemplate` as their error too: it is what they answer with.
#![allow(clippy::result_large_err)]

pub mod content;
pub mod fault;
pub mod journal;
pub mod provider;
pub mod server;
pub mod state;
pub mod testing;
pub mod wire;

mod admin;
mod chat;
mod http;
mod providers;
mod structured;

pub use admin::ADMIN_PREFIX;
pub use fault::{FaultError, FaultKind, FaultSpec, InstalledFault};
pub use journal::Entry;
pub use provider::Provider;
pub use server::{FakeServer, Fakes, StartError, MAX_BODY_BYTES};
pub use state::{Settings, SettingsPatch};
