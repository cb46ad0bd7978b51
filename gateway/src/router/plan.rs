//! Candidate planning: logical model -> ordered providers, by mode (local tier last), `X-LLM-Provider` first.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use crate::config::{CapsOverride, Config, Mode, ProviderKind, QwenApi};
use crate::providers::capabilities::{self, Caps};

/// The time limits of one attempt at one provider: all of them beside each other, all inside the request's
/// deadline.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// The whole attempt (non-stream), or until the first token (stream).
    pub attempt: Duration,
    /// Streams: from the request to the first token.
    pub first_token: Duration,
    /// Streams: the longest gap between two chunks.
    pub stall: Duration,
    /// Streams: the whole stream once it reached the client.
    pub max_stream: Duration,
}

/// One provider to try, with the model name it knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// Provider name.
    pub provider: String,
    /// The provider's model name.
    pub model: String,
    /// Local tier (Ollama).
    pub local: bool,
    /// The client named this model itself (`provider/model` or a concrete name), rather than a logical model the
    /// config maps: then the provider's "no such model" is the client's answer, not a reason to fall back.
    pub named_by_client: bool,
    /// Time limits of an attempt.
    pub timeouts: Timeouts,
    /// What this model can serve.
    pub caps: Caps,
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

/// One provider of the fallback order, as the planner needs it.
#[derive(Debug, Clone)]
struct Slot {
    name: String,
    kind: ProviderKind,
    qwen_api: QwenApi,
    timeouts: Timeouts,
}

/// Candidates in order, shared: a logical model's plans are made once, when the planner is built, and each
/// request takes a reference to one.
pub type Plan = Arc<[Candidate]>;

/// Static view of the config the planner needs.
#[derive(Debug, Clone)]
pub struct Planner {
    order: Vec<Slot>,
    models: BTreeMap<String, BTreeMap<String, String>>,
    caps: BTreeMap<String, BTreeMap<String, CapsOverride>>,
    aliases: crate::config::Aliases,
    /// Each logical model's plan in each mode (`auto`, `remote`, `offline`), none of them preferred: the config is
    /// fixed for the planner's life, so what [`Planner::plan`] would build again for every request is built here.
    made: HashMap<String, [Result<Plan, PlanError>; 3]>,
}

impl Planner {
    /// From config.
    pub fn new(cfg: &Config) -> Planner {
        let p = &cfg.policy;
        let order = cfg
            .ordered_providers()
            .map(|pc| Slot {
                name: pc.name.clone(),
                kind: pc.kind,
                qwen_api: pc.qwen_api,
                timeouts: Timeouts {
                    attempt: pc.attempt_timeout,
                    first_token: p.first_token_timeout,
                    stall: p.stall_timeout,
                    max_stream: p.max_stream_duration,
                },
            })
            .collect();
        let mut planner = Planner {
            order,
            models: cfg.models.clone(),
            caps: cfg.model_caps.clone(),
            aliases: cfg.aliases.clone(),
            made: HashMap::new(),
        };
        planner.made = planner
            .models
            .keys()
            .map(|logical| {
                let plans = [Mode::Auto, Mode::Remote, Mode::Offline].map(|m| planner.make(logical, m));
                (logical.clone(), plans)
            })
            .collect();
        planner
    }

    fn mode_index(mode: Mode) -> usize {
        match mode {
            Mode::Auto => 0,
            Mode::Remote => 1,
            Mode::Offline => 2,
        }
    }

    /// Provider -> model name for a logical model, `provider/model`, or a concrete model named in `models:`; and
    /// whether the client named the model itself.
    fn mapping(&self, model: &str) -> Option<(BTreeMap<String, String>, bool)> {
        if let Some(map) = self.models.get(model) {
            return Some((map.clone(), false));
        }
        if let Some(map) = self.aliases.resolve(model).and_then(|l| self.models.get(l)) {
            return Some((map.clone(), false));
        }
        // `provider/model` names any model of one configured provider, mapped or not.
        if let Some((provider, name)) = model.split_once('/') {
            if !name.is_empty() && self.order.iter().any(|s| s.name == provider) {
                return Some((BTreeMap::from([(provider.to_string(), name.to_string())]), true));
            }
        }
        let mut map = BTreeMap::new();
        for providers in self.models.values() {
            for (provider, name) in providers {
                if name == model || capabilities::bare(name) == capabilities::bare(model) {
                    map.insert(provider.clone(), model.to_string());
                }
            }
        }
        (!map.is_empty()).then_some((map, true))
    }

    /// The capabilities of `provider`'s model `model`: the defaults, with what config sets for it (under any
    /// logical name) put over them.
    pub fn caps(&self, provider: &str, model: &str) -> Option<Caps> {
        let slot = self.order.iter().find(|s| s.name == provider)?;
        let defaults = capabilities::defaults(slot.kind, slot.qwen_api, model);
        let over = self.models.iter().find_map(|(logical, map)| {
            (map.get(provider).map(String::as_str) == Some(model))
                .then(|| self.caps.get(logical).and_then(|c| c.get(provider)))
                .flatten()
        });
        Some(match over {
            Some(o) => o.apply(defaults),
            None => defaults,
        })
    }

