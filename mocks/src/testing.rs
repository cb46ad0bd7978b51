//! Helpers for the workspace's tests that drive outside tools (the Python SDKs in `.venv/`, `promtool`,
//! `prometheus`, `redis-server`): find the tool, or say why it is missing. Under `CI=true` a missing tool is an error, never a
//! skip; elsewhere the caller skips with the printed note.

use std::path::PathBuf;

/// A tool a test needs is missing while `CI=true`.
#[derive(Debug, thiserror::Error)]
#[error("{tool} is missing: {hint}")]
pub struct MissingTool {
    /// What is missing.
    pub tool: String,
    /// How to get it.
    pub hint: String,
}

/// The workspace root (the folder holding `mocks/`).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// `Ok(Some(path))` when found; `Ok(None)` (with a note on stderr) when missing outside CI; an error in CI.
pub fn found_or_skip(found: Option<PathBuf>, tool: &str, hint: &str) -> Result<Option<PathBuf>, MissingTool> {
    if found.is_some() {
        return Ok(found);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        return Err(MissingTool {
            tool: tool.to_string(),
            hint: hint.to_string(),
        });
    }
    eprintln!("note: {tool} is missing; skipping ({hint})");
    Ok(None)
}

/// The venv's Python with the pinned SDKs: `LLM_TEST_PYTHON`, else `.venv/bin/python` in the workspace.
pub fn venv_python() -> Result<Option<PathBuf>, MissingTool> {
    let p = std::env::var_os("LLM_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".venv/bin/python"));
    let name = p.display().to_string();
    found_or_skip(
        p.exists().then_some(p),
        &name,
        "run scripts/test.sh, which creates the venv with the pinned SDKs",
    )
}

/// A program on `PATH`.
pub fn on_path(name: &str, hint: &str) -> Result<Option<PathBuf>, MissingTool> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|d| d.join(name))
            .find(|p| p.is_file())
    });
    found_or_skip(found, &format!("`{name}`"), hint)
}

/// Why a `redis-server` for a test could not be had.
#[derive(Debug, thiserror::Error)]
pub enum RedisError {
    /// Missing under `CI=true`.
    #[error(transparent)]
    Missing(#[from] MissingTool),
    /// It could not be started.
    #[error("redis-server did not start: {0}")]
    Start(String),
}

/// A real `redis-server` for one test: loopback, a free port, no persistence (`--save '' --appendonly no`), its
/// own scratch folder; killed when dropped. [`RedisServer::kill`] and [`RedisServer::restart`] (same port) drive
/// outages.
#[derive(Debug)]
pub struct RedisServer {
    bin: PathBuf,
    dir: PathBuf,
    port: u16,
    child: Option<std::process::Child>,
}

/// Bound on the wait for a started server to answer `PING`.
const REDIS_READY_WITHIN: std::time::Duration = std::time::Duration::from_secs(10);

impl RedisServer {
    /// `redis-server` from `PATH` (`LLM_TEST_REDIS_SERVER` overrides), started and answering `PING`. `Ok(None)`
    /// (a note printed) when it is missing outside CI; an error in CI.
    pub async fn start() -> Result<Option<RedisServer>, RedisError> {
        let bin = match std::env::var_os("LLM_TEST_REDIS_SERVER") {
            Some(p) => found_or_skip(
                Some(PathBuf::from(p)).filter(|p| p.is_file()),
                "`redis-server` (LLM_TEST_REDIS_SERVER)",
                REDIS_HINT,
            )?,
            None => on_path("redis-server", REDIS_HINT)?,
        };
        let Some(bin) = bin else {
            return Ok(None);
        };
        let port = free_port().map_err(|e| RedisError::Start(format!("no free port: {e}")))?;
        let dir = std::env::temp_dir().join(format!("llm-test-redis-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).map_err(|e| RedisError::Start(format!("{}: {e}", dir.display())))?;
        let mut s = RedisServer {
            bin,
            dir,
            port,
            child: None,
        };
        s.spawn().await?;
        Ok(Some(s))
    }

    async fn spawn(&mut self) -> Result<(), RedisError> {
        let child = std::process::Command::new(&self.bin)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no", "--protected-mode", "no"])
            .args(["--daemonize", "no", "--loglevel", "warning", "--dir"])
            .arg(&self.dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| RedisError::Start(format!("{}: {e}", self.bin.display())))?;
        self.child = Some(child);
        let deadline = tokio::time::Instant::now() + REDIS_READY_WITHIN;
        loop {
            if ping(self.port).await {
                return Ok(());
            }
            if let Some(c) = self.child.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    let mut err = String::new();
                    if let Some(mut e) = c.stderr.take() {
                        let _ = std::io::Read::read_to_string(&mut e, &mut err);
                    }
                    self.child = None;
                    return Err(RedisError::Start(format!("exited with {status}: {err}")));
                }
            }
            if tokio::time::Instant::now() >= deadline {
                self.kill();
                return Err(RedisError::Start(format!(
                    "no PONG on port {} within {REDIS_READY_WITHIN:?}",
                    self.port
                )));
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `redis://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("redis://{}", self.addr())
    }

    /// Kills it (SIGKILL) and waits for it to be gone: connections are reset, the port refuses.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port (empty: nothing was persisted).
    pub async fn restart(&mut self) -> Result<(), RedisError> {
        self.kill();
        self.spawn().await
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const REDIS_HINT: &str = "install Debian's redis-server (scripts/test.sh does)";

fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(l.local_addr()?.port())
}

/// One `PING` answered `+PONG`.
async fn ping(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let attempt = async {
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port)).await.ok()?;
        s.write_all(b"PING\r\n").await.ok()?;
        let mut buf = [0u8; 7];
        s.read_exact(&mut buf).await.ok()?;
        Some(&buf == b"+PONG\r\n")
    };
    tokio::time::timeout(std::time::Duration::from_secs(1), attempt)
        .await
        .ok()
        .flatten()
        .unwrap_or(false)
}

/// An npm package that `scripts/test.sh` installs with `npm ci` into `dir/node_modules` (the folder of a
/// `package.json` with pinned versions): its folder when installed and `node` is on `PATH`.
pub fn npm_package(dir: &std::path::Path, package: &str) -> Result<Option<PathBuf>, MissingTool> {
    if on_path(
        "node",
        "install Node.js (scripts/test.sh installs Debian's nodejs)",
    )?
    .is_none()
    {
        return Ok(None);
    }
    let p = dir.join("node_modules").join(package);
    found_or_skip(
        p.join("package.json").is_file().then_some(p),
        &format!("npm package {package} in {}", dir.display()),
        "run scripts/test.sh, which runs `npm ci` in each folder of its npm list",
    )
}
