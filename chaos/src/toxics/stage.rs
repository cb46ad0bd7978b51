//! Toxics running on one link: each one's toxicity roll and per-link state, and the chain they form.
//!
//! A link keeps a [`Stages`] in step with its proxy's chain for that direction. When the chain changes, toxics
//! that kept their revision keep their roll and state; updated ones are rolled again (as Toxiproxy restarts their
//! stub) but `limit_data` keeps its byte count; removed `timeout` toxics close the link.

use std::time::Duration;

use tokio::time::Instant;

use super::bandwidth::BandwidthState;
use super::limit_data::LimitState;
use super::reset_peer::ResetState;
use super::timeout::TimeoutState;
use super::{after_ms, Piece, ToxicKind, Wait};
use crate::rng::Rng;

/// One toxic as published to the links of a proxy.
#[derive(Debug, Clone)]
pub(crate) struct ChainToxic {
    pub(crate) name: String,
    /// Changes on every update, so links can tell an updated toxic from an untouched one.
    pub(crate) revision: u64,
    pub(crate) toxicity: f32,
    pub(crate) kind: ToxicKind,
}

/// The toxics of one direction, in the order they run.
pub(crate) type Chain = Vec<ChainToxic>;

/// What a toxic does with a chunk.
#[derive(Debug)]
pub(crate) enum OnChunk {
    /// Pass these pieces on.
    Forward(Vec<Piece>),
    /// Pass these pieces on, then close the link.
    ForwardThenClose(Vec<Piece>),
    /// Swallow the chunk.
    Drop,
}

/// What a toxic does when its input ends.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum OnEof {
    /// Pass the end on, after this delay if any.
    Forward(Option<Duration>),
    /// Close the link (not just end it) at this instant.
    CloseAt(Instant),
}

#[derive(Debug, Clone)]
enum State {
    Plain,
    Bandwidth(BandwidthState),
    Timeout(TimeoutState),
    Reset(ResetState),
    Limit(LimitState),
}

/// One toxic on one link.
#[derive(Debug)]
pub(crate) struct Stage {
    name: String,
    revision: u64,
    /// The toxicity roll: an inactive stage passes everything through untouched.
    active: bool,
    kind: ToxicKind,
    state: State,
}

impl Stage {
    fn start(toxic: &ChainToxic, rng: &mut Rng, now: Instant) -> Self {
        let active = rng.next_f32() < toxic.toxicity;
        let state = match &toxic.kind {
            ToxicKind::Bandwidth(_) => State::Bandwidth(BandwidthState::default()),
            ToxicKind::Timeout(t) => State::Timeout(t.start(now)),
            ToxicKind::ResetPeer(_) => State::Reset(ResetState::default()),
            ToxicKind::LimitData(_) => State::Limit(LimitState::default()),
            _ => State::Plain,
        };
        Self {
            name: toxic.name.clone(),
            revision: toxic.revision,
            active,
            kind: toxic.kind.clone(),
            state,
        }
    }

    fn on_chunk(&mut self, data: Vec<u8>, read_at: Instant, now: Instant, rng: &mut Rng) -> OnChunk {
        let pass = |data| {
            OnChunk::Forward(vec![Piece {
                wait: Wait::None,
                data,
            }])
        };
        if !self.active {
            return pass(data);
        }
        match (&self.kind, &mut self.state) {
            (ToxicKind::Latency(l), _) => OnChunk::Forward(vec![Piece {
                wait: Wait::Until(l.release_at(read_at, rng)),
                data,
            }]),
            (ToxicKind::Bandwidth(b), State::Bandwidth(s)) => OnChunk::Forward(b.shape(s, data, now)),
            (ToxicKind::Timeout(t), State::Timeout(s)) => {
                if t.timeout > 0 {
                    s.close_at = t.deadline(now);
                }
                OnChunk::Drop
            }
            (ToxicKind::ResetPeer(r), State::Reset(s)) => {
                r.arm(s, now);
                OnChunk::Drop
            }
            (ToxicKind::Slicer(s), _) => OnChunk::Forward(s.slice(&data, rng)),
            (ToxicKind::LimitData(l), State::Limit(s)) => {
                let cut = l.limit(s, data);
                let pieces = if cut.data.is_empty() {
                    vec![]
                } else {
                    vec![Piece {
                        wait: Wait::None,
                        data: cut.data,
                    }]
                };
                if cut.close {
                    OnChunk::ForwardThenClose(pieces)
                } else {
                    OnChunk::Forward(pieces)
                }
            }
            _ => pass(data),
        }
    }

