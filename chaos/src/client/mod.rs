//! An async client for the Toxiproxy REST API, with typed methods for every endpoint.
//!
//! It works against this crate's [`Server`](crate::Server) and against a real Toxiproxy: updates use POST for
//! proxies and PATCH for toxics, as Toxiproxy's own Go client does.

mod error;

use std::collections::BTreeMap;

use reqwest::Method;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

pub use error::ClientError;

use crate::model::{NewProxy, NewToxic, Proxy, ProxyUpdate, Toxic, ToxicUpdate};

/// Where Toxiproxy listens by default.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8474";

/// A Toxiproxy API client; cheap to clone.
#[derive(Debug, Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

#[derive(Deserialize)]
struct ErrorBody {
    error: String,
}

#[derive(Deserialize)]
struct Populated {
    proxies: Option<Vec<Proxy>>,
}

#[derive(Deserialize)]
struct VersionBody {
    version: String,
}

impl Client {
    /// A client for the server at `url` (`http://host:port`; a bare `host:port` gets `http://`).
    pub fn new(url: impl Into<String>) -> Result<Self, ClientError> {
        let mut base: String = url.into();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            base = format!("http://{base}");
        }
        while base.ends_with('/') {
            base.pop();
        }
        let http = reqwest::Client::builder()
            .user_agent(concat!("llm-chaos/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(ClientError::Build)?;
        Ok(Self { base, http })
    }

    /// A client for `TOXIPROXY_URL`, or [`DEFAULT_URL`] when it is unset or empty.
    pub fn from_env() -> Result<Self, ClientError> {
        Self::new(url_from(std::env::var("TOXIPROXY_URL").ok()))
    }

    /// The base URL.
    pub fn url(&self) -> &str {
        &self.base
    }

    /// `GET /version`; also reads pre-2.7 servers that answered a bare string.
    pub async fn version(&self) -> Result<String, ClientError> {
        let body = self.call(Method::GET, "/version", None::<&()>, 200).await?;
        Ok(match serde_json::from_str::<VersionBody>(&body) {
            Ok(v) => v.version,
            Err(_) => body.trim().to_owned(),
        })
    }

    /// `GET /proxies`.
    pub async fn proxies(&self) -> Result<BTreeMap<String, Proxy>, ClientError> {
        self.json(Method::GET, "/proxies", None::<&()>, 200).await
    }

    /// `POST /proxies` (201).
    pub async fn create_proxy(&self, proxy: &NewProxy) -> Result<Proxy, ClientError> {
        self.json(Method::POST, "/proxies", Some(proxy), 201).await
    }

    /// `POST /populate`: creates or replaces proxies; unlisted proxies stay.
    pub async fn populate(&self, proxies: &[NewProxy]) -> Result<Vec<Proxy>, ClientError> {
        let done: Populated = self.json(Method::POST, "/populate", Some(proxies), 201).await?;
        Ok(done.proxies.unwrap_or_default())
    }

    /// `GET /proxies/{name}`.
    pub async fn proxy(&self, name: &str) -> Result<Proxy, ClientError> {
        self.json(Method::GET, &proxy_path(name), None::<&()>, 200).await
    }

    /// `POST /proxies/{name}` with only the fields to change.
    pub async fn update_proxy(&self, name: &str, update: &ProxyUpdate) -> Result<Proxy, ClientError> {
        self.json(Method::POST, &proxy_path(name), Some(update), 200)
            .await
    }

    /// Enables a proxy (it listens again).
    pub async fn enable(&self, name: &str) -> Result<Proxy, ClientError> {
        self.update_proxy(
            name,
            &ProxyUpdate {
                enabled: Some(true),
                ..ProxyUpdate::default()
            },
        )
        .await
    }

    /// Disables a proxy: its listener closes (clients get ECONNREFUSED) and its connections are dropped.
    pub async fn disable(&self, name: &str) -> Result<Proxy, ClientError> {
        self.update_proxy(
            name,
            &ProxyUpdate {
                enabled: Some(false),
                ..ProxyUpdate::default()
            },
        )
        .await
    }

    /// `DELETE /proxies/{name}` (204).
    pub async fn delete_proxy(&self, name: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &proxy_path(name), None::<&()>, 204)
            .await
            .map(drop)
    }

    /// `GET /proxies/{name}/toxics`: upstream toxics first.
    pub async fn toxics(&self, proxy: &str) -> Result<Vec<Toxic>, ClientError> {
        self.json(
            Method::GET,
            &format!("{}/toxics", proxy_path(proxy)),
            None::<&()>,
            200,
        )
        .await
    }

