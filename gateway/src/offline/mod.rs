//! The offline tier's last resort: prepared answers from offline packages (`config/offline/`), matched by
//! normalised exact text, then lexical similarity above `offline.match_threshold`.
//!
//! Loading never fails the gateway: bad entries (and unreadable packages) are reported with file and line and
//! skipped; the valid rest is served.

pub mod index;
pub mod misses;
pub mod package;
#[cfg(test)]
mod tests;
pub mod text;

use std::path::PathBuf;

use serde::Serialize;

use crate::canonical::{new_id, unix_now, ChatResponse, Choice, Message, Role, Usage};
pub use index::{Index, Match, MatchKind};
pub use misses::{MissRecord, MissRecording, MissesConfig};
pub use package::{Entry, LoadIssue, ManifestInfo, Package};

/// `offline:` after validation.
#[derive(Debug, Clone)]
pub struct OfflineConfig {
    /// Package folders, or folders of package folders (relative paths from the working directory).
    pub packages: Vec<PathBuf>,
    /// Cosine similarity needed for a non-exact match (0..=1).
    pub match_threshold: f32,
    /// Serve stored vectors on `/v1/embeddings` in offline mode.
    pub embeddings: bool,
    /// The record of recent misses (`offline.misses`).
    pub misses: MissesConfig,
}

impl Default for OfflineConfig {
    fn default() -> OfflineConfig {
        OfflineConfig {
            packages: Vec::new(),
            match_threshold: 0.5,
            embeddings: true,
            misses: MissesConfig::default(),
        }
    }
}

/// A package answer.
#[derive(Debug, Clone, Copy)]
pub struct Hit<'a> {
    /// The package.
    pub package: &'a ManifestInfo,
    /// The entry.
    pub entry: &'a Entry,
    /// Similarity (1.0 exact).
    pub score: f32,
    /// Exact or similar.
    pub kind: MatchKind,
}

impl Hit<'_> {
    /// The answer as an OpenAI chat completion; the model is `offline/<package>`.
    pub fn chat_response(&self, prompt: &str) -> ChatResponse {
        // Rough token counts (4 characters a token) so usage is plausible, never zero.
        let tokens = |s: &str| (s.chars().count() as u64).div_ceil(4).max(1);
        ChatResponse {
            id: new_id("chatcmpl-offline"),
            object: "chat.completion".into(),
            created: unix_now(),
            model: format!("offline/{}", self.package.name),
            choices: vec![Choice {
                index: 0,
                message: Message::plain(Role::Assistant, self.entry.answer.clone()),
                finish_reason: Some("stop".into()),
            }],
            usage: Some(Usage::new(tokens(prompt), tokens(&self.entry.answer))),
            raw: None,
        }
    }
}

/// Loaded packages and their index.
#[derive(Debug, Default)]
pub struct OfflineStore {
    manifests: Vec<ManifestInfo>,
    /// (package index, entry).
    entries: Vec<(usize, Entry)>,
    index: Index,
    threshold: f32,
    issues: Vec<LoadIssue>,
    skipped: usize,
    misses: MissRecord,
}

/// `/admin/offline` view.
#[derive(Debug, Serialize)]
pub struct StoreStatus<'a> {
    /// Loaded packages.
    pub packages: &'a [ManifestInfo],
    /// Valid entries.
    pub entries: usize,
    /// Indexed prompts.
    pub prompts: usize,
    /// Entries skipped as invalid.
    pub skipped_entries: usize,
    /// Every load problem, with file and line.
    pub issues: &'a [LoadIssue],
    /// Similarity threshold.
    pub match_threshold: f32,
}

