//! `llm-chaos`: the command line over the library; parses flags, sets up logging, runs the server.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use llm_chaos::{Server, ServerConfig};
use tracing_subscriber::EnvFilter;

/// A Toxiproxy-compatible TCP fault proxy.
///
/// It speaks Toxiproxy v2.12's REST API, so Toxiproxy's clients, the outage scripts in chaos/scripts/ and the
/// scenario runner drive it unchanged; a real Toxiproxy can replace it (TOXIPROXY_URL).
#[derive(Debug, Parser)]
#[command(name = "llm-chaos", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the API and the proxies.
    ///
    /// Proxies come from --config (Toxiproxy's JSON array of {name, listen, upstream, enabled}) and from the
    /// API: POST /proxies, then toxics (latency, bandwidth, slow_close, timeout, reset_peer, slicer,
    /// limit_data) with POST /proxies/{name}/toxics. Stop with Ctrl-C or SIGTERM. Log level from LOG_LEVEL or
    /// RUST_LOG.
    ///
    /// Clients find the API through TOXIPROXY_URL (default http://127.0.0.1:8474); the same clients and
    /// chaos/scripts/*.sh work against a real Toxiproxy.
    ///
    /// Example: llm-chaos serve --config config/chaos_proxies.json
    Serve(ServeArgs),
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Address the API listens on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port the API listens on (Toxiproxy's default).
    #[arg(long, default_value_t = 8474)]
    port: u16,
    /// Proxies to create at start, in Toxiproxy's config format; the server refuses to start if one fails.
    #[arg(long, value_name = "proxies.json")]
    config: Option<PathBuf>,
    /// Seed for toxicity rolls, jitter and slicer sizes; without it runs differ.
    #[arg(long, value_name = "N", allow_negative_numbers = true)]
    seed: Option<i64>,
    /// Serve per-proxy byte counters on /metrics (without a metrics flag /metrics is 404, as in Toxiproxy).
    #[arg(long)]
    proxy_metrics: bool,
    /// Serve process figures (open fds, live link tasks) on /metrics.
    #[arg(long)]
    runtime_metrics: bool,
}

#[tokio::main]
async fn main() -> ExitCode {
    let Cli {
        command: Command::Serve(args),
    } = Cli::parse();
    let level = std::env::var("LOG_LEVEL").ok().filter(|l| !l.is_empty());
    let filter = match level {
        // Toxiproxy's levels: trace, debug, info, warn, error, fatal, panic (the last two mean errors only).
        Some(level) => match level.to_lowercase().as_str() {
            "fatal" | "panic" => EnvFilter::new("error"),
            other => EnvFilter::new(other),
        },
        None => EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
    };
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .init();
    match serve(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("llm-chaos: {message}");
            ExitCode::FAILURE
        }
    }
}

async fn serve(args: ServeArgs) -> Result<(), String> {
    let address = format!("{}:{}", args.host, args.port);
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host(&address)
        .await
        .map_err(|e| format!("cannot resolve {address}: {e}"))?
        .collect();
    let listener = match addrs.first() {
        Some(addr) => tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot listen on {addr}: {e}"))?,
        None => return Err(format!("cannot resolve {address}")),
    };
    let config = ServerConfig {
        seed: args.seed.map(|s| s as u64),
        proxy_metrics: args.proxy_metrics,
        runtime_metrics: args.runtime_metrics,
    };
    let server = Server::start(listener, config).map_err(|e| format!("cannot start the API: {e}"))?;
    if let Some(path) = &args.config {
        match server.populate_file(path).await {
            Ok(count) => {
                tracing::info!(config = %path.display(), proxies = count, "Populated proxies from file.")
            }
            Err(error) => {
                server.shutdown().await;
                return Err(error.to_string());
            }
        }
    }
    tracing::info!(url = %server.url(), "Ready.");
    stop_signal().await;
    tracing::info!("Shutting down.");
    server.shutdown().await;
    Ok(())
}

/// Ctrl-C or SIGTERM (what `kill` and container runtimes send).
async fn stop_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
