//! `timeout`: drops all data; closes the link `timeout` ms after the last chunk (0 = never: a black hole).
//!
//! As in Toxiproxy (`toxics/timeout.go`) the timer restarts with every dropped chunk, and removing the toxic
//! closes the link too.

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{after_ms, Field};

/// Attributes of the `timeout` toxic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Timeout {
    /// Milliseconds before the link is closed; 0 keeps it open forever, swallowing data.
    pub timeout: i64,
}

/// Per-link state: when the link closes.
#[derive(Debug, Default, Clone)]
pub(crate) struct TimeoutState {
    pub(crate) close_at: Option<Instant>,
}

impl Timeout {
    pub(crate) const GO_NAME: &'static str = "TimeoutToxic";
    pub(crate) const FIELDS: &'static [Field] = &[("timeout", "int64")];

    /// State for a link where the toxic starts at `now`.
    pub(crate) fn start(&self, now: Instant) -> TimeoutState {
        TimeoutState {
            close_at: self.deadline(now),
        }
    }

    /// The close deadline counted from `now`, if any.
    pub(crate) fn deadline(&self, now: Instant) -> Option<Instant> {
        (self.timeout > 0).then(|| after_ms(now, self.timeout))
    }
}
