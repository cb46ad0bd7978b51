//! Running the service: API listener, optional metrics listener, graceful shutdown bounded by `shutdown_grace`.

use std::future::{Future, IntoFuture};
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::api::{app, metrics_app, AppState};

/// Serves until `shutdown` resolves, then drains in-flight requests for at most `server.shutdown_grace`.
pub async fn run(
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let grace = state.config.server.shutdown_grace;
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
