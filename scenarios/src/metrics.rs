//! Prometheus text parsing (enough for the gateway's `/metrics`) and selector sums.

use std::collections::BTreeMap;

use crate::format::Selector;

/// One sample line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Sample name.
    pub name: String,
    /// Labels.
    pub labels: BTreeMap<String, String>,
    /// Value.
    pub value: f64,
}

/// A parsed scrape.
#[derive(Debug, Clone, Default)]
pub struct Scrape {
    /// Every sample line.
    pub series: Vec<Series>,
}

fn parse_labels(text: &str) -> Option<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    let mut rest = text;
    loop {
        rest = rest.trim_start_matches([',', ' ']);
        if rest.is_empty() {
            return Some(out);
        }
        let (name, after) = rest.split_once('=')?;
        let after = after.strip_prefix('"')?;
        let mut value = String::new();
        let mut chars = after.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        value.push(match n {
                            'n' => '\n',
                            other => other,
                        });
                    }
                }
                '"' => {
                    end = Some(i);
                    break;
                }
                other => value.push(other),
            }
        }
        let end = end?;
        out.insert(name.trim().to_string(), value);
        rest = &after[end + 1..];
    }
}

impl Scrape {
    /// Parses the text exposition format; comment and malformed lines are skipped.
    pub fn parse(text: &str) -> Scrape {
        let mut series = Vec::new();
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (head, value) = if let Some(open) = line.find('{') {
                let Some(close) = line.rfind('}') else { continue };
                let Some(labels) = parse_labels(&line[open + 1..close]) else {
                    continue;
                };
                (Some((line[..open].to_string(), labels)), line[close + 1..].trim())
            } else {
                let mut parts = line.splitn(2, ' ');
                let name = parts.next().unwrap_or_default().to_string();
                (
                    Some((name, BTreeMap::new())),
                    parts.next().unwrap_or_default().trim(),
                )
            };
            let Some((name, labels)) = head else { continue };
            // A value may be followed by a timestamp or an exemplar.
            let v = value.split_whitespace().next().unwrap_or_default();
            let value = match v {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                other => match other.parse::<f64>() {
                    Ok(x) => x,
                    Err(_) => continue,
                },
            };
            series.push(Series { name, labels, value });
        }
        Scrape { series }
    }

    /// Sum of every series the selector matches (0 when none does), and how many matched.
    pub fn sum(&self, sel: &Selector) -> (f64, usize) {
        let mut total = 0.0;
        let mut n = 0;
        for s in self.series.iter().filter(|s| s.name == sel.name) {
            let matches = sel.labels.iter().all(|m| {
                let v = s.labels.get(&m.name).map(String::as_str).unwrap_or("");
                (v == m.value) == m.equal
            });
            if matches {
                total += s.value;
                n += 1;
            }
        }
        (total, n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::bound::parse_selector;

    #[test]
    fn parse_and_sum() {
        let text = "# HELP x\n# TYPE llm_gateway_fallbacks counter\nllm_gateway_fallbacks_total{from=\"openai\",to=\"kimi\",reason=\"connect\"} 3\nllm_gateway_fallbacks_total{from=\"kimi\",to=\"qwen\",reason=\"timeout\"} 2\nllm_gateway_offline_misses_total 0\n# EOF\n";
        let s = Scrape::parse(text);
        assert_eq!(s.series.len(), 3);
        let (sel, _) = parse_selector("llm_gateway_fallbacks_total").unwrap();
        assert_eq!(s.sum(&sel), (5.0, 2));
        let (sel, _) = parse_selector("llm_gateway_fallbacks_total{from=\"openai\"}").unwrap();
        assert_eq!(s.sum(&sel), (3.0, 1));
        let (sel, _) = parse_selector("llm_gateway_fallbacks_total{reason!=\"timeout\"}").unwrap();
        assert_eq!(s.sum(&sel), (3.0, 1));
    }
}
