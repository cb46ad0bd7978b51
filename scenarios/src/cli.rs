//! The `llm-scenarios` command line: `run`, `validate`, `list`, `rehearse`. Exit codes: 0 all passed, 1 an
//! expectation failed (or the stand broke), 2 unusable input (format errors, nothing matched).

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::format::{self, Scenario};
use crate::report::{self, console};
use crate::runner::{run_all, RunOptions};
use crate::stand::{Layout, StandOptions};

/// Default folder of the standard suite.
pub const DEFAULT_SUITE: &str = "scenarios/suites";
/// Default folder of the reports.
pub const OUTPUT_DIR: &str = "output/scenarios";

/// Command line.
#[derive(Debug, Parser)]
#[command(
    name = "llm-scenarios",
    version,
    about = "Declarative outage scenarios for the LLM gateway"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run scenarios (default: the standard suite) and report; exit 1 when an expectation fails.
    Run(RunArgs),
    /// Check scenario files without running them.
    Validate {
        /// Files or folders (default: scenarios/suites).
        paths: Vec<PathBuf>,
    },
    /// List scenarios with their phases and tags.
    List {
        /// Files or folders (default: scenarios/suites).
        paths: Vec<PathBuf>,
    },
    /// Bring the stand up on the design's ports and keep it up until Ctrl-C (outage rehearsal).
    Rehearse {
        /// A scenario whose gateway config (and faults, as scripts to try) to use; default: the simulation config.
        scenario: Option<PathBuf>,
        /// Chaos API to use instead of the embedded one.
        #[arg(long, env = "TOXIPROXY_URL")]
        toxiproxy_url: Option<String>,
    },
}

/// `run` options.
#[derive(Debug, Args)]
pub struct RunArgs {
    /// Files or folders (default: scenarios/suites).
    pub paths: Vec<PathBuf>,
    /// Only scenarios whose name, file name or a tag contains this text.
    #[arg(long)]
    pub filter: Option<String>,
    /// Write the JSON journal (default path output/scenarios/report.json).
    #[arg(long, num_args = 0..=1, default_missing_value = "output/scenarios/report.json")]
    pub json: Option<PathBuf>,
    /// Write JUnit XML (default path output/scenarios/junit.xml).
    #[arg(long, num_args = 0..=1, default_missing_value = "output/scenarios/junit.xml")]
    pub junit: Option<PathBuf>,
    /// Write the HTML page (default path output/scenarios/report.html).
    #[arg(long, num_args = 0..=1, default_missing_value = "output/scenarios/report.html")]
    pub html: Option<PathBuf>,
    /// Test a deployed gateway instead of one in process (it must use the scenario's config and ports).
    #[arg(long)]
    pub gateway_url: Option<String>,
    /// Metrics URL of the deployed gateway (default: <gateway-url>/metrics).
    #[arg(long, requires = "gateway_url")]
    pub gateway_metrics_url: Option<String>,
    /// A Toxiproxy to use instead of the embedded chaos server.
    #[arg(long, env = "TOXIPROXY_URL")]
    pub toxiproxy_url: Option<String>,
    /// Write each scenario's offline-incident report (docs/templates/offline_incident_report.md filled from the
    /// run's own /metrics scrapes, as `llm-gateway incident-report` does from Prometheus) to this folder
    /// (default output/scenarios/incident), one NAME.md per scenario.
    #[arg(long, num_args = 0..=1, default_missing_value = "output/scenarios/incident")]
    pub incident_report: Option<PathBuf>,
    /// No progress line.
    #[arg(long)]
    pub no_progress: bool,
    /// Print every check with its measured value, not only the failed ones.
    #[arg(long, short)]
    pub verbose: bool,
}

fn paths_or_default(paths: Vec<PathBuf>) -> Vec<PathBuf> {
    if paths.is_empty() {
        vec![PathBuf::from(DEFAULT_SUITE)]
    } else {
        paths
    }
}

