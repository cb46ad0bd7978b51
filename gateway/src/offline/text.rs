//! Text normalisation and lexical features for offline matching: lower case, `ё` -> `е`, punctuation to spaces;
//! word stems (light Russian/English suffix stripping, then a 5-letter prefix) and character trigrams per word.

/// Suffixes stripped before the prefix cut, longest first (Russian case/number/verb endings, English plurals
/// and verb forms). A suffix is stripped only when at least three letters remain.
const SUFFIXES: &[&str] = &[
    "ями", "ами", "ого", "его", "ому", "ему", "ыми", "ими", "иям", "иях", "ешь", "ете", "ите", "ing", "ах",
    "ях", "ам", "ям", "ов", "ев", "ей", "ой", "ий", "ый", "ая", "яя", "ое", "ее", "ые", "ие", "ых", "их",
    "ым", "им", "ом", "ем", "ую", "юю", "ть", "ed", "а", "я", "ы", "и", "е", "у", "ю", "й", "s",
];

/// Short function words that say nothing about the task (both languages).
const STOPWORDS: &[&str] = &[
    "а",
    "в",
    "во",
    "и",
    "к",
    "на",
    "о",
    "об",
    "по",
    "с",
    "со",
    "у",
    "для",
    "мне",
    "меня",
    "пожалуйста",
    "это",
    "как",
    "a",
    "an",
    "the",
    "for",
    "of",
    "to",
    "in",
    "on",
    "by",
    "me",
    "my",
    "please",
    "is",
    "are",
    "and",
    "or",
    "with",
    "it",
];

/// Stem prefix length: long enough to keep words apart, short enough to absorb inflection.
const STEM_CHARS: usize = 5;

/// The exact-match key: lower case, `ё` as `е`, every run of non-alphanumerics as one space, trimmed.
pub fn normalize(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut space = true;
    for c in text.chars().flat_map(lower) {
        if c.is_alphanumeric() {
            out.push(c);
            space = false;
        } else if !space {
            out.push(' ');
            space = true;
        }
    }
    if out.ends_with(' ') {
        out.pop();
    }
    out
}

/// Lower case with `ё` as `е`; ASCII and Cyrillic by arithmetic (the general Unicode table walk is the slow part
/// of normalising), anything else through `char::to_lowercase`.
fn lower(c: char) -> impl Iterator<Item = char> {
    let fast = match c {
        'A'..='Z' => Some(c.to_ascii_lowercase()),
        'a'..='z' | '0'..='9' | ' ' => Some(c),
        'Ё' | 'ё' => Some('е'),
        'А'..='Я' => char::from_u32(c as u32 + 32),
        'а'..='я' => Some(c),
        _ => None,
    };
    let slow = fast.is_none().then(|| c.to_lowercase()).into_iter().flatten();
    fast.into_iter().chain(slow)
}

/// The stem of one normalised word.
pub fn stem(word: &str) -> &str {
    let chars = word.chars().count();
    let mut base = word;
    for s in SUFFIXES {
        if let Some(rest) = word.strip_suffix(s) {
            if chars - s.chars().count() >= 3 {
                base = rest;
                break;
            }
        }
    }
    match base.char_indices().nth(STEM_CHARS) {
        Some((i, _)) => &base[..i],
        None => base,
    }
}

/// FNV-1a, 64 bits: feature ids without allocating strings.
#[derive(Clone, Copy)]
struct Fnv(u64);

impl Fnv {
    fn new(tag: u8) -> Fnv {
        let mut h = Fnv(0xcbf2_9ce4_8422_2325);
        h.byte(tag);
        h
    }
    fn byte(&mut self, b: u8) {
        self.0 ^= u64::from(b);
        self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
    }
    fn char(&mut self, c: char) {
        let mut buf = [0u8; 4];
        for b in c.encode_utf8(&mut buf).bytes() {
            self.byte(b);
        }
    }
}

/// A weighted feature: word stems count double, trigrams once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Feature {
    /// Hashed feature id.
    pub id: u64,
    /// Raw weight before IDF.
    pub weight: f32,
}

/// Word-stem and character-trigram features of a normalised text, sorted by id, duplicates merged.
pub fn features(normalized: &str) -> Vec<Feature> {
    let mut out: Vec<Feature> = Vec::with_capacity(normalized.len() + 8);
    let mut padded: Vec<char> = Vec::with_capacity(32);
    for word in normalized.split(' ').filter(|w| !w.is_empty()) {
        if STOPWORDS.contains(&word) {
            continue;
        }
        let mut h = Fnv::new(b'w');
        for c in stem(word).chars() {
            h.char(c);
        }
        out.push(Feature { id: h.0, weight: 2.0 });
        padded.clear();
        padded.push('#');
        padded.extend(word.chars());
        padded.push('#');
        for w in padded.windows(3) {
            let mut h = Fnv::new(b't');
            for c in w {
                h.char(*c);
            }
            out.push(Feature { id: h.0, weight: 1.0 });
        }
    }
    out.sort_unstable_by_key(|f| f.id);
    out.dedup_by(|b, a| {
        if a.id == b.id {
            a.weight += b.weight;
            true
        } else {
            false
        }
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_folds_case_yo_and_punctuation() {
        assert_eq!(
            normalize("  Сделай SQL-фильтр, по продажам!! "),
            "сделай sql фильтр по продажам"
        );
        assert_eq!(normalize("Ещё"), "еще");
        assert_eq!(normalize("?!"), "");
    }

    #[test]
    fn stems_absorb_inflection() {
        for (a, b) in [
            ("продажам", "продажи"),
            ("продажах", "продажа"),
            ("фильтр", "фильтры"),
            ("сделай", "сделать"),
            ("sales", "sale"),
            ("filters", "filter"),
            ("отчет", "отчета"),
        ] {
            assert_eq!(stem(a), stem(b), "{a} / {b}");
        }
        assert_ne!(stem("продажи"), stem("прогноз"));
        assert_eq!(stem("sql"), "sql");
    }

    #[test]
    fn features_are_sorted_and_merged() {
        let f = features("sql sql по");
        assert!(f.windows(2).all(|w| w[0].id < w[1].id));
        assert!(f.iter().any(|x| x.weight == 4.0), "{f:?}");
        assert!(features("по для the").is_empty());
    }
}
