//! The offline package format (see `config/offline/README.md`): a folder with `manifest.yaml` (name, version,
//! created, checksum of the entries file) and `entries.jsonl` (one JSON entry per line). Every bad entry is
//! reported with its file and line and skipped; the rest load.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::text::normalize;

/// `manifest.yaml`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    name: String,
    version: String,
    created: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    entries: Option<String>,
    #[serde(default)]
    checksum: Option<String>,
    #[serde(default)]
    embeddings: Option<EmbeddingsInfo>,
}

/// `embeddings:` of a manifest: the model the entries' vectors come from and their dimension (written by
/// `llm-gateway offline build --embeddings`; a vector of another length is an error).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbeddingsInfo {
    /// The model that made the vectors (as its provider names it).
    pub model: String,
    /// Vector length.
    pub dimension: usize,
}

/// One line of `entries.jsonl`, as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntry {
    id: String,
    prompts: Vec<String>,
    answer: String,
    #[serde(default)]
    tags: Vec<String>,
    #[serde(default)]
    embedding: Option<Vec<f32>>,
}

/// What a package says about itself (shown by `/admin/offline`).
#[derive(Debug, Clone, Serialize)]
pub struct ManifestInfo {
    /// Package name.
    pub name: String,
    /// Package version.
    pub version: String,
    /// Creation date as written.
    pub created: String,
    /// Free text.
    pub description: Option<String>,
    /// `sha256:<hex>` of the entries file as computed at load.
    pub checksum: String,
    /// Whether it matched the manifest's `checksum` (`None` when the manifest has none).
    pub checksum_ok: Option<bool>,
    /// The embeddings model and dimension, when the manifest names them.
    pub embeddings: Option<EmbeddingsInfo>,
}

/// One valid entry.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Id, unique in its package.
    pub id: String,
    /// Prompts that this entry answers (at least one).
    pub prompts: Vec<String>,
    /// The answer text.
    pub answer: String,
    /// Free tags.
    pub tags: Vec<String>,
    /// Optional embedding vector, served by `/v1/embeddings` in offline mode.
    pub embedding: Option<Vec<f32>>,
}

/// A loaded package.
#[derive(Debug, Clone)]
pub struct Package {
    /// Its manifest.
    pub manifest: ManifestInfo,
    /// Its folder.
    pub dir: PathBuf,
    /// Valid entries, in file order.
    pub entries: Vec<Entry>,
    /// Entries skipped as invalid.
    pub skipped: usize,
}

/// A problem found while loading: file, line (1-based) when it concerns one entry, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadIssue {
    /// The file.
    pub file: String,
    /// The line, for entries.
    pub line: Option<usize>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for LoadIssue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(l) => write!(f, "{}:{l}: {}", self.file, self.message),
            None => write!(f, "{}: {}", self.file, self.message),
        }
    }
}

fn issue(file: &Path, line: Option<usize>, message: impl Into<String>) -> LoadIssue {
    LoadIssue {
        file: file.display().to_string(),
        line,
        message: message.into(),
    }
}

/// Package folders under `path`: `path` itself when it holds a `manifest.yaml`, else its sub-folders that do
/// (sorted by name, so load order is stable).
pub fn discover(path: &Path) -> Result<Vec<PathBuf>, LoadIssue> {
    if path.join("manifest.yaml").is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let rd = std::fs::read_dir(path).map_err(|e| issue(path, None, format!("cannot read: {e}")))?;
    let mut dirs: Vec<PathBuf> = rd
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("manifest.yaml").is_file())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(issue(path, None, "no manifest.yaml here or in any sub-folder"));
    }
    Ok(dirs)
}

/// `sha256:<hex>` of some bytes.
pub fn checksum(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::cache::hex(&Sha256::digest(bytes)))
}

