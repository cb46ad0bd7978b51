//! Provider secrets: looked up in env, `*_FILE` env, a mounted file or (for fakes) a literal; never printed.

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use super::EnvLookup;

/// A secret value. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The value, for building an `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// Where a secret was found (or looked for): safe to show.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretSource {
    /// Env var consulted first.
    pub env: Option<String>,
    /// File from config, used when the env var and `<ENV>_FILE` are unset.
    pub file: Option<PathBuf>,
    /// Whether config carries a literal value (for fakes).
    pub literal: bool,
    /// Which of the above supplied the value: `env`, `env_file`, `file`, `literal` or `none`.
    pub found_in: &'static str,
}

/// Resolves a secret. Returns the source description, the value, and a problem message if a named file is unreadable.
pub(crate) fn resolve(
    env_name: Option<String>,
    file: Option<PathBuf>,
    literal: Option<String>,
    env: EnvLookup<'_>,
) -> (SecretSource, Option<Secret>, Option<String>) {
    let mut source = SecretSource {
        env: env_name.clone(),
        file: file.clone(),
        literal: literal.is_some(),
        found_in: "none",
    };
    if let Some(name) = &env_name {
        if let Some(v) = env(name).filter(|v| !v.trim().is_empty()) {
            source.found_in = "env";
            return (source, Some(Secret::new(v.trim())), None);
        }
        if let Some(path) = env(&format!("{name}_FILE")).filter(|v| !v.trim().is_empty()) {
            return match read_secret_file(&PathBuf::from(path.trim())) {
                Ok(v) => {
                    source.found_in = "env_file";
                    (source, v, None)
                }
                Err(msg) => (source, None, Some(format!("{name}_FILE: {msg}"))),
            };
        }
    }
    if let Some(path) = &file {
        return match read_secret_file(path) {
            Ok(v) => {
                source.found_in = "file";
                (source, v, None)
            }
            Err(msg) => (source, None, Some(msg)),
        };
    }
    if let Some(v) = literal.filter(|v| !v.is_empty()) {
        source.found_in = "literal";
        return (source, Some(Secret::new(v)), None);
    }
    (source, None, None)
}

fn read_secret_file(path: &PathBuf) -> Result<Option<Secret>, String> {
    match std::fs::read_to_string(path) {
        Ok(s) if s.trim().is_empty() => Ok(None),
        Ok(s) => Ok(Some(Secret::new(s.trim()))),
        Err(e) => Err(format!(
            "cannot read secret file {}: {}",
            path.display(),
            e.kind()
        )),
    }
}
