//! `llm-benches load` end to end at a small scale: every part runs against the real binaries (the fake, the
//! forwarder, the gateway), every request and stream is answered, and the report says where each process ran.
//! No peer is installed here: that needs the package registries (the one `--peer` test runs with an empty PATH,
//! so its installs fail at once).

use serde_json::Value;
use std::path::Path;
use std::process::Command;

#[test]
fn load_runs_every_part_on_the_real_binaries_and_writes_the_report() {
    let bin = env!("CARGO_BIN_EXE_llm-benches");
    let dir = Path::new(bin).parent().expect("the binary's folder");
    for sibling in ["llm-gateway", "llm-mocks"] {
        assert!(
            dir.join(sibling).is_file(),
            "{sibling} is not built next to {bin}: `cargo build -p llm-gateway -p llm-mocks` (the workspace test run builds it)"
        );
    }
    let out = std::env::temp_dir().join(format!("llm-benches-load-{}", std::process::id()));
    let run = Command::new(bin)
        .args([
            "load",
            "--rates",
            "200",
            "--duration",
            "1s",
            "--slice",
            "500ms",
            "--ceiling-duration",
            "500ms",
            "--concurrency",
            "8",
            "--fallback-rate",
            "50",
            "--fallback-duration",
            "500ms",
            "--stream-levels",
            "3",
            "--stream-duration",
            "300ms",
            "--stream-delay",
            "5ms",
            "--stream-chunks",
            "6",
            "--stream-min-streams",
            "40",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("running llm-benches");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "llm-benches load failed:\n{stderr}");

    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("load.json")).expect("load.json"))
            .expect("JSON");
    let md = std::fs::read_to_string(out.join("load.md")).expect("load.md");
    let _ = std::fs::remove_dir_all(&out);

    let rows = json["overhead"].as_array().expect("overhead rows");
    let targets: Vec<&str> = rows.iter().filter_map(|r| r["target"].as_str()).collect();
    // The same limits in memory and on the redis-server the run starts (installed by scripts/test.sh).
    let backend = json["state_backend"].as_str().unwrap_or("");
    let with_redis = backend.starts_with("redis-server at 127.0.0.1:");
    assert!(
        with_redis || std::env::var("CI").as_deref() != Ok("true"),
        "{backend}"
    );
    let mut want = vec!["direct", "forwarder", "gateway", "gateway-limits"];
    if with_redis {
        want.push("gateway-limits-redis");
        assert!(md.contains("## State backend: Redis beside memory"), "{md}");
    }
    assert_eq!(targets, want, "{json}");
    for r in rows {
        assert_eq!(r["latency"]["errors"], 0, "{r}");
        assert_eq!(r["latency"]["count"], 200, "200 req/s for 1 s: {r}");
    }
    let ceilings = json["ceilings"].as_array().expect("ceilings");
    assert_eq!(ceilings.len(), want.len(), "{json}");
    assert!(
        ceilings.iter().all(|c| c[1].as_f64().unwrap_or(0.0) > 0.0),
        "{json}"
    );
    assert!(json["gateway_peak_rss_bytes"].as_u64().unwrap_or(0) > 0, "{json}");

    let fallback = json["fallback"].as_array().expect("fallback rows");
    assert_eq!(fallback.len(), 7, "one row per failure of the primary: {json}");
    for f in fallback {
        assert_eq!(f["latency"]["errors"], 0, "the backup answers every request: {f}");
        assert!(f["latency"]["count"].as_u64().unwrap_or(0) > 0, "{f}");
    }
    let cold = &fallback[3];
    assert!(
        cold["latency"]["p50_ms"].as_f64().unwrap_or(0.0) >= 1000.0,
        "a black-holed primary costs the 1 s attempt timeout until the breaker opens: {cold}"
    );
    assert_eq!(json["offline"]["errors"], 0, "{json}");

    let streams = json["streams"].as_array().expect("stream rows");
    let targets: Vec<&str> = streams.iter().filter_map(|r| r["target"].as_str()).collect();
    assert_eq!(
        targets,
        ["direct", "forwarder", "forwarder-held", "gateway"],
        "{json}"
    );
    let chunks = json["stream_setup"]["chunks"].as_u64().unwrap_or(0);
    assert_eq!(chunks, 6, "{json}");
    for r in streams {
        assert_eq!(r["concurrency"], 3, "{r}");
        assert_eq!(r["ttft"]["errors"], 0, "every stream ends well: {r}");
        let n = r["ttft"]["count"].as_u64().unwrap_or(0);
        assert!(
            n >= 40,
            "--stream-min-streams 40 streams per target at least: {r}"
        );
        assert_eq!(
            r["gap"]["count"].as_u64(),
            Some(n * (chunks - 1)),
            "every chunk timed: {r}"
        );
        assert_eq!(
            r["chunk_latency"]["count"].as_u64(),
            Some(n * (chunks - 1)),
            "every chunk after the first carried its send time through: {r}"
        );
        assert!(
            r["ttft"]["p50_ms"].as_f64().unwrap_or(0.0) >= 5.0,
            "the first content chunk comes after one stream delay: {r}"
        );
    }
    let memory = json["stream_memory"].as_array().expect("memory rows");
    assert_eq!(memory.len(), 2, "forwarder and gateway: {json}");
    for m in memory {
        assert_eq!(
            m["open"]["open"], 3,
            "every stream was open when the memory was read: {m}"
        );
        assert!(m["open"]["open_bytes"].as_u64().unwrap_or(0) > 0, "{m}");
    }
    assert_eq!(json["peers"], serde_json::json!([]), "no peer unless asked for");

    // The same rule as the bench: isolated wherever this process may use 2 CPUs.
    let isolated = llm_benches::cpus::available().expect("this process's CPUs").len() >= 2;
    let cpus = json["cpus"].as_str().expect("cpus");
    if isolated {
        assert!(
            cpus.starts_with("isolated: load (generator, fake) on CPU"),
            "{cpus}"
        );
    } else {
        assert!(cpus.starts_with("shared"), "{cpus}");
    }
    for section in [
        "CPUs: ",
        "## Overhead",
        "## Fallback latency",
        "## Offline-package answer",
        "## Streams",
        "per open stream KB",
    ] {
        assert!(md.contains(section), "{section} missing:\n{md}");
    }
    assert!(!md.contains("## Peers"), "{md}");
}

