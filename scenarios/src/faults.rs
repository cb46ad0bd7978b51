//! Faults on the stand: applied at the start of a phase, removed at its end, and the rollback that always runs.

use std::collections::BTreeSet;

use llm_chaos::NewToxic;
use llm_mocks::state::DEFAULT_TOKEN_TTL_MS;
use llm_mocks::SettingsPatch;
use serde::Serialize;

use crate::format::{Fault, RollbackAction, Target};
use crate::stand::Stand;

/// What a phase changed, so that exactly that can be undone.
#[derive(Debug, Default)]
pub struct Applied {
    toxics: Vec<(String, String)>,
    disabled: BTreeSet<String>,
    fakes: BTreeSet<String>,
}

fn names<'a>(target: &'a Target, all: impl Iterator<Item = &'a String>) -> Vec<String> {
    match target {
        Target::All => all.cloned().collect(),
        Target::Named(n) => vec![n.clone()],
    }
}

/// Applies `faults` in order; stops at the first error (what was applied so far is recorded in `applied`).
pub async fn apply(stand: &Stand, faults: &[Fault], applied: &mut Applied) -> Result<(), String> {
    for f in faults {
        match f {
            Fault::Toxic {
                proxy,
                name,
                stream,
                toxicity,
                kind,
            } => {
                for p in names(proxy, stand.proxies.keys()) {
                    if !stand.proxies.contains_key(&p) {
                        return Err(format!("this stand has no proxy {p:?}"));
                    }
                    let t = NewToxic::new(kind.clone())
                        .named(name.clone())
                        .stream(*stream)
                        .toxicity(*toxicity);
                    stand
                        .chaos
                        .add_toxic(&p, &t)
                        .await
                        .map_err(|e| format!("proxy {p}: adding toxic {name}: {e}"))?;
                    applied.toxics.push((p, name.clone()));
                }
            }
            Fault::Proxy { proxy, enabled } => {
                for p in names(proxy, stand.proxies.keys()) {
                    if !stand.proxies.contains_key(&p) {
                        return Err(format!("this stand has no proxy {p:?}"));
                    }
                    if *enabled {
                        stand
                            .chaos
                            .enable(&p)
                            .await
                            .map_err(|e| format!("proxy {p}: enable: {e}"))?;
                    } else {
                        stand
                            .chaos
                            .disable(&p)
                            .await
                            .map_err(|e| format!("proxy {p}: disable: {e}"))?;
                        applied.disabled.insert(p);
                    }
                }
            }
            Fault::Fake { fake, spec } => {
                for n in names(fake, stand.fakes.keys()) {
                    let server = stand
                        .fakes
                        .get(&n)
                        .ok_or_else(|| format!("this stand has no fake {n:?}"))?;
                    applied.fakes.insert(n.clone());
                    server
                        .add_fault(spec.clone())
                        .map_err(|e| format!("fake {n}: {e}"))?;
                }
            }
            Fault::FakeSettings {
                fake,
                latency_ms,
                token_ttl_ms,
                stream_delay_ms,
            } => {
                for n in names(fake, stand.fakes.keys()) {
                    let server = stand
                        .fakes
                        .get(&n)
                        .ok_or_else(|| format!("this stand has no fake {n:?}"))?;
                    applied.fakes.insert(n.clone());
                    server.update_settings(SettingsPatch {
                        latency_ms: *latency_ms,
                        token_ttl_ms: *token_ttl_ms,
                        stream_delay_ms: *stream_delay_ms,
                    });
                }
            }
        }
    }
    Ok(())
}

fn reset_fake(stand: &Stand, name: &str) {
    if let Some(f) = stand.fakes.get(name) {
        f.clear_faults();
        f.update_settings(SettingsPatch {
            latency_ms: Some(0),
            token_ttl_ms: Some(DEFAULT_TOKEN_TTL_MS),
            stream_delay_ms: Some(0),
        });
    }
}

/// Undoes what a phase applied; returns the problems met (the rest is still undone).
pub async fn remove(stand: &Stand, applied: Applied) -> Vec<String> {
    let mut errors = Vec::new();
    for (p, t) in applied.toxics.iter().rev() {
        if let Err(e) = stand.chaos.remove_toxic(p, t).await {
            errors.push(format!("proxy {p}: removing toxic {t}: {e}"));
        }
    }
    for p in &applied.disabled {
        if let Err(e) = stand.chaos.enable(p).await {
            errors.push(format!("proxy {p}: enable: {e}"));
        }
    }
    for n in &applied.fakes {
        reset_fake(stand, n);
    }
    errors
}

/// The outcome of one rollback action.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackResult {
    /// The action.
    pub action: RollbackAction,
    /// Whether it fully succeeded.
    pub ok: bool,
    /// What it did or what failed.
    pub detail: String,
}

/// Runs every rollback action, whatever happens to the others.
pub async fn rollback(stand: &Stand, actions: &[RollbackAction]) -> Vec<RollbackResult> {
    let mut out = Vec::new();
    for a in actions {
        let (ok, detail) = match a {
            RollbackAction::ResetChaos => {
                let mut errors = Vec::new();
                let mut removed = 0;
                for p in stand.proxies.keys() {
                    if let Err(e) = stand.chaos.enable(p).await {
                        errors.push(format!("{p}: enable: {e}"));
                    }
                    match stand.chaos.toxics(p).await {
                        Ok(list) => {
                            for t in list {
                                match stand.chaos.remove_toxic(p, &t.name).await {
                                    Ok(()) => removed += 1,
                                    Err(e) => errors.push(format!("{p}: remove {}: {e}", t.name)),
                                }
                            }
                        }
                        Err(e) => errors.push(format!("{p}: list toxics: {e}")),
                    }
                }
                let n = stand.proxies.len();
                match errors.is_empty() {
                    true => (true, format!("{n} proxies enabled, {removed} toxics removed")),
                    false => (false, errors.join("; ")),
                }
            }
            RollbackAction::ResetFakes => {
                for n in stand.fakes.keys() {
                    reset_fake(stand, n);
                }
                (
                    true,
                    format!("{} fakes: faults cleared, settings reset", stand.fakes.len()),
                )
            }
            RollbackAction::RestoreMode => match stand.set_mode(&stand.config_mode).await {
                Ok(()) => (true, format!("mode {}", stand.config_mode)),
                Err(e) => (false, e),
            },
        };
        out.push(RollbackResult {
            action: *a,
            ok,
            detail,
        });
    }
    out
}
