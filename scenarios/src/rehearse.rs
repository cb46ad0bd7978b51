//! `llm-scenarios rehearse`: the stand on DESIGN.md's ports (fakes 18081-18085, chaos API 8474, proxies where the
//! gateway config points, gateway on its configured listeners), kept up until Ctrl-C, with commands to try.

use std::fmt::Write;
use std::path::{Path, PathBuf};

use llm_gateway::config::Config;

use crate::format::{self, Fault, Scenario, Target};
use crate::gateway_config;
use crate::stand::{Layout, Stand, StandOptions};

/// The gateway config used when no scenario is named.
pub const DEFAULT_CONFIG: &str = "config/llm_gateway_simulation.yaml";

fn fault_commands(stand: &Stand, f: &Fault) -> Vec<String> {
    let chaos = stand.chaos_url();
    let names = |t: &Target, all: Vec<String>| match t {
        Target::All => all,
        Target::Named(n) => vec![n.clone()],
    };
    match f {
        Fault::Proxy { proxy, enabled } => names(proxy, stand.proxies.keys().cloned().collect())
            .into_iter()
            .map(|p| format!("curl -s -X POST {chaos}/proxies/{p} -d '{{\"enabled\":{enabled}}}'"))
            .collect(),
        Fault::Toxic { proxy, name, stream, toxicity, kind } => names(proxy, stand.proxies.keys().cloned().collect())
            .into_iter()
            .map(|p| {
                let body = serde_json::json!({"name": name, "type": kind.type_name(), "stream": stream.as_str(),
                    "toxicity": toxicity, "attributes": kind.attributes()});
                format!("curl -s -X POST {chaos}/proxies/{p}/toxics -d '{body}'")
            })
            .collect(),
        Fault::Fake { fake, spec } => names(fake, stand.fakes.keys().cloned().collect())
            .into_iter()
            .filter_map(|n| stand.fakes.get(&n).map(|s| (n, s.uri())))
            .map(|(_, uri)| {
                let body = serde_json::to_string(spec).unwrap_or_default();
                format!("curl -s -X POST {uri}/__mock/faults -d '{body}'")
            })
            .collect(),
        Fault::FakeSettings { fake, latency_ms, token_ttl_ms, stream_delay_ms } => names(fake, stand.fakes.keys().cloned().collect())
            .into_iter()
            .filter_map(|n| stand.fakes.get(&n).map(|s| s.uri()))
            .map(|uri| {
                let body = serde_json::json!({"latency_ms": latency_ms, "token_ttl_ms": token_ttl_ms,
                    "stream_delay_ms": stream_delay_ms});
                format!("curl -s -X POST {uri}/__mock/settings -d '{body}'")
            })
            .collect(),
    }
}

/// What to print once the stand is up.
pub fn banner(stand: &Stand, scenario: Option<&Scenario>) -> String {
    let mut o = String::new();
    let g = &stand.gateway_url;
    let _ = writeln!(o, "rehearsal stand is up (Ctrl-C to stop)");
    let _ = writeln!(o, "  gateway    {g}   metrics {}", stand.metrics_url);
    let _ = writeln!(o, "  chaos API  {}", stand.chaos_url());
    for (name, fake) in &stand.fakes {
        let via = stand
            .proxies
            .get(name)
            .map(|p| format!("proxy {p} -> "))
            .unwrap_or_default();
        let _ = writeln!(
            o,
            "  {name:<10} {via}fake {} (admin {}/__mock/...)",
            fake.addr(),
            fake.uri()
        );
    }
    let _ = writeln!(o, "\ntry:");
    let chat = r#"-H 'content-type: application/json' -d '{"model":"default","messages":[{"role":"user","content":"hello"}]}'"#;
    let _ = writeln!(o, "  curl -si {g}/v1/chat/completions {chat}");
    let _ = writeln!(o, "  curl -s {g}/admin/providers");
    let _ = writeln!(
        o,
        "  chaos/scripts/block_provider.sh openai [refuse|blackhole|reset]"
    );
    let _ = writeln!(o, "  chaos/scripts/degrade.sh kimi 2000");
    let _ = writeln!(o, "  chaos/scripts/cut_stream.sh openai 1600");
    let _ = writeln!(o, "  chaos/scripts/cut_internet.sh");
    let _ = writeln!(o, "  chaos/scripts/restore.sh");
    if let Some(uri) = stand.fakes.get("kimi").map(|f| f.uri()) {
        let _ = writeln!(
            o,
            "  curl -s -X POST {uri}/__mock/faults -d '{{\"fault\":\"quota_exhausted\"}}'"
        );
    }
    let _ = writeln!(
        o,
        "  curl -s -X POST {g}/admin/mode -d '{{\"mode\":\"offline\"}}'"
    );
    if let Some(sc) = scenario {
        let _ = writeln!(o, "\nthe phases of {} ({}):", sc.name, sc.file.display());
        for p in &sc.phases {
            let _ = writeln!(o, "  # {}", p.name);
            if let Some(m) = &p.mode {
                let _ = writeln!(o, "  curl -s -X POST {g}/admin/mode -d '{{\"mode\":\"{m}\"}}'");
            }
            for f in &p.faults {
                for c in fault_commands(stand, f) {
                    let _ = writeln!(o, "  {c}");
                }
            }
        }
    }
    o
}

fn config_of(scenario: Option<&Path>) -> Result<(Config, Option<Scenario>), String> {
    match scenario {
        Some(p) => {
            let sc = format::load(p).map_err(|e| e.to_string())?;
            Ok((sc.gateway.parsed.clone(), Some(sc)))
        }
        None => {
            let (_, cfg) =
                gateway_config::load(&PathBuf::from(DEFAULT_CONFIG), None).map_err(|e| e.to_string())?;
            Ok((cfg, None))
        }
    }
}

/// Runs the rehearsal stand until Ctrl-C; returns the exit code.
pub async fn rehearse(scenario: Option<&Path>, chaos_url: Option<String>) -> u8 {
    let (cfg, sc) = match config_of(scenario) {
        Ok(x) => x,
        Err(e) => {
            eprintln!("{e}");
            return 2;
        }
    };
    let opts = StandOptions {
        layout: Layout::Fixed,
        chaos_url,
        ..StandOptions::default()
    };
    let seed = sc.as_ref().map(|s| s.seed).unwrap_or(1);
    let stand = match Stand::start(&cfg, seed, &opts).await {
        Ok(s) => s,
        Err(e) => {
            eprintln!("the stand did not come up: {e}");
            return 1;
        }
    };
    print!("{}", banner(&stand, sc.as_ref()));
    stop_signal().await;
    println!("\nstopping the stand");
    stand.shutdown().await;
    0
}

/// Ctrl-C or SIGTERM.
async fn stop_signal() {
    #[cfg(unix)]
    {
        if let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}
