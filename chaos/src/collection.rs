//! The proxy collection: every API operation with Toxiproxy's checks, in Toxiproxy's order.
//!
//! One async lock serialises changes, as Toxiproxy's collection lock does. Bodies are decoded here rather than in
//! the handlers because Toxiproxy looks the proxy (and for updates the toxic) up before it reads the body, so a
//! 404 wins over a 400.

use std::collections::BTreeMap;

use axum::http::StatusCode;
use serde::Serialize;
use tokio::sync::Mutex;

use crate::error::{ApiError, ErrorBody};
use crate::input::{self, Fields, ProxyInput};
use crate::model::Stream;
use crate::proxy::{listen, Env, ProxyEntry};
use crate::toxics::ToxicKind;

/// All proxies by name (sorted, as Go marshals maps).
#[derive(Debug)]
pub(crate) struct Collection {
    proxies: Mutex<BTreeMap<String, ProxyEntry>>,
    env: Env,
}

fn to_json<T: Serialize + ?Sized>(value: &T) -> Result<String, ApiError> {
    serde_json::to_string(value).map_err(|e| ApiError::internal(e.to_string()))
}

#[derive(Serialize)]
struct PopulateBody<'a> {
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    error: Option<ErrorBody<'a>>,
    proxies: Option<Vec<&'a ProxyEntry>>,
}

impl Collection {
    pub(crate) fn new(env: Env) -> Self {
        Self {
            proxies: Mutex::new(BTreeMap::new()),
            env,
        }
    }

    /// `GET /proxies`: an object keyed by name.
    pub(crate) async fn list(&self) -> Result<String, ApiError> {
        to_json(&*self.proxies.lock().await)
    }

    /// `POST /proxies`.
    pub(crate) async fn create(&self, body: &[u8]) -> Result<String, ApiError> {
        let input = ProxyInput::from_value(&input::parse(body)?)?;
        let name = input
            .name
            .filter(|n| !n.is_empty())
            .ok_or_else(|| ApiError::missing_field("name"))?;
        let upstream = input
            .upstream
            .filter(|u| !u.is_empty())
            .ok_or_else(|| ApiError::missing_field("upstream"))?;
        let mut proxies = self.proxies.lock().await;
        if proxies.contains_key(&name) {
            return Err(ApiError::proxy_exists());
        }
        let mut entry = ProxyEntry::new(name.clone(), input.listen.unwrap_or_default(), upstream);
        if input.enabled.unwrap_or(true) {
            entry.start(&self.env).await.map_err(ApiError::internal)?;
        }
        let json = to_json(&entry)?;
        proxies.insert(name, entry);
        Ok(json)
    }

    /// `POST /populate` (and `--config`): returns the status and the body, which is JSON even on error.
    pub(crate) async fn populate(&self, body: &[u8]) -> (StatusCode, String) {
        let parsed = input::parse(body).and_then(|value| match &value {
            serde_json::Value::Array(items) => items.iter().map(ProxyInput::from_value).collect(),
            other => Err(ApiError::bad_body(format!(
                "json: cannot unmarshal {} into Go value of type []toxiproxy.Proxy",
                input::kind(other)
            ))),
        });
        let mut proxies = self.proxies.lock().await;
        let (done, error) = match parsed.and_then(validate) {
            Err(error) => (Vec::new(), Some(error)),
            Ok(inputs) => self.apply_populate(&mut proxies, inputs).await,
        };
        let listed: Vec<&ProxyEntry> = done.iter().filter_map(|n| proxies.get(n)).collect();
        let body = PopulateBody {
            error: error.as_ref().map(|e| ErrorBody {
                error: &e.message,
                status: e.status.as_u16(),
            }),
            proxies: (!listed.is_empty()).then_some(listed),
        };
        let status = error.as_ref().map_or(StatusCode::CREATED, |e| e.status);
        (status, to_json(&body).unwrap_or_default())
    }