impl OfflineStore {
    /// Loads every configured package, logging what was loaded and what was skipped.
    pub fn load(cfg: &OfflineConfig) -> OfflineStore {
        let mut packages = Vec::new();
        let mut issues = Vec::new();
        for path in &cfg.packages {
            let dirs = match package::discover(path) {
                Ok(d) => d,
                Err(e) => {
                    issues.push(e);
                    continue;
                }
            };
            for dir in dirs {
                match package::load(&dir) {
                    Ok((p, mut i)) => {
                        packages.push(p);
                        issues.append(&mut i);
                    }
                    Err(e) => issues.push(e),
                }
            }
        }
        let mut store = OfflineStore::from_packages(packages, cfg.match_threshold, issues);
        store.misses = MissRecord::new(cfg.misses, Vec::new());
        for i in &store.issues {
            tracing::warn!(problem = %i, "offline package problem, skipped");
        }
        for m in &store.manifests {
            tracing::info!(package = %m.name, version = %m.version, "offline package loaded");
        }
        if !cfg.packages.is_empty() {
            tracing::info!(
                packages = store.manifests.len(),
                entries = store.entries.len(),
                skipped = store.skipped,
                "offline packages ready"
            );
        }
        store
    }

    /// Builds a store from packages already loaded (tests, benchmarks).
    pub fn from_packages(packages: Vec<Package>, threshold: f32, issues: Vec<LoadIssue>) -> OfflineStore {
        let mut manifests = Vec::new();
        let mut entries = Vec::new();
        let mut skipped = 0;
        for (pi, p) in packages.into_iter().enumerate() {
            skipped += p.skipped;
            manifests.push(p.manifest);
            entries.extend(p.entries.into_iter().map(|e| (pi, e)));
        }
        let index = Index::build(
            entries
                .iter()
                .enumerate()
                .flat_map(|(i, (_, e))| e.prompts.iter().map(move |p| (i as u32, p.as_str()))),
        );
        OfflineStore {
            manifests,
            entries,
            index,
            threshold,
            issues,
            skipped,
            misses: MissRecord::default(),
        }
    }

    /// Sets the secret values removed from recorded misses (provider keys, client keys, admin token).
    pub fn set_miss_secrets(&mut self, secrets: Vec<String>) {
        let cfg = self.misses.config();
        self.misses = MissRecord::new(cfg, secrets);
    }

    /// Records an offline miss of `text` (the answer path calls this where it counts
    /// `llm_gateway_offline_misses_total`).
    pub fn record_miss(&self, text: Option<&str>) {
        self.misses.record(text);
    }

    /// Records an offline miss of several texts (embeddings inputs; `None`: no text, counted only).
    pub fn record_misses<S: AsRef<str>>(&self, texts: Option<&[S]>) {
        self.misses.record_all(texts);
    }

    /// The record of recent misses.
    pub fn misses(&self) -> &MissRecord {
        &self.misses
    }

    /// True when no entry is loaded.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The best entry for `text`, or `None`.
    pub fn lookup(&self, text: &str) -> Option<Hit<'_>> {
        self.lookup_at(text, self.threshold)
    }

    /// The best entry for `text` whatever its score (`None` only when no entry shares anything with it): what
    /// `lookup` would weigh against `match_threshold`, for explaining an offline miss.
    pub fn best(&self, text: &str) -> Option<Hit<'_>> {
        self.lookup_at(text, f32::MIN_POSITIVE)
    }

    /// `offline.match_threshold`.
    pub fn threshold(&self) -> f32 {
        self.threshold
    }

    fn lookup_at(&self, text: &str, threshold: f32) -> Option<Hit<'_>> {
        let m = self.index.lookup(text, threshold)?;
        let (pi, entry) = self.entries.get(m.entry as usize)?;
        Some(Hit {
            package: self.manifests.get(*pi)?,
            entry,
            score: m.score,
            kind: m.kind,
        })
    }

    /// The stored vector of the entry matching `text`, if it has one.
    pub fn embedding(&self, text: &str) -> Option<&[f32]> {
        self.lookup(text)?.entry.embedding.as_deref()
    }

    /// Every prompt of every entry (the default prompt set of `offline-dry-run`).
    pub fn prompts(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .flat_map(|(_, e)| e.prompts.iter().map(String::as_str))
    }

    /// Load problems.
    pub fn issues(&self) -> &[LoadIssue] {
        &self.issues
    }

    /// What is loaded.
    pub fn status(&self) -> StoreStatus<'_> {
        StoreStatus {
            packages: &self.manifests,
            entries: self.entries.len(),
            prompts: self.index.len(),
            skipped_entries: self.skipped,
            issues: &self.issues,
            match_threshold: self.threshold,
        }
    }
}