/// Loads every scenario; prints every error. `None` when any file is invalid.
pub fn load_all(paths: &[PathBuf]) -> Option<Vec<Scenario>> {
    let files = match format::discover(paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("{e}");
            return None;
        }
    };
    let mut out = Vec::new();
    let mut bad = 0;
    for f in &files {
        match format::load(f) {
            Ok(s) => out.push(s),
            Err(e) => {
                bad += 1;
                eprintln!("{e}");
            }
        }
    }
    let mut seen = std::collections::BTreeMap::new();
    for s in &out {
        if let Some(other) = seen.insert(s.name.clone(), s.file.clone()) {
            bad += 1;
            eprintln!(
                "{}: name: {:?} is also the name of {}; expected unique names",
                s.file.display(),
                s.name,
                other.display()
            );
        }
    }
    if files.is_empty() {
        eprintln!(
            "no scenario files under {}",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return None;
    }
    (bad == 0).then_some(out)
}

fn matches(s: &Scenario, filter: &str) -> bool {
    let file = s
        .file
        .file_name()
        .map(|f| f.to_string_lossy().into_owned())
        .unwrap_or_default();
    s.name.contains(filter) || file.contains(filter) || s.tags.iter().any(|t| t.contains(filter))
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.trim().is_empty())
}

/// Runs a command; returns the exit code.
pub async fn main(cli: Cli) -> u8 {
    match cli.command {
        Command::Validate { paths } => match load_all(&paths_or_default(paths)) {
            Some(list) => {
                for s in &list {
                    println!("ok  {:<36} {}", s.name, s.file.display());
                }
                println!("{} scenarios valid", list.len());
                0
            }
            None => 2,
        },
        Command::List { paths } => match load_all(&paths_or_default(paths)) {
            Some(list) => {
                for s in &list {
                    let phases: Vec<&str> = s.phases.iter().map(|p| p.name.as_str()).collect();
                    println!(
                        "{:<36} [{}] phases: {}",
                        s.name,
                        s.tags.join(","),
                        phases.join(" -> ")
                    );
                    if !s.description.is_empty() {
                        println!("    {}", s.description.lines().next().unwrap_or_default());
                    }
                }
                0
            }
            None => 2,
        },
        Command::Rehearse {
            scenario,
            toxiproxy_url,
        } => crate::rehearse::rehearse(scenario.as_deref(), nonempty(toxiproxy_url)).await,
        Command::Run(args) => run(args).await,
    }
}

type Writer = fn(&report::RunReport, &Path) -> std::io::Result<()>;

async fn run(args: RunArgs) -> u8 {
    let Some(mut list) = load_all(&paths_or_default(args.paths.clone())) else {
        return 2;
    };
    if let Some(f) = &args.filter {
        list.retain(|s| matches(s, f));
        if list.is_empty() {
            eprintln!("no scenario matches --filter {f:?}");
            return 2;
        }
    }
    let layout = if args.gateway_url.is_some() {
        Layout::Fixed
    } else {
        Layout::Ephemeral
    };
    if let Some(url) = &args.gateway_url {
        for s in list.iter().filter(|s| s.gateway.overridden) {
            eprintln!(
                "warning: {} has gateway overrides, which the deployed gateway at {url} does not have; its results may differ",
                s.name
            );
        }
    }
    let opts = RunOptions {
        stand: StandOptions {
            layout,
            chaos_url: nonempty(args.toxiproxy_url),
            gateway_url: args.gateway_url,
            gateway_metrics_url: args.gateway_metrics_url,
        },
        progress: !args.no_progress,
        print: true,
        verbose: args.verbose,
        incident_reports: args.incident_report,
    };
    let report = run_all(&list, &opts).await;
    print!("{}", console::summary(&report));
    for s in &report.scenarios {
        if let Some(p) = &s.incident_report {
            println!("wrote {p}");
        }
    }
    let mut code = if report.passed { 0 } else { 1 };
    let writes: [(&Option<PathBuf>, Writer); 3] = [
        (&args.json, report::write_json),
        (&args.junit, report::junit::write),
        (&args.html, report::html::write),
    ];
    for (path, write) in writes {
        if let Some(p) = path {
            match write(&report, p) {
                Ok(()) => println!("wrote {}", p.display()),
                Err(e) => {
                    eprintln!("cannot write {}: {e}", p.display());
                    code = code.max(1);
                }
            }
        }
    }
    code
}
