//! What the offline tier missed: a bounded, redacted record of recent offline misses (`GET /admin/offline/misses`)
//! so Product/BA can decide which knowledge to prepare, and `llm-gateway offline build --from-misses` can turn
//! it into a package.
//!
//! Each distinct miss is kept once, by its normalised text, with a count and its first and last time. The text
//! is redacted before anything is kept (every configured secret, and anything that looks like a credential),
//! then normalised (the exact-match key of the packages) and cut to [`MAX_PROMPT_BYTES`]. With
//! `offline.misses.record: hashed` only a SHA-256 of that text is kept; with `off` nothing. When the record is
//! full, the miss seen least recently is dropped (a frequent miss is also a recent one).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::Serialize;

use super::package::checksum;
use super::text::normalize;

/// A kept prompt's bound (bytes of normalised text; longer ones are cut at a character boundary).
pub const MAX_PROMPT_BYTES: usize = 512;

/// `offline.misses.record`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MissRecording {
    /// The redacted, normalised prompt and its hash.
    Text,
    /// Only the hash of the redacted, normalised prompt.
    Hashed,
    /// Nothing.
    Off,
}

impl MissRecording {
    /// Parses `text`, `hashed` or `off`.
    pub fn parse(s: &str) -> Option<MissRecording> {
        match s {
            "text" => Some(MissRecording::Text),
            "hashed" => Some(MissRecording::Hashed),
            "off" => Some(MissRecording::Off),
            _ => None,
        }
    }
}

/// `offline.misses:` after validation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MissesConfig {
    /// What is kept.
    pub record: MissRecording,
    /// Distinct misses kept at most (1..=100,000).
    pub max_entries: usize,
}

impl Default for MissesConfig {
    fn default() -> MissesConfig {
        MissesConfig {
            record: MissRecording::Text,
            max_entries: 1000,
        }
    }
}

/// The largest `offline.misses.max_entries` accepted.
pub const MAX_ENTRIES_LIMIT: usize = 100_000;

#[derive(Debug)]
struct Slot {
    prompt: Option<String>,
    redacted: bool,
    count: u64,
    first_seen_ms: u64,
    last_seen_ms: u64,
    seq: u64,
}

#[derive(Debug, Default)]
struct Inner {
    seq: u64,
    /// By hash.
    slots: HashMap<String, Slot>,
    /// Last-seen order: seq -> hash (the first is dropped when full).
    order: BTreeMap<u64, String>,
    total: u64,
    evicted: u64,
}

/// One recorded miss, as `/admin/offline/misses` shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MissView {
    /// Redacted, normalised prompt (absent in `hashed` mode).
    pub prompt: Option<String>,
    /// `sha256:<hex>` of the redacted, normalised prompt.
    pub hash: String,
    /// True when something that looked like a secret was removed from it.
    pub redacted: bool,
    /// Times missed.
    pub count: u64,
    /// First miss, RFC 3339.
    pub first_seen: String,
    /// Last miss, RFC 3339.
    pub last_seen: String,
}

/// The whole record, for `/admin/offline/misses`.
#[derive(Debug, Clone, Serialize)]
pub struct MissesView {
    /// What is kept.
    pub record: MissRecording,
    /// The bound.
    pub max_entries: usize,
    /// Distinct misses kept now.
    pub entries: usize,
    /// Misses recorded since start (or the last clear), kept or not.
    pub total_misses: u64,
    /// Distinct misses dropped because the record was full.
    pub evicted: u64,
    /// Most frequent first (then most recent).
    pub misses: Vec<MissView>,
}

/// The record. Cheap when off; one short lock per miss otherwise.
#[derive(Debug)]
pub struct MissRecord {
    cfg: MissesConfig,
    secrets: Vec<String>,
    inner: Mutex<Inner>,
}

