//! `reset_peer`: on the first chunk, waits `timeout` ms and then resets the connection with a TCP RST.
//!
//! The RST comes from `SO_LINGER 0` on both sockets, set whenever the chain contains this toxic, even at
//! toxicity 0 (Toxiproxy issue #603); the link code handles that part (`toxics/reset_peer.go`).

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{after_ms, Field};

/// Attributes of the `reset_peer` toxic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ResetPeer {
    /// Milliseconds between the first chunk and the reset.
    pub timeout: i64,
}

/// Per-link state: when the reset fires, once data has arrived.
#[derive(Debug, Default, Clone)]
pub(crate) struct ResetState {
    pub(crate) reset_at: Option<Instant>,
}

impl ResetPeer {
    pub(crate) const GO_NAME: &'static str = "ResetToxic";
    pub(crate) const FIELDS: &'static [Field] = &[("timeout", "int64")];

    /// Arms the reset on the first chunk seen at `now`; later chunks change nothing.
    pub(crate) fn arm(&self, state: &mut ResetState, now: Instant) {
        if state.reset_at.is_none() {
            state.reset_at = Some(after_ms(now, self.timeout));
        }
    }
}
