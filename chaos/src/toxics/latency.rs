//! `latency`: holds each chunk until `latency ± rand(jitter)` ms have passed since it was read.
//!
//! The delay is measured from the read timestamp, so a stream of chunks is shifted rather than slowed: chunks
//! pipeline, as in Toxiproxy (`toxics/latency.go`).

use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::{after_ms, Field};
use crate::rng::Rng;

/// Attributes of the `latency` toxic (milliseconds).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Latency {
    /// Base delay added to every chunk.
    pub latency: i64,
    /// Random variation: each chunk gets `latency + rand(-jitter, jitter)`.
    pub jitter: i64,
}

impl Latency {
    pub(crate) const GO_NAME: &'static str = "LatencyToxic";
    pub(crate) const FIELDS: &'static [Field] = &[("latency", "int64"), ("jitter", "int64")];

    /// When a chunk read at `read_at` may leave this toxic.
    pub(crate) fn release_at(&self, read_at: Instant, rng: &mut Rng) -> Instant {
        let mut delay = self.latency;
        if self.jitter > 0 {
            delay = delay.saturating_add(rng.below(self.jitter.saturating_mul(2)) - self.jitter);
        }
        after_ms(read_at, delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeedSource;

    #[test]
    fn release_is_read_time_plus_latency_within_jitter() {
        let mut rng = SeedSource::new(Some(3)).next_rng();
        let t = Instant::now();
        let l = Latency {
            latency: 100,
            jitter: 10,
        };
        for _ in 0..1000 {
            let d = l.release_at(t, &mut rng) - t;
            assert!(d.as_millis() >= 90 && d.as_millis() <= 110, "{d:?}");
        }
        let none = Latency {
            latency: -5,
            jitter: 0,
        };
        assert_eq!(none.release_at(t, &mut rng), t);
    }
}