    /// `POST /proxies/{name}/toxics` (200).
    pub async fn add_toxic(&self, proxy: &str, toxic: &NewToxic) -> Result<Toxic, ClientError> {
        self.json(
            Method::POST,
            &format!("{}/toxics", proxy_path(proxy)),
            Some(toxic),
            200,
        )
        .await
    }

    /// `GET /proxies/{name}/toxics/{toxic}`.
    pub async fn toxic(&self, proxy: &str, toxic: &str) -> Result<Toxic, ClientError> {
        self.json(Method::GET, &toxic_path(proxy, toxic), None::<&()>, 200)
            .await
    }

    /// `PATCH /proxies/{name}/toxics/{toxic}`: attributes are merged, toxicity kept when absent.
    pub async fn update_toxic(
        &self,
        proxy: &str,
        toxic: &str,
        update: &ToxicUpdate,
    ) -> Result<Toxic, ClientError> {
        self.json(Method::PATCH, &toxic_path(proxy, toxic), Some(update), 200)
            .await
    }

    /// `DELETE /proxies/{name}/toxics/{toxic}` (204).
    pub async fn remove_toxic(&self, proxy: &str, toxic: &str) -> Result<(), ClientError> {
        self.call(Method::DELETE, &toxic_path(proxy, toxic), None::<&()>, 204)
            .await
            .map(drop)
    }

    /// `POST /reset`: every proxy enabled, every toxic removed (204).
    pub async fn reset(&self) -> Result<(), ClientError> {
        self.call(Method::POST, "/reset", None::<&()>, 204)
            .await
            .map(drop)
    }

    /// `GET /metrics`: Prometheus text (404 unless the server runs with a metrics flag).
    pub async fn metrics(&self) -> Result<String, ClientError> {
        self.call(Method::GET, "/metrics", None::<&()>, 200).await
    }

    async fn json<T: DeserializeOwned, B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        expect: u16,
    ) -> Result<T, ClientError> {
        let text = self.call(method, path, body, expect).await?;
        serde_json::from_str(&text).map_err(|source| ClientError::Decode {
            url: self.full(path),
            source,
        })
    }

    async fn call<B: Serialize + ?Sized>(
        &self,
        method: Method,
        path: &str,
        body: Option<&B>,
        expect: u16,
    ) -> Result<String, ClientError> {
        let url = self.full(path);
        let mut request = self.http.request(method, &url);
        if let Some(body) = body {
            request = request.json(body);
        }
        let transport = |source| ClientError::Transport {
            url: url.clone(),
            source,
        };
        let response = request.send().await.map_err(transport)?;
        let status = response.status().as_u16();
        let text = response.text().await.map_err(transport)?;
        if status == expect {
            return Ok(text);
        }
        match serde_json::from_str::<ErrorBody>(&text) {
            Ok(e) => Err(ClientError::Api {
                status,
                message: e.error,
                body: text,
            }),
            Err(_) => Err(ClientError::Unexpected {
                url,
                status,
                body: text,
            }),
        }
    }

    fn full(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }
}

/// The URL `TOXIPROXY_URL` selects: its value, or [`DEFAULT_URL`] when unset or blank.
fn url_from(var: Option<String>) -> String {
    match var {
        Some(url) if !url.trim().is_empty() => url.trim().to_owned(),
        _ => DEFAULT_URL.to_owned(),
    }
}

fn proxy_path(name: &str) -> String {
    format!("/proxies/{}", escape(name))
}

fn toxic_path(proxy: &str, toxic: &str) -> String {
    format!("/proxies/{}/toxics/{}", escape(proxy), escape(toxic))
}

/// Percent-encodes a path segment (everything but RFC 3986 unreserved characters).
fn escape(segment: &str) -> String {
    let mut out = String::with_capacity(segment.len());
    for b in segment.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_normalised_and_segments_escaped() {
        assert_eq!(
            Client::new("127.0.0.1:8474/").unwrap().url(),
            "http://127.0.0.1:8474"
        );
        assert_eq!(Client::new("http://h:1").unwrap().url(), "http://h:1");
        assert_eq!(toxic_path("a b", "c/d"), "/proxies/a%20b/toxics/c%2Fd");
        assert_eq!(url_from(None), DEFAULT_URL);
        assert_eq!(url_from(Some("  ".into())), DEFAULT_URL);
        assert_eq!(url_from(Some(" http://h:9 ".into())), "http://h:9");
    }
}
