//! Helpers for the workspace's tests that drive outside tools (the Python SDKs in `.venv/`, `promtool`,
//! `prometheus`): find the tool, or say why it is missing. Under `CI=true` a missing tool is an error, never a
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
