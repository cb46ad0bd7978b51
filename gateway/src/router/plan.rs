//! Candidate planning: logical model -> ordered providers, by mode (local tier last), `X-LLM-Provider` first.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::config::{Config, Mode, ProviderKind};

/// One provider to try, with the model name it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Provider name.
    pub provider: String,
    /// The provider's model name.
    pub model: String,
    /// Local tier (Ollama).
    pub local: bool,
    /// Per-attempt timeout for this provider.
    pub attempt_timeout: Duration,
    /// Context window of this model, when configured.
    pub context_window: Option<u32>,
}

/// Why no plan could be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// The model is neither logical nor known to any provider.
    #[error("unknown model {0:?}")]
    UnknownModel(String),
    /// `X-LLM-Provider` names no configured provider.
    #[error("unknown provider {0:?} in X-LLM-Provider")]
    UnknownProvider(String),
    /// Mode and model leave no provider (e.g. offline mode and a model only remote providers serve).
    #[error("no provider serves model {model:?} in {mode} mode")]
    NoCandidates {
        /// Model.
        model: String,
        /// Mode name.
        mode: &'static str,
    },
}

/// Static view of the config the planner needs.
#[derive(Debug, Clone)]
pub struct Planner {
    order: Vec<(String, ProviderKind, Duration)>,
    models: BTreeMap<String, BTreeMap<String, String>>,
    windows: BTreeMap<String, BTreeMap<String, u32>>,
}

impl Planner {
    /// From config.
    pub fn new(cfg: &Config) -> Planner {
        let order = cfg
            .ordered_providers()
            .map(|p| (p.name.clone(), p.kind, p.attempt_timeout))
            .collect();
        Planner {
            order,
            models: cfg.models.clone(),
            windows: cfg.context_windows.clone(),
        }
    }

    /// Provider -> model name for a logical model, `provider/model`, or a concrete model named in `models:`.
    fn mapping(&self, model: &str) -> Option<BTreeMap<String, String>> {
        if let Some(map) = self.models.get(model) {
            return Some(map.clone());
        }
        // `provider/model` names any model of one configured provider, mapped or not.
        if let Some((provider, name)) = model.split_once('/') {
            if !name.is_empty() && self.order.iter().any(|(n, _, _)| n == provider) {
                return Some(BTreeMap::from([(provider.to_string(), name.to_string())]));
            }
        }
        let mut map = BTreeMap::new();
        for providers in self.models.values() {
            for (provider, name) in providers {
                let bare = name.strip_suffix(":latest").unwrap_or(name);
                if name == model || bare == model.strip_suffix(":latest").unwrap_or(model) {
                    map.insert(provider.clone(), model.to_string());
                }
            }
        }
        (!map.is_empty()).then_some(map)
    }

    /// The configured context window of `provider`'s model `model`, under any logical name.
    fn window(&self, provider: &str, model: &str) -> Option<u32> {
        self.models.iter().find_map(|(logical, map)| {
            (map.get(provider).map(String::as_str) == Some(model))
                .then(|| self.windows.get(logical).and_then(|w| w.get(provider)).copied())
                .flatten()
        })
    }

    /// Ordered candidates.
    pub fn plan(
        &self,
        model: &str,
        mode: Mode,
        preferred: Option<&str>,
    ) -> Result<Vec<Candidate>, PlanError> {
        if let Some(p) = preferred {
            if !self.order.iter().any(|(n, _, _)| n == p) {
                return Err(PlanError::UnknownProvider(p.to_string()));
            }
        }
        let map = self
            .mapping(model)
            .ok_or_else(|| PlanError::UnknownModel(model.to_string()))?;
        let all: Vec<Candidate> = self
            .order
            .iter()
            .filter_map(|(name, kind, timeout)| {
                map.get(name).map(|m| Candidate {
                    provider: name.clone(),
                    model: m.clone(),
                    local: kind.is_local(),
                    attempt_timeout: *timeout,
                    context_window: self.window(name, m),
                })
            })
            .collect();
        let (local, remote): (Vec<_>, Vec<_>) = all.into_iter().partition(|c| c.local);
        let mut out = match mode {
            Mode::Auto => remote.into_iter().chain(local).collect::<Vec<_>>(),
            Mode::Remote => remote,
            Mode::Offline => local,
        };
        if let Some(p) = preferred {
            if let Some(pos) = out.iter().position(|c| c.provider == p) {
                let c = out.remove(pos);
                out.insert(0, c);
            }
        }
        if out.is_empty() {
            return Err(PlanError::NoCandidates {
                model: model.to_string(),
                mode: mode.as_str(),
            });
        }
        Ok(out)
    }

    /// Logical model names.
    pub fn logical_models(&self) -> impl Iterator<Item = &String> {
        self.models.keys()
    }

    /// (provider, concrete model) pairs.
    pub fn concrete_models(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .models
            .values()
            .flat_map(|m| m.iter().map(|(p, n)| (p.clone(), n.clone())))
            .collect();
        out.sort();
        out.dedup();
        out
    }
}
