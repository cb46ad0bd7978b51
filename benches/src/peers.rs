//! Peer gateways measured beside ours (`llm-benches load --peer NAME`): each is installed at a pinned version
//! from its package registry into a cache folder, configured against the benchmark's fakes (one primary, a
//! refusing primary and a backup for its fallback), started on loopback only, and stopped when dropped.
//!
//! The scripts the peers need (`benches/peers/`) are built into this binary and written next to each install,
//! so a run needs nothing from the source tree.

use crate::procs::{self, ProcError};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A peer gateway the benchmark can install and run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum PeerKind {
    /// TensorZero's Rust gateway, from the PyPI wheel `tensorzero`.
    Tensorzero,
    /// Portkey's gateway (Node), from npm `@portkey-ai/gateway`.
    Portkey,
    /// LiteLLM's proxy (Python), from PyPI `litellm[proxy]`.
    Litellm,
}

/// The API key every peer sends to the fakes (they accept any).
const FAKE_KEY: &str = "sk-bench-peer";
const TENSORZERO_SERVE: &str = include_str!("../peers/tensorzero_serve.py");
const PORTKEY_PRELOAD: &str = include_str!("../peers/portkey_preload.cjs");
/// uvicorn's logging for LiteLLM: warnings and errors only.
const LITELLM_LOGGING: &str = r#"{"version": 1, "disable_existing_loggers": false,
 "formatters": {"plain": {"format": "%(levelname)s %(name)s: %(message)s"}},
 "handlers": {"stderr": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"}},
 "loggers": {"uvicorn": {"handlers": ["stderr"], "level": "WARNING"},
             "uvicorn.error": {"level": "WARNING"},
             "uvicorn.access": {"handlers": ["stderr"], "level": "WARNING", "propagate": false}}}
"#;

impl PeerKind {
    /// Its name in the reports and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            PeerKind::Tensorzero => "tensorzero",
            PeerKind::Portkey => "portkey",
            PeerKind::Litellm => "litellm",
        }
    }

    /// The pinned version.
    pub fn version(self) -> &'static str {
        match self {
            // The last release (its docs say the project is no longer maintained).
            PeerKind::Tensorzero => "2026.6.0",
            PeerKind::Portkey => "1.15.2",
            // Later releases' `proxy` extra needs `litellm-proxy`, which the registry here does not have.
            PeerKind::Litellm => "1.100.5",
        }
    }

    /// Where it comes from, for the report.
    pub fn package(self) -> String {
        match self {
            PeerKind::Tensorzero => format!("PyPI tensorzero=={}", self.version()),
            PeerKind::Portkey => format!("npm @portkey-ai/gateway@{}", self.version()),
            PeerKind::Litellm => format!("PyPI litellm[proxy]=={}", self.version()),
        }
    }

    /// Whether it can fall back from one upstream to another.
    pub fn has_fallback(self) -> bool {
        true
    }
}

/// The upstreams a peer is configured against: root URLs (`http://127.0.0.1:PORT`).
#[derive(Debug, Clone)]
pub struct Upstreams {
    /// The fake the overhead and stream runs use (the same one the gateway and the forwarder use).
    pub primary: String,
    /// A port nothing listens on: the primary of the fallback case, refusing connections.
    pub refused: String,
    /// The backup of the fallback case.
    pub backup: String,
    /// The stream part's upstream.
    pub streams: String,
}

/// What to send to a running peer for one kind of request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The model name in the body.
    pub model: String,
    /// Headers to add.
    pub headers: Vec<(String, String)>,
}

/// The requests of a running peer: its root (`Target::chat` appends `/v1/chat/completions`) and its routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Routes {
    /// The root URL of its OpenAI-compatible API.
    pub base: String,
    /// To the primary fake.
    pub main: Route,
    /// To the stream part's upstream.
    pub stream: Route,
    /// To the backup fake only: the fallback case's baseline.
    pub backup_alone: Route,
    /// To the refusing primary, falling back to the backup.
    pub fallback: Route,
}

