//! `llm-mocks`: runs the fake providers. Thin: parses the CLI, sets up tracing, calls the library.

use clap::{Parser, Subcommand};
use llm_mocks::{Fakes, Provider};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "llm-mocks",
    version,
    about = "Fake OpenAI, Kimi, Qwen (DashScope), GigaChat and Ollama servers for resilience tests",
    long_about = "Fake OpenAI, Kimi, Qwen (DashScope), GigaChat and Ollama servers. Each speaks its provider's real \
paths, JSON, streams, headers and error bodies, so the official SDKs work against it unchanged. Each fake \
has an admin API on its own port under /__mock/ (faults, settings, reset, request journal)."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the fakes and serve until SIGINT or SIGTERM.
    ///
    /// Prints one line per provider with its base URL, then `ready`.
    Serve(Serve),
}

#[derive(clap::Args)]
struct Serve {
    /// Address to bind every fake on.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Start only these providers (comma-separated: openai,kimi,qwen,gigachat,ollama).
    #[arg(long, value_delimiter = ',')]
    only: Vec<Provider>,
    /// Port of the OpenAI fake (0 = any free port).
    #[arg(long, default_value_t = 18081)]
    openai_port: u16,
    /// Port of the Moonshot Kimi fake.
    #[arg(long, default_value_t = 18082)]
    kimi_port: u16,
    /// Port of the Qwen (DashScope) fake: compatible mode and native API.
    #[arg(long, default_value_t = 18083)]
    qwen_port: u16,
    /// Port of the GigaChat fake: API and OAuth.
    #[arg(long, default_value_t = 18084)]
    gigachat_port: u16,
    /// Port of the Ollama fake.
    #[arg(long, default_value_t = 18085)]
    ollama_port: u16,
}

impl Serve {
    fn port(&self, p: Provider) -> u16 {
        match p {
            Provider::OpenAi => self.openai_port,
            Provider::Kimi => self.kimi_port,
            Provider::Qwen => self.qwen_port,
            Provider::GigaChat => self.gigachat_port,
            Provider::Ollama => self.ollama_port,
        }
    }
}

async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {},
                    _ = term.recv() => {},
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn serve(args: Serve) -> ExitCode {
    let wanted: Vec<Provider> = Provider::ALL
        .into_iter()
        .filter(|p| args.only.is_empty() || args.only.contains(p))
        .collect();
    let spec: Vec<(Provider, String)> = wanted
        .iter()
        .map(|p| (*p, format!("{}:{}", args.host, args.port(*p))))
        .collect();
    let fakes = match Fakes::start(&spec).await {
        Ok(f) => f,
        Err(e) => {
            eprintln!("llm-mocks: {e}");
            return ExitCode::FAILURE;
        }
    };
    for s in fakes.servers() {
        let extra: Vec<String> = s
            .extra_urls()
            .into_iter()
            .map(|(k, v)| format!("{k} {v}"))
            .collect();
        let extra = if extra.is_empty() {
            String::new()
        } else {
            format!("  ({})", extra.join(", "))
        };
        println!("{:<9} {}{}", s.provider().name(), s.base_url(), extra);
    }
    println!("ready");
    shutdown_signal().await;
    tracing::info!("shutting down");
    drop(fakes);
    println!("stopped");
    ExitCode::SUCCESS
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("LLM_MOCKS_LOG").unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("llm-mocks: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Serve(args) => rt.block_on(serve(args)),
    }
}
