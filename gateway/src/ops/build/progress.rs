//! The resume file (one answered prompt a line, appended and synced at once) and the progress bar.

use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

/// One answered prompt, as kept in the progress file.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct Done {
    pub(super) prompt: String,
    pub(super) answer: String,
    pub(super) provider: String,
    #[serde(default)]
    pub(super) embedding: Option<Vec<f32>>,
    #[serde(default)]
    pub(super) embedding_model: Option<String>,
}
/// Progress on stderr: a bar redrawn in place on a terminal, a line every tenth otherwise.
pub trait Progress {
    /// `done` of `total`, `failed` of them failed.
    fn update(&mut self, done: usize, total: usize, failed: usize);
}

/// The stderr progress bar.
#[derive(Debug, Default)]
pub struct StderrProgress {
    last_tenth: Option<usize>,
}

impl Progress for StderrProgress {
    fn update(&mut self, done: usize, total: usize, failed: usize) {
        let total = total.max(1);
        let mut err = std::io::stderr();
        if std::io::IsTerminal::is_terminal(&err) {
            let width = 30;
            let filled = done * width / total;
            let _ = write!(
                err,
                "\r[{}{}] {done}/{total} prompts, {failed} failed ",
                "#".repeat(filled),
                "-".repeat(width - filled)
            );
            if done == total {
                let _ = writeln!(err);
            }
        } else {
            let tenth = done * 10 / total;
            if self.last_tenth != Some(tenth) {
                self.last_tenth = Some(tenth);
                let _ = writeln!(err, "offline build: {done}/{total} prompts, {failed} failed");
            }
        }
    }
}
/// Reads the progress file: every complete line; a torn or bad line (an interruption mid-write) and all after it
/// are dropped from the file, so they are asked again.
pub(super) fn read_progress(path: &Path) -> Result<Vec<Done>, String> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(format!("cannot read {}: {e}", path.display())),
    };
    let mut done = Vec::new();
    let mut good = 0;
    for line in text.split_inclusive('\n') {
        if !line.ends_with('\n') {
            break;
        }
        match serde_json::from_str::<Done>(line.trim()) {
            Ok(d) => done.push(d),
            Err(_) => break,
        }
        good += line.len();
    }
    if good < text.len() {
        let f = std::fs::OpenOptions::new()
            .write(true)
            .open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        f.set_len(good as u64)
            .map_err(|e| format!("cannot truncate {}: {e}", path.display()))?;
    }
    Ok(done)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::super::PROGRESS_FILE;
    use super::*;

    #[test]
    fn a_torn_progress_line_is_dropped_and_asked_again() {
        let dir = std::env::temp_dir().join(format!("llm-build-progress-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(PROGRESS_FILE);
        let good = r#"{"prompt":"a","answer":"x","provider":"openai"}"#;
        std::fs::write(&path, format!("{good}\n{good}\n{{\"prompt\":\"b\",\"ans")).unwrap();
        let done = read_progress(&path).unwrap();
        assert_eq!(done.len(), 2);
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{good}\n{good}\n")
        );
        std::fs::write(&path, "not json\n").unwrap();
        assert!(read_progress(&path).unwrap().is_empty());
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