/// Why a peer could not be measured.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// Installing it failed.
    #[error("install failed: {0}")]
    Install(String),
    /// Starting it failed.
    #[error("start failed: {0}")]
    Start(String),
    /// It listens on an address other than loopback: stopped, not measured.
    #[error("listens beyond loopback ({0}): stopped, not measured")]
    NotLoopback(String),
}

/// The cache folder of the peers: `LLM_BENCHES_PEERS_DIR`, else `$XDG_CACHE_HOME/llm-benches/peers`, else
/// `~/.cache/llm-benches/peers`, else `output/peers`.
pub fn default_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("LLM_BENCHES_PEERS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("XDG_CACHE_HOME").filter(|d| !d.is_empty()) {
        return PathBuf::from(d).join("llm-benches/peers");
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => PathBuf::from(h).join(".cache/llm-benches/peers"),
        None => PathBuf::from("output/peers"),
    }
}

/// TensorZero's config: model `fake` to the primary, `backup` to the backup, `fake_fallback` tries the refusing
/// primary, then the backup (its routing list is tried in order).
pub fn tensorzero_config(u: &Upstreams) -> String {
    let provider = |model: &str, name: &str, root: &str| {
        format!(
            "[models.{model}.providers.{name}]\ntype = \"openai\"\nmodel_name = \"gpt-4o-mini\"\n\
             api_base = \"{root}/v1/\"\napi_key_location = \"env::OPENAI_API_KEY\"\n\n"
        )
    };
    let mut s = String::from("# Written by llm-benches load --peer tensorzero.\n\n");
    s += "[models.fake]\nrouting = [\"primary\"]\n\n";
    s += &provider("fake", "primary", &u.primary);
    s += "[models.stream]\nrouting = [\"stream\"]\n\n";
    s += &provider("stream", "stream", &u.streams);
    s += "[models.backup]\nrouting = [\"backup\"]\n\n";
    s += &provider("backup", "backup", &u.backup);
    s += "[models.fake_fallback]\nrouting = [\"primary\", \"backup\"]\n\n";
    s += &provider("fake_fallback", "primary", &u.refused);
    s += &provider("fake_fallback", "backup", &u.backup);
    s
}

/// Portkey's per-request config (`x-portkey-config`) for one upstream or, with several, a fallback over them.
pub fn portkey_config(roots: &[&str]) -> String {
    let target = |root: &str| serde_json::json!({"provider": "openai", "api_key": FAKE_KEY, "custom_host": format!("{root}/v1")});
    match roots {
        [one] => target(one).to_string(),
        many => serde_json::json!({"strategy": {"mode": "fallback"},
            "targets": many.iter().map(|r| target(r)).collect::<Vec<_>>()})
        .to_string(),
    }
}

/// LiteLLM's proxy config (JSON, which its YAML loader reads): `fake`, `backup`, and `fallback_primary` (the
/// refusing primary) falling back to `backup`, with no retries so a fallback is one attempt each.
pub fn litellm_config(u: &Upstreams) -> String {
    let model = |name: &str, root: &str| {
        serde_json::json!({"model_name": name, "litellm_params": {"model": "openai/gpt-4o-mini",
            "api_base": format!("{root}/v1"), "api_key": FAKE_KEY}})
    };
    serde_json::json!({
        "model_list": [model("fake", &u.primary), model("stream", &u.streams), model("backup", &u.backup),
            model("fallback_primary", &u.refused)],
        "router_settings": {"fallbacks": [{"fallback_primary": ["backup"]}], "num_retries": 0},
        "litellm_settings": {"num_retries": 0, "telemetry": false, "drop_params": true},
    })
    .to_string()
}

