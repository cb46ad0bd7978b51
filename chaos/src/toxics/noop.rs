//! `noop`: passes data through unchanged; Toxiproxy registers it (undocumented) and heads every chain with one.

use serde::{Deserialize, Serialize};

use super::Field;

/// The `noop` toxic has no attributes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Noop {}

impl Noop {
    pub(crate) const GO_NAME: &'static str = "NoopToxic";
    pub(crate) const FIELDS: &'static [Field] = &[];
}
