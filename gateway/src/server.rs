//! Running the service: API listener, optional metrics listener, graceful shutdown bounded by `shutdown_grace`.

use std::future::{Future, IntoFuture};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{app, metrics_app, AppState};
use crate::config::Mode;
use crate::router::connectivity::probe_loop;

/// Serves until `shutdown` resolves, then drains in-flight requests for at most `server.shutdown_grace`.
pub async fn run(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = state.config.server.shutdown_grace;
    start_probes(&state);
    let (tx, rx) = watch::channel(false);
    let wait = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopping| *stopping).await;
    };
    if let Some(ml) = metrics_listener {
        let m = metrics_app(state.clone());
        let rx = rx.clone();
        tokio::spawn(async move {
            if let Err(e) = axum::serve(ml, m).with_graceful_shutdown(wait(rx)).await {
                tracing::error!(error = %e, "metrics listener failed");
            }
        });
    }
    // TCP_NODELAY on every client connection: without it a stream's chunk written while the previous one is
    // unacknowledged waits for the client's delayed ACK (tens of ms; llm-benches' stream part shows it).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, app(state)).with_graceful_shutdown(wait(rx.clone()));
    let signal = async move {
        shutdown.await;
        tracing::info!(
            grace_ms = grace.as_millis() as u64,
            "shutting down, draining in-flight requests"
        );
        let _ = tx.send(true);
        tokio::time::sleep(grace).await;
    };
    tokio::select! {
        r = server.into_future() => r,
        () = signal => {
            tracing::warn!("drain period over, closing remaining connections");
            Ok(())
        }
    }
}

/// Starts the connectivity probes when `connectivity:` is configured (the task ends with the state). A probe is
/// `GET <base_url>/models` without credentials: any HTTP answer (401 included) proves the provider reachable, and
/// nothing is billed. No probe goes out in offline mode.
pub fn start_probes(state: &Arc<AppState>) {
    let Some(cc) = state.config.connectivity else {
        return;
    };
    let mut clients = std::collections::BTreeMap::new();
    for name in state.router.connectivity().providers() {
        let Some(pc) = state.config.providers.get(name) else {
            continue;
        };
        match crate::providers::http::build_client(pc) {
            Ok(c) => {
                clients.insert(name.clone(), (c, format!("{}/models", pc.base_url)));
            }
            Err(e) => tracing::warn!(provider = %name, error = %e, "no connectivity probe for this provider"),
        }
    }
    let clients = Arc::new(clients);
    let weak = Arc::downgrade(state);
    let conn = Arc::downgrade(state.router.connectivity());
    tokio::spawn(probe_loop(
        conn,
        cc.probe_interval,
        cc.probe_timeout,
        move |name: String| {
            let clients = clients.clone();
            let weak = weak.clone();
            async move {
                let offline = weak.upgrade().is_none_or(|s| s.router.mode() == Mode::Offline);
                if offline {
                    return None;
                }
                let (client, url) = clients.get(&name)?;
                Some(client.get(url).send().await.is_ok())
            }
        },
    ));
}