    fn on_eof(&self, now: Instant) -> OnEof {
        if !self.active {
            return OnEof::Forward(None);
        }
        match (&self.kind, &self.state) {
            (ToxicKind::SlowClose(s), _) if s.delay > 0 => {
                OnEof::Forward(Some(Duration::from_millis(s.delay as u64)))
            }
            (ToxicKind::ResetPeer(r), State::Reset(s)) => {
                OnEof::CloseAt(s.reset_at.unwrap_or_else(|| after_ms(now, r.timeout)))
            }
            _ => OnEof::Forward(None),
        }
    }

    fn close_deadline(&self) -> Option<Instant> {
        if !self.active {
            return None;
        }
        match &self.state {
            State::Timeout(s) => s.close_at,
            State::Reset(s) => s.reset_at,
            _ => None,
        }
    }
}

/// How a chain change affects the pieces still in flight on a link.
#[derive(Debug)]
pub(crate) struct Change {
    /// A removed toxic closes the link (`timeout`'s cleanup).
    pub(crate) close: bool,
    /// The previous stages: name and revision.
    old: Vec<(String, u64)>,
}

/// The running toxics of one link.
#[derive(Debug, Default)]
pub(crate) struct Stages {
    list: Vec<Stage>,
}

impl Stages {
    /// Brings the stages in step with `chain`.
    pub(crate) fn apply(&mut self, chain: &Chain, rng: &mut Rng, now: Instant) -> Change {
        let mut old: Vec<Option<Stage>> = std::mem::take(&mut self.list).into_iter().map(Some).collect();
        let old_ids = old
            .iter()
            .flatten()
            .map(|s| (s.name.clone(), s.revision))
            .collect();
        for toxic in chain {
            let prev = old
                .iter_mut()
                .find(|s| s.as_ref().is_some_and(|s| s.name == toxic.name));
            let stage = match prev.and_then(Option::take) {
                Some(prev) if prev.revision == toxic.revision => prev,
                Some(prev) => {
                    let mut fresh = Stage::start(toxic, rng, now);
                    if let (State::Limit(count), State::Limit(_)) = (&prev.state, &fresh.state) {
                        fresh.state = State::Limit(count.clone());
                    }
                    fresh
                }
                None => Stage::start(toxic, rng, now),
            };
            self.list.push(stage);
        }
        let close = old
            .iter()
            .flatten()
            .any(|s| matches!(s.kind, ToxicKind::Timeout(_)));
        Change { close, old: old_ids }
    }

    /// Where a piece that was due at old stage `next` goes now, and whether the wait it carries still holds
    /// (it does unless the toxic that imposed it changed). A piece that had passed every toxic stays done, as
    /// data already handed to Toxiproxy's writer is not affected by a new toxic.
    pub(crate) fn remap(&self, change: &Change, next: usize) -> (usize, bool) {
        let new_next = if next >= change.old.len() {
            self.list.len()
        } else {
            let passed = &change.old[..next];
            self.list
                .iter()
                .filter(|s| passed.iter().any(|(n, _)| *n == s.name))
                .count()
        };
        let keep_wait = match next.checked_sub(1).and_then(|i| change.old.get(i)) {
            None => true,
            Some((name, rev)) => self.list.iter().any(|s| s.name == *name && s.revision == *rev),
        };
        (new_next, keep_wait)
    }

    /// Number of stages.
    pub(crate) fn len(&self) -> usize {
        self.list.len()
    }

    /// Whether the chain holds a `reset_peer` toxic, active or not.
    pub(crate) fn has_reset_peer(&self) -> bool {
        self.list
            .iter()
            .any(|s| matches!(s.kind, ToxicKind::ResetPeer(_)))
    }

