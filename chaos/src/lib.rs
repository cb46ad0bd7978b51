//! `llm-chaos`: a Toxiproxy-compatible TCP fault proxy, its async client, and the pieces of both.
//!
//! Anything written for Toxiproxy v2.12 works against [`Server`], and [`Client`] works against a real
//! Toxiproxy, so the harness can use either (`TOXIPROXY_URL`, see [`Client::from_env`]).
//!
//! # Layout
//! - [`server`]: the embeddable server ([`Server::start`] on your listener, [`ServerHandle`] to stop it).
//! - `api`: the REST routes, headers and error shapes; `collection`: every API operation with Toxiproxy's
//!   checks in Toxiproxy's order; `input`: request bodies decoded with Go's rules; `error`: the API error.
//! - `proxy`: one proxy's listener and lifecycle (`proxy::listen` for Go-style addresses,
//!   `proxy::toxic_list` for its toxics); `link`: one connection's two directions and their toxic pipelines.
//! - [`toxics`]: one module per toxic (attributes + behaviour) and `toxics::stage` to run a chain on a link.
//! - [`client`]: the async client; [`model`]: proxies, toxics and request bodies as clients see them;
//!   [`harness`]: an external Toxiproxy (`TOXIPROXY_URL`) or an embedded server, behind one client.
//! - `metrics`, `rng`, `tasks`: `/metrics` text, the seeded random source, live task counting.

mod api;
pub mod client;
mod collection;
mod error;
pub mod harness;
mod input;
mod link;
mod metrics;
pub mod model;
mod proxy;
mod rng;
pub mod server;
mod tasks;
pub mod toxics;

pub use api::VERSION;
pub use client::{Client, ClientError, DEFAULT_URL};
pub use harness::{Backend, BackendError};
pub use model::{NewProxy, NewToxic, Proxy, ProxyUpdate, Stream, Toxic, ToxicUpdate};
pub use server::{ConfigError, Server, ServerConfig, ServerHandle};
pub use toxics::ToxicKind;