impl Default for MissRecord {
    fn default() -> MissRecord {
        MissRecord::new(MissesConfig::default(), Vec::new())
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn rfc3339(ms: u64) -> String {
    let t = UNIX_EPOCH + std::time::Duration::from_millis(ms);
    humantime::format_rfc3339_millis(t).to_string()
}

fn cut(mut s: String, max: usize) -> String {
    if s.len() > max {
        let mut at = max;
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        s.truncate(at);
    }
    s
}

impl MissRecord {
    /// A record with `cfg`; `secrets` are the configured secret values (provider keys, client keys, admin
    /// token), removed from every prompt before it is kept.
    pub fn new(cfg: MissesConfig, secrets: Vec<String>) -> MissRecord {
        MissRecord {
            cfg: MissesConfig {
                max_entries: cfg.max_entries.clamp(1, MAX_ENTRIES_LIMIT),
                ..cfg
            },
            secrets,
            inner: Mutex::new(Inner::default()),
        }
    }

    /// Its config.
    pub fn config(&self) -> MissesConfig {
        self.cfg
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Records one offline miss of `text` (the text the packages were matched on); `None` (no text, e.g. token
    /// input) is counted in `total_misses` only.
    pub fn record(&self, text: Option<&str>) {
        if self.cfg.record == MissRecording::Off {
            return;
        }
        let kept = text.map(|t| {
            let known: Vec<&str> = self.secrets.iter().map(String::as_str).collect();
            let (clean, redacted) = crate::providers::error::redact_text(t, &known);
            (cut(normalize(&clean), MAX_PROMPT_BYTES), redacted)
        });
        let now = now_ms();
        let mut g = self.lock();
        g.total += 1;
        let Some((prompt, redacted)) = kept.filter(|(p, _)| !p.is_empty()) else {
            return;
        };
        let hash = checksum(prompt.as_bytes());
        g.seq += 1;
        let seq = g.seq;
        let inner = &mut *g;
        if let Some(slot) = inner.slots.get_mut(&hash) {
            inner.order.remove(&slot.seq);
            slot.seq = seq;
            slot.count += 1;
            slot.last_seen_ms = now;
            inner.order.insert(seq, hash);
            return;
        }
        while inner.slots.len() >= self.cfg.max_entries {
            let Some((_, oldest)) = inner.order.pop_first() else {
                break;
            };
            inner.slots.remove(&oldest);
            inner.evicted += 1;
        }
        let prompt = (self.cfg.record == MissRecording::Text).then_some(prompt);
        inner.slots.insert(
            hash.clone(),
            Slot {
                prompt,
                redacted,
                count: 1,
                first_seen_ms: now,
                last_seen_ms: now,
                seq,
            },
        );
        inner.order.insert(seq, hash);
    }

    /// Records a miss of each text (embeddings: the inputs that found no vector).
    pub fn record_all<S: AsRef<str>>(&self, texts: Option<&[S]>) {
        match texts {
            Some(list) => list.iter().for_each(|t| self.record(Some(t.as_ref()))),
            None => self.record(None),
        }
    }

    /// Distinct misses kept now.
    pub fn len(&self) -> usize {
        self.lock().slots.len()
    }

    /// True when nothing is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Forgets everything (after the misses were turned into a package).
    pub fn clear(&self) {
        *self.lock() = Inner::default();
    }

    /// The most frequent `limit` misses (then most recent), with the record's counters.
    pub fn view(&self, limit: usize) -> MissesView {
        let g = self.lock();
        let mut list: Vec<(&String, &Slot)> = g.slots.iter().collect();
        list.sort_by(|a, b| b.1.count.cmp(&a.1.count).then(b.1.seq.cmp(&a.1.seq)));
        let misses = list
            .into_iter()
            .take(limit)
            .map(|(hash, s)| MissView {
                prompt: s.prompt.clone(),
                hash: hash.clone(),
                redacted: s.redacted,
                count: s.count,
                first_seen: rfc3339(s.first_seen_ms),
                last_seen: rfc3339(s.last_seen_ms),
            })
            .collect();
        MissesView {
            record: self.cfg.record,
            max_entries: self.cfg.max_entries,
            entries: g.slots.len(),
            total_misses: g.total,
            evicted: g.evicted,
            misses,
        }
    }

    /// Bytes held by kept prompts and hashes (for the bound test and `/admin`).
    pub fn held_bytes(&self) -> usize {
        let g = self.lock();
        g.slots
            .iter()
            .map(|(h, s)| 2 * h.len() + s.prompt.as_ref().map_or(0, String::len))
            .sum()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn rec(record: MissRecording, max_entries: usize) -> MissRecord {
        MissRecord::new(
            MissesConfig { record, max_entries },
            vec!["sk-live-provider-key-0001".into(), "admin-token-xyz".into()],
        )
    }

    #[test]
    fn counts_a_repeated_miss_once_with_first_and_last_seen() {
        let r = rec(MissRecording::Text, 10);
        r.record(Some("Сколько стоит доставка?"));
        r.record(Some("сколько   стоит ДОСТАВКА"));
        r.record(Some("What is the refund policy"));
        let v = r.view(100);
        assert_eq!((v.entries, v.total_misses, v.evicted), (2, 3, 0));
        assert_eq!(v.misses[0].prompt.as_deref(), Some("сколько стоит доставка"));
        assert_eq!(v.misses[0].count, 2);
        assert!(v.misses[0].first_seen <= v.misses[0].last_seen);
        assert!(v.misses[0].hash.starts_with("sha256:"));
    }

    #[test]
    fn stays_within_its_bound_under_100_000_distinct_misses() {
        let r = rec(MissRecording::Text, 1000);
        for i in 0..100_000u32 {
            r.record(Some(&format!(
                "question number {i} about a long tail topic {}",
                i * 7
            )));
        }
        // One old prompt missed again stays; the record never grows past its bound.
        let v = r.view(usize::MAX);
        assert_eq!(v.entries, 1000);
        assert_eq!(v.total_misses, 100_000);
        assert_eq!(v.evicted, 99_000);
        assert!(r.held_bytes() < 1000 * (MAX_PROMPT_BYTES + 2 * 71));
        // The kept ones are the most recent.
        assert!(v.misses.iter().all(|m| {
            let n: u32 = m
                .prompt
                .as_ref()
                .unwrap()
                .split(' ')
                .nth(2)
                .unwrap()
                .parse()
                .unwrap();
            n >= 99_000
        }));
        // The largest accepted bound also holds.
        let big = rec(MissRecording::Hashed, usize::MAX);
        for i in 0..100_001u32 {
            big.record(Some(&format!("q {i}")));
        }
        assert_eq!(big.len(), MAX_ENTRIES_LIMIT);
    }

    #[test]
    fn a_long_prompt_is_cut() {
        let r = rec(MissRecording::Text, 10);
        r.record(Some(&"ё".repeat(5000)));
        let v = r.view(1);
        let p = v.misses[0].prompt.as_ref().unwrap();
        assert!(p.len() <= MAX_PROMPT_BYTES && p.chars().all(|c| c == 'е'));
    }

    #[test]
    fn never_holds_a_secret() {
        let r = rec(MissRecording::Text, 100);
        let cases = [
            "my key is sk-live-provider-key-0001 why does it fail",
            "use token admin-token-xyz please",
            "Authorization: Bearer abcdefgh12345 and more",
            "curl -H 'Authorization: Basic Y2xpZW50OnNlY3JldA==' http://x",
            "OPENAI_API_KEY=sk-proj-AbCdEf0123456789xyz",
            "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "\"api_key\": \"sk_live_51H8abcdefGHIJ\"",
        ];
        for c in cases {
            r.record(Some(c));
        }
        let text = serde_json::to_string(&r.view(usize::MAX)).unwrap().to_lowercase();
        for secret in [
            "sk-live-provider-key-0001",
            "provider key 0001",
            "admin token xyz",
            "abcdefgh12345",
            "y2xpzw50",
            "abcdef0123456789",
            "eyjhbgcioijiuzi1nij9",
            "51h8abcdef",
        ] {
            assert!(!text.contains(secret), "{secret} kept in {text}");
        }
        assert!(r.view(usize::MAX).misses.iter().all(|m| m.redacted));
        assert!(text.contains("why does it fail"), "{text}");
    }

    #[test]
    fn hashed_keeps_no_text_and_off_keeps_nothing() {
        let h = rec(MissRecording::Hashed, 10);
        h.record(Some("секретный вопрос про зарплаты"));
        let v = h.view(10);
        assert_eq!(v.misses.len(), 1);
        assert!(v.misses[0].prompt.is_none());
        assert!(!serde_json::to_string(&v).unwrap().contains("зарплат"));
        let off = rec(MissRecording::Off, 10);
        off.record(Some("anything"));
        assert_eq!((off.len(), off.view(10).total_misses), (0, 0));
    }

    #[test]
    fn no_text_counts_but_keeps_nothing() {
        let r = rec(MissRecording::Text, 10);
        r.record(None);
        r.record(Some("  ?!  "));
        r.record_all(Some(&["a question".to_string(), "a question".to_string()]));
        let v = r.view(10);
        assert_eq!((v.entries, v.total_misses), (1, 4));
        assert_eq!(v.misses[0].count, 2);
    }
}
