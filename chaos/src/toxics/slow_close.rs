//! `slow_close`: when the source closes, waits `delay` ms before closing the destination (`toxics/slow_close.go`).

use serde::{Deserialize, Serialize};

use super::Field;

/// Attributes of the `slow_close` toxic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SlowClose {
    /// Milliseconds to hold the close back.
    pub delay: i64,
}

impl SlowClose {
    pub(crate) const GO_NAME: &'static str = "SlowCloseToxic";
    pub(crate) const FIELDS: &'static [Field] = &[("delay", "int64")];
}
