//! `llm-gateway`: thin binary over the library: parse the CLI, set up tracing, run.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use llm_gateway::config::{process_env, Config};
use llm_gateway::{server, AppState};

#[derive(Parser)]
#[command(name = "llm-gateway", version, about = "LLM gateway with provider fallback")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the service.
    Serve {
        /// Config file.
        #[arg(long, env = "LLM_GATEWAY_CONFIG")]
        config: PathBuf,
        /// Override `server.listen`.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Validate a config and list which providers have secrets.
    CheckConfig {
        /// Config file.
        #[arg(long, env = "LLM_GATEWAY_CONFIG")]
        config: PathBuf,
        /// Also fail when a remote provider in the order has no secret.
        #[arg(long)]
        require_secrets: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .init();
    match cli.command {
        Command::CheckConfig {
            config,
            require_secrets,
        } => check_config(&config, require_secrets),
        Command::Serve { config, listen } => serve(&config, listen),
    }
}

fn check_config(path: &std::path::Path, require_secrets: bool) -> ExitCode {
    let cfg = match Config::load(path, &process_env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    println!(
        "config {} is valid: mode {}, {} providers",
        path.display(),
        cfg.mode.as_str(),
        cfg.providers.len()
    );
    println!("fallback order: {}", cfg.policy.order.join(" -> "));
    let mut missing = Vec::new();
    for p in cfg.providers.values() {
        let needs = p.kind.default_secret_env().is_some();
        let status = match (&p.secret, needs) {
            (_, false) => "no secret needed".to_string(),
            (Some(_), true) => format!("secret present (from {})", p.secret_source.found_in),
            (None, true) => {
                if cfg.policy.order.contains(&p.name) {
                    missing.push(p.name.clone());
                }
                let env = p.secret_source.env.as_deref().unwrap_or("-");
                format!("secret MISSING (set {env} or {env}_FILE)")
            }
        };
        println!(
            "  {:<10} {:<9} {}",
            p.name,
            format!("{:?}", p.kind).to_lowercase(),
            status
        );
    }
    if !missing.is_empty() {
        println!("providers without secrets: {}", missing.join(", "));
        if require_secrets {
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

fn serve(path: &std::path::Path, listen: Option<std::net::SocketAddr>) -> ExitCode {
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    rt.block_on(async {
        let mut cfg = match Config::load(path, &process_env) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        if let Some(l) = listen {
            cfg.server.listen = l;
        }
        let (addr, maddr) = (cfg.server.listen, cfg.server.metrics_listen);
        let state = match AppState::new(cfg) {
            Ok(s) => s,
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        };
        let listener = match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("cannot listen on {addr}: {e}");
                return ExitCode::FAILURE;
            }
        };
        let metrics_listener = match maddr {
            Some(a) => match tokio::net::TcpListener::bind(a).await {
                Ok(l) => Some(l),
                Err(e) => {
                    eprintln!("cannot listen on {a} (metrics): {e}");
                    return ExitCode::FAILURE;
                }
            },
            None => None,
        };
        tracing::info!(%addr, metrics = ?maddr, "llm-gateway listening");
        match server::run(listener, metrics_listener, state, shutdown_signal()).await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("server error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
