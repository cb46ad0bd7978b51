//! `limit_data`: forwards at most `bytes` bytes on a link, then closes it (`toxics/limit_data.go`).
//!
//! The count is per link and survives updates of the toxic, so raising the limit lets more data through.

use serde::{Deserialize, Serialize};

use super::Field;

/// Attributes of the `limit_data` toxic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LimitData {
    /// Bytes to let through before closing.
    pub bytes: i64,
}

/// Per-link state: bytes already forwarded.
#[derive(Debug, Default, Clone)]
pub(crate) struct LimitState {
    transmitted: i64,
}

/// What to do with one chunk.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Limited {
    /// The part of the chunk to forward (may be empty).
    pub(crate) data: Vec<u8>,
    /// Whether the link closes after forwarding it.
    pub(crate) close: bool,
}

impl LimitData {
    pub(crate) const GO_NAME: &'static str = "LimitDataToxic";
    pub(crate) const FIELDS: &'static [Field] = &[("bytes", "int64")];

    /// Truncates `data` to what is left of the budget.
    pub(crate) fn limit(&self, state: &mut LimitState, mut data: Vec<u8>) -> Limited {
        let remaining = self.bytes.saturating_sub(state.transmitted).max(0);
        if (data.len() as u64) > remaining as u64 {
            data.truncate(remaining as usize);
        }
        state.transmitted = state.transmitted.saturating_add(data.len() as i64);
        let close = self.bytes.saturating_sub(state.transmitted) <= 0;
        Limited { data, close }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_exactly_n_bytes_across_chunks() {
        let l = LimitData { bytes: 5 };
        let mut st = LimitState::default();
        assert_eq!(
            l.limit(&mut st, vec![1, 2, 3]),
            Limited {
                data: vec![1, 2, 3],
                close: false
            }
        );
        assert_eq!(
            l.limit(&mut st, vec![4, 5, 6]),
            Limited {
                data: vec![4, 5],
                close: true
            }
        );
        let zero = LimitData { bytes: 0 };
        assert_eq!(
            zero.limit(&mut LimitState::default(), vec![1]),
            Limited {
                data: vec![],
                close: true
            }
        );
    }
}