/// Loads one package folder. `Err` when the package as a whole is unusable (no readable manifest or entries
/// file); otherwise the package with its valid entries and the issues of the others.
pub fn load(dir: &Path) -> Result<(Package, Vec<LoadIssue>), LoadIssue> {
    let mpath = dir.join("manifest.yaml");
    let text =
        std::fs::read_to_string(&mpath).map_err(|e| issue(&mpath, None, format!("cannot read: {e}")))?;
    let de = serde_norway::Deserializer::from_str(&text);
    let m: RawManifest = serde_path_to_error::deserialize(de)
        .map_err(|e| issue(&mpath, None, format!("at {}: {}", e.path(), e.inner())))?;
    let mut issues = Vec::new();
    for (field, v) in [
        ("name", &m.name),
        ("version", &m.version),
        ("created", &m.created),
    ] {
        if v.trim().is_empty() {
            return Err(issue(&mpath, None, format!("{field} must not be empty")));
        }
    }
    let epath = dir.join(m.entries.as_deref().unwrap_or("entries.jsonl"));
    let bytes = std::fs::read(&epath).map_err(|e| issue(&epath, None, format!("cannot read: {e}")))?;
    let computed = checksum(&bytes);
    let checksum_ok = m
        .checksum
        .as_ref()
        .map(|c| c.trim().eq_ignore_ascii_case(&computed));
    if checksum_ok == Some(false) {
        issues.push(issue(
            &mpath,
            None,
            format!("checksum does not match the entries file (computed {computed}); loading anyway"),
        ));
    }
    let text = String::from_utf8_lossy(&bytes);
    if m.embeddings
        .as_ref()
        .is_some_and(|e| e.dimension == 0 || e.model.trim().is_empty())
    {
        return Err(issue(
            &mpath,
            None,
            "embeddings needs a model and a dimension above 0",
        ));
    }
    let dim = m.embeddings.as_ref().map(|e| e.dimension);
    let (entries, mut entry_issues, skipped) = parse_entries_with(&epath, &text, dim);
    issues.append(&mut entry_issues);
    let manifest = ManifestInfo {
        name: m.name.trim().to_string(),
        version: m.version.trim().to_string(),
        created: m.created.trim().to_string(),
        description: m.description,
        checksum: computed,
        checksum_ok,
        embeddings: m.embeddings,
    };
    Ok((
        Package {
            manifest,
            dir: dir.to_path_buf(),
            entries,
            skipped,
        },
        issues,
    ))
}

/// Parses JSON Lines; blank lines and lines starting with `#` are ignored.
pub fn parse_entries(file: &Path, text: &str) -> (Vec<Entry>, Vec<LoadIssue>, usize) {
    parse_entries_with(file, text, None)
}

/// [`parse_entries`] with the vector length the manifest declares (else the first vector's sets it).
pub fn parse_entries_with(
    file: &Path,
    text: &str,
    dimension: Option<usize>,
) -> (Vec<Entry>, Vec<LoadIssue>, usize) {
    let (mut entries, mut issues, mut skipped) = (Vec::new(), Vec::new(), 0);
    let mut ids = BTreeSet::new();
    let mut prompts = BTreeSet::new();
    let mut dim: Option<usize> = dimension;
    for (i, line) in text.lines().enumerate() {
        let n = i + 1;
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let mut de = serde_json::Deserializer::from_str(line);
        let raw: RawEntry = match serde_path_to_error::deserialize(&mut de) {
            Ok(r) => r,
            Err(e) => {
                let at = e.path().to_string();
                let at = if at == "." {
                    String::new()
                } else {
                    format!("at {at}: ")
                };
                issues.push(issue(file, Some(n), format!("{at}{}", e.inner())));
                skipped += 1;
                continue;
            }
        };
        match check_entry(raw, &ids, &prompts, &mut dim) {
            Ok(e) => {
                ids.insert(e.id.clone());
                prompts.extend(e.prompts.iter().map(|p| normalize(p)));
                entries.push(e);
            }
            Err(msg) => {
                issues.push(issue(file, Some(n), msg));
                skipped += 1;
            }
        }
    }
    (entries, issues, skipped)
}

fn check_entry(
    raw: RawEntry,
    ids: &BTreeSet<String>,
    seen_prompts: &BTreeSet<String>,
    dim: &mut Option<usize>,
) -> Result<Entry, String> {
    let id = raw.id.trim().to_string();
    if id.is_empty() {
        return Err("id must not be empty".into());
    }
    if ids.contains(&id) {
        return Err(format!("duplicate id {id:?}"));
    }
    if raw.prompts.is_empty() {
        return Err(format!("entry {id:?}: prompts must list at least one prompt"));
    }
    for (i, p) in raw.prompts.iter().enumerate() {
        let norm = normalize(p);
        if norm.is_empty() {
            return Err(format!("entry {id:?}: prompts[{i}] has no words"));
        }
        if seen_prompts.contains(&norm) {
            return Err(format!(
                "entry {id:?}: prompts[{i}] {p:?} is already answered by an earlier entry"
            ));
        }
    }
    if raw.answer.trim().is_empty() {
        return Err(format!("entry {id:?}: answer must not be empty"));
    }
    if let Some(v) = &raw.embedding {
        if v.is_empty() {
            return Err(format!("entry {id:?}: embedding must not be empty"));
        }
        if v.iter().any(|x| !x.is_finite()) {
            return Err(format!("entry {id:?}: embedding has a non-finite value"));
        }
        match dim {
            Some(d) if *d != v.len() => {
                return Err(format!(
                    "entry {id:?}: embedding has {} dimensions, the package's are {d} long",
                    v.len()
                ))
            }
            Some(_) => {}
            None => *dim = Some(v.len()),
        }
    }
    Ok(Entry {
        id,
        prompts: raw.prompts,
        answer: raw.answer,
        tags: raw.tags,
        embedding: raw.embedding,
    })
}
