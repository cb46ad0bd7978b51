//! The one redaction of upstream text. Every text that came from an upstream (error message, code, in-stream error
//! event, OAuth failure) passes [`Redactor::error`] inside [`super::Adapter`] before anything else sees it: the
//! client, `/admin`, logs, metrics and reports all get the redacted copy only.
//!
//! Covered: every configured secret (provider secrets, client keys, the admin token), each secret's base64 form at
//! any of the three byte alignments and in both alphabets (an upstream may echo `Basic base64(id:secret)` or a
//! token it decoded), and any `Bearer`/`Basic` credential whatever its value. Redaction runs on the whole text
//! first; only then is it cut to [`MAX_MESSAGE`] characters, so a secret next to the cut cannot leak its prefix.

use base64::engine::general_purpose::{STANDARD, URL_SAFE};
use base64::Engine;

use super::error::ProviderError;
use crate::config::Config;

/// What replaces a secret.
pub const REDACTED: &str = "[redacted]";

/// Upstream messages and codes are cut to this many bytes (after redaction).
pub const MAX_MESSAGE: usize = 300;

/// Secrets shorter than this are not searched for (too many false hits; config rejects short admin tokens).
const MIN_SECRET: usize = 4;

/// Every secret of a config and its encoded forms, longest first (so a longer form is replaced before a part of it).
#[derive(Debug, Default, Clone)]
pub struct Redactor {
    needles: Vec<String>,
}

impl Redactor {
    /// A redactor for these secrets.
    pub fn new<'a>(secrets: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut needles = Vec::new();
        for s in secrets {
            if s.len() < MIN_SECRET {
                continue;
            }
            needles.push(s.to_string());
            needles.extend(base64_cores(s.as_bytes()));
        }
        needles.sort_by(|a, b| b.len().cmp(&a.len()).then_with(|| a.cmp(b)));
        needles.dedup();
        Redactor { needles }
    }

    /// Every secret the config holds: provider secrets, client keys, the admin token.
    pub fn from_config(cfg: &Config) -> Redactor {
        let providers = cfg.providers.values().filter_map(|p| p.secret.as_ref());
        let clients = cfg.clients.iter().map(|c| &c.key);
        let admin = cfg.server.admin_token.iter();
        Redactor::new(providers.chain(clients).chain(admin).map(|s| s.expose()))
    }

    /// The text with every secret, encoded secret and `Bearer`/`Basic` credential replaced by `[redacted]`. Not
    /// shortened.
    pub fn text(&self, s: &str) -> String {
        let mut out = bearer_tokens(s);
        for n in &self.needles {
            if out.contains(n.as_str()) {
                out = out.replace(n.as_str(), REDACTED);
            }
        }
        out
    }

    /// The text redacted, then cut to [`MAX_MESSAGE`] bytes (on a char boundary, with `…`).
    pub fn bounded(&self, s: &str) -> String {
        bounded(self.text(s))
    }

    /// An upstream error with its message and code redacted, then bounded.
    pub fn error(&self, mut e: ProviderError) -> ProviderError {
        e.message = self.bounded(&e.message);
        e.code = e.code.as_deref().map(|c| self.bounded(c));
        e
    }
}

