//! `aliases:` other names for logical models, so a client that only offers its own vendor's ids finds them:
//! Claude Code and the Anthropic SDKs send `claude-*` ids (`../shared/AGENT_APIS.md` §2.7). A name is exact
//! (`claude-sonnet-4-5: default`) or a pattern with `*` for any run of characters (`claude-*haiku*: fast`).
//! An exact name wins over a pattern; among patterns the most specific (most characters besides `*`) wins,
//! then the one first in name order.

use std::collections::BTreeMap;

use super::validate::Problems;

/// Validated aliases.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aliases {
    exact: BTreeMap<String, String>,
    /// Most specific first.
    patterns: Vec<(String, String)>,
}

impl Aliases {
    /// The logical model `name` stands for, if it is an alias.
    pub fn resolve(&self, name: &str) -> Option<&str> {
        if let Some(l) = self.exact.get(name) {
            return Some(l);
        }
        self.patterns
            .iter()
            .find(|(p, _)| glob(p, name))
            .map(|(_, l)| l.as_str())
    }

    /// The exact aliases (name, logical model), in name order: the ids a model list can show.
    pub fn exact(&self) -> impl Iterator<Item = (&str, &str)> {
        self.exact.iter().map(|(a, l)| (a.as_str(), l.as_str()))
    }

    /// Whether there is none.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty() && self.patterns.is_empty()
    }
}

/// Whether `name` matches `pattern`, where `*` is any run of characters (none included).
fn glob(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let first = parts.next().unwrap_or("");
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for part in middle {
        match rest.find(part) {
            Some(i) => rest = &rest[i + part.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

/// Checks `aliases:` against the logical models; every problem names its path.
pub(crate) fn aliases(
    p: &mut Problems,
    raw: &BTreeMap<String, String>,
    models: &BTreeMap<String, BTreeMap<String, String>>,
) -> Aliases {
    let mut out = Aliases::default();
    for (name, logical) in raw {
        let path = format!("aliases.{name}");
        if name.trim().is_empty() || name.chars().all(|c| c == '*') {
            p.push(&path, "an alias must name something besides '*'");
            continue;
        }
        if models.contains_key(name) {
            p.push(&path, "is already a logical model name");
            continue;
        }
        if !models.contains_key(logical) {
            p.push(
                &path,
                format!("logical model {logical:?} is not defined under models"),
            );
            continue;
        }
        if name.contains('*') {
            out.patterns.push((name.clone(), logical.clone()));
        } else {
            out.exact.insert(name.clone(), logical.clone());
        }
    }
    let specificity = |p: &str| p.chars().filter(|c| *c != '*').count();
    out.patterns.sort_by(|a, b| {
        specificity(&b.0)
            .cmp(&specificity(&a.0))
            .then_with(|| a.0.cmp(&b.0))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_runs_of_any_characters() {
        assert!(glob("claude-*", "claude-sonnet-4-5"));
        assert!(glob("claude-*", "claude-"));
        assert!(!glob("claude-*", "claud"));
        assert!(glob("claude-*haiku*", "claude-haiku-4-5-20251001"));
        assert!(glob("claude-*haiku*", "claude-3-5-haiku-latest"));
        assert!(!glob("claude-*haiku*", "claude-sonnet-4-5"));
        assert!(glob("*-mini", "gpt-4o-mini"));
        assert!(!glob("*-mini", "gpt-4o-mini-2024"));
        assert!(glob("a*b*c", "abc"));
        assert!(!glob("a*b*c", "acb"));
        assert!(!glob("ab*ba", "aba"));
        assert!(glob("exact", "exact"));
        assert!(!glob("exact", "exact2"));
    }

    #[test]
    fn exact_beats_patterns_and_the_most_specific_pattern_wins() {
        let models = BTreeMap::from([
            ("default".to_string(), BTreeMap::new()),
            ("fast".to_string(), BTreeMap::new()),
            ("large".to_string(), BTreeMap::new()),
        ]);
        let raw = BTreeMap::from([
            ("claude-*".to_string(), "default".to_string()),
            ("claude-*haiku*".to_string(), "fast".to_string()),
            ("claude-opus-4-1".to_string(), "large".to_string()),
        ]);
        let mut p = Problems(Vec::new());
        let a = aliases(&mut p, &raw, &models);
        assert!(p.0.is_empty(), "{:?}", p.0);
        assert_eq!(a.resolve("claude-opus-4-1"), Some("large"));
        assert_eq!(a.resolve("claude-haiku-4-5"), Some("fast"));
        assert_eq!(a.resolve("claude-sonnet-4-5-20250929"), Some("default"));
        assert_eq!(a.resolve("gpt-4o"), None);
        assert_eq!(a.exact().collect::<Vec<_>>(), [("claude-opus-4-1", "large")]);
    }

    #[test]
    fn bad_aliases_are_named_by_path() {
        let models = BTreeMap::from([("default".to_string(), BTreeMap::new())]);
        let raw = BTreeMap::from([
            ("*".to_string(), "default".to_string()),
            ("default".to_string(), "default".to_string()),
            ("claude-x".to_string(), "nosuch".to_string()),
        ]);
        let mut p = Problems(Vec::new());
        let a = aliases(&mut p, &raw, &models);
        let paths: Vec<&str> = p.0.iter().map(|x| x.path.as_str()).collect();
        assert_eq!(paths, ["aliases.*", "aliases.claude-x", "aliases.default"]);
        assert!(a.is_empty());
    }
}
