//! A small seeded random source (SplitMix64) for toxicity rolls, jitter and slicer sizes.
//!
//! Every link draws its own generator from one [`SeedSource`], so a run with a fixed `--seed` is reproducible
//! per link order without any lock on the hot path.

use std::sync::atomic::{AtomicU64, Ordering};

/// Hands out independent generators derived from one seed.
#[derive(Debug)]
pub(crate) struct SeedSource {
    seed: u64,
    counter: AtomicU64,
}

impl SeedSource {
    /// A source for `seed`; `None` seeds from the clock, as Toxiproxy does by default.
    pub(crate) fn new(seed: Option<u64>) -> Self {
        let seed = seed.unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0x5eed, |d| d.as_nanos() as u64)
        });
        Self {
            seed,
            counter: AtomicU64::new(0),
        }
    }

    /// The next independent generator.
    pub(crate) fn next_rng(&self) -> Rng {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let mut mix = Rng(self.seed ^ n.wrapping_mul(0xA076_1D64_78BD_642F));
        Rng(mix.next_u64())
    }
}

/// SplitMix64: tiny, fast, and good enough for fault injection (not for cryptography).
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A float in `[0, 1)`, like Go's `rand.Float32`.
    pub(crate) fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// An integer in `[0, n)`; `n` must be positive (returns 0 otherwise).
    pub(crate) fn below(&mut self, n: i64) -> i64 {
        if n <= 0 {
            return 0;
        }
        (self.next_u64() % n as u64) as i64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence() {
        let a = SeedSource::new(Some(7));
        let b = SeedSource::new(Some(7));
        let (mut x, mut y) = (a.next_rng(), b.next_rng());
        for _ in 0..10 {
            assert_eq!(x.next_u64(), y.next_u64());
        }
    }

    #[test]
    fn floats_in_unit_interval_and_below_in_range() {
        let mut r = SeedSource::new(Some(1)).next_rng();
        for _ in 0..10_000 {
            let f = r.next_f32();
            assert!((0.0..1.0).contains(&f));
            let b = r.below(10);
            assert!((0..10).contains(&b));
        }
        assert_eq!(r.below(0), 0);
    }
}