/// The routes of a peer listening at `root`.
pub fn routes(kind: PeerKind, root: &str, u: &Upstreams) -> Routes {
    let route = |model: &str, headers: Vec<(String, String)>| Route {
        model: model.to_string(),
        headers,
    };
    match kind {
        PeerKind::Tensorzero => Routes {
            base: format!("{root}/openai"),
            main: route("tensorzero::model_name::fake", vec![]),
            stream: route("tensorzero::model_name::stream", vec![]),
            backup_alone: route("tensorzero::model_name::backup", vec![]),
            fallback: route("tensorzero::model_name::fake_fallback", vec![]),
        },
        PeerKind::Portkey => {
            let header = |roots: &[&str]| vec![("x-portkey-config".to_string(), portkey_config(roots))];
            Routes {
                base: root.to_string(),
                main: route("gpt-4o-mini", header(&[&u.primary])),
                stream: route("gpt-4o-mini", header(&[&u.streams])),
                backup_alone: route("gpt-4o-mini", header(&[&u.backup])),
                fallback: route("gpt-4o-mini", header(&[&u.refused, &u.backup])),
            }
        }
        PeerKind::Litellm => Routes {
            base: root.to_string(),
            main: route("fake", vec![]),
            stream: route("stream", vec![]),
            backup_alone: route("backup", vec![]),
            fallback: route("fallback_primary", vec![]),
        },
    }
}

/// A running peer: stopped (its whole process group) when dropped.
#[derive(Debug)]
pub struct Peer {
    /// Which one.
    pub kind: PeerKind,
    /// The installed version.
    pub version: String,
    /// What to send it.
    pub routes: Routes,
    child: Child,
    log: PathBuf,
}

impl Peer {
    /// Its processes (the process group it leads), for pinning.
    pub fn pids(&self) -> Vec<u32> {
        group_pids(self.child.id())
    }

    /// The last lines of its log, for an error.
    pub fn log_tail(&self) -> String {
        tail(&self.log)
    }
}

impl Drop for Peer {
    fn drop(&mut self) {
        stop_group(&mut self.child);
    }
}

fn home(kind: PeerKind, dir: &Path) -> PathBuf {
    dir.join(format!("{}-{}", kind.name(), kind.version()))
}

/// Installs the pinned version of `kind` under `dir` unless it is there already; returns the version installed.
pub async fn install(kind: PeerKind, dir: &Path) -> Result<String, PeerError> {
    let home = home(kind, dir);
    tokio::task::spawn_blocking(move || install_into(kind, &home, kind.version()))
        .await
        .map_err(|e| PeerError::Install(e.to_string()))?
}

