//! One proxy: its settings, its toxics, and while enabled its listener and connections.
//!
//! Starting binds the listener (port 0 becomes the real port in `listen`) and spawns the accept loop; stopping
//! closes the listener, tears down every connection and waits until their tasks are gone.

pub(crate) mod listen;
pub(crate) mod toxic_list;

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::link::{self, ConnEnv};
use crate::metrics::Metrics;
use crate::rng::SeedSource;
use crate::tasks::{TaskCounter, TaskGuard};
use toxic_list::{ToxicEntry, ToxicList};

/// How long a stop waits for connection tasks before giving up on them (they are told to stop regardless).
const STOP_GRACE: Duration = Duration::from_secs(10);

/// What proxies share with the server.
#[derive(Debug, Clone)]
pub(crate) struct Env {
    pub(crate) seeds: Arc<SeedSource>,
    pub(crate) metrics: Arc<Metrics>,
    /// Every link task of the server.
    pub(crate) link_tasks: Arc<TaskCounter>,
}

#[derive(Debug)]
struct Running {
    stop: watch::Sender<bool>,
    accept: JoinHandle<()>,
    tasks: Arc<TaskCounter>,
}

/// A proxy and its runtime.
#[derive(Debug)]
pub(crate) struct ProxyEntry {
    pub(crate) name: String,
    /// As configured until started, then the bound address.
    pub(crate) listen: String,
    pub(crate) upstream: String,
    pub(crate) toxics: ToxicList,
    running: Option<Running>,
}

/// A proxy on the wire: Toxiproxy's field order, including the stray `"Logger":{}`.
#[derive(Serialize)]
struct ProxyWire<'a> {
    name: &'a str,
    listen: &'a str,
    upstream: &'a str,
    enabled: bool,
    #[serde(rename = "Logger")]
    logger: Empty,
    toxics: Vec<&'a ToxicEntry>,
}

#[derive(Serialize)]
struct Empty {}

impl Serialize for ProxyEntry {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        ProxyWire {
            name: &self.name,
            listen: &self.listen,
            upstream: &self.upstream,
            enabled: self.enabled(),
            logger: Empty {},
            toxics: self.toxics.all(),
        }
        .serialize(serializer)
    }
}

impl ProxyEntry {
    /// A stopped proxy without toxics.
    pub(crate) fn new(name: String, listen: String, upstream: String) -> Self {
        Self {
            name,
            listen,
            upstream,
            toxics: ToxicList::default(),
            running: None,
        }
    }

    /// Whether the proxy is listening.
    pub(crate) fn enabled(&self) -> bool {
        self.running.is_some()
    }

    /// Binds and starts accepting. Starting a started proxy does nothing.
    pub(crate) async fn start(&mut self, env: &Env) -> Result<(), String> {
        if self.running.is_some() {
            return Ok(());
        }
        let listener = listen::bind(&self.listen).await?;
        if let Ok(addr) = listener.local_addr() {
            self.listen = addr.to_string();
        }
        let (stop, stop_rx) = watch::channel(false);
        let tasks = Arc::new(TaskCounter::default());
        let conn = ConnEnv {
            proxy: self.name.clone(),
            listener: self.listen.clone(),
            upstream: self.upstream.clone(),
            stop: stop_rx,
            chains: self.toxics.subscribe(),
            seeds: env.seeds.clone(),
            metrics: env.metrics.clone(),
            counters: vec![env.link_tasks.clone(), tasks.clone()],
        };
        tracing::info!(name = %self.name, listen = %self.listen, upstream = %self.upstream, "Started proxy.");
        let accept = tokio::spawn(accept_loop(listener, conn));
        self.running = Some(Running { stop, accept, tasks });
        Ok(())
    }

    /// Closes the listener and every connection, and waits for their tasks.
    pub(crate) async fn stop(&mut self) {
        let Some(running) = self.running.take() else {
            return;
        };
        running.stop.send_replace(true);
        let _ = running.accept.await;
        if tokio::time::timeout(STOP_GRACE, running.tasks.wait_idle())
            .await
            .is_err()
        {
            tracing::warn!(name = %self.name, live = running.tasks.live(), "Connections still closing after stop.");
        }
        tracing::info!(name = %self.name, listen = %self.listen, "Terminated proxy.");
    }
}

async fn accept_loop(listener: TcpListener, conn: ConnEnv) {
    let mut stop = conn.stop.clone();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = stop.wait_for(|stopped| *stopped) => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((client, _)) => {
                let guard = TaskGuard::new(&conn.counters);
                tokio::spawn(link::serve(client, conn.clone(), guard));
            }
            Err(error) => {
                // Out of descriptors or a transient error: back off briefly instead of spinning.
                tracing::warn!(proxy = %conn.proxy, %error, "Accept failed.");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}
