//! Upstream failures: the error classes of DESIGN.md and the per-attempt error every adapter returns.

use std::fmt;
use std::time::Duration;

use serde::Serialize;

/// DESIGN.md's error classes: the router's action depends on the class only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    /// Refused, reset, DNS, TLS.
    Connect,
    /// Connect, first-token, stall or attempt timeout.
    Timeout,
    /// 429 rate limit.
    RateLimited,
    /// Quota or billing exhausted: long cooldown, never retried.
    QuotaExhausted,
    /// 5xx or explicit overload: one short retry, then next.
    Overloaded,
    /// 401/403 or OAuth failure.
    Auth,
    /// Invalid request: returned to the client, no fallback.
    BadRequest,
    /// The model (or route) does not exist at this provider: the client's 404 when it named the model itself.
    NotFound,
    /// Prompt too long for the model.
    ContextLength,
    /// Refused on content grounds.
    ContentFilter,
    /// Unparseable body or stream, or a stream cut short.
    Malformed,
}

impl ErrorClass {
    /// Stable snake_case name (API bodies, metric labels).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Connect => "connect",
            ErrorClass::Timeout => "timeout",
            ErrorClass::RateLimited => "rate_limited",
            ErrorClass::QuotaExhausted => "quota_exhausted",
            ErrorClass::Overloaded => "overloaded",
            ErrorClass::Auth => "auth",
            ErrorClass::BadRequest => "bad_request",
            ErrorClass::NotFound => "not_found",
            ErrorClass::ContextLength => "context_length",
            ErrorClass::ContentFilter => "content_filter",
            ErrorClass::Malformed => "malformed",
        }
    }

    /// Failures that count toward the breaker (the provider looks unhealthy, not merely busy or strict).
    pub fn counts_for_breaker(self) -> bool {
        matches!(
            self,
            ErrorClass::Connect | ErrorClass::Timeout | ErrorClass::Overloaded | ErrorClass::Malformed
        )
    }

    /// Answers about the request rather than the provider (invalid, unknown model, too long, refused content):
    /// they never touch the provider's health (no breaker count, no cooldown, no last error).
    pub fn is_about_request(self) -> bool {
        matches!(
            self,
            ErrorClass::BadRequest
                | ErrorClass::NotFound
                | ErrorClass::ContextLength
                | ErrorClass::ContentFilter
        )
    }

    /// Classes that may be retried on the same provider.
    pub fn is_retryable(self) -> bool {
        matches!(self, ErrorClass::Overloaded)
    }

    /// All classes, for tests and metric pre-registration.
    pub const ALL: [ErrorClass; 11] = [
        ErrorClass::Connect,
        ErrorClass::Timeout,
        ErrorClass::RateLimited,
        ErrorClass::QuotaExhausted,
        ErrorClass::Overloaded,
        ErrorClass::Auth,
        ErrorClass::BadRequest,
        ErrorClass::NotFound,
        ErrorClass::ContextLength,
        ErrorClass::ContentFilter,
        ErrorClass::Malformed,
    ];
}

/// One failed attempt at one provider, classified.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub struct ProviderError {
    /// What kind of failure.
    pub class: ErrorClass,
    /// Upstream HTTP status, if a response came back.
    pub status: Option<u16>,
    /// The provider's own error code/type, if any.
    pub code: Option<String>,
    /// Human-readable detail. Raw inside an adapter (at most 64 KiB); redacted and cut to 300 bytes by
    /// [`super::redact::Redactor::error`] before it leaves [`super::Adapter`].
    pub message: String,
    /// Retry-After (header or message text), if given.
    pub retry_after: Option<Duration>,
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.class.as_str())?;
        if let Some(s) = self.status {
            write!(f, " (HTTP {s})")?;
        }
        if let Some(c) = &self.code {
            write!(f, " [{c}]")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Bound of a raw upstream text inside an adapter (the redactor cuts it to 300 bytes after redacting).
const MAX_RAW: usize = 64 * 1024;

pub use super::redact::REDACTED;

/// Removes secrets from free text that is kept or shown (recorded prompts, reports): every known secret value
/// (at least 4 characters), and anything that looks like a credential whatever its origin: a word after
/// `Bearer`/`Basic`, `sk-`/`sk_` keys, and long key-like tokens (24+ characters of letters, digits and
/// `-_+/=.` with both letters and digits, e.g. API keys, JWTs, base64 `id:secret`). Returns the text and
/// whether anything was removed.
pub fn redact_text(text: &str, known: &[&str]) -> (String, bool) {
    let out = redact_known(text, known);
    let mut result = String::with_capacity(out.len());
    let mut after_scheme = false;
    let mut rest = out.as_str();
    while !rest.is_empty() {
        let start = rest.find(|c: char| !is_separator(c)).unwrap_or(rest.len());
        result.push_str(&rest[..start]);
        rest = &rest[start..];
        let end = rest.find(is_separator).unwrap_or(rest.len());
        let word = &rest[..end];
        if word.is_empty() {
            break;
        }
        if !(after_scheme || looks_like_key(word)) {
            result.push_str(word);
        } else {
            result.push_str(REDACTED);
        }
        after_scheme = word.eq_ignore_ascii_case("bearer") || word.eq_ignore_ascii_case("basic");
        rest = &rest[end..];
    }
    let changed = result != text;
    (result, changed)
}

/// Replaces every known secret value (at least 4 characters), its base64 forms and any `Bearer`/`Basic` credential
/// in `text` with [`REDACTED`] (the adapters' [`super::redact::Redactor`]); for texts whose other long tokens must
/// stay (model answers).
pub fn redact_known(text: &str, known: &[&str]) -> String {
    super::redact::Redactor::new(known.iter().copied()).text(text)
}

fn is_separator(c: char) -> bool {
    c.is_whitespace()
        || matches!(
            c,
            '"' | '\'' | '`' | ',' | ';' | '(' | ')' | '[' | ']' | '{' | '}' | '<' | '>'
        )
}

fn looks_like_key(word: &str) -> bool {
    // `key=value` / `key:value`: judge the value.
    let value = word.rsplit(['=', ':']).find(|p| !p.is_empty()).unwrap_or(word);
    let value = if value.len() < 8 { word } else { value };
    if (value.starts_with("sk-") || value.starts_with("sk_")) && value.len() >= 12 {
        return true;
    }
    value.len() >= 24
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '+' | '/' | '=' | '.'))
        && value.chars().any(|c| c.is_ascii_digit())
        && value.chars().any(|c| c.is_ascii_alphabetic())
}