/// Starts `kind`, installed under `dir` as `installed` ([`install`]), against `u`; ready to take requests on
/// loopback only.
pub async fn start(kind: PeerKind, dir: &Path, installed: String, u: &Upstreams) -> Result<Peer, PeerError> {
    let home = home(kind, dir);
    let start_err = |e: ProcError| PeerError::Start(e.to_string());
    let io = |what: &str| {
        let what = what.to_string();
        move |e: std::io::Error| PeerError::Start(format!("{what}: {e}"))
    };
    let log = home.join("run.log");
    let log_file = std::fs::File::create(&log).map_err(io("creating run.log"))?;
    let stderr = log_file.try_clone().map_err(io("opening run.log"))?;
    let (mut cmd, port) = match kind {
        PeerKind::Tensorzero => {
            let config = home.join("tensorzero.toml");
            std::fs::write(&config, tensorzero_config(u)).map_err(io("writing tensorzero.toml"))?;
            let script = home.join("tensorzero_serve.py");
            std::fs::write(&script, TENSORZERO_SERVE).map_err(io("writing tensorzero_serve.py"))?;
            let mut c = Command::new(home.join("venv/bin/python"));
            c.arg(&script)
                .arg(&config)
                .env("OPENAI_API_KEY", FAKE_KEY)
                .env("TENSORZERO_DISABLE_PSEUDONYMOUS_USAGE_ANALYTICS", "1")
                .env("NO_COLOR", "1")
                .stdout(Stdio::piped());
            (c, None)
        }
        PeerKind::Portkey => {
            let port = procs::free_port().map_err(start_err)?;
            let preload = home.join("portkey_preload.cjs");
            std::fs::write(&preload, PORTKEY_PRELOAD).map_err(io("writing portkey_preload.cjs"))?;
            let mut c = Command::new("node");
            c.arg("--require")
                .arg(&preload)
                .arg(home.join("node_modules/@portkey-ai/gateway/build/start-server.js"))
                .arg(format!("--port={port}"))
                .arg("--headless")
                .stdout(log_file);
            (c, Some(port))
        }
        PeerKind::Litellm => {
            let port = procs::free_port().map_err(start_err)?;
            let config = home.join("litellm.json");
            std::fs::write(&config, litellm_config(u)).map_err(io("writing litellm.json"))?;
            // Its access log (a line per request at INFO) off, as the gateway logs only errors here.
            let log_config = home.join("litellm-logging.json");
            std::fs::write(&log_config, LITELLM_LOGGING).map_err(io("writing litellm-logging.json"))?;
            let mut c = Command::new(home.join("venv/bin/litellm"));
            c.arg("--config")
                .arg(&config)
                .arg("--log_config")
                .arg(&log_config)
                .args(["--telemetry", "False"])
                .args([
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port.to_string(),
                    "--num_workers",
                    "1",
                ])
                // Otherwise it fetches its model cost map from the internet at import.
                .env("LITELLM_LOCAL_MODEL_COST_MAP", "True")
                .env("LITELLM_LOG", "ERROR")
                .env("NO_COLOR", "1")
                .stdout(log_file);
            (c, Some(port))
        }
    };
    // Its own process group, so stopping it stops every process it started.
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd
        .current_dir(&home)
        .stdin(Stdio::null())
        .stderr(stderr)
        .spawn()
        .map_err(io(&format!("spawning {}", kind.name())))?;
    let root = match port {
        Some(p) => format!("http://127.0.0.1:{p}"),
        None => match read_base_url(&mut child).await {
            Ok(r) => r,
            Err(e) => {
                stop_group(&mut child);
                return Err(PeerError::Start(format!("{e}; log: {}", tail(&log))));
            }
        },
    };
    let mut peer = Peer {
        kind,
        version: installed,
        routes: routes(kind, &root, u),
        child,
        log,
    };
    let health = match kind {
        PeerKind::Tensorzero | PeerKind::Portkey => format!("{root}/"),
        PeerKind::Litellm => format!("{root}/health/liveliness"),
    };
    // LiteLLM takes ~20 s to import on this machine.
    if let Err(e) = procs::wait_http(&mut peer.child, &health, kind.name(), Duration::from_secs(90)).await {
        return Err(PeerError::Start(format!("{e}; log: {}", peer.log_tail())));
    }
    let listening = listening_sockets(&peer.pids());
    let beyond: Vec<String> = listening
        .iter()
        .filter(|a| !a.loopback)
        .map(|a| a.addr.clone())
        .collect();
    if !beyond.is_empty() {
        return Err(PeerError::NotLoopback(beyond.join(", ")));
    }
    if listening.is_empty() {
        return Err(PeerError::Start(format!(
            "answers at {root} but no listening socket of its processes was found"
        )));
    }
    Ok(peer)
}