    async fn apply_populate(
        &self,
        proxies: &mut BTreeMap<String, ProxyEntry>,
        inputs: Vec<(String, String, String, bool)>,
    ) -> (Vec<String>, Option<ApiError>) {
        let mut done = Vec::new();
        for (name, listen_at, upstream, enabled) in inputs {
            if let Some(existing) = proxies.get_mut(&name) {
                let resolved = listen::resolve(&listen_at).await.ok();
                if resolved.as_deref() == Some(existing.listen.as_str()) && existing.upstream == upstream {
                    done.push(name);
                    continue;
                }
                existing.stop().await;
            }
            let mut entry = ProxyEntry::new(name.clone(), listen_at, upstream);
            if enabled {
                if let Err(e) = entry.start(&self.env).await {
                    return (done, Some(ApiError::internal(e)));
                }
            }
            proxies.insert(name.clone(), entry);
            done.push(name);
        }
        (done, None)
    }

    /// `GET /proxies/{p}`.
    pub(crate) async fn get(&self, name: &str) -> Result<String, ApiError> {
        let proxies = self.proxies.lock().await;
        to_json(proxies.get(name).ok_or_else(ApiError::proxy_not_found)?)
    }

    /// `POST|PATCH /proxies/{p}`: restarts on a new listen or upstream; `enabled` starts or stops.
    pub(crate) async fn update(&self, name: &str, body: &[u8]) -> Result<String, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let entry = proxies.get_mut(name).ok_or_else(ApiError::proxy_not_found)?;
        let input = ProxyInput::from_value(&input::parse(body)?)?;
        let listen_at = input.listen.unwrap_or_else(|| entry.listen.clone());
        let upstream = input.upstream.unwrap_or_else(|| entry.upstream.clone());
        let enabled = input.enabled.unwrap_or_else(|| entry.enabled());
        let resolved = listen::resolve(&listen_at).await.map_err(ApiError::internal)?;
        if entry.listen != resolved || entry.upstream != upstream {
            entry.stop().await;
            entry.listen = listen_at;
            entry.upstream = upstream;
        }
        if enabled && !entry.enabled() {
            entry.start(&self.env).await.map_err(ApiError::internal)?;
        } else if !enabled {
            entry.stop().await;
        }
        to_json(entry)
    }

    /// `DELETE /proxies/{p}`.
    pub(crate) async fn delete(&self, name: &str) -> Result<(), ApiError> {
        let mut proxies = self.proxies.lock().await;
        let mut entry = proxies.remove(name).ok_or_else(ApiError::proxy_not_found)?;
        entry.stop().await;
        Ok(())
    }

    /// `POST /reset`: every proxy started, every toxic removed; the first start failure is a 500.
    pub(crate) async fn reset(&self) -> Result<(), ApiError> {
        let mut proxies = self.proxies.lock().await;
        for entry in proxies.values_mut() {
            entry.start(&self.env).await.map_err(ApiError::internal)?;
            entry.toxics.clear();
        }
        Ok(())
    }

    /// Stops every proxy (server shutdown).
    pub(crate) async fn stop_all(&self) {
        let mut proxies = self.proxies.lock().await;
        for entry in proxies.values_mut() {
            entry.stop().await;
        }
    }

    /// `GET /proxies/{p}/toxics`.
    pub(crate) async fn toxics(&self, proxy: &str) -> Result<String, ApiError> {
        let proxies = self.proxies.lock().await;
        to_json(
            &proxies
                .get(proxy)
                .ok_or_else(ApiError::proxy_not_found)?
                .toxics
                .all(),
        )
    }

    /// `POST /proxies/{p}/toxics`: defaults, then stream, type, name and attribute checks in Toxiproxy's order.
    pub(crate) async fn add_toxic(&self, proxy: &str, body: &[u8]) -> Result<String, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let entry = proxies.get_mut(proxy).ok_or_else(ApiError::proxy_not_found)?;
        let value = input::parse(body)?;
        let f = Fields::of(&value, "toxics.ToxicWrapper")?;
        let name = f.string("name")?;
        let type_name = f.string("type")?.unwrap_or_default();
        let stream_text = f.string("stream")?.unwrap_or_else(|| "downstream".to_owned());
        let toxicity = f.float32("toxicity")?.unwrap_or(1.0);
        let attributes = f
            .object("attributes", "toxics.NoopToxic")?
            .cloned()
            .unwrap_or_default();
        let stream = Stream::parse(&stream_text).ok_or_else(ApiError::invalid_stream)?;
        let name = name
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| format!("{type_name}_{stream_text}"));
        if !ToxicKind::TYPES.contains(&type_name.as_str()) {
            return Err(ApiError::invalid_toxic_type());
        }
        if entry.toxics.find(&name).is_some() {
            return Err(ApiError::toxic_exists());
        }
        let kind = ToxicKind::from_parts(&type_name, &attributes)
            .map_err(ApiError::bad_body)?
            .ok_or_else(ApiError::invalid_toxic_type)?;
        to_json(&entry.toxics.add(name, stream_text, stream, toxicity, kind))
    }

    /// `GET /proxies/{p}/toxics/{t}`.
    pub(crate) async fn toxic(&self, proxy: &str, toxic: &str) -> Result<String, ApiError> {
        let proxies = self.proxies.lock().await;
        let entry = proxies.get(proxy).ok_or_else(ApiError::proxy_not_found)?;
        to_json(entry.toxics.find(toxic).ok_or_else(ApiError::toxic_not_found)?)
    }

    /// `POST|PATCH /proxies/{p}/toxics/{t}`: attributes merged, toxicity kept when absent.
    pub(crate) async fn update_toxic(
        &self,
        proxy: &str,
        toxic: &str,
        body: &[u8],
    ) -> Result<String, ApiError> {
        let mut proxies = self.proxies.lock().await;
        let entry = proxies.get_mut(proxy).ok_or_else(ApiError::proxy_not_found)?;
        let current = entry.toxics.find(toxic).ok_or_else(ApiError::toxic_not_found)?;
        let value = input::parse(body)?;
        let f = Fields::of(&value, "toxics.ToxicWrapper")?;
        let patch = f.object("attributes", &format!("toxics.{}", go_name(&current.kind)))?;
        let toxicity = f.float32("toxicity")?.unwrap_or(current.toxicity);
        let kind = match patch {
            Some(patch) => current.kind.merged(patch).map_err(ApiError::bad_body)?,
            None => current.kind.clone(),
        };
        let updated = entry
            .toxics
            .update(toxic, kind, toxicity)
            .ok_or_else(ApiError::toxic_not_found)?;
        to_json(&updated)
    }

    /// `DELETE /proxies/{p}/toxics/{t}`.
    pub(crate) async fn remove_toxic(&self, proxy: &str, toxic: &str) -> Result<(), ApiError> {
        let mut proxies = self.proxies.lock().await;
        let entry = proxies.get_mut(proxy).ok_or_else(ApiError::proxy_not_found)?;
        if entry.toxics.remove(toxic) {
            Ok(())
        } else {
            Err(ApiError::toxic_not_found())
        }
    }
}

