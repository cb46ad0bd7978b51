//! `bandwidth`: limits a link to `rate` KB/s (bytes per millisecond).
//!
//! Each chunk is released when its bytes have "drained" at the rate; chunks larger than 100 ms worth of data are
//! split into 100 ms slices, as in Toxiproxy (`toxics/bandwidth.go`). A rate of 0 or less means no limit. The link
//! keeps the time its last byte drains, so the rate holds across chunks without Toxiproxy's timer drift.

use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{Field, Piece, Wait};

/// Attributes of the `bandwidth` toxic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Bandwidth {
    /// Kilobytes per second (1 KB = 1000 bytes, so also bytes per millisecond).
    pub rate: i64,
}

/// Per-link state: when the bytes already scheduled will have drained.
#[derive(Debug, Default, Clone)]
pub(crate) struct BandwidthState {
    drained_at: Option<Instant>,
}

impl Bandwidth {
    pub(crate) const GO_NAME: &'static str = "BandwidthToxic";
    pub(crate) const FIELDS: &'static [Field] = &[("rate", "int64")];

    /// Splits `data` into slices, each released when it has drained at the rate.
    pub(crate) fn shape(&self, state: &mut BandwidthState, data: Vec<u8>, now: Instant) -> Vec<Piece> {
        if self.rate <= 0 {
            return vec![Piece {
                wait: Wait::None,
                data,
            }];
        }
        let rate = self.rate as u64;
        let slice = usize::try_from(rate.saturating_mul(100))
            .unwrap_or(usize::MAX)
            .max(1);
        let mut at = state.drained_at.map_or(now, |t| t.max(now));
        let mut pieces = Vec::with_capacity(data.len() / slice + 1);
        for part in data.chunks(slice) {
            let nanos = (part.len() as u64).saturating_mul(1_000_000) / rate;
            at = at.checked_add(Duration::from_nanos(nanos)).unwrap_or(at);
            pieces.push(Piece {
                wait: Wait::Until(at),
                data: part.to_vec(),
            });
        }
        state.drained_at = Some(at);
        pieces
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_into_100ms_slices_and_schedules_at_rate() {
        let b = Bandwidth { rate: 10 };
        let mut st = BandwidthState::default();
        let now = Instant::now();
        let pieces = b.shape(&mut st, vec![0; 2500], now);
        assert_eq!(
            pieces.iter().map(|p| p.data.len()).collect::<Vec<_>>(),
            vec![1000, 1000, 500]
        );
        let Wait::Until(last) = pieces[2].wait else {
            panic!("expected a deadline")
        };
        assert_eq!(last - now, Duration::from_millis(250));
        let next = b.shape(&mut st, vec![0; 10], now);
        let Wait::Until(t) = next[0].wait else {
            panic!("expected a deadline")
        };
        assert_eq!(t - now, Duration::from_millis(251));
    }

    #[test]
    fn zero_rate_is_unlimited() {
        let mut st = BandwidthState::default();
        let p = Bandwidth { rate: 0 }.shape(&mut st, vec![1; 5], Instant::now());
        assert!(matches!(p[0].wait, Wait::None));
    }
}
