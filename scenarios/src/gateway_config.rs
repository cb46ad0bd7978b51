//! The gateway config of a scenario: the file, the scenario's overrides merged into it, validated by the gateway's
//! own loader (so a scenario never runs against a config the gateway would refuse).

use std::path::Path;

use llm_gateway::config::Config;
use serde_norway::Value;

/// Why the gateway config of a scenario is unusable.
#[derive(Debug, thiserror::Error)]
pub enum GatewayConfigError {
    /// The file could not be read.
    #[error("cannot read the gateway config {file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file or the overrides are not YAML mappings.
    #[error("{0}")]
    Shape(String),
    /// The gateway refused the merged config.
    #[error("the gateway refused its config {file} (after overrides): {message}")]
    Refused {
        /// The file.
        file: String,
        /// The gateway's message.
        message: String,
    },
}

impl GatewayConfigError {
    /// The scenario's YAML path the error belongs to.
    pub fn path(&self) -> &'static str {
        match self {
            GatewayConfigError::Io { .. } => "gateway.config",
            GatewayConfigError::Shape(_) | GatewayConfigError::Refused { .. } => "gateway.overrides",
        }
    }
}

/// Merges `overlay` into `base`: mappings key by key (recursively), anything else replaced.
pub fn merge(base: &mut Value, overlay: &Value) {
    match (base, overlay) {
        (Value::Mapping(b), Value::Mapping(o)) => {
            for (k, v) in o {
                match b.get_mut(k) {
                    Some(slot) => merge(slot, v),
                    None => {
                        b.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (slot, v) => *slot = v.clone(),
    }
}

/// Reads `path`, merges `overrides`, and validates the result with the gateway's loader (no environment: the
/// config's literal secrets and mode apply, so a developer's real keys never reach the fakes).
pub fn load(path: &Path, overrides: Option<&Value>) -> Result<(String, Config), GatewayConfigError> {
    let file = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| GatewayConfigError::Io {
        file: file.clone(),
        source,
    })?;
    let yaml = match overrides {
        None => text,
        Some(o) => {
            if !o.is_mapping() {
                return Err(GatewayConfigError::Shape(
                    "overrides must be a mapping merged into the gateway config".into(),
                ));
            }
            let mut base: Value = serde_norway::from_str(&text).map_err(|e| GatewayConfigError::Refused {
                file: file.clone(),
                message: e.to_string(),
            })?;
            merge(&mut base, o);
            serde_norway::to_string(&base).map_err(|e| GatewayConfigError::Shape(e.to_string()))?
        }
    };
    let mut cfg = Config::from_yaml(&yaml, &|_| None).map_err(|e| GatewayConfigError::Refused {
        file: file.clone(),
        message: e.to_string(),
    })?;
    cfg.resolve_paths_from(path);
    Ok((yaml, cfg))
}
