//! The lookup index: normalised exact match first, then TF-IDF cosine over word stems and character trigrams.
//!
//! Candidates come from the postings of the query's rarer features (bounded work per lookup), then each
//! candidate is scored exactly by merging two sorted feature vectors.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::text::{features, normalize, Feature};

/// Postings scanned for candidates per lookup, at most (the rarest features first; all features still count in
/// the exact rescoring).
const SCAN_BUDGET: usize = 1200;
/// Candidates rescored exactly.
const TOP_K: usize = 8;

/// Feature ids are already FNV hashes: the map uses them as they are instead of hashing them again.
#[derive(Debug, Default, Clone, Copy)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) ^ u64::from(*b) ^ (self.0 >> 56);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdHasher>>;

thread_local! {
    /// Per-thread score accumulator, reset through the touched list (no allocation or zeroing per lookup).
    static ACC: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// One indexed prompt: which entry it belongs to and its weighted, sorted features.
#[derive(Debug)]
struct Doc {
    entry: u32,
    features: Vec<(u64, f32)>,
    norm: f32,
}

/// How a lookup matched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MatchKind {
    /// Same text after normalisation.
    Exact,
    /// Lexical similarity above the threshold.
    Similar,
}

/// A match: the entry (index into the store's entry list) and the score (1.0 for exact).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Match {
    /// Entry index.
    pub entry: u32,
    /// Cosine similarity, 1.0 for an exact match.
    pub score: f32,
    /// Exact or similar.
    pub kind: MatchKind,
}

/// Exact map plus inverted index over prompts.
#[derive(Debug, Default)]
pub struct Index {
    exact: HashMap<String, u32>,
    docs: Vec<Doc>,
    /// Feature -> (IDF, prompts that have it).
    postings: IdMap<(f32, Vec<u32>)>,
    /// IDF of a feature no prompt has.
    idf_unseen: f32,
}

impl Index {
    /// Builds the index from `(entry index, prompt)` pairs; the first prompt wins an exact-key clash.
    pub fn build<'a>(prompts: impl IntoIterator<Item = (u32, &'a str)>) -> Index {
        let mut exact = HashMap::new();
        let mut raw: Vec<(u32, Vec<Feature>)> = Vec::new();
        for (entry, p) in prompts {
            let norm = normalize(p);
            let f = features(&norm);
            exact.entry(norm).or_insert(entry);
            raw.push((entry, f));
        }
        let n = raw.len() as f32;
        let mut df: HashMap<u64, u32> = HashMap::new();
        for (_, f) in &raw {
            for x in f {
                *df.entry(x.id).or_insert(0) += 1;
            }
        }
        let idf: HashMap<u64, f32> = df
            .iter()
            .map(|(k, d)| (*k, ((n + 1.0) / (*d as f32 + 0.5)).ln().max(0.01)))
            .collect();
        let mut postings: IdMap<(f32, Vec<u32>)> = IdMap::default();
        let mut docs = Vec::with_capacity(raw.len());
        for (i, (entry, f)) in raw.into_iter().enumerate() {
            let features: Vec<(u64, f32)> = f
                .iter()
                .map(|x| (x.id, x.weight * idf.get(&x.id).copied().unwrap_or(1.0)))
                .collect();
            let norm = features.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
            for (id, _) in &features {
                postings
                    .entry(*id)
                    .or_insert_with(|| (idf.get(id).copied().unwrap_or(1.0), Vec::new()))
                    .1
                    .push(i as u32);
            }
            docs.push(Doc {
                entry,
                features,
                norm,
            });
        }
        Index {
            exact,
            docs,
            postings,
            idf_unseen: ((n + 1.0) / 0.5).ln(),
        }
    }

    /// Number of indexed prompts.
    pub fn len(&self) -> usize {
        self.docs.len()
    }

    /// True when nothing is indexed.
    pub fn is_empty(&self) -> bool {
        self.docs.is_empty()
    }

    /// The best match at or above `threshold`, exact first.
    pub fn lookup(&self, text: &str, threshold: f32) -> Option<Match> {
        let norm = normalize(text);
        if norm.is_empty() {
            return None;
        }
        if let Some(&entry) = self.exact.get(&norm) {
            return Some(Match {
                entry,
                score: 1.0,
                kind: MatchKind::Exact,
            });
        }
        // Rarest features first; stop scanning postings once the budget is spent (the best match shares nearly
        // every feature of the query, so it is found through the rare ones).
        let mut q: Vec<(u64, f32)> = Vec::new();
        let mut order: Vec<(&[u32], f32)> = Vec::new();
        for x in features(&norm) {
            match self.postings.get(&x.id) {
                Some((idf, p)) => {
                    q.push((x.id, x.weight * idf));
                    order.push((p.as_slice(), x.weight * idf));
                }
                None => q.push((x.id, x.weight * self.idf_unseen)),
            }
        }
        let qnorm = q.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
        if qnorm == 0.0 {
            return None;
        }
        order.sort_by_key(|(p, _)| p.len());
        let mut cands: Vec<(u32, f32)> = ACC.with(|acc| {
            let mut acc = acc.borrow_mut();
            if acc.len() < self.docs.len() {
                acc.resize(self.docs.len(), 0.0);
            }
            let mut touched: Vec<u32> = Vec::with_capacity(256);
            let mut scanned = 0usize;
            for (postings, w) in order {
                if scanned > 0 && scanned + postings.len() > SCAN_BUDGET {
                    break;
                }
                scanned += postings.len();
                for &d in postings {
                    let slot = &mut acc[d as usize];
                    if *slot == 0.0 {
                        touched.push(d);
                    }
                    *slot += w;
                }
            }
            touched
                .iter()
                .map(|&d| {
                    let slot = &mut acc[d as usize];
                    let v = *slot;
                    *slot = 0.0;
                    (d, v)
                })
                .collect()
        });
        // Only candidates close to the best partial score can be the best match: drop the long tail before
        // selecting (it is most of the work on large corpora).
        let top = cands.iter().map(|c| c.1).fold(0.0f32, f32::max);
        cands.retain(|c| c.1 >= top * 0.5);
        if cands.len() > TOP_K {
            cands.select_nth_unstable_by(TOP_K, |a, b| b.1.total_cmp(&a.1));
            cands.truncate(TOP_K);
        }
        let mut best: Option<(u32, f32)> = None;
        for (d, _) in cands {
            let doc = &self.docs[d as usize];
            let score = dot(&q, &doc.features) / (qnorm * doc.norm);
            if best.is_none_or(|(bd, b)| score > b || (score == b && d < bd)) {
                best = Some((d, score));
            }
        }
        best.filter(|(_, s)| *s >= threshold).map(|(d, score)| Match {
            entry: self.docs[d as usize].entry,
            score,
            kind: MatchKind::Similar,
        })
    }
}

/// Dot product of two id-sorted sparse vectors (a branch-light merge: both cursors advance by comparison
/// results rather than through a three-way match).
fn dot(a: &[(u64, f32)], b: &[(u64, f32)]) -> f32 {
    let (mut i, mut j, mut s) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        let (x, y) = (a[i], b[j]);
        if x.0 == y.0 {
            s += x.1 * y.1;
        }
        i += usize::from(x.0 <= y.0);
        j += usize::from(y.0 <= x.0);
    }
    s
}