    /// Ordered candidates: `preferred` first when it serves the model. A logical model's plan (or an alias's) is
    /// the one made when the planner was built; other names (`provider/model`, a concrete model) are planned here.
    pub fn plan(&self, model: &str, mode: Mode, preferred: Option<&str>) -> Result<Plan, PlanError> {
        if let Some(p) = preferred {
            if !self.order.iter().any(|s| s.name == p) {
                return Err(PlanError::UnknownProvider(p.to_string()));
            }
        }
        let made = self
            .made
            .get(model)
            .or_else(|| self.aliases.resolve(model).and_then(|l| self.made.get(l)));
        let out = match made {
            // The error names the model as the client sent it (an alias), as a plan made here would.
            Some(plans) => plans[Self::mode_index(mode)].clone().map_err(|e| match e {
                PlanError::NoCandidates { mode, .. } => PlanError::NoCandidates {
                    model: model.to_string(),
                    mode,
                },
                e => e,
            })?,
            None => self.make(model, mode)?,
        };
        Ok(
            match preferred.and_then(|p| out.iter().position(|c| c.provider == p)) {
                Some(pos) if pos > 0 => {
                    let mut v = out.to_vec();
                    let c = v.remove(pos);
                    v.insert(0, c);
                    v.into()
                }
                _ => out,
            },
        )
    }

    /// The candidates of `model` in `mode`, in the fallback order (the local tier last in `auto`).
    fn make(&self, model: &str, mode: Mode) -> Result<Plan, PlanError> {
        let (map, named_by_client) = self
            .mapping(model)
            .ok_or_else(|| PlanError::UnknownModel(model.to_string()))?;
        let all: Vec<Candidate> = self
            .order
            .iter()
            .filter_map(|s| {
                let m = map.get(&s.name)?;
                Some(Candidate {
                    provider: s.name.clone(),
                    model: m.clone(),
                    local: s.kind.is_local(),
                    named_by_client,
                    timeouts: s.timeouts,
                    caps: self.caps(&s.name, m)?,
                })
            })
            .collect();
        let (local, remote): (Vec<_>, Vec<_>) = all.into_iter().partition(|c| c.local);
        let out: Vec<Candidate> = match mode {
            Mode::Auto => remote.into_iter().chain(local).collect(),
            Mode::Remote => remote,
            Mode::Offline => local,
        };
        if out.is_empty() {
            return Err(PlanError::NoCandidates {
                model: model.to_string(),
                mode: mode.as_str(),
            });
        }
        Ok(out.into())
    }

    /// The provider whose model the request's answer must match (an embeddings vector space): `preferred` when
    /// it serves the model, else the first provider of the fallback order that does, whatever the mode and the
    /// providers' health, so that an outage never moves a client into another space.
    pub fn primary(&self, model: &str, preferred: Option<&str>) -> Option<Caps> {
        let (map, _) = self.mapping(model)?;
        let first = preferred
            .filter(|p| map.contains_key(*p))
            .map(str::to_string)
            .or_else(|| {
                self.order
                    .iter()
                    .find(|s| map.contains_key(&s.name))
                    .map(|s| s.name.clone())
            })?;
        self.caps(&first, &map[&first])
    }

    /// Warnings about the config's embeddings models: a logical model whose providers' models are of different
    /// vector spaces or sizes (a fallback between them would hand out vectors of another space, so the router
    /// never makes one: requests are answered only inside the primary's space), as `(yaml path, message)`.
    pub fn warnings(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (logical, map) in &self.models {
            let caps: Vec<(String, Caps)> = self
                .order
                .iter()
                .filter_map(|s| {
                    let m = map.get(&s.name)?;
                    Some((s.name.clone(), self.caps(&s.name, m)?))
                })
                .collect();
            if !caps.iter().any(|(_, c)| c.dimensions.is_some()) || caps.len() < 2 {
                continue;
            }
            let (first, c0) = &caps[0];
            let others: Vec<String> = caps[1..]
                .iter()
                .filter(|(_, c)| c.space != c0.space || c.dimensions != c0.dimensions)
                .map(|(p, c)| format!("{p} ({}, {})", c.space, dims(c.dimensions)))
                .collect();
            if !others.is_empty() {
                out.push((
                    format!("models.{logical}"),
                    format!(
                        "embeddings chain mixes vector spaces: {first} ({}, {}) vs {}; requests are only served in the \
                         first one's space, the others never stand in (give each space its own logical model)",
                        c0.space,
                        dims(c0.dimensions),
                        others.join(", ")
                    ),
                ));
            }
        }
        out
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

fn dims(d: Option<u32>) -> String {
    d.map_or_else(|| "? dimensions".to_string(), |d| format!("{d} dimensions"))
}
