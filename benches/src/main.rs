//! `llm-benches`: the load benchmark. Thin: parses the CLI and calls the library.

use clap::{Parser, Subcommand};
use llm_benches::{forwarder, report, suite};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "llm-benches",
    version,
    about = "Load and fallback-latency benchmark of the LLM gateway"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Measure overhead (fake direct, bare forwarder, gateway, optional peers), throughput ceilings, the
    /// gateway's memory, fallback latency, offline answers and streams; write Markdown and JSON under --out.
    ///
    /// Needs the release binaries next to this one:
    /// `cargo build --release -p llm-gateway -p llm-mocks -p llm-benches`.
    Load(Box<LoadArgs>),
    /// Run the bare forwarder (used by `load`; handy to measure by hand).
    Forwarder {
        /// Root URL to forward to.
        #[arg(long)]
        upstream: String,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: String,
        /// Hold an event stream's head (and its chunks) until its first content token, as a gateway that can
        /// still fall back before it must (`load` measures it beside the bare forwarder in the stream part).
        #[arg(long)]
        hold_to_first_token: bool,
    },
}

#[derive(clap::Args)]
struct LoadArgs {
    /// Arrival rates of the overhead runs, requests per second.
    #[arg(long, value_delimiter = ',', default_value = "2000,5000")]
    rates: Vec<u32>,
    /// Length of each open-loop run.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    duration: Duration,
    /// The overhead runs are cut into slices this long and taken round-robin (direct, forwarder, gateway,
    /// direct, ...), so that drift on a shared machine falls alike on every target.
    #[arg(long, default_value = "1s", value_parser = humantime::parse_duration)]
    slice: Duration,
    /// Run only these parts (comma-separated).
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [suite::Part::Overhead, suite::Part::Fallback, suite::Part::Offline, suite::Part::Streams, suite::Part::State])]
    only: Vec<suite::Part>,
    /// Length of each throughput-ceiling run.
    #[arg(long, default_value = "5s", value_parser = humantime::parse_duration)]
    ceiling_duration: Duration,
    /// Requests in flight for the throughput ceilings.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// A peer gateway to install (once, at a pinned version, under --peers-dir), configure against the fakes,
    /// start on loopback, pin with the gateway and measure in the same tables (overhead, ceilings, fallback,
    /// streams); stopped at the end. Repeatable. One that fails to install or start is reported with the reason
    /// and the run goes on. Needs python3 (tensorzero, litellm) or node and npm (portkey).
    #[arg(long = "peer", value_enum)]
    peers: Vec<llm_benches::peers::PeerKind>,
    /// Where peers are installed [default: $LLM_BENCHES_PEERS_DIR, else ~/.cache/llm-benches/peers].
    #[arg(long)]
    peers_dir: Option<PathBuf>,
    /// Numbers of concurrent streams of the stream part.
    #[arg(long, value_delimiter = ',', default_value = "10,100,1000")]
    stream_levels: Vec<usize>,
    /// How long each target is streamed to at each number of streams (cut into slices taken round-robin).
    #[arg(long, default_value = "4s", value_parser = humantime::parse_duration)]
    stream_duration: Duration,
    /// At least this many streams per target at each number of streams (more rounds where the duration gives
    /// fewer): each stream gives one time to first token, and a p99 of a few dozen samples is their maximum.
    /// 200 streams at 10 at once is about 32 s per target.
    #[arg(long, default_value_t = 200)]
    stream_min_streams: usize,
    /// The pause between the chunks of a stream, and before its first (like the fakes' `stream_delay_ms`):
    /// 50 ms, about the pace of a hosted model sending a few tokens per event.
    #[arg(long, default_value = "50ms", value_parser = humantime::parse_duration)]
    stream_delay: Duration,
    /// Content chunks per stream (32 × 50 ms: a 1.6 s answer).
    #[arg(long, default_value_t = 32)]
    stream_chunks: usize,
    /// Another OpenAI-compatible gateway, started by hand, to measure with the same load. Point its OpenAI upstream at the
    /// bench's fake beforehand: start the peer with `http://127.0.0.1:<--fake-port>/v1` as its OpenAI base URL
    /// (any API key) and pass `--fake-port`.
    #[arg(long)]
    peer_url: Option<String>,
    /// The peer's process id: with `--cpus isolated` it is pinned with the forwarder and the gateway, so it
    /// gets the same CPUs they do.
    #[arg(long, requires = "peer_url")]
    peer_pid: Option<u32>,
    /// Port of the OpenAI fake in the overhead part (0: a free one, printed at start).
    #[arg(long, default_value_t = 0)]
    fake_port: u16,
    /// Model name to send to the peer.
    #[arg(long, default_value = "gpt-4o-mini")]
    peer_model: String,
    /// Arrival rate of the fallback runs.
    #[arg(long, default_value_t = 200)]
    fallback_rate: u32,
    /// Length of each fallback run.
    #[arg(long, default_value = "3s", value_parser = humantime::parse_duration)]
    fallback_duration: Duration,
    /// `isolated`: the load (generator, fake) on the lower half of the physical cores and the server under test
    /// (forwarder, gateway) on the upper half, as with a load generator on another machine, so a target is not
    /// charged for the CPU the load itself takes. `shared`: every process on every CPU. A `--peer-url` gateway
    /// is not started here: give `--peer-pid` to pin it with them.
    #[arg(long, value_enum, default_value = "isolated")]
    cpus: llm_benches::cpus::CpuMode,
    /// Where to write `load.md` and `load.json`.
    #[arg(long, default_value = "output/bench")]
    out: PathBuf,
}