/// Checks every element before anything changes: `(name, listen, upstream, enabled)`.
fn validate(inputs: Vec<ProxyInput>) -> Result<Vec<(String, String, String, bool)>, ApiError> {
    let mut out = Vec::with_capacity(inputs.len());
    for (i, p) in inputs.into_iter().enumerate() {
        let name = p.name.filter(|n| !n.is_empty());
        let name = name.ok_or_else(|| ApiError::missing_field(format!("name at proxy {}", i + 1)))?;
        let upstream = p.upstream.filter(|u| !u.is_empty());
        let upstream =
            upstream.ok_or_else(|| ApiError::missing_field(format!("upstream at proxy {}", i + 1)))?;
        out.push((
            name,
            p.listen.unwrap_or_default(),
            upstream,
            p.enabled.unwrap_or(true),
        ));
    }
    Ok(out)
}

fn go_name(kind: &ToxicKind) -> &'static str {
    use crate::toxics::*;
    match kind {
        ToxicKind::Latency(_) => Latency::GO_NAME,
        ToxicKind::Bandwidth(_) => Bandwidth::GO_NAME,
        ToxicKind::SlowClose(_) => SlowClose::GO_NAME,
        ToxicKind::Timeout(_) => Timeout::GO_NAME,
        ToxicKind::ResetPeer(_) => ResetPeer::GO_NAME,
        ToxicKind::Slicer(_) => Slicer::GO_NAME,
        ToxicKind::LimitData(_) => LimitData::GO_NAME,
        ToxicKind::Noop(_) | ToxicKind::Other { .. } => Noop::GO_NAME,
    }
}