/// A peer that cannot be installed (no python3, node or npm on PATH here) is reported with the reason, and the
/// rest of the run goes on. Nothing is fetched from a registry.
#[test]
fn a_peer_that_cannot_be_installed_is_reported_and_the_run_goes_on() {
    let bin = env!("CARGO_BIN_EXE_llm-benches");
    let base = std::env::temp_dir().join(format!("llm-benches-peers-{}", std::process::id()));
    let (out, peers_dir, empty_path) = (base.join("out"), base.join("peers"), base.join("bin"));
    std::fs::create_dir_all(&empty_path).expect("an empty PATH folder");
    let run = Command::new(bin)
        .args([
            "load",
            "--only",
            "overhead,state",
            "--rates",
            "100",
            "--duration",
            "200ms",
            "--slice",
            "100ms",
            "--ceiling-duration",
            "100ms",
            "--concurrency",
            "2",
            "--peer",
            "litellm",
            "--peer",
            "portkey",
            "--peers-dir",
        ])
        .arg(&peers_dir)
        .arg("--out")
        .arg(&out)
        .env("PATH", &empty_path)
        .output()
        .expect("running llm-benches");
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "llm-benches load failed:\n{stderr}");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("load.json")).expect("load.json"))
            .expect("JSON");
    let md = std::fs::read_to_string(out.join("load.md")).expect("load.md");
    let _ = std::fs::remove_dir_all(&base);

    let peers = json["peers"].as_array().expect("peer rows");
    let names: Vec<&str> = peers.iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(names, ["portkey", "litellm"], "{json}");
    let portkey = peers[0]["failure"].as_str().unwrap_or("");
    assert!(portkey.starts_with("install failed: npm install"), "{portkey}");
    let litellm = peers[1]["failure"].as_str().unwrap_or("");
    assert!(
        litellm.starts_with("install failed: python3 -m venv"),
        "{litellm}"
    );
    assert!(peers.iter().all(|p| p["version"].is_null()), "{json}");
    assert!(
        md.contains("| litellm | PyPI litellm[proxy]==1.100.5 | no | **no**: install failed"),
        "{md}"
    );

    let targets: Vec<&str> = json["overhead"]
        .as_array()
        .expect("overhead rows")
        .iter()
        .filter_map(|r| r["target"].as_str())
        .collect();
    assert_eq!(
        targets,
        ["direct", "forwarder", "gateway", "gateway-limits"],
        "the run went on without them: {json}"
    );
    // No redis-server on that PATH either: said, and the run went on.
    let backend = json["state_backend"].as_str().unwrap_or("");
    assert!(backend.starts_with("Redis not measured: "), "{backend}");
    assert!(md.contains("Redis not measured: "), "{md}");
}

/// `--only overhead` measures direct, forwarder and gateway alone: the state-backend gateways are part `state`.
#[test]
fn only_overhead_leaves_the_state_backend_gateways_out() {
    let bin = env!("CARGO_BIN_EXE_llm-benches");
    let out = std::env::temp_dir().join(format!("llm-benches-overhead-{}", std::process::id()));
    let run = Command::new(bin)
        .args([
            "load",
            "--only",
            "overhead",
            "--rates",
            "100",
            "--duration",
            "200ms",
            "--slice",
            "100ms",
            "--ceiling-duration",
            "100ms",
            "--concurrency",
            "2",
            "--out",
        ])
        .arg(&out)
        .output()
        .expect("running llm-benches");
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("load.json")).expect("load.json"))
            .expect("JSON");
    let md = std::fs::read_to_string(out.join("load.md")).expect("load.md");
    let _ = std::fs::remove_dir_all(&out);
    let targets: Vec<&str> = json["overhead"]
        .as_array()
        .expect("overhead rows")
        .iter()
        .filter_map(|r| r["target"].as_str())
        .collect();
    assert_eq!(targets, ["direct", "forwarder", "gateway"], "{json}");
    assert!(!md.contains("## State backend"), "{md}");
}
