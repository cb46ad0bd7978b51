//! The request journal: every request a fake received (admin calls excepted), with secrets masked.

use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

/// How many requests a journal keeps by default; older ones are dropped but still counted.
pub const DEFAULT_CAPACITY: usize = 10_000;
/// Bodies longer than this are cut in the journal.
const MAX_BODY: usize = 64 * 1024;

const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "cookie",
    "x-goog-api-key",
];

/// One request as received.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Sequence number since the last reset (1 for the first request).
    pub id: u64,
    /// HTTP method.
    pub method: String,
    /// Path, without the query.
    pub path: String,
    /// Query string, if any.
    pub query: Option<String>,
    /// Headers in arrival order, secrets already masked.
    pub headers: Vec<(String, String)>,
    /// The body (cut at 64 KiB).
    pub body: Vec<u8>,
    /// When it arrived.
    pub time: SystemTime,
    /// The fault that hit it, if any.
    pub fault: Option<&'static str>,
}

impl Entry {
    /// The body parsed as JSON, if it is JSON.
    pub fn body_json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// A header value by case-insensitive name (masked if it is a secret).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The JSON shape served at `GET /__mock/requests`.
    pub fn to_json(&self) -> Value {
        let mut headers: BTreeMap<&str, String> = BTreeMap::new();
        for (k, v) in &self.headers {
            headers
                .entry(k.as_str())
                .and_modify(|e| {
                    e.push_str(", ");
                    e.push_str(v)
                })
                .or_insert_with(|| v.clone());
        }
        let body = if self.body.is_empty() {
            Value::Null
        } else {
            self.body_json()
                .unwrap_or_else(|| Value::String(String::from_utf8_lossy(&self.body).into_owned()))
        };
        let ms = self
            .time
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        serde_json::json!({
            "id": self.id,
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": headers,
            "body": body,
            "time": humantime::format_rfc3339_millis(self.time).to_string(),
            "time_ms": ms,
            "fault": self.fault,
        })
    }
}

/// Masks a secret header value: the scheme stays, the secret goes (its last four characters stay only
/// when it is long enough that they reveal nothing).
pub fn mask_secret(value: &str) -> String {
    let (scheme, secret) = match value.split_once(' ') {
        Some((s, rest)) if !rest.is_empty() => (Some(s), rest.trim()),
        _ => (None, value.trim()),
    };
    let tail: String = if secret.chars().count() >= 16 {
        let n = secret.chars().count();
        format!("…{}", secret.chars().skip(n - 4).collect::<String>())
    } else {
        String::new()
    };
    match scheme {
        Some(s) => format!("{s} ***{tail}"),
        None => format!("***{tail}"),
    }
}

/// Whether a header carries a secret.
pub fn is_secret_header(name: &str) -> bool {
    SECRET_HEADERS.iter().any(|s| s.eq_ignore_ascii_case(name))
}

/// A bounded journal.
#[derive(Debug)]
pub struct Journal {
    entries: VecDeque<Entry>,
    capacity: usize,
    total: u64,
}

/// The journal as served: the kept entries and counts.
#[derive(Debug, Serialize)]
pub struct JournalView {
    /// The kept requests, oldest first.
    pub requests: Vec<Value>,
    /// Counts.
    pub meta: JournalMeta,
}

/// Counts of a journal.
#[derive(Debug, Serialize)]
pub struct JournalMeta {
    /// Every request since the last reset, kept or dropped.
    pub total: u64,
    /// Requests dropped because the journal was full.
    pub dropped: u64,
}

impl Journal {
    /// An empty journal that keeps at most `capacity` entries.
    pub fn new(capacity: usize) -> Self {
        Journal {
            entries: VecDeque::new(),
            capacity: capacity.max(1),
            total: 0,
        }
    }

    /// Records a request and returns its id.
    pub fn record(&mut self, mut entry: Entry) -> u64 {
        entry.body.truncate(MAX_BODY);
        if self.entries.len() == self.capacity {
            self.entries.pop_front();
        }
        self.total += 1;
        entry.id = self.total;
        self.entries.push_back(entry);
        self.total
    }

    /// Marks entry `id` with the fault that hit it (if it is still kept).
    pub fn mark(&mut self, id: u64, fault: &'static str) {
        if let Some(e) = self.entries.iter_mut().rev().find(|e| e.id == id) {
            e.fault = Some(fault);
        }
    }

    /// The kept entries, oldest first.
    pub fn entries(&self) -> Vec<Entry> {
        self.entries.iter().cloned().collect()
    }

    /// Every request since the last reset.
    pub fn total(&self) -> u64 {
        self.total
    }

    /// Forgets everything.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.total = 0;
    }

    /// The served view.
    pub fn view(&self) -> JournalView {
        JournalView {
            requests: self.entries.iter().map(Entry::to_json).collect(),
            meta: JournalMeta {
                total: self.total,
                dropped: self.total - self.entries.len() as u64,
            },
        }
    }
}

/// Builds a journal entry from a request, masking secrets.
pub fn entry_from(req: &crate::wire::Request) -> Entry {
    let headers = req
        .headers
        .iter()
        .map(|(k, v)| {
            let v = String::from_utf8_lossy(v.as_bytes()).into_owned();
            let v = if is_secret_header(k.as_str()) {
                mask_secret(&v)
            } else {
                v
            };
            (k.as_str().to_string(), v)
        })
        .collect();
    // Copy only what the journal keeps (a request body may be 32 MiB).
    let body = req.body[..req.body.len().min(MAX_BODY)].to_vec();
    Entry {
        id: 0,
        method: req.method.to_string(),
        path: req.url.path().to_string(),
        query: req.url.query().map(str::to_string),
        headers,
        body,
        time: SystemTime::now(),
        fault: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_keep_scheme_and_hide_secret() {
        assert_eq!(mask_secret("Bearer test"), "Bearer ***");
        assert_eq!(
            mask_secret("Bearer sk-abcdefghijklmnopqrstuvwxyz"),
            "Bearer ***…wxyz"
        );
        assert_eq!(mask_secret("Basic Y2xpZW50OnNlY3JldA=="), "Basic ***…dA==");
        assert!(!mask_secret("Bearer sk-abcdefghijklmnopqrstuvwxyz").contains("abcdefgh"));
        assert_eq!(mask_secret("rawsecret"), "***");
    }

    #[test]
    fn bounded_and_counted() {
        let mut j = Journal::new(2);
        for i in 0..3 {
            j.record(Entry {
                id: 0,
                method: "GET".into(),
                path: format!("/{i}"),
                query: None,
                headers: vec![],
                body: vec![],
                time: SystemTime::now(),
                fault: None,
            });
        }
        let v = j.view();
        assert_eq!(v.meta.total, 3);
        assert_eq!(v.meta.dropped, 1);
        assert_eq!(v.requests[0]["path"], "/1");
    }
}
