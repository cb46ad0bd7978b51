//! `llm-gateway offline build`: builds a versioned offline package (format: `config/offline/README.md`) by
//! asking the live chain for each prompt: the gateway in process, built from `--config` (no socket, so it runs
//! beside a live gateway), with its cache and offline packages off so every answer comes from a model; with
//! `--provider P` only that provider answers.
//!
//! The package goes to `<out>/<name>-<version>/`. An existing version (its `manifest.yaml`) is never
//! overwritten. Each answered prompt is appended at once to `.build-progress.jsonl` in that folder, so a build
//! that was interrupted (Ctrl-C, a crash, a lost connection) resumes where it stopped and asks no prompt twice;
//! a torn last line is dropped and asked again. Failed prompts are reported; the package is written (entries,
//! then the manifest with the entries' checksum) only when every prompt is answered, or with `skip_failed`.

mod ask;
mod progress;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write as _;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::json;

use crate::app;
use crate::config::Config;
use crate::offline::package::{checksum, EmbeddingsInfo};
use crate::offline::text::normalize;
pub use ask::prompts_from_misses;
use ask::{ask, chain};
use progress::{read_progress, Done};
pub use progress::{Progress, StderrProgress};

/// The resume file in the package folder (removed when the package is complete).
pub const PROGRESS_FILE: &str = ".build-progress.jsonl";

/// What to build.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    /// Parent folder; the package goes to `<out>/<name>-<version>/`.
    pub out: PathBuf,
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// Logical (or `provider/model`) chat model to ask (`default`).
    pub model: String,
    /// Also store each prompt's vector from this embeddings model (`Some("embeddings")` for `--embeddings`).
    pub embeddings_model: Option<String>,
    /// Ask only this provider.
    pub provider: Option<String>,
    /// Free text for the manifest.
    pub description: Option<String>,
    /// Write the package without the prompts that failed.
    pub skip_failed: bool,
}

/// One prompt that got no usable answer.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Failed {
    /// The prompt.
    pub prompt: String,
    /// Why.
    pub error: String,
}

/// What a build did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BuildReport {
    /// The package folder.
    pub package_dir: String,
    /// Distinct prompts (after normalisation).
    pub prompts: usize,
    /// Answered in an earlier, interrupted run (not asked again).
    pub resumed: usize,
    /// Asked in this run.
    pub asked: usize,
    /// Answered in this run.
    pub answered: usize,
    /// Without an answer.
    pub failed: Vec<Failed>,
    /// Entries in the written package (0 when it was not written).
    pub entries: usize,
    /// `sha256:<hex>` of the entries file, when written.
    pub checksum: Option<String>,
    /// Embeddings model and dimension, when built with vectors.
    pub embeddings: Option<EmbeddingsInfo>,
    /// Providers that answered, with counts.
    pub answered_by: BTreeMap<String, usize>,
    /// True when the package (manifest included) was written.
    pub written: bool,
}
/// The entry line written to `entries.jsonl`.
#[derive(Debug, Serialize)]
struct EntryLine<'a> {
    id: String,
    prompts: [&'a str; 1],
    answer: &'a str,
    tags: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    embedding: Option<&'a [f32]>,
}
/// Package names and versions become a folder name: letters, digits, `.`, `_`, `-`.
fn check_part(what: &str, v: &str) -> Result<(), String> {
    let ok = !v.is_empty()
        && v.len() <= 100
        && !v.starts_with('.')
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "--{what} {v:?}: use 1 to 100 letters, digits, '.', '_' or '-' (not starting with '.')"
        ))
    }
}

/// Distinct prompts in order (the first spelling of each normalised text).
pub fn distinct(prompts: Vec<String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    prompts
        .into_iter()
        .map(|p| p.trim().to_string())
        .filter(|p| !normalize(p).is_empty() && seen.insert(normalize(p)))
        .collect()
}
fn entry_id(prompt: &str) -> String {
    let sum = checksum(normalize(prompt).as_bytes());
    format!("q-{}", sum.trim_start_matches("sha256:").get(..16).unwrap_or("0"))
}
/// Removes the configured secrets from a text.
fn redact(text: &str, secrets: &[String]) -> String {
    let known: Vec<&str> = secrets.iter().map(String::as_str).collect();
    crate::providers::error::redact_known(text, &known)
}