/// Installs `kind` into `home` unless the pinned version is there; returns the installed version.
fn install_into(kind: PeerKind, home: &Path, version: &str) -> Result<String, PeerError> {
    let err = |what: &str, e: std::io::Error| PeerError::Install(format!("{what}: {e}"));
    std::fs::create_dir_all(home).map_err(|e| err(&format!("creating {}", home.display()), e))?;
    let log = home.join("install.log");
    let run = |cmd: &mut Command, what: &str| -> Result<(), PeerError> {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| err("opening install.log", e))?;
        let out2 = out.try_clone().map_err(|e| err("opening install.log", e))?;
        let status = cmd
            .current_dir(home)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(out2)
            .status()
            .map_err(|e| err(what, e))?;
        if status.success() {
            Ok(())
        } else {
            Err(PeerError::Install(format!(
                "{what} exited with {status}: {}",
                tail(&log)
            )))
        }
    };
    match kind {
        PeerKind::Tensorzero | PeerKind::Litellm => {
            let (module, spec) = match kind {
                PeerKind::Tensorzero => ("tensorzero", format!("tensorzero=={version}")),
                _ => ("litellm", format!("litellm[proxy]=={version}")),
            };
            let python = home.join("venv/bin/python");
            if let Some(v) = python_version(&python, module).filter(|v| v == version) {
                return Ok(v);
            }
            if !python.is_file() {
                run(
                    Command::new("python3")
                        .args(["-m", "venv"])
                        .arg(home.join("venv")),
                    "python3 -m venv",
                )?;
            }
            run(
                Command::new(&python).args([
                    "-m",
                    "pip",
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    &spec,
                ]),
                &format!("pip install {spec}"),
            )?;
            python_version(&python, module)
                .ok_or_else(|| PeerError::Install(format!("{module} does not import after pip install")))
        }
        PeerKind::Portkey => {
            let manifest = home.join("node_modules/@portkey-ai/gateway/package.json");
            if let Some(v) = npm_version(&manifest).filter(|v| v == version) {
                return Ok(v);
            }
            if !home.join("package.json").is_file() {
                std::fs::write(
                    home.join("package.json"),
                    "{\"name\": \"llm-benches-peer-portkey\", \"private\": true}\n",
                )
                .map_err(|e| err("writing package.json", e))?;
            }
            let spec = format!("@portkey-ai/gateway@{version}");
            run(
                Command::new("npm").args([
                    "install",
                    "--no-audit",
                    "--no-fund",
                    "--loglevel=error",
                    "--save-exact",
                    &spec,
                ]),
                &format!("npm install {spec}"),
            )?;
            npm_version(&manifest).ok_or_else(|| {
                PeerError::Install(format!("{} missing after npm install", manifest.display()))
            })
        }
    }
}

/// The version of the installed Python distribution `module` in the venv of `python`.
fn python_version(python: &Path, module: &str) -> Option<String> {
    let out = Command::new(python)
        .args([
            "-c",
            &format!("import importlib.metadata as m; print(m.version('{module}'))"),
        ])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let v = String::from_utf8_lossy(&out.stdout).trim().to_string();
    (out.status.success() && !v.is_empty()).then_some(v)
}

/// The `version` of an npm package.json.
fn npm_version(manifest: &Path) -> Option<String> {
    let text = std::fs::read_to_string(manifest).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    v["version"].as_str().map(str::to_string)
}

/// The last lines of a log, on one line.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let from = lines.len().saturating_sub(5);
    lines[from..].join(" | ").chars().take(800).collect()
}

/// The root URL in a `base_url http://127.0.0.1:PORT/openai/v1` line of `tensorzero_serve.py` (the path is
/// dropped: the routes add theirs).
pub fn parse_base_url(line: &str) -> Option<String> {
    let url = line.strip_prefix("base_url ")?.trim();
    let rest = url.strip_prefix("http://")?;
    let authority = rest.split('/').next()?;
    let (host, port) = authority.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    (host == "127.0.0.1" || host == "localhost" || host == "[::1]").then(|| format!("http://{host}:{port}"))
}

async fn read_base_url(child: &mut Child) -> Result<String, String> {
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let lines = tokio::task::spawn_blocking(move || {
        let mut seen = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(url) = parse_base_url(&line) {
                return Ok(url);
            }
            if line.starts_with("base_url ") {
                return Err(format!("not a loopback URL: {line}"));
            }
            seen.push(line);
        }
        Err(format!(
            "exited before printing its base_url ({})",
            seen.join(" | ")
        ))
    });
    match tokio::time::timeout(Duration::from_secs(60), lines).await {
        Ok(Ok(r)) => r,
        Ok(Err(e)) => Err(e.to_string()),
        Err(_) => Err("no base_url within 60 s".into()),
    }
}

