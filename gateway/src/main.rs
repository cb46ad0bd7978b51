//! `llm-gateway`: thin binary over the library: parse the CLI, set up tracing, run.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use llm_gateway::config::{process_env, Config};
use llm_gateway::{ops, server, AppState};

#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
    /// Check each provider directly: credentials, one chat, one stream (embeddings with --full).
    Smoke {
        /// Config file.
        #[arg(long, env = "LLM_GATEWAY_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Only this provider.
        #[arg(long)]
        provider: Option<String>,
        /// Also check embeddings.
        #[arg(long)]
        full: bool,
        /// JSON report.
        #[arg(long, default_value = "output/llm_smoke_report.json")]
        report: PathBuf,
    },
    /// Run the gateway in process in offline mode over a prompt set; fail without offline hits or on any 5xx.
    OfflineDryRun {
        /// Config file.
        #[arg(long, env = "LLM_GATEWAY_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Prompts, one a line (default: every prompt of the configured packages).
        #[arg(long)]
        prompts: Option<PathBuf>,
        /// JSON report.
        #[arg(long, default_value = "output/llm_offline_dry_run.json")]
        report: PathBuf,
    },
    /// The MCP server `LLMProviderTool` on stdin/stdout (for desktop MCP clients): the gateway in this process,
    /// or with --gateway-url a running gateway over its REST API. Logs go to stderr. The admin token of admin
    /// tools comes from LLM_MCP_ADMIN_TOKEN, the client key for --gateway-url from LLM_MCP_API_KEY.
    Mcp {
        /// Config file (with --gateway-url: the file that gateway runs with, for llm_smoke and the offline
        /// packages).
        #[arg(long, env = "LLM_GATEWAY_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// A running gateway, e.g. http://127.0.0.1:6001 (default: the gateway in this process).
        #[arg(long)]
        gateway_url: Option<String>,
    },
    /// Offline packages: `offline build`.
    #[command(subcommand)]
    Offline(OfflineCommand),
    /// Fill the offline-incident report (docs/templates/offline_incident_report.md) from a real Prometheus over
    /// a time window: timeline of mode changes, breaker openings and closings, cooldowns and errors; requests
    /// per tier, 5xx, fallback rate, offline hits and misses, latency p50/p99, providers and their error
    /// classes. Families with no data in the window are named in the report.
    IncidentReport {
        /// Prometheus base URL (its HTTP API is queried with query_range), e.g. http://127.0.0.1:9090.
        #[arg(long)]
        prometheus: String,
        /// Window start: RFC 3339 (2026-12-03T08:00:00Z), unix seconds, or now-2h.
        #[arg(long)]
        from: String,
        /// Window end (same forms; default now).
        #[arg(long, default_value = "now")]
        to: String,
        /// Seconds between points (default 1, raised for long windows to at most 10,000 points).
        #[arg(long)]
        step: Option<f64>,
        /// Label matchers added to every query, e.g. 'job="llm-gateway",instance="10.0.0.5:6001"'.
        #[arg(long)]
        selector: Option<String>,
        /// Write the Markdown report here (default: print it).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Also write the computed figures as JSON.
        #[arg(long)]
        json: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum OfflineCommand {
    /// Build a versioned offline package by asking the live chain (the gateway in process, from --config) for
    /// each prompt; the package goes to OUT/NAME-VERSION. An existing version is never overwritten; an
    /// interrupted build resumes without asking a prompt twice; failed prompts are reported and the package is
    /// written once every prompt is answered (or with --skip-failed). Prove it with offline-dry-run.
    Build {
        /// Config file (providers, models, fallback order).
        #[arg(long, env = "LLM_GATEWAY_CONFIG", default_value = DEFAULT_CONFIG)]
        config: PathBuf,
        /// Prompts, one a line (blank lines and # comments ignored).
        #[arg(long, conflicts_with = "from_misses", required_unless_present = "from_misses")]
        prompts: Option<PathBuf>,
        /// A gateway's GET /admin/offline/misses URL: its recorded misses become the prompts.
        #[arg(long)]
        from_misses: Option<String>,
        /// Admin token for --from-misses (when the gateway sets server.admin_token).
        #[arg(long, env = "LLM_GATEWAY_ADMIN_TOKEN", hide_env_values = true)]
        admin_token: Option<String>,
        /// With --from-misses: only prompts missed at least this often.
        #[arg(long, default_value_t = 1)]
        min_count: u64,
        /// Folder the package folder NAME-VERSION is created in.
        #[arg(long)]
        out: PathBuf,
        /// Package name.
        #[arg(long)]
        name: String,
        /// Package version.
        #[arg(long)]
        version: String,
        /// Chat model to ask (logical, or provider/model).
        #[arg(long, default_value = "default")]
        model: String,
        /// Also store each prompt's vector from the embeddings model (name and dimension go to the manifest).
        #[arg(long)]
        embeddings: bool,
        /// The embeddings model for --embeddings.
        #[arg(long, default_value = "embeddings")]
        embeddings_model: String,
        /// Ask only this provider (a name from the config).
        #[arg(long)]
        provider: Option<String>,
        /// Manifest description.
        #[arg(long)]
        description: Option<String>,
        /// Write the package without the prompts that failed.
        #[arg(long)]
        skip_failed: bool,
        /// JSON report.
        #[arg(long, default_value = "output/llm_offline_build.json")]
        report: PathBuf,
    },
}

const DEFAULT_CONFIG: &str = "config/llm_gateway_simulation.yaml";

/// mimalloc reads its options once, from the environment, before `main`. By default it keeps pages freed by closed
/// connections resident until it next purges, so a burst of held connections stayed resident after they closed.
/// `serve` runs with `MIMALLOC_PURGE_DELAY=0` (freed pages go back to the OS at once; after 1,000 held heads,
/// +36 MB, 5 to 20 MB stay: tests/edge_process.rs) unless the operator set it: the process replaces itself once
/// with that variable set (`exec`, same pid).
#[cfg(unix)]
fn purge_freed_memory_promptly() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else { return };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("MIMALLOC_PURGE_DELAY", "0")
        .exec();
    // Only reached when exec failed: run as we are.
    eprintln!(
        "note: could not re-exec with MIMALLOC_PURGE_DELAY=0 ({err}); freed memory returns to the OS later"
    );
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    #[cfg(unix)]
    if matches!(cli.command, Command::Serve { .. }) {
        purge_freed_memory_promptly();
    }
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
        Command::Smoke {
            config,
            provider,
            full,
            report,
        } => block_on(smoke(&config, provider.as_deref(), full, &report)),
        Command::Mcp { config, gateway_url } => block_on(mcp(&config, gateway_url.as_deref())),
        Command::OfflineDryRun {
            config,
            prompts,
            report,
        } => block_on(dry_run(&config, prompts.as_deref(), &report)),
        Command::Offline(OfflineCommand::Build {
            config,
            prompts,
            from_misses,
            admin_token,
            min_count,
            out,
            name,
            version,
            model,
            embeddings,
            embeddings_model,
            provider,
            description,
            skip_failed,
            report,
        }) => {
            let source = match (prompts, from_misses) {
                (Some(p), _) => PromptSource::File(p),
                (None, Some(url)) => PromptSource::Misses {
                    url,
                    token: admin_token,
                    min_count,
                },
                (None, None) => {
                    eprintln!("pass --prompts FILE or --from-misses URL");
                    return ExitCode::from(2);
                }
            };
            let opts = ops::build::BuildOptions {
                out,
                name,
                version,
                model,
                embeddings_model: embeddings.then_some(embeddings_model),
                provider,
                description,
                skip_failed,
            };
            block_on(build(&config, source, &opts, &report))
        }
        Command::IncidentReport {
            prometheus,
            from,
            to,
            step,
            selector,
            out,
            json,
        } => block_on(incident_report(
            prometheus,
            &from,
            &to,
            step,
            selector,
            out.as_deref(),
            json.as_deref(),
        )),
    }
}

