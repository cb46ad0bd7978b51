//! Deterministic content: answers, token counts, embeddings and ids derived from the prompt and the
//! provider, so a test can tell who answered and two runs give the same bytes.

use crate::provider::Provider;
use base64::Engine as _;
use std::time::{SystemTime, UNIX_EPOCH};

/// FNV-1a, 64 bit: stable across platforms and Rust releases (std's hasher is not promised to be).
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        h ^= 0xff;
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

/// SplitMix64: a tiny, seedable generator for fault probabilities and embedding values.
#[derive(Debug, Clone)]
pub struct SplitMix(u64);

impl SplitMix {
    /// A generator with the given seed.
    pub fn new(seed: u64) -> Self {
        SplitMix(seed)
    }
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// A float uniformly in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// The deterministic answer of `provider` to `prompt`: starts with `[provider]` so tests can tell who
/// answered, carries a hash of the prompt, and echoes the start of it.
pub fn answer(provider: Provider, prompt: &str) -> String {
    let h = fnv1a(&[provider.name().as_bytes(), prompt.as_bytes()]);
    let snippet: String = prompt
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .take(120)
        .collect();
    format!(
        "[{}] Answer {:08x}: this is a deterministic reply from the {} fake to \"{}\". It has a few sentences so that streams have several chunks.",
        provider.name(),
        h as u32,
        provider.name(),
        snippet
    )
}

/// A plausible token count: about four ASCII characters or two other characters per token.
pub fn count_tokens(text: &str) -> u32 {
    let (mut ascii, mut other) = (0u32, 0u32);
    for c in text.chars() {
        if c.is_ascii() {
            ascii += 1;
        } else {
            other += 1;
        }
    }
    let n = ascii.div_ceil(4) + other.div_ceil(2);
    n.max(u32::from(!text.is_empty()))
}

/// Splits an answer into stream pieces of a few words each; joined they give the text back.
pub fn chunks(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut words = 0;
    for piece in text.split_inclusive(' ') {
        cur.push_str(piece);
        words += 1;
        if words == 3 {
            out.push(std::mem::take(&mut cur));
            words = 0;
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// Truncates `text` to about `max_tokens` tokens. Returns the text and whether it was cut.
pub fn limit_tokens(text: &str, max_tokens: Option<u64>) -> (String, bool) {
    let Some(max) = max_tokens else {
        return (text.to_string(), false);
    };
    if u64::from(count_tokens(text)) <= max {
        return (text.to_string(), false);
    }
    let mut out = String::new();
    for piece in text.split_inclusive(' ') {
        if u64::from(count_tokens(&out) + count_tokens(piece)) > max {
            break;
        }
        out.push_str(piece);
    }
    (out, true)
}

/// A deterministic unit-length embedding of `text` with `dims` dimensions.
pub fn embedding(provider: Provider, text: &str, dims: usize) -> Vec<f32> {
    let mut rng = SplitMix::new(fnv1a(&[provider.name().as_bytes(), b"embed", text.as_bytes()]));
    let mut v: Vec<f32> = (0..dims).map(|_| (rng.next_f64() * 2.0 - 1.0) as f32).collect();
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        v.iter_mut().for_each(|x| *x /= norm);
    }
    v
}

/// An embedding as OpenAI's base64: little-endian float32 bytes.
pub fn embedding_base64(v: &[f32]) -> String {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Lowercase hex of `n` hash bits, for ids.
pub fn hex_id(seed: &[&[u8]], len: usize) -> String {
    let mut rng = SplitMix::new(fnv1a(seed));
    let mut s = String::with_capacity(len);
    while s.len() < len {
        s.push_str(&format!("{:016x}", rng.next_u64()));
    }
    s.truncate(len);
    s
}

/// A UUID-looking id (8-4-4-4-12 hex) derived from `seed`.
pub fn uuid_like(seed: &[&[u8]]) -> String {
    let h = hex_id(seed, 32);
    format!(
        "{}-{}-4{}-a{}-{}",
        &h[0..8],
        &h[8..12],
        &h[13..16],
        &h[17..20],
        &h[20..32]
    )
}

/// Seconds since the Unix epoch.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub fn unix_now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// An RFC 3339 timestamp with nanoseconds, as Ollama writes `created_at`.
pub fn rfc3339_nanos(t: SystemTime) -> String {
    humantime::format_rfc3339_nanos(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_deterministic_and_tell_the_provider() {
        let a = answer(Provider::Kimi, "hello");
        assert_eq!(a, answer(Provider::Kimi, "hello"));
        assert!(a.starts_with("[kimi] "));
        assert_ne!(a, answer(Provider::OpenAi, "hello"));
        assert_ne!(a, answer(Provider::Kimi, "hello!"));
    }

    #[test]
    fn chunks_join_back() {
        let a = answer(Provider::Qwen, "Сделай SQL-фильтр по продажам");
        let c = chunks(&a);
        assert!(c.len() > 5);
        assert_eq!(c.concat(), a);
    }

    #[test]
    fn token_counts_are_plausible() {
        assert_eq!(count_tokens(""), 0);
        assert_eq!(count_tokens("hi"), 1);
        assert_eq!(count_tokens("hello world, how are you?"), 7);
        assert!(count_tokens("привет мир") >= 5);
    }

    #[test]
    fn limit_tokens_cuts() {
        let a = answer(Provider::OpenAi, "x");
        let (cut, was_cut) = limit_tokens(&a, Some(5));
        assert!(was_cut);
        assert!(count_tokens(&cut) <= 5 && !cut.is_empty());
        assert_eq!(limit_tokens(&a, Some(10_000)), (a.clone(), false));
    }

    #[test]
    fn embeddings_are_unit_and_deterministic() {
        let v = embedding(Provider::OpenAi, "abc", 64);
        let n: f32 = v.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-4);
        assert_eq!(v, embedding(Provider::OpenAi, "abc", 64));
        let b = embedding_base64(&v);
        let raw = base64::engine::general_purpose::STANDARD.decode(b).unwrap();
        assert_eq!(raw.len(), 64 * 4);
        assert_eq!(f32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]), v[0]);
    }

    #[test]
    fn uuid_like_has_uuid_shape() {
        let u = uuid_like(&[b"x"]);
        let parts: Vec<_> = u.split('-').map(str::len).collect();
        assert_eq!(parts, vec![8, 4, 4, 4, 12]);
    }
}
