//! `slicer`: splits chunks into pieces of about `average_size ± size_variation` bytes, `delay` µs apart.
//!
//! Follows Toxiproxy's recursive halving (`toxics/slicer.go`), with the split point clamped so that odd
//! attributes (a variation above the average, an average of 0) still make progress instead of crashing.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Field, Piece, Wait};
use crate::rng::Rng;

/// Attributes of the `slicer` toxic.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Slicer {
    /// Average piece size in bytes.
    pub average_size: i64,
    /// Variation of the piece size in bytes; keep it below `average_size`.
    pub size_variation: i64,
    /// Pause between pieces, in **microseconds**.
    pub delay: i64,
}

impl Slicer {
    pub(crate) const GO_NAME: &'static str = "SlicerToxic";
    pub(crate) const FIELDS: &'static [Field] = &[
        ("average_size", "int"),
        ("size_variation", "int"),
        ("delay", "int"),
    ];

    /// Cuts `data` into pieces; every piece after the first waits `delay` µs, and an empty marker waits once
    /// more, since Toxiproxy also sleeps after the last piece before it takes the next chunk.
    pub(crate) fn slice(&self, data: &[u8], rng: &mut Rng) -> Vec<Piece> {
        let bounds = self.boundaries(data.len(), rng);
        let delay = Duration::from_micros(self.delay.max(0) as u64);
        let mut pieces: Vec<Piece> = bounds
            .windows(2)
            .enumerate()
            .map(|(i, w)| Piece {
                wait: if i == 0 || delay.is_zero() {
                    Wait::None
                } else {
                    Wait::For(delay)
                },
                data: data[w[0]..w[1]].to_vec(),
            })
            .collect();
        if !delay.is_zero() && !data.is_empty() {
            pieces.push(Piece {
                wait: Wait::For(delay),
                data: Vec::new(),
            });
        }
        pieces
    }

    /// Piece boundaries `[0, .., len]`.
    fn boundaries(&self, len: usize, rng: &mut Rng) -> Vec<usize> {
        let avg = self.average_size.max(1);
        let var = self.size_variation.max(0);
        let mut out = vec![0];
        // Depth-first, left before right, so boundaries come out in order.
        let mut todo = vec![(0usize, len)];
        while let Some((start, end)) = todo.pop() {
            let size = (end - start) as i64;
            if size - avg <= var || size < 2 {
                out.push(end);
                continue;
            }
            let mut mid = start as i64 + size / 2;
            if var > 0 {
                mid += rng.below(var.saturating_mul(2)) - var;
            }
            let mid = mid.clamp(start as i64 + 1, end as i64 - 1) as usize;
            todo.push((mid, end));
            todo.push((start, mid));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeedSource;

    #[test]
    fn pieces_cover_the_chunk_in_order_and_near_the_average() {
        let mut rng = SeedSource::new(Some(9)).next_rng();
        let data: Vec<u8> = (0..=255).cycle().take(10_000).collect();
        let s = Slicer {
            average_size: 100,
            size_variation: 20,
            delay: 10,
        };
        let pieces = s.slice(&data, &mut rng);
        let joined: Vec<u8> = pieces.iter().flat_map(|p| p.data.clone()).collect();
        assert_eq!(joined, data);
        assert!(pieces.len() > 50, "{}", pieces.len());
        let (marker, real) = pieces.split_last().unwrap();
        assert!(
            marker.data.is_empty() && matches!(marker.wait, Wait::For(_)),
            "trailing wait"
        );
        assert!(real.iter().all(|p| !p.data.is_empty() && p.data.len() <= 120));
        assert!(matches!(pieces[0].wait, Wait::None));
        assert!(matches!(pieces[1].wait, Wait::For(d) if d == Duration::from_micros(10)));
    }

    #[test]
    fn degenerate_attributes_make_progress() {
        let mut rng = SeedSource::new(Some(1)).next_rng();
        let s = Slicer {
            average_size: 0,
            size_variation: 50,
            delay: 0,
        };
        let pieces = s.slice(&[7; 64], &mut rng);
        assert_eq!(pieces.iter().map(|p| p.data.len()).sum::<usize>(), 64);
        assert!(s.slice(&[], &mut rng).iter().all(|p| p.data.is_empty()));
    }
}
