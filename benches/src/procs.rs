//! The servers under test as child processes, so each one's CPU and memory are its own: the fakes
//! (`llm-mocks`), the bare forwarder (`llm-benches forwarder`) and the gateway (`llm-gateway`).

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// Why a server could not be started.
#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    /// A binary is not built.
    #[error("{0} not found next to llm-benches: build it first (`cargo build --release -p llm-gateway -p llm-mocks -p llm-benches`)")]
    Missing(String),
    /// Spawning or talking to it failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// It did not become ready.
    #[error("{0}")]
    NotReady(String),
}

fn io(what: impl Into<String>) -> impl FnOnce(std::io::Error) -> ProcError {
    let what = what.into();
    move |source| ProcError::Io { what, source }
}

/// A running child; killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    /// Where it listens (`http://127.0.0.1:PORT`) or, for the fakes, each provider's root URL.
    pub urls: Vec<(String, String)>,
    temp: Option<PathBuf>,
}

impl Server {
    /// The first URL.
    pub fn url(&self) -> &str {
        self.urls.first().map(|(_, u)| u.as_str()).unwrap_or("")
    }

    /// The URL of a named endpoint (a provider, for the fakes).
    pub fn url_of(&self, name: &str) -> Option<&str> {
        self.urls.iter().find(|(n, _)| n == name).map(|(_, u)| u.as_str())
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Peak resident memory so far (VmHWM), in bytes.
    pub fn peak_rss_bytes(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if let Some(t) = &self.temp {
            let _ = std::fs::remove_file(t);
        }
    }
}

/// A binary built next to this one.
pub fn sibling(name: &str) -> Result<PathBuf, ProcError> {
    let me = std::env::current_exe().map_err(io("locating llm-benches"))?;
    let dir = me.parent().map(Path::to_path_buf).unwrap_or_default();
    // Also look one level up, for `cargo bench`/`cargo test` binaries under deps/.
    [
        dir.join(name),
        dir.parent().map(|p| p.join(name)).unwrap_or_default(),
    ]
    .into_iter()
    .find(|p| p.is_file())
    .ok_or_else(|| ProcError::Missing(name.to_string()))
}

/// Starts the fakes of `providers`, each on its port (0: a free one), and waits for their `ready` line.
pub async fn fakes(providers: &[(&str, u16)]) -> Result<Server, ProcError> {
    let bin = sibling("llm-mocks")?;
    let names: Vec<&str> = providers.iter().map(|(p, _)| *p).collect();
    let mut args = vec!["serve".to_string(), "--only".into(), names.join(",")];
    for (p, port) in providers {
        args.push(format!("--{p}-port"));
        args.push(port.to_string());
    }
    let mut child = Command::new(bin)
        .args(&args)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(io("starting llm-mocks"))?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| ProcError::NotReady("llm-mocks has no stdout".into()))?;
    let lines = tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if line == "ready" {
                return Ok(out);
            }
            out.push(line);
        }
        Err(ProcError::NotReady(
            "llm-mocks exited before printing `ready`".into(),
        ))
    })
    .await
    .map_err(|e| ProcError::NotReady(e.to_string()))??;
    let urls = lines
        .iter()
        .filter_map(|l| {
            let mut parts = l.split_whitespace();
            let name = parts.next()?;
            let base = parts.next()?;
            // The root: scheme, host and port.
            let root = base.splitn(4, '/').take(3).collect::<Vec<_>>().join("/");
            Some((name.to_string(), root))
        })
        .collect();
    Ok(Server {
        child,
        urls,
        temp: None,
    })
}

/// A free port on 127.0.0.1 (bound and released; good enough for a child that binds it at once).
pub fn free_port() -> Result<u16, ProcError> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(io("finding a free port"))?;
    Ok(l.local_addr().map_err(io("finding a free port"))?.port())
}

/// Waits until `url` gives any HTTP answer, for at most `within`; fails early when `child` exits.
pub async fn wait_http(child: &mut Child, url: &str, what: &str, within: Duration) -> Result<(), ProcError> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap_or_default();
    let tries = (within.as_millis() / 50).max(1);
    for _ in 0..tries {
        if let Ok(Some(status)) = child.try_wait() {
            return Err(ProcError::NotReady(format!(
                "{what} exited ({status}) before answering {url}"
            )));
        }
        // Any HTTP answer means the server is up.
        if client.get(url).send().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(ProcError::NotReady(format!(
        "{what} did not answer {url} within {within:?}"
    )))
}

/// `TOKIO_WORKER_THREADS` for a server that will run on `workers` CPUs (by default tokio counts the CPUs it
/// starts on).
fn size_runtime(cmd: &mut Command, workers: Option<usize>) -> &mut Command {
    if let Some(n) = workers {
        cmd.env("TOKIO_WORKER_THREADS", n.max(1).to_string());
    }
    cmd
}

/// Starts `llm-gateway serve` with `config` (YAML with `{PORT}` where the listen port goes), with `workers`
/// runtime threads when given.
pub async fn gateway(config: &str, workers: Option<usize>) -> Result<Server, ProcError> {
    let bin = sibling("llm-gateway")?;
    let port = free_port()?;
    let path = std::env::temp_dir().join(format!("llm-bench-gateway-{}-{port}.yaml", std::process::id()));
    std::fs::write(&path, config.replace("{PORT}", &port.to_string()))
        .map_err(io("writing the gateway config"))?;
    let child = size_runtime(&mut Command::new(bin), workers)
        .args(["serve", "--config"])
        .arg(&path)
        .env("RUST_LOG", "error")
        .env("LLM_GATEWAY_LOG", "error")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(io("starting llm-gateway"))?;
    let url = format!("http://127.0.0.1:{port}");
    let mut server = Server {
        child,
        urls: vec![("gateway".into(), url.clone())],
        temp: Some(path),
    };
    wait_http(
        &mut server.child,
        &format!("{url}/healthz"),
        "llm-gateway",
        Duration::from_secs(10),
    )
    .await?;
    Ok(server)
}

/// Starts the bare forwarder in front of `upstream`, with `workers` runtime threads when given; `hold`: with
/// `--hold-to-first-token`.
pub async fn forwarder(upstream: &str, workers: Option<usize>, hold: bool) -> Result<Server, ProcError> {
    let bin = std::env::current_exe().map_err(io("locating llm-benches"))?;
    let port = free_port()?;
    let listen = format!("127.0.0.1:{port}");
    let mut args = vec!["forwarder", "--upstream", upstream, "--listen", &listen];
    if hold {
        args.push("--hold-to-first-token");
    }
    let child = size_runtime(&mut Command::new(bin), workers)
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(io("starting the forwarder"))?;
    let url = format!("http://127.0.0.1:{port}");
    let mut server = Server {
        child,
        urls: vec![("forwarder".into(), url.clone())],
        temp: None,
    };
    // Any answer means it is up (it forwards /v1/models to the fake).
    wait_http(
        &mut server.child,
        &format!("{url}/v1/models"),
        "the forwarder",
        Duration::from_secs(10),
    )
    .await?;
    Ok(server)
}