/// Stops a process group: SIGTERM, then SIGKILL after 5 s.
#[cfg(not(target_os = "linux"))]
fn stop_group(child: &mut Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Stops a process group: SIGTERM, then SIGKILL after 5 s.
#[cfg(target_os = "linux")]
fn stop_group(child: &mut Child) {
    use rustix::process::{kill_process_group, Pid, Signal};
    let Some(pgid) = i32::try_from(child.id()).ok().and_then(Pid::from_raw) else {
        let _ = child.kill();
        let _ = child.wait();
        return;
    };
    let _ = kill_process_group(pgid, Signal::TERM);
    for _ in 0..100 {
        if matches!(child.try_wait(), Ok(Some(_))) {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    // Whatever is left of the group (the leader, or children that ignored SIGTERM).
    let _ = kill_process_group(pgid, Signal::KILL);
    let _ = child.wait();
}

/// The processes of process group `pgid` (from `/proc/PID/stat`).
pub fn group_pids(pgid: u32) -> Vec<u32> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![pgid];
    };
    let mut pids: Vec<u32> = dir
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .ok()
                .and_then(|s| stat_pgrp(&s))
                == Some(pgid)
        })
        .collect();
    pids.sort_unstable();
    pids
}

/// The process group (5th field) of a `/proc/PID/stat` line; the name (2nd) may hold spaces and parentheses.
pub fn stat_pgrp(stat: &str) -> Option<u32> {
    let after = &stat[stat.rfind(')')? + 1..];
    after.split_whitespace().nth(2)?.parse().ok()
}

/// A listening TCP socket of a peer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listening {
    /// `127.0.0.1:8080`, `[::]:4317`.
    pub addr: String,
    /// Whether only this machine can reach it.
    pub loopback: bool,
}

/// The TCP sockets the processes `pids` listen on (their socket inodes looked up in `/proc/net/tcp{,6}`).
pub fn listening_sockets(pids: &[u32]) -> Vec<Listening> {
    let mut inodes = std::collections::HashSet::new();
    for pid in pids {
        let Ok(fds) = std::fs::read_dir(format!("/proc/{pid}/fd")) else {
            continue;
        };
        for fd in fds.flatten() {
            if let Ok(target) = std::fs::read_link(fd.path()) {
                let t = target.to_string_lossy();
                if let Some(inode) = t.strip_prefix("socket:[").and_then(|r| r.strip_suffix(']')) {
                    inodes.insert(inode.to_string());
                }
            }
        }
    }
    let mut out = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = std::fs::read_to_string(table).unwrap_or_default();
        out.extend(
            parse_proc_net_tcp(&text)
                .into_iter()
                .filter(|(inode, _)| inodes.contains(inode))
                .map(|(_, l)| l),
        );
    }
    out
}

/// The listening sockets of a `/proc/net/tcp` or `tcp6` table: (inode, address).
pub fn parse_proc_net_tcp(text: &str) -> Vec<(String, Listening)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let f: Vec<&str> = line.split_whitespace().collect();
            // sl local rem st tx:rx tr:when retrnsmt uid timeout inode
            if f.len() < 10 || f[3] != "0A" {
                return None;
            }
            let (hex, port) = f[1].split_once(':')?;
            let port = u16::from_str_radix(port, 16).ok()?;
            let ip = decode_ip(hex)?;
            let loopback = match ip {
                std::net::IpAddr::V4(v4) => v4.is_loopback(),
                std::net::IpAddr::V6(v6) => {
                    v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback())
                }
            };
            Some((
                f[9].to_string(),
                Listening {
                    addr: std::net::SocketAddr::new(ip, port).to_string(),
                    loopback,
                },
            ))
        })
        .collect()
}

