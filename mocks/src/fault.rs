//! Faults the fakes can inject: the names of the admin API, their knobs, and the book that decides,
//! request by request, which fault (if any) fires.

use crate::content::SplitMix;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What goes wrong. Each provider renders every kind the way that provider really fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FaultKind {
    /// Too many requests: the provider's 429 with its rate-limit body (and `Retry-After` when set).
    RateLimited,
    /// Billing quota used up: OpenAI 429 `insufficient_quota`, Moonshot 429 `exceeded_current_quota_error`,
    /// DashScope 400 `Arrearage`, GigaChat 402.
    QuotaExhausted,
    /// Server overloaded: OpenAI 503, Moonshot 429 `engine_overloaded_error`, DashScope 503, GigaChat 503.
    Overloaded,
    /// An internal error (500).
    ServerError,
    /// Credentials rejected (401).
    Auth,
    /// The request is invalid (400 or 422).
    BadRequest,
    /// The prompt is longer than the model's context window.
    ContextLength,
    /// Content moderation: GigaChat answers 200 with `finish_reason: "blacklist"`.
    ContentFilter,
    /// A 200 whose body (or a stream event) is not valid JSON.
    Malformed,
    /// A stream that stops after `after_chunks` pieces with no end marker.
    TruncatedStream,
    /// A stream that sends the provider's mid-stream error event after `after_chunks` pieces.
    StreamError,
    /// A normal answer after `delay_ms` (default 5000 ms).
    Slow,
    /// The connection is closed without any response.
    DropConnection,
}

impl FaultKind {
    /// Every kind, in the order of the admin API's documentation.
    pub const ALL: [FaultKind; 13] = [
        FaultKind::RateLimited,
        FaultKind::QuotaExhausted,
        FaultKind::Overloaded,
        FaultKind::ServerError,
        FaultKind::Auth,
        FaultKind::BadRequest,
        FaultKind::ContextLength,
        FaultKind::ContentFilter,
        FaultKind::Malformed,
        FaultKind::TruncatedStream,
        FaultKind::StreamError,
        FaultKind::Slow,
        FaultKind::DropConnection,
    ];

    /// The name used by the admin API.
    pub fn name(self) -> &'static str {
        match self {
            FaultKind::RateLimited => "rate_limited",
            FaultKind::QuotaExhausted => "quota_exhausted",
            FaultKind::Overloaded => "overloaded",
            FaultKind::ServerError => "server_error",
            FaultKind::Auth => "auth",
            FaultKind::BadRequest => "bad_request",
            FaultKind::ContextLength => "context_length",
            FaultKind::ContentFilter => "content_filter",
            FaultKind::Malformed => "malformed",
            FaultKind::TruncatedStream => "truncated_stream",
            FaultKind::StreamError => "stream_error",
            FaultKind::Slow => "slow",
            FaultKind::DropConnection => "drop_connection",
        }
    }
}

impl fmt::Display for FaultKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for FaultKind {
    type Err = FaultError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FaultKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| FaultError::UnknownKind(s.into()))
    }
}

/// A fault as the admin API takes it: `{"fault": NAME, ...}`; everything but `fault` is optional.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FaultSpec {
    /// What goes wrong.
    pub fault: FaultKind,
    /// How many requests it hits before it is used up; absent means every request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub times: Option<u64>,
    /// The chance that an eligible request is hit, in [0, 1]; default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probability: Option<f64>,
    /// Let this many requests through unharmed first (a quota that runs out after N requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_requests: Option<u64>,
    /// Seconds to advertise in `Retry-After` (rate limits and overloads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_s: Option<u64>,
    /// For stream faults: how many content pieces go out before the stream breaks (default 2). On a
    /// `/v1/responses` stream, setting it also makes `rate_limited`, `quota_exhausted`, `overloaded` and
    /// `server_error` arrive in-stream (`error` + `response.failed` after this many deltas) instead of as HTTP errors.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after_chunks: Option<u64>,
    /// For `slow`: the delay before the answer in ms (default 5000). Other faults: delay before the fault.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub delay_ms: Option<u64>,
}

impl FaultSpec {
    /// A spec with only the kind set.
    pub fn new(fault: FaultKind) -> Self {
        FaultSpec {
            fault,
            times: None,
            probability: None,
            after_requests: None,
            retry_after_s: None,
            after_chunks: None,
            delay_ms: None,
        }
    }

    /// Sets `times`.
    pub fn times(mut self, n: u64) -> Self {
        self.times = Some(n);
        self
    }

    /// Sets `after_requests`.
    pub fn after_requests(mut self, n: u64) -> Self {
        self.after_requests = Some(n);
        self
    }

    /// Sets `retry_after_s`.
    pub fn retry_after_s(mut self, s: u64) -> Self {
        self.retry_after_s = Some(s);
        self
    }

    /// Sets `after_chunks`.
    pub fn after_chunks(mut self, n: u64) -> Self {
        self.after_chunks = Some(n);
        self
    }

    /// Sets `delay_ms`.
    pub fn delay_ms(mut self, ms: u64) -> Self {
        self.delay_ms = Some(ms);
        self
    }

    /// Sets `probability`.
    pub fn probability(mut self, p: f64) -> Self {
        self.probability = Some(p);
        self
    }

    /// Checks the knobs' ranges.
    pub fn validate(&self) -> Result<(), FaultError> {
        if let Some(p) = self.probability {
            if !(0.0..=1.0).contains(&p) || p.is_nan() {
                return Err(FaultError::Invalid(format!(
                    "`probability` must be within [0, 1], got {p}"
                )));
            }
        }
        if self.times == Some(0) {
            return Err(FaultError::Invalid(
                "`times` must be at least 1 (omit it for every request)".into(),
            ));
        }
        if let Some(ms) = self.delay_ms {
            if ms > crate::state::MAX_DELAY_MS {
                return Err(FaultError::Invalid(format!(
                    "`delay_ms` must be at most 3600000, got {ms}"
                )));
            }
        }
        Ok(())
    }
}