fn write_atomic(path: &Path, text: &str) -> Result<(), String> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

fn today() -> String {
    let now = humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string();
    now.get(..10).unwrap_or("1970-01-01").to_string()
}

/// Builds the package. `Err` for what stops the build before any prompt (bad options, an existing version, a
/// config that cannot ask the model); prompt failures are in the report.
pub async fn run(
    cfg: Config,
    prompts: Vec<String>,
    opts: &BuildOptions,
    progress: &mut dyn Progress,
) -> Result<BuildReport, String> {
    check_part("name", &opts.name)?;
    check_part("version", &opts.version)?;
    let prompts = distinct(prompts);
    if prompts.is_empty() {
        return Err("no prompts to build from".into());
    }
    let dir = opts.out.join(format!("{}-{}", opts.name, opts.version));
    if dir.join("manifest.yaml").exists() {
        return Err(format!(
            "version {} of package {} already exists at {}: a built version is never overwritten; pass a new --version",
            opts.version,
            opts.name,
            dir.display()
        ));
    }
    let secrets = cfg.secret_values();
    let state = chain(cfg, opts)?;
    let router = app(state);
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let progress_path = dir.join(PROGRESS_FILE);
    let mut done: BTreeMap<String, Done> = BTreeMap::new();
    for d in read_progress(&progress_path)? {
        done.insert(normalize(&d.prompt), d);
    }
    let mut report = BuildReport {
        package_dir: dir.display().to_string(),
        prompts: prompts.len(),
        resumed: prompts
            .iter()
            .filter(|p| done.contains_key(&normalize(p)))
            .count(),
        ..BuildReport::default()
    };
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&progress_path)
        .map_err(|e| format!("cannot open {}: {e}", progress_path.display()))?;
    let mut dimension = done.values().find_map(|d| d.embedding.as_ref().map(Vec::len));
    progress.update(report.resumed, prompts.len(), 0);
    for p in &prompts {
        if done.contains_key(&normalize(p)) {
            continue;
        }
        if secrets.iter().any(|s| s.len() >= 4 && p.contains(s.as_str())) {
            report.failed.push(Failed {
                prompt: redact(p, &secrets),
                error: "the prompt contains a configured secret; not asked, not stored".into(),
            });
            continue;
        }
        report.asked += 1;
        let result = ask(&router, opts, p).await.and_then(|mut d| {
            // A model may echo what it was sent: a configured secret never goes into a package.
            d.answer = redact(&d.answer, &secrets);
            match (dimension, d.embedding.as_ref().map(Vec::len)) {
                (Some(want), Some(got)) if want != got => Err(format!(
                    "embeddings: {got} dimensions, the earlier vectors have {want}"
                )),
                _ => Ok(d),
            }
        });
        match result {
            Ok(d) => {
                let mut line = serde_json::to_string(&d).map_err(|e| e.to_string())?;
                line.push('\n');
                file.write_all(line.as_bytes())
                    .and_then(|()| file.sync_data())
                    .map_err(|e| format!("cannot write {}: {e}", progress_path.display()))?;
                dimension = dimension.or(d.embedding.as_ref().map(Vec::len));
                report.answered += 1;
                done.insert(normalize(p), d);
            }
            Err(error) => report.failed.push(Failed {
                prompt: p.clone(),
                error: redact(&error, &secrets),
            }),
        }
        progress.update(
            report.resumed + report.answered + report.failed.len(),
            prompts.len(),
            report.failed.len(),
        );
    }
    drop(file);
    if !report.failed.is_empty() && !opts.skip_failed {
        return Ok(report);
    }
    // Entries in prompt order (then any answered in an earlier run for a prompt no longer listed).
    let listed: BTreeSet<String> = prompts.iter().map(|p| normalize(p)).collect();
    let mut ordered: Vec<&Done> = prompts.iter().filter_map(|p| done.get(&normalize(p))).collect();
    ordered.extend(done.iter().filter(|(k, _)| !listed.contains(*k)).map(|(_, d)| d));
    if ordered.is_empty() {
        return Err("no prompt was answered; nothing to write".into());
    }
    let mut entries = String::new();
    for d in &ordered {
        let line = EntryLine {
            id: entry_id(&d.prompt),
            prompts: [d.prompt.as_str()],
            answer: &d.answer,
            tags: vec!["built".into(), format!("answered-by:{}", d.provider)],
            embedding: d.embedding.as_deref(),
        };
        entries.push_str(&serde_json::to_string(&line).map_err(|e| e.to_string())?);
        entries.push('\n');
        *report.answered_by.entry(d.provider.clone()).or_default() += 1;
    }
    let sum = checksum(entries.as_bytes());
    write_atomic(&dir.join("entries.jsonl"), &entries)?;
    let embeddings = ordered
        .iter()
        .find_map(|d| Some((d.embedding.as_ref()?.len(), d.embedding_model.clone()?)))
        .map(|(dimension, model)| EmbeddingsInfo { model, dimension });
    let description = opts.description.clone().unwrap_or_else(|| {
        let by: Vec<String> = report
            .answered_by
            .iter()
            .map(|(p, n)| format!("{p} {n}"))
            .collect();
        format!(
            "built by llm-gateway offline build: {} prompts answered by {} (model {})",
            ordered.len(),
            by.join(", "),
            opts.model
        )
    });
    let mut manifest = serde_norway::to_string(&json!({
        "name": opts.name,
        "version": opts.version,
        "created": today(),
        "description": description,
        "entries": "entries.jsonl",
        "checksum": sum,
    }))
    .map_err(|e| e.to_string())?;
    if let Some(e) = &embeddings {
        manifest.push_str(&serde_norway::to_string(&json!({"embeddings": e})).map_err(|e| e.to_string())?);
    }
    // The manifest last: its presence means the version is complete.
    write_atomic(&dir.join("manifest.yaml"), &manifest)?;
    let _ = std::fs::remove_file(&progress_path);
    report.entries = ordered.len();
    report.checksum = Some(sum);
    report.embeddings = embeddings;
    report.written = true;
    Ok(report)
}
/// The console summary.
pub fn summary(r: &BuildReport) -> String {
    let mut out = String::new();
    for f in &r.failed {
        out.push_str(&format!("  failed {:?}: {}\n", f.prompt, f.error));
    }
    out.push_str(&format!(
        "offline build: {} prompts, {} from an earlier run, {} asked, {} answered, {} failed\n",
        r.prompts,
        r.resumed,
        r.asked,
        r.answered,
        r.failed.len()
    ));
    if r.written {
        out.push_str(&format!(
            "wrote {} entries to {} ({}){}\n",
            r.entries,
            r.package_dir,
            r.checksum.as_deref().unwrap_or(""),
            r.embeddings
                .as_ref()
                .map(|e| format!(", vectors from {} ({} dimensions)", e.model, e.dimension))
                .unwrap_or_default()
        ));
        out.push_str(&format!(
            "prove it: llm-gateway offline-dry-run --config <a config with offline.packages: [{}]>\n",
            r.package_dir
        ));
    } else {
        out.push_str(&format!(
            "not written: run the same command again to retry the failed prompts (answered ones are kept in {}/{PROGRESS_FILE} and not asked again), or pass --skip-failed\n",
            r.package_dir
        ));
    }
    out
}
#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn names_and_prompts_are_checked() {
        assert!(check_part("version", "2026.12.1").is_ok());
        for bad in ["", "../x", ".hidden", "a/b", "a b", "ё"] {
            assert!(check_part("name", bad).is_err(), "{bad}");
        }
        let d = distinct(vec![
            "Сделай отчёт!".into(),
            "сделай   отчет".into(),
            " ?? ".into(),
            "Другой".into(),
        ]);
        assert_eq!(d, vec!["Сделай отчёт!".to_string(), "Другой".to_string()]);
        assert_eq!(entry_id("Сделай отчёт!"), entry_id("сделай отчет"));
    }
}