fn runtime() -> Result<tokio::runtime::Runtime, std::io::Error> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build()
}

async fn load(a: LoadArgs) -> ExitCode {
    let opts = suite::Options {
        rates: a.rates,
        duration: a.duration,
        slice: a.slice,
        parts: a.only,
        ceiling_duration: a.ceiling_duration,
        concurrency: a.concurrency,
        peer_url: a.peer_url,
        peer_model: a.peer_model,
        peer_pid: a.peer_pid,
        fake_port: a.fake_port,
        fallback_rate: a.fallback_rate,
        fallback_duration: a.fallback_duration,
        cpus: a.cpus,
        peers: a.peers,
        peers_dir: a.peers_dir.unwrap_or_else(llm_benches::peers::default_dir),
        stream_levels: a.stream_levels.into_iter().filter(|&n| n > 0).collect(),
        stream_duration: a.stream_duration,
        stream_min_streams: a.stream_min_streams,
        stream_delay: a.stream_delay,
        stream_chunks: a.stream_chunks,
        progress: true,
    };
    // On Ctrl-C the run is dropped, which stops every server and peer it started.
    let results = tokio::select! {
        r = suite::run(&opts) => match r {
            Ok(r) => r,
            Err(e) => {
                eprintln!("llm-benches: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ = tokio::signal::ctrl_c() => {
            eprintln!("llm-benches: interrupted");
            return ExitCode::FAILURE;
        }
    };
    let md = report::markdown(&results);
    println!("{md}");
    let json = serde_json::to_string_pretty(&results).unwrap_or_default();
    let write = std::fs::create_dir_all(&a.out)
        .and_then(|_| std::fs::write(a.out.join("load.md"), &md))
        .and_then(|_| std::fs::write(a.out.join("load.json"), json));
    if let Err(e) = write {
        eprintln!(
            "llm-benches: cannot write the report under {}: {e}",
            a.out.display()
        );
        return ExitCode::FAILURE;
    }
    eprintln!(
        "[llm-benches] wrote {0}/load.md and {0}/load.json",
        a.out.display()
    );
    ExitCode::SUCCESS
}

async fn serve_forwarder(upstream: String, listen: String, hold: bool) -> ExitCode {
    let app = match forwarder::app(&upstream, hold) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("llm-benches forwarder: {e}");
            return ExitCode::FAILURE;
        }
    };
    let listener = match tokio::net::TcpListener::bind(&listen).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("llm-benches forwarder: cannot listen on {listen}: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Ok(addr) = listener.local_addr() {
        println!("forwarder http://{addr} -> {upstream}");
    }
    // Without TCP_NODELAY a stream's small writes wait for the client's delayed ACK (40 ms on Linux).
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    match axum::serve(listener, app).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("llm-benches forwarder: {e}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("llm-benches: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match cli.command {
        Command::Load(a) => rt.block_on(load(*a)),
        Command::Forwarder {
            upstream,
            listen,
            hold_to_first_token,
        } => rt.block_on(serve_forwarder(upstream, listen, hold_to_first_token)),
    }
}
