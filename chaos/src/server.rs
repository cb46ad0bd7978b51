//! The embeddable server: the REST API on a listener you bind, the proxies it runs, and a handle to stop it.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use llm_chaos::{NewProxy, Server, ServerConfig};
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let server = Server::start(listener, ServerConfig::default())?;
//! let client = server.client()?;
//! client.create_proxy(&NewProxy::new("kimi", "127.0.0.1:0", "127.0.0.1:18082")).await?;
//! server.shutdown().await;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::api::{self, Shared};
use crate::client::{Client, ClientError};
use crate::collection::Collection;
use crate::metrics::Metrics;
use crate::proxy::Env;
use crate::rng::SeedSource;
use crate::tasks::TaskCounter;

/// Server options, mirroring Toxiproxy's flags.
#[derive(Debug, Clone, Default)]
pub struct ServerConfig {
    /// Seed for toxicity rolls, jitter and slicer sizes (`-seed`); `None` seeds from the clock.
    pub seed: Option<u64>,
    /// Serve per-proxy byte counters on `/metrics` (`-proxy-metrics`).
    pub proxy_metrics: bool,
    /// Serve process figures on `/metrics` (`-runtime-metrics`).
    pub runtime_metrics: bool,
}

/// Why a proxy configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read proxy config {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The cause.
        source: std::io::Error,
    },
    /// `/populate` semantics rejected it; `body` is the JSON Toxiproxy would answer.
    #[error("proxy config rejected ({status}): {body}")]
    Rejected {
        /// HTTP status the API would give.
        status: u16,
        /// The response body, with the error and the proxies created before it.
        body: String,
    },
}

/// Starts servers.
#[derive(Debug)]
pub struct Server;

impl Server {
    /// Serves the API on `listener` (bind it yourself, port 0 is fine) until the handle is shut down or dropped.
    pub fn start(listener: TcpListener, config: ServerConfig) -> std::io::Result<ServerHandle> {
        let addr = listener.local_addr()?;
        let metrics = Arc::new(Metrics::new(config.proxy_metrics, config.runtime_metrics));
        let link_tasks = Arc::new(TaskCounter::default());
        let env = Env {
            seeds: Arc::new(SeedSource::new(config.seed)),
            metrics: metrics.clone(),
            link_tasks,
        };
        let shared = Arc::new(Shared {
            collection: Collection::new(env.clone()),
            metrics,
            link_tasks: env.link_tasks.clone(),
            request_ids: SeedSource::new(None),
        });
        let app = api::router(shared.clone());
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, app).with_graceful_shutdown(async {
                let _ = stop_rx.await;
            });
            if let Err(error) = served.await {
                tracing::error!(%error, "API server failed.");
            }
        });
        tracing::info!(%addr, "API HTTP server starting.");
        Ok(ServerHandle {
            addr,
            shared,
            stop: Some(stop_tx),
            task: Some(task),
        })
    }
}

/// A running server.
#[derive(Debug)]
pub struct ServerHandle {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ServerHandle {
    /// The API address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The API base URL, e.g. `http://127.0.0.1:8474`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A client for this server.
    pub fn client(&self) -> Result<Client, ClientError> {
        Client::new(self.url())
    }

    /// Link tasks alive right now: two per open connection (one per direction) plus one while a connection
    /// dials its upstream. Zero once every connection has closed.
    pub fn live_link_tasks(&self) -> usize {
        self.shared.link_tasks.live()
    }

    /// Returns once no link task is alive.
    pub async fn link_tasks_idle(&self) {
        self.shared.link_tasks.wait_idle().await;
    }

    /// Applies a Toxiproxy config (a JSON array of proxies) with `/populate` semantics; returns the proxy count.
    pub async fn populate(&self, json: &[u8]) -> Result<usize, ConfigError> {
        let (status, body) = self.shared.collection.populate(json).await;
        if !status.is_success() {
            return Err(ConfigError::Rejected {
                status: status.as_u16(),
                body,
            });
        }
        let count = serde_json::from_str::<serde_json::Value>(&body)
            .ok()
            .and_then(|v| v.get("proxies").and_then(|p| p.as_array()).map(Vec::len))
            .unwrap_or(0);
        Ok(count)
    }

    /// Reads a config file (Toxiproxy's `-config`) and applies it.
    pub async fn populate_file(&self, path: &Path) -> Result<usize, ConfigError> {
        let bytes = tokio::fs::read(path).await.map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        self.populate(&bytes).await
    }

    /// Stops the API and every proxy, closing their connections.
    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        self.shared.collection.stop_all().await;
        if let Some(task) = self.task.take() {
            let _ = task.await;
        }
    }
}

impl Drop for ServerHandle {
    fn drop(&mut self) {
        // Dropping the shared state drops every proxy's stop channel, which stops listeners and connections.
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