    /// The earliest instant at which a toxic closes the link.
    pub(crate) fn close_deadline(&self) -> Option<Instant> {
        self.list.iter().filter_map(Stage::close_deadline).min()
    }

    /// Runs stage `i` on a chunk.
    pub(crate) fn on_chunk(&mut self, i: usize, data: Vec<u8>, read_at: Instant, rng: &mut Rng) -> OnChunk {
        match self.list.get_mut(i) {
            Some(stage) => stage.on_chunk(data, read_at, Instant::now(), rng),
            None => OnChunk::Forward(vec![Piece {
                wait: Wait::None,
                data,
            }]),
        }
    }

    /// Runs stage `i` on the end of input.
    pub(crate) fn on_eof(&self, i: usize) -> OnEof {
        self.list
            .get(i)
            .map_or(OnEof::Forward(None), |s| s.on_eof(Instant::now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::SeedSource;
    use crate::toxics::{Latency, LimitData, Timeout};

    fn toxic(name: &str, revision: u64, toxicity: f32, kind: ToxicKind) -> ChainToxic {
        ChainToxic {
            name: name.to_owned(),
            revision,
            toxicity,
            kind,
        }
    }

    #[test]
    fn toxicity_zero_passes_and_one_applies() {
        let mut rng = SeedSource::new(Some(1)).next_rng();
        let now = Instant::now();
        let mut st = Stages::default();
        st.apply(
            &vec![toxic("t", 1, 0.0, ToxicKind::Timeout(Timeout { timeout: 0 }))],
            &mut rng,
            now,
        );
        assert!(matches!(
            st.on_chunk(0, vec![1], now, &mut rng),
            OnChunk::Forward(_)
        ));
        st.apply(
            &vec![toxic("t", 2, 1.0, ToxicKind::Timeout(Timeout { timeout: 0 }))],
            &mut rng,
            now,
        );
        assert!(matches!(st.on_chunk(0, vec![1], now, &mut rng), OnChunk::Drop));
    }

    #[test]
    fn update_keeps_limit_count_and_removal_of_timeout_closes() {
        let mut rng = SeedSource::new(Some(1)).next_rng();
        let now = Instant::now();
        let mut st = Stages::default();
        let lim = |rev, bytes| toxic("l", rev, 1.0, ToxicKind::LimitData(LimitData { bytes }));
        st.apply(&vec![lim(1, 4)], &mut rng, now);
        assert!(matches!(
            st.on_chunk(0, vec![0; 3], now, &mut rng),
            OnChunk::Forward(_)
        ));
        st.apply(&vec![lim(2, 5)], &mut rng, now);
        match st.on_chunk(0, vec![0; 3], now, &mut rng) {
            OnChunk::ForwardThenClose(p) => assert_eq!(p[0].data.len(), 2),
            other => panic!("{other:?}"),
        }
        let t = toxic("t", 3, 1.0, ToxicKind::Timeout(Timeout { timeout: 0 }));
        assert!(
            !st.apply(&vec![t], &mut rng, now).close,
            "removing limit_data does not close"
        );
        assert!(st.apply(&vec![], &mut rng, now).close, "removing timeout closes");
    }

    #[test]
    fn remap_follows_surviving_stages() {
        let mut rng = SeedSource::new(Some(1)).next_rng();
        let now = Instant::now();
        let lat = |n: &str, rev| {
            toxic(
                n,
                rev,
                1.0,
                ToxicKind::Latency(Latency {
                    latency: 1,
                    jitter: 0,
                }),
            )
        };
        let mut st = Stages::default();
        st.apply(&vec![lat("a", 1), lat("b", 2), lat("c", 3)], &mut rng, now);
        let change = st.apply(&vec![lat("a", 1), lat("c", 4), lat("d", 5)], &mut rng, now);
        assert_eq!(st.remap(&change, 0), (0, true));
        assert_eq!(st.remap(&change, 1), (1, true));
        assert_eq!(st.remap(&change, 2), (1, false));
        assert_eq!(st.remap(&change, 3), (3, false), "done pieces stay done");
    }
}