/// A kernel hex address: 4 bytes (IPv4) or 16 (IPv6), each 32-bit word in host (little-endian) order.
fn decode_ip(hex: &str) -> Option<std::net::IpAddr> {
    let words: Option<Vec<u32>> = (0..hex.len() / 8)
        .map(|i| u32::from_str_radix(hex.get(i * 8..i * 8 + 8)?, 16).ok())
        .collect();
    let bytes: Vec<u8> = words?.into_iter().flat_map(u32::to_le_bytes).collect();
    match bytes.len() {
        4 => Some(std::net::Ipv4Addr::new(bytes[0], bytes[1], bytes[2], bytes[3]).into()),
        16 => {
            let a: [u8; 16] = bytes.try_into().ok()?;
            Some(std::net::Ipv6Addr::from(a).into())
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ups() -> Upstreams {
        Upstreams {
            primary: "http://127.0.0.1:1001".into(),
            refused: "http://127.0.0.1:1002".into(),
            backup: "http://127.0.0.1:1003".into(),
            streams: "http://127.0.0.1:1004".into(),
        }
    }

    #[test]
    fn tensorzero_config_routes_each_model_to_its_upstreams_in_order() {
        let c = tensorzero_config(&ups());
        let fallback = c.split("[models.fake_fallback]").nth(1).unwrap();
        assert!(
            fallback.starts_with("\nrouting = [\"primary\", \"backup\"]"),
            "{c}"
        );
        let primary = fallback.find("api_base = \"http://127.0.0.1:1002/v1/\"").unwrap();
        let backup = fallback.find("api_base = \"http://127.0.0.1:1003/v1/\"").unwrap();
        assert!(primary < backup, "{c}");
        let main = c.split("[models.stream]").next().unwrap();
        assert!(main.contains("api_base = \"http://127.0.0.1:1001/v1/\""), "{c}");
        assert!(
            !main.contains("1002") && !main.contains("1003") && !main.contains("1004"),
            "{c}"
        );
        let stream = c
            .split("[models.stream]")
            .nth(1)
            .unwrap()
            .split("[models.backup]")
            .next()
            .unwrap();
        assert!(stream.contains("api_base = \"http://127.0.0.1:1004/v1/\""), "{c}");
        assert_eq!(c.matches("api_key_location = \"env::OPENAI_API_KEY\"").count(), 5);
        // Every section header once: TOML rejects a table defined twice.
        let mut headers: Vec<&str> = c.lines().filter(|l| l.starts_with('[')).collect();
        let n = headers.len();
        headers.sort_unstable();
        headers.dedup();
        assert_eq!(headers.len(), n, "{c}");
    }

    #[test]
    fn portkey_config_is_one_target_or_a_fallback_in_order() {
        let one: serde_json::Value = serde_json::from_str(&portkey_config(&["http://127.0.0.1:1"])).unwrap();
        assert_eq!(
            one,
            serde_json::json!({"provider": "openai", "api_key": FAKE_KEY, "custom_host": "http://127.0.0.1:1/v1"})
        );
        let two: serde_json::Value =
            serde_json::from_str(&portkey_config(&["http://127.0.0.1:1", "http://127.0.0.1:2"])).unwrap();
        assert_eq!(two["strategy"]["mode"], "fallback");
        let hosts: Vec<&str> = two["targets"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["custom_host"].as_str().unwrap())
            .collect();
        assert_eq!(hosts, ["http://127.0.0.1:1/v1", "http://127.0.0.1:2/v1"]);
    }

    #[test]
    fn litellm_config_falls_back_from_the_refusing_primary_to_the_backup_without_retries() {
        let c: serde_json::Value = serde_json::from_str(&litellm_config(&ups())).unwrap();
        let base = |name: &str| {
            c["model_list"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["model_name"] == name)
                .map(|m| m["litellm_params"]["api_base"].as_str().unwrap().to_string())
        };
        assert_eq!(base("fake").as_deref(), Some("http://127.0.0.1:1001/v1"));
        assert_eq!(
            base("fallback_primary").as_deref(),
            Some("http://127.0.0.1:1002/v1")
        );
        assert_eq!(base("backup").as_deref(), Some("http://127.0.0.1:1003/v1"));
        assert_eq!(base("stream").as_deref(), Some("http://127.0.0.1:1004/v1"));
        assert_eq!(
            c["router_settings"]["fallbacks"],
            serde_json::json!([{"fallback_primary": ["backup"]}])
        );
        assert_eq!(c["router_settings"]["num_retries"], 0);
    }

    #[test]
    fn routes_name_each_peers_models_and_endpoints() {
        let u = ups();
        let tz = routes(PeerKind::Tensorzero, "http://127.0.0.1:9", &u);
        assert_eq!(tz.base, "http://127.0.0.1:9/openai");
        assert_eq!(tz.main.model, "tensorzero::model_name::fake");
        assert_eq!(tz.fallback.model, "tensorzero::model_name::fake_fallback");
        let pk = routes(PeerKind::Portkey, "http://127.0.0.1:9", &u);
        assert_eq!(pk.base, "http://127.0.0.1:9");
        assert_eq!(pk.main.headers[0].0, "x-portkey-config");
        assert!(pk.fallback.headers[0].1.contains("1002/v1"));
        assert!(
            pk.backup_alone.headers[0].1.contains("1003/v1")
                && !pk.backup_alone.headers[0].1.contains("1002")
        );
        let ll = routes(PeerKind::Litellm, "http://127.0.0.1:9", &u);
        assert_eq!(
            (ll.main.model.as_str(), ll.fallback.model.as_str()),
            ("fake", "fallback_primary")
        );
    }

    #[test]
    fn base_url_must_be_a_loopback_http_url() {
        assert_eq!(
            parse_base_url("base_url http://127.0.0.1:43211/").as_deref(),
            Some("http://127.0.0.1:43211")
        );
        assert_eq!(
            parse_base_url("base_url http://127.0.0.1:36161/openai/v1").as_deref(),
            Some("http://127.0.0.1:36161"),
            "as TensorZero 2026.6.0 prints it"
        );
        assert_eq!(parse_base_url("base_url http://127.0.0.1.evil:80/"), None);
        assert_eq!(parse_base_url("base_url http://0.0.0.0:43211"), None);
        assert_eq!(parse_base_url("base_url http://10.1.2.3:80"), None);
        assert_eq!(parse_base_url("base_url http://127.0.0.1:notaport"), None);
        assert_eq!(parse_base_url("tensorzero gateway started"), None);
    }

    #[test]
    fn stat_pgrp_reads_past_a_name_with_spaces_and_parentheses() {
        assert_eq!(stat_pgrp("123 (node) S 1 123 123 0 -1"), Some(123));
        assert_eq!(stat_pgrp("77 (a (b) c) R 5 66 66 0"), Some(66));
        assert_eq!(stat_pgrp("garbage"), None);
        let me = std::process::id();
        let own = std::fs::read_to_string(format!("/proc/{me}/stat")).unwrap();
        assert!(stat_pgrp(&own).is_some());
    }

    #[test]
    fn proc_net_tcp_listeners_are_told_loopback_or_not() {
        let v4 = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
           0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0\n\
           1: 00000000:10E1 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 222 1 0 100 0 0 10 0\n\
           2: 0100007F:1F91 0100007F:C350 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0 100 0 0 10 0\n";
        let got = parse_proc_net_tcp(v4);
        assert_eq!(
            got,
            vec![
                (
                    "111".into(),
                    Listening {
                        addr: "127.0.0.1:8080".into(),
                        loopback: true
                    }
                ),
                (
                    "222".into(),
                    Listening {
                        addr: "0.0.0.0:4321".into(),
                        loopback: false
                    }
                ),
            ],
            "an established connection (st 01) is not a listener"
        );
        let v6 = "header\n\
           0: 00000000000000000000000001000000:1F90 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 444 1\n\
           1: 00000000000000000000000000000000:1F90 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 555 1\n\
           2: 0000000000000000FFFF00000100007F:1F90 00000000000000000000000000000000:0000 0A 0:0 0:0 0 0 0 666 1\n";
        let got = parse_proc_net_tcp(v6);
        assert_eq!(
            got[0].1,
            Listening {
                addr: "[::1]:8080".into(),
                loopback: true
            }
        );
        assert_eq!(
            got[1].1,
            Listening {
                addr: "[::]:8080".into(),
                loopback: false
            }
        );
        assert!(got[2].1.loopback, "{:?}", got[2]);
    }

    #[tokio::test]
    async fn listening_sockets_finds_this_process_loopback_listener() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = l.local_addr().unwrap().port();
        let found = listening_sockets(&[std::process::id()]);
        assert!(
            found.contains(&Listening {
                addr: format!("127.0.0.1:{port}"),
                loopback: true
            }),
            "{found:?}"
        );
    }
}
