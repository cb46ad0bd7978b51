//! Shared HTTP plumbing for adapters: pooled clients, sending, reading and classifying error bodies.

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, Response};
use serde::de::DeserializeOwned;

use super::error::{ErrorClass, ProviderError};
use crate::config::ProviderConfig;

/// Classifies a non-2xx response from its status, headers and body text.
pub(crate) type Classify = fn(u16, &HeaderMap, &str) -> ProviderError;

/// Why a provider client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ClientBuildError {
    /// The CA bundle could not be read or parsed.
    #[error("provider {provider}: ca_bundle {path}: {message}")]
    CaBundle {
        /// Provider name.
        provider: String,
        /// File.
        path: String,
        /// What went wrong.
        message: String,
    },
    /// reqwest refused the settings.
    #[error("provider {provider}: cannot build HTTP client: {message}")]
    Client {
        /// Provider name.
        provider: String,
        /// What reqwest said.
        message: String,
    },
}

/// A pooled client for one provider: connect timeout, keep-alive, optional extra root CAs. Verification stays on.
pub fn build_client(pc: &ProviderConfig) -> Result<reqwest::Client, ClientBuildError> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(pc.connect_timeout)
        .pool_idle_timeout(std::time::Duration::from_secs(90))
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        // Provider APIs answer, they do not redirect: a 3xx (an edge proxy's login page, a moved endpoint) is an
        // answer to classify, not a hop to follow with the request's credentials. It also spares a URL copy per request.
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("llm-gateway/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = &pc.ca_bundle {
        let err = |message: String| ClientBuildError::CaBundle {
            provider: pc.name.clone(),
            path: path.display().to_string(),
            message,
        };
        let pem = std::fs::read(path).map_err(|e| err(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| err(e.to_string()))?;
        if certs.is_empty() {
            return Err(err("no PEM certificate found".to_string()));
        }
        for cert in certs {
            b = b.add_root_certificate(cert);
        }
    }
    b.build().map_err(|e| ClientBuildError::Client {
        provider: pc.name.clone(),
        message: e.to_string(),
    })
}

/// Sends a request; a non-2xx status becomes a classified error. Transport failures are classified too.
pub(crate) async fn send(
    rb: RequestBuilder,
    classify: Classify,
    secret: Option<&str>,
) -> Result<Response, ProviderError> {
    let resp = crate::telemetry::inject(rb)
        .send()
        .await
        .map_err(|e| ProviderError::from_reqwest(&e))?;
    let status = resp.status().as_u16();
    if (200..300).contains(&status) {
        return Ok(resp);
    }
    let headers = resp.headers().clone();
    let body = read_error_body(resp).await;
    Err(classify(status, &headers, &body)
        .with_status(status)
        .redact(secret))
}

const MAX_ERROR_BODY: usize = 64 * 1024;

async fn read_error_body(mut resp: Response) -> String {
    let mut buf = Vec::new();
    while let Ok(Some(chunk)) = resp.chunk().await {
        buf.extend_from_slice(&chunk);
        if buf.len() > MAX_ERROR_BODY {
            break;
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Non-stream answers above this are refused (`malformed`) rather than buffered without bound.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// Reads a 2xx body as JSON into `T`; anything else is `malformed`.
pub(crate) async fn read_json<T: DeserializeOwned>(resp: Response) -> Result<T, ProviderError> {
    parse_json(&read_body(resp).await?)
}

/// Reads a 2xx body whole, refusing more than 32 MiB (`malformed`).
pub(crate) async fn read_body(mut resp: Response) -> Result<Vec<u8>, ProviderError> {
    let mut buf = Vec::with_capacity(resp.content_length().unwrap_or(0).min(64 * 1024) as usize);
    while let Some(chunk) = resp.chunk().await.map_err(|e| ProviderError::from_reqwest(&e))? {
        if buf.len() + chunk.len() > MAX_BODY {
            return Err(ProviderError::new(
                ErrorClass::Malformed,
                "upstream body exceeds 32 MiB",
            ));
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(buf)
}

/// Parses JSON into `T`; failure is `malformed`.
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ProviderError> {
    // The hot path parses without path tracking; only a failure is parsed again to say where it broke.
    serde_json::from_slice(bytes).or_else(|_| {
        let de = &mut serde_json::Deserializer::from_slice(bytes);
        serde_path_to_error::deserialize(de).map_err(|e| {
            ProviderError::new(
                ErrorClass::Malformed,
                format!("unparseable upstream body at {}: {}", e.path(), e.inner()),
            )
        })
    })
}

/// The message of an error body that is not JSON (HTML from an edge proxy, plain text).
pub(crate) fn opaque_body_message(body: &str) -> String {
    let trimmed = body.trim();
    if trimmed.is_empty() {
        "empty error body".to_string()
    } else if trimmed.starts_with('<') {
        "non-JSON (HTML) error body".to_string()
    } else {
        trimmed.chars().take(200).collect()
    }
}

/// Joins a base URL and a path.
pub(crate) fn url(base: &str, path: &str) -> String {
    format!("{}/{}", base.trim_end_matches('/'), path.trim_start_matches('/'))
}

/// An adapter's base URL with its endpoints' URLs parsed once. Given a string, reqwest parses it again on every
/// request (host, IDNA, path: about 5% of a proxied request's instructions under callgrind).
#[derive(Debug, Clone)]
pub(crate) struct Base {
    root: String,
    parsed: std::sync::Arc<[(&'static str, reqwest::Url)]>,
}

impl Base {
    /// `root` (e.g. `https://api.openai.com/v1`) and the paths the adapter posts to.
    pub(crate) fn new(root: &str, paths: &[&'static str]) -> Base {
        let parsed = paths
            .iter()
            .filter_map(|p| reqwest::Url::parse(&url(root, p)).ok().map(|u| (*p, u)))
            .collect();
        Base {
            root: root.to_string(),
            parsed,
        }
    }

    /// A POST to `path` under the base (a URL that does not parse fails when sent, as a connect error).
    pub(crate) fn post(&self, client: &reqwest::Client, path: &str) -> RequestBuilder {
        match self.parsed.iter().find(|(p, _)| *p == path) {
            Some((_, u)) => client.post(u.clone()),
            None => client.post(url(&self.root, path)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;

    fn provider_with_ca(path: &str) -> ProviderConfig {
        let text = format!(
            r#"
models: {{ default: {{ g: GigaChat }} }}
providers:
  g:
    kind: gigachat
    base_url: https://gigachat.example/api/v1
    auth: {{ url: "https://ngw.example:9443/api/v2/oauth" }}
    ca_bundle: {path}
fallback_policy: {{ order: [g] }}
"#
        );
        let cfg = Config::from_yaml(&text, &|_| None).unwrap_or_else(|e| panic!("{e}"));
        cfg.providers["g"].clone()
    }

    #[test]
    fn ca_bundle_adds_roots_and_rejects_files_without_certificates() {
        let system = "/etc/ssl/certs/ca-certificates.crt";
        if std::path::Path::new(system).is_file() {
            assert!(build_client(&provider_with_ca(system)).is_ok());
        }
        let dir = tempfile::tempdir().unwrap();
        let junk = dir.path().join("junk.pem");
        std::fs::write(&junk, "not a certificate\n").unwrap();
        let err = build_client(&provider_with_ca(junk.to_str().unwrap())).unwrap_err();
        assert!(err.to_string().contains("ca_bundle"), "{err}");
    }
}
