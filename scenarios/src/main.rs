//! `llm-scenarios`: thin binary over the library: parse the CLI, set up tracing, call [`llm_scenarios::cli::main`].

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = llm_scenarios::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,llm_gateway=error")),
        )
        .with_writer(std::io::stderr)
        .init();
    let rt = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    ExitCode::from(rt.block_on(llm_scenarios::cli::main(cli)))
}
