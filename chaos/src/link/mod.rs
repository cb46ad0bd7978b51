//! A proxied connection: the client socket, the upstream socket and the two links between them.
//!
//! Each direction is one task ([`pipeline`]) that reads chunks as they arrive, timestamps them (so latency
//! pipelines, as in Toxiproxy's `link.go`), runs them through the toxics and writes them out. A natural end of input
//! half-closes the destination; a toxic that closes the link, a proxy stop or a write failure tears down both
//! sockets (with `SO_LINGER 0`, so a TCP RST, when the chain holds `reset_peer`).
//!
//! A direction without toxics does the same without copying on Linux: its task splices the bytes through a pipe
//! of its own ([`splice`]) until a toxic is added, then carries on as above; the ends are the same on both paths.

mod pipeline;
#[cfg(target_os = "linux")]
mod splice;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::metrics::{Labels, Metrics};
use crate::model::Stream;
use crate::rng::SeedSource;
use crate::tasks::{TaskCounter, TaskGuard};
use crate::toxics::stage::Chain;
use pipeline::Pipeline;

/// What a connection needs from its proxy.
#[derive(Debug, Clone)]
pub(crate) struct ConnEnv {
    pub(crate) proxy: String,
    pub(crate) listener: String,
    pub(crate) upstream: String,
    /// Becomes `true` (or closes) when the proxy stops.
    pub(crate) stop: watch::Receiver<bool>,
    /// The toxic chains, indexed by [`Stream::index`].
    pub(crate) chains: [watch::Receiver<Arc<Chain>>; 2],
    pub(crate) seeds: Arc<SeedSource>,
    pub(crate) metrics: Arc<Metrics>,
    /// Counters every task of the connection is counted in (server-wide and per proxy run).
    pub(crate) counters: Vec<Arc<TaskCounter>>,
}

/// Waits for the proxy to stop or the connection to be torn down (a closed channel counts as both).
#[derive(Debug, Clone)]
pub(crate) struct Stop {
    proxy: watch::Receiver<bool>,
    conn: watch::Receiver<bool>,
}

impl Stop {
    pub(crate) async fn wait(&mut self) {
        tokio::select! {
            _ = self.proxy.wait_for(|stopped| *stopped) => {}
            _ = self.conn.wait_for(|killed| *killed) => {}
        }
    }
}

/// Dials the upstream and starts both links; on a failed dial the client is closed at once, as Toxiproxy does.
/// `guard` counts this task; the caller takes it before spawning so that no task is ever uncounted.
pub(crate) async fn serve(client: TcpStream, env: ConnEnv, guard: TaskGuard) {
    let _guard = guard;
    let mut stop = env.stop.clone();
    let dialed = tokio::select! {
        biased;
        _ = stop.wait_for(|stopped| *stopped) => return,
        dialed = TcpStream::connect(env.upstream.as_str()) => dialed,
    };
    let server = match dialed {
        Ok(server) => server,
        Err(error) => {
            tracing::warn!(proxy = %env.proxy, upstream = %env.upstream, %error, "Unable to open connection to upstream.");
            return;
        }
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (kill_tx, kill_rx) = watch::channel(false);
    let kill = Arc::new(kill_tx);
    let linger = Arc::new(AtomicBool::new(false));
    let (client_r, client_w) = client.into_split();
    let (server_r, server_w) = server.into_split();
    let stop = Stop {
        proxy: env.stop.clone(),
        conn: kill_rx,
    };
    for (direction, source, dest) in [
        (Stream::Upstream, client_r, server_w),
        (Stream::Downstream, server_r, client_w),
    ] {
        let labels = Labels {
            direction: direction.as_str(),
            listener: env.listener.clone(),
            proxy: env.proxy.clone(),
            upstream: env.upstream.clone(),
        };
        let link = Pipeline::new(
            source,
            dest,
            env.chains[direction.index()].clone(),
            stop.clone(),
            kill.clone(),
            linger.clone(),
            env.seeds.next_rng(),
        );
        let metrics = env.metrics.clone();
        let guard = TaskGuard::new(&env.counters);
        tokio::spawn(async move {
            let (received, sent) = link.run().await;
            metrics.add(&labels, received, sent);
            drop(guard);
        });
    }
}
