//! The lookup index: normalised exact match first, then TF-IDF cosine over word stems and character trigrams.
//!
//! Candidates come from the postings of the query's rarer features (bounded work per lookup), then each
//! candidate is scored exactly by merging two sorted feature vectors.

use std::collections::HashMap;

use super::text::{features, normalize, Feature};

/// Postings longer than this share of all prompts are not scanned for candidates (they still count in the score).
const COMMON_SHARE: f32 = 0.05;
/// Candidates rescored exactly.
const TOP_K: usize = 24;

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
    postings: HashMap<u64, Vec<u32>>,
    idf: HashMap<u64, f32>,
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
        let mut postings: HashMap<u64, Vec<u32>> = HashMap::new();
        let mut docs = Vec::with_capacity(raw.len());
        for (i, (entry, f)) in raw.into_iter().enumerate() {
            let features: Vec<(u64, f32)> = f
                .iter()
                .map(|x| (x.id, x.weight * idf.get(&x.id).copied().unwrap_or(1.0)))
                .collect();
            let norm = features.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
            for (id, _) in &features {
                postings.entry(*id).or_default().push(i as u32);
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
            idf,
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
        let q: Vec<(u64, f32)> = features(&norm)
            .iter()
            .map(|x| {
                (
                    x.id,
                    x.weight * self.idf.get(&x.id).copied().unwrap_or(self.idf_unseen),
                )
            })
            .collect();
        let qnorm = q.iter().map(|(_, w)| w * w).sum::<f32>().sqrt();
        if qnorm == 0.0 {
            return None;
        }
        let cap = ((self.docs.len() as f32 * COMMON_SHARE) as usize).max(64);
        let mut partial: HashMap<u32, f32> = HashMap::with_capacity(64);
        let mut scanned_any = false;
        for (id, w) in &q {
            if let Some(p) = self.postings.get(id) {
                if p.len() <= cap {
                    scanned_any = true;
                    for d in p {
                        *partial.entry(*d).or_insert(0.0) += w;
                    }
                }
            }
        }
        if !scanned_any {
            // Only common features: scan them all rather than miss.
            for (id, w) in &q {
                for d in self.postings.get(id).map(Vec::as_slice).unwrap_or(&[]) {
                    *partial.entry(*d).or_insert(0.0) += w;
                }
            }
        }
        let mut cands: Vec<(u32, f32)> = partial.into_iter().collect();
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

/// Dot product of two id-sorted sparse vectors.
fn dot(a: &[(u64, f32)], b: &[(u64, f32)]) -> f32 {
    let (mut i, mut j, mut s) = (0, 0, 0.0);
    while i < a.len() && j < b.len() {
        match a[i].0.cmp(&b[j].0) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                s += a[i].1 * b[j].1;
                i += 1;
                j += 1;
            }
        }
    }
    s
}