/// Why a fault could not be added.
#[derive(Debug, thiserror::Error)]
pub enum FaultError {
    /// The name is not one of the 13 kinds.
    #[error(
        "unknown fault `{0}`: expected one of rate_limited, quota_exhausted, overloaded, server_error, auth, \
         bad_request, context_length, content_filter, malformed, truncated_stream, stream_error, slow, drop_connection"
    )]
    UnknownKind(String),
    /// A knob is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// A fault that is installed, with its use counters.
#[derive(Debug, Clone, Serialize)]
pub struct InstalledFault {
    /// Its id, unique within the fake.
    pub id: u64,
    /// The spec it was added with.
    #[serde(flatten)]
    pub spec: FaultSpec,
    /// Eligible requests seen since it was added.
    pub seen: u64,
    /// Requests it has hit.
    pub fired: u64,
}

/// The faults of one fake, in the order they were added; the first that fires wins.
#[derive(Debug)]
pub struct FaultBook {
    faults: Vec<InstalledFault>,
    next_id: u64,
    rng: SplitMix,
}

impl FaultBook {
    /// An empty book whose probabilities roll from `seed`.
    pub fn new(seed: u64) -> Self {
        FaultBook {
            faults: Vec::new(),
            next_id: 1,
            rng: SplitMix::new(seed),
        }
    }

    /// Installs a validated fault and returns it.
    pub fn add(&mut self, spec: FaultSpec) -> Result<InstalledFault, FaultError> {
        spec.validate()?;
        let f = InstalledFault {
            id: self.next_id,
            spec,
            seen: 0,
            fired: 0,
        };
        self.next_id += 1;
        self.faults.push(f.clone());
        Ok(f)
    }

    /// Removes every fault.
    pub fn clear(&mut self) {
        self.faults.clear();
    }

    /// The installed faults.
    pub fn list(&self) -> &[InstalledFault] {
        &self.faults
    }

    /// Decides the fault for one eligible request: every fault counts the request; the first whose
    /// `after_requests` has passed and whose probability roll succeeds fires, and is removed when its
    /// `times` are used up.
    pub fn decide(&mut self) -> Option<FaultSpec> {
        let mut chosen: Option<usize> = None;
        for (i, f) in self.faults.iter_mut().enumerate() {
            f.seen += 1;
            if chosen.is_some() || f.seen <= f.spec.after_requests.unwrap_or(0) {
                continue;
            }
            let p = f.spec.probability.unwrap_or(1.0);
            if p >= 1.0 || self.rng.next_f64() < p {
                chosen = Some(i);
            }
        }
        let i = chosen?;
        let f = &mut self.faults[i];
        f.fired += 1;
        let spec = f.spec.clone();
        if f.spec.times.is_some_and(|t| f.fired >= t) {
            self.faults.remove(i);
        }
        Some(spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for k in FaultKind::ALL {
            assert_eq!(k.name().parse::<FaultKind>().unwrap(), k);
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.name()));
        }
        assert!("nope".parse::<FaultKind>().is_err());
    }

    #[test]
    fn times_are_used_up() {
        let mut b = FaultBook::new(1);
        b.add(FaultSpec::new(FaultKind::ServerError).times(2)).unwrap();
        assert!(b.decide().is_some());
        assert!(b.decide().is_some());
        assert!(b.decide().is_none());
        assert!(b.list().is_empty());
    }

    #[test]
    fn quota_runs_out_after_n_requests() {
        let mut b = FaultBook::new(1);
        b.add(FaultSpec::new(FaultKind::QuotaExhausted).after_requests(3))
            .unwrap();
        let hits: Vec<bool> = (0..6).map(|_| b.decide().is_some()).collect();
        assert_eq!(hits, vec![false, false, false, true, true, true]);
    }

    #[test]
    fn first_installed_fault_wins() {
        let mut b = FaultBook::new(1);
        b.add(FaultSpec::new(FaultKind::Auth).times(1)).unwrap();
        b.add(FaultSpec::new(FaultKind::Slow)).unwrap();
        assert_eq!(b.decide().unwrap().fault, FaultKind::Auth);
        assert_eq!(b.decide().unwrap().fault, FaultKind::Slow);
    }

    #[test]
    fn probability_is_roughly_honoured_and_seeded() {
        let mut b = FaultBook::new(42);
        b.add(FaultSpec::new(FaultKind::ServerError).probability(0.25))
            .unwrap();
        let n = (0..4000).filter(|_| b.decide().is_some()).count();
        assert!((800..1200).contains(&n), "{n}");
        let mut c = FaultBook::new(42);
        c.add(FaultSpec::new(FaultKind::ServerError).probability(0.25))
            .unwrap();
        assert_eq!(n, (0..4000).filter(|_| c.decide().is_some()).count());
    }

    #[test]
    fn invalid_knobs_are_rejected() {
        let mut b = FaultBook::new(1);
        assert!(b.add(FaultSpec::new(FaultKind::Slow).probability(1.5)).is_err());
        assert!(b.add(FaultSpec::new(FaultKind::Slow).times(0)).is_err());
        let err = serde_json::from_str::<FaultSpec>(r#"{"fault":"slow","tims":1}"#).unwrap_err();
        assert!(err.to_string().contains("tims"), "{err}");
    }
}