enum PromptSource {
    File(PathBuf),
    Misses {
        url: String,
        token: Option<String>,
        min_count: u64,
    },
}

async fn build(
    path: &Path,
    source: PromptSource,
    opts: &ops::build::BuildOptions,
    report: &Path,
) -> ExitCode {
    let cfg = match Config::load(path, &process_env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let prompts = match source {
        PromptSource::File(p) => ops::dry_run::read_prompts(&p),
        PromptSource::Misses {
            url,
            token,
            min_count,
        } => {
            let client = reqwest::Client::new();
            ops::build::prompts_from_misses(&client, &url, token.as_deref(), min_count)
                .await
                .map(|(prompts, skipped)| {
                    for s in &skipped {
                        eprintln!("skipped miss {s}");
                    }
                    prompts
                })
        }
    };
    let prompts = match prompts {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let mut progress = ops::build::StderrProgress::default();
    let r = match ops::build::run(cfg, prompts, opts, &mut progress).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", ops::build::summary(&r));
    if let Err(e) = ops::write_report(report, &r) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    println!("report: {}", report.display());
    if r.written {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn incident_report(
    url: String,
    from: &str,
    to: &str,
    step: Option<f64>,
    selector: Option<String>,
    out: Option<&Path>,
    json: Option<&Path>,
) -> ExitCode {
    use ops::incident;
    let now = std::time::SystemTime::now();
    let (from, to) = match (incident::parse_time(from, now), incident::parse_time(to, now)) {
        (Ok(f), Ok(t)) => (f, t),
        (Err(e), _) => {
            eprintln!("--from: {e}");
            return ExitCode::from(2);
        }
        (_, Err(e)) => {
            eprintln!("--to: {e}");
            return ExitCode::from(2);
        }
    };
    let q = incident::PromQuery {
        url,
        from,
        to,
        step: step.filter(|s| s.is_finite() && *s > 0.0),
        selector,
    };
    let client = reqwest::Client::new();
    let m = match incident::from_prometheus(&client, &q).await {
        Ok(m) => m,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let r = incident::analyse(&m);
    let text = incident::render(&r);
    for line in &r.missing {
        eprintln!("note: {line}");
    }
    if let Some(j) = json {
        if let Err(e) = ops::write_report(j, &r) {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    }
    match out {
        Some(p) => {
            if let Some(dir) = p.parent().filter(|d| !d.as_os_str().is_empty()) {
                let _ = std::fs::create_dir_all(dir);
            }
            if let Err(e) = std::fs::write(p, &text) {
                eprintln!("cannot write {}: {e}", p.display());
                return ExitCode::FAILURE;
            }
            println!("report: {}", p.display());
        }
        None => print!("{text}"),
    }
    ExitCode::SUCCESS
}

fn block_on(f: impl std::future::Future<Output = ExitCode>) -> ExitCode {
    match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(rt) => rt.block_on(f),
        Err(e) => {
            eprintln!("cannot start runtime: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn smoke(path: &Path, provider: Option<&str>, full: bool, report: &Path) -> ExitCode {
    let cfg = match Config::load(path, &process_env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let r = match ops::smoke::run(&cfg, provider, full).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", ops::smoke::table(&r));
    if let Err(e) = ops::write_report(report, &r) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    println!("report: {}", report.display());
    if r.failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

async fn mcp(path: &Path, gateway_url: Option<&str>) -> ExitCode {
    use llm_gateway::mcp;
    let cfg = match Config::load(path, &process_env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let env = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
    let admin_token = env(mcp::ADMIN_TOKEN_ENV);
    let backend = match gateway_url {
        Some(url) => match mcp::Remote::new(url, cfg, env(mcp::API_KEY_ENV), admin_token.clone()) {
            Ok(r) => mcp::Backend::Remote(Box::new(r)),
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
        None => match AppState::new(cfg) {
            Ok(s) => {
                server::start_probes(&s);
                mcp::Backend::Local(s)
            }
            Err(e) => {
                eprintln!("{e}");
                return ExitCode::FAILURE;
            }
        },
    };
    let tool = mcp::LlmProviderTool::new(std::sync::Arc::new(backend), admin_token);
    match mcp::serve_stdio(tool).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

async fn dry_run(path: &Path, prompts: Option<&Path>, report: &Path) -> ExitCode {
    let cfg = match Config::load(path, &process_env) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let prompts = match prompts.map(ops::dry_run::read_prompts).transpose() {
        Ok(p) => p,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let r = match ops::dry_run::run(cfg, prompts).await {
        Ok(r) => r,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", ops::dry_run::summary(&r));
    if let Err(e) = ops::write_report(report, &r) {
        eprintln!("{e}");
        return ExitCode::FAILURE;
    }
    println!("report: {}", report.display());
    if r.passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
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
    for (path, msg) in llm_gateway::router::Planner::new(&cfg).warnings() {
        println!("warning: {path}: {msg}");
    }
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
        // The bound addresses (port 0 in config picks a free one).
        let addr = listener.local_addr().unwrap_or(addr);
        let maddr = metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
            .or(maddr);
        tracing::info!(%addr, metrics = ?maddr, "llm-gateway listening");
        let telemetry = state.telemetry.clone();
        let served = server::run(listener, metrics_listener, state, shutdown_signal()).await;
        if let Some(t) = telemetry {
            // The last spans, within 2 s: a collector that is down does not hold the exit longer.
            let _ = tokio::task::spawn_blocking(move || t.shutdown(std::time::Duration::from_secs(2))).await;
        }
        match served {
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