impl ProviderError {
    /// A classified error without status.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> ProviderError {
        ProviderError {
            class,
            status: None,
            code: None,
            message: bounded(message.into()),
            retry_after: None,
        }
    }

    /// Sets the HTTP status.
    pub fn with_status(mut self, status: u16) -> ProviderError {
        self.status = Some(status);
        self
    }

    /// Sets the provider code.
    pub fn with_code(mut self, code: Option<String>) -> ProviderError {
        self.code = code.map(bounded);
        self
    }

    /// Sets Retry-After.
    pub fn with_retry_after(mut self, d: Option<Duration>) -> ProviderError {
        self.retry_after = d;
        self
    }

    /// Removes a secret known only at call time (an OAuth access token) from message and code, without cutting
    /// them: the adapter's [`super::redact::Redactor`] still sees the whole text.
    pub fn redact(mut self, secret: Option<&str>) -> ProviderError {
        let r = super::redact::Redactor::new(secret);
        self.message = r.text(&self.message);
        self.code = self.code.as_deref().map(|c| r.text(c));
        self
    }

    /// Maps a reqwest transport error.
    pub fn from_reqwest(e: &reqwest::Error) -> ProviderError {
        if e.is_timeout() {
            ProviderError::new(ErrorClass::Timeout, "upstream timed out")
        } else if e.is_connect() {
            ProviderError::new(
                ErrorClass::Connect,
                format!("connection failed: {}", root_cause(e)),
            )
        } else if e.is_decode() || e.is_body() {
            ProviderError::new(
                ErrorClass::Malformed,
                format!("bad upstream body: {}", root_cause(e)),
            )
        } else {
            ProviderError::new(ErrorClass::Connect, format!("transport error: {}", root_cause(e)))
        }
    }
}

fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

fn bounded(mut s: String) -> String {
    if s.len() > MAX_RAW {
        let mut cut = MAX_RAW;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
        s.push('…');
    }
    s
}

/// Reads `retry-after-ms` or `retry-after` (seconds) from response headers.
pub fn retry_after_header(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let get = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(ms) = get("retry-after-ms").and_then(|v| v.parse::<f64>().ok()) {
        return finite_secs(ms / 1000.0);
    }
    get("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(finite_secs)
}

/// Finds a wait in message text: OpenAI "try again in 3.89s", Moonshot "try again after 2 seconds".
pub fn retry_after_in_text(message: &str) -> Option<Duration> {
    let lower = message.to_ascii_lowercase();
    for marker in ["try again in ", "try again after "] {
        if let Some(pos) = lower.find(marker) {
            let rest = &lower[pos + marker.len()..];
            let num: String = rest
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let unit = rest[num.len()..].trim_start();
            let value = num.parse::<f64>().ok()?;
            let secs = if unit.starts_with("ms") {
                value / 1000.0
            } else {
                value
            };
            return finite_secs(secs);
        }
    }
    None
}

fn finite_secs(secs: f64) -> Option<Duration> {
    (secs.is_finite() && (0.0..86_400.0).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// Generic status-only classification, used after provider codes found nothing.
pub fn class_from_status(status: u16) -> ErrorClass {
    match status {
        401 | 403 => ErrorClass::Auth,
        402 => ErrorClass::QuotaExhausted,
        404 => ErrorClass::NotFound,
        408 => ErrorClass::Timeout,
        413 => ErrorClass::ContextLength,
        429 => ErrorClass::RateLimited,
        400..=499 => ErrorClass::BadRequest,
        _ => ErrorClass::Overloaded,
    }
}