/// Cuts to [`MAX_MESSAGE`] bytes on a char boundary.
pub(crate) fn bounded(mut s: String) -> String {
    if s.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// The parts of the base64 encoding of `secret` that depend on the secret's bytes only, for each of the three
/// positions the secret can start at inside a longer encoded text, in the standard and the URL-safe alphabet.
fn base64_cores(secret: &[u8]) -> Vec<String> {
    let mut out = Vec::new();
    // Shorter cores would match ordinary text.
    if secret.len() < 6 {
        return out;
    }
    for lead in 0..3usize {
        let mut buf = vec![0u8; lead];
        buf.extend_from_slice(secret);
        let total = buf.len();
        for engine in [&STANDARD, &URL_SAFE] {
            let enc = engine.encode(&buf);
            // Alone (lead 0), the padded encoding is what an upstream echoes back whole.
            if lead == 0 {
                out.push(enc.clone());
            }
            // Output chars [4*i .. 4*i+4) encode input bytes [3*i .. 3*i+3): keep whole groups of secret bytes.
            let first_group = lead.div_ceil(3);
            let full_groups = total / 3;
            if full_groups > first_group {
                let core = &enc[4 * first_group..4 * full_groups];
                if core.len() >= 8 {
                    out.push(core.to_string());
                }
            }
            // A group holding a prefix byte still has chars fixed by the secret only: the one whose 6 bits come
            // from secret bytes alone. Those are covered by the neighbouring whole groups at the other leads.
        }
    }
    out
}

/// Replaces the credential after every `bearer`/`basic` (any case) followed by whitespace.
fn bearer_tokens(s: &str) -> String {
    let lower = s.to_ascii_lowercase();
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    let mut copied = 0;
    while i < bytes.len() {
        let word = ["bearer", "basic"]
            .into_iter()
            .find(|w| lower.as_bytes()[i..].starts_with(w.as_bytes()));
        let Some(word) = word else {
            i += 1;
            continue;
        };
        let mut j = i + word.len();
        let ws_start = j;
        while j < bytes.len() && matches!(bytes[j], b' ' | b'\t' | b'\n' | b'\r') {
            j += 1;
        }
        // `%20` (a URL-encoded header in an echoed request line).
        while j == ws_start && s[j..].starts_with("%20") {
            j += 3;
        }
        let tok_start = j;
        while j < bytes.len() && is_token_byte(bytes[j]) {
            j += 1;
        }
        if tok_start > ws_start && j > tok_start {
            out.push_str(&s[copied..tok_start]);
            out.push_str(REDACTED);
            copied = j;
        }
        i = j.max(i + word.len());
    }
    out.push_str(&s[copied..]);
    out
}

/// RFC 6750 `b64token` characters.
fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'=')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::ErrorClass;
    use proptest::prelude::*;

    const KEY: &str = "sk-live-0123456789abcdefXYZ";

    fn r() -> Redactor {
        Redactor::new([KEY, "gc-auth-key-987654321"])
    }

    #[test]
    fn a_key_is_gone_wherever_it_sits_also_next_to_the_cut() {
        let r = r();
        for at in 0..(MAX_MESSAGE + 40) {
            let text = format!("{}{KEY}{}", "x".repeat(at), "y".repeat(20));
            let e = r.error(ProviderError::new(ErrorClass::Auth, text.clone()).with_code(Some(text)));
            for part in [&e.message, e.code.as_ref().unwrap()] {
                for w in KEY.as_bytes().windows(6) {
                    let w = std::str::from_utf8(w).unwrap();
                    assert!(!part.contains(w), "at {at}: {w} in {part}");
                }
                assert!(part.len() <= MAX_MESSAGE + '…'.len_utf8());
            }
        }
    }

    #[test]
    fn bearer_and_basic_credentials_of_any_value_and_case() {
        let r = Redactor::default();
        for s in [
            "auth header was 'Bearer abc.def-ghi' here",
            "authorization: bearer abc.def-ghi",
            "BEARER\tabc.def-ghi",
            "Basic abc.def-ghi==",
            "GET /x?h=Bearer%20abc.def-ghi",
        ] {
            let out = r.text(s);
            assert!(!out.contains("abc.def"), "{s} -> {out}");
            assert!(out.contains(REDACTED), "{out}");
        }
        assert_eq!(r.text("a bearer of bad news"), "a bearer [redacted] bad news");
        assert_eq!(r.text("no creds here"), "no creds here");
        assert_eq!(r.text("Bearer"), "Bearer");
    }

    fn hidden(out: &str, key: &str) -> bool {
        // At most a few characters next to a replaced core may remain; never 8 in a row of any encoding.
        let forms: Vec<String> = (0..3)
            .flat_map(|lead| {
                let mut b = vec![b'#'; lead];
                b.extend_from_slice(key.as_bytes());
                [STANDARD.encode(&b), URL_SAFE.encode(&b)]
            })
            .chain([key.to_string()])
            .collect();
        forms.iter().all(|f| {
            let f = f.trim_end_matches('=');
            // The first and last group may mix in neighbouring bytes: check the inner part.
            let inner = if f.len() > 16 { &f[4..f.len() - 4] } else { f };
            inner.len() < 8 || !(0..=inner.len() - 8).any(|i| out.contains(&inner[i..i + 8]))
        })
    }

    proptest! {
        #[test]
        fn secrets_and_their_base64_never_survive(
            key in "[A-Za-z0-9_-]{8,60}",
            before in "[ -~]{0,400}",
            after in "[ -~]{0,80}",
            lead in 0usize..3,
        ) {
            let r = Redactor::new([key.as_str()]);
            let plain = format!("{before}{key}{after}");
            let out = r.bounded(&plain);
            prop_assert!(!out.contains(key.as_str()), "{}", out);
            prop_assert!(out.len() <= MAX_MESSAGE + '…'.len_utf8());
            // Base64 of `<lead bytes>key<after>` embedded in text.
            let mut raw = vec![b'#'; lead];
            raw.extend_from_slice(key.as_bytes());
            raw.extend_from_slice(after.as_bytes());
            for enc in [STANDARD.encode(&raw), URL_SAFE.encode(&raw)] {
                let out = r.text(&format!("{before}{enc}"));
                prop_assert!(hidden(&out, &key), "{} in {}", key, out);
            }
        }
    }
}
