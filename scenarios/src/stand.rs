//! The stand a scenario runs on: one fake per provider of the gateway config, a chaos proxy in front of each (the
//! embedded server, or a Toxiproxy at a URL), and the gateway (in process, or deployed at a URL). With
//! `gateway.replicas: N` (N > 1) N gateways run in process on one real `redis-server` the stand starts (state
//! backend `redis`), reached through a chaos proxy named [`REDIS_PROXY`], and the load is spread over them.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use llm_chaos::{Client, NewProxy, Server, ServerConfig, ServerHandle};
use llm_gateway::config::{
    Config, OnError, ProviderKind, RedisStateConfig, Secret, StateBackendKind, StateConfig,
};
use llm_gateway::AppState;
use llm_mocks::testing::RedisServer;
use llm_mocks::{FakeServer, Provider};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The chaos proxy in front of the replicas' Redis (a fault target: `proxy: redis`).
pub const REDIS_PROXY: &str = "redis";

/// Where the stand's pieces listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Port 0 everywhere; the in-process gateway is pointed at the proxies (tests, CI, `run`).
    Ephemeral,
    /// DESIGN.md's ports: fakes on 18081-18085, chaos API on 8474, proxies where the gateway config points, the
    /// gateway on its configured listeners (`rehearse`, or a deployed gateway).
    Fixed,
}

/// How to bring a stand up.
#[derive(Debug, Clone)]
pub struct StandOptions {
    /// Port layout.
    pub layout: Layout,
    /// A Toxiproxy to use instead of the embedded server.
    pub chaos_url: Option<String>,
    /// A deployed gateway to test instead of one in process.
    pub gateway_url: Option<String>,
    /// Its metrics URL (default: `<gateway_url>/metrics`).
    pub gateway_metrics_url: Option<String>,
}

impl Default for StandOptions {
    fn default() -> Self {
        StandOptions {
            layout: Layout::Ephemeral,
            chaos_url: None,
            gateway_url: None,
            gateway_metrics_url: None,
        }
    }
}

/// Why a stand could not come up.
#[derive(Debug, thiserror::Error)]
pub enum StandError {
    /// A fake could not start.
    #[error("fake: {0}")]
    Fake(#[from] llm_mocks::StartError),
    /// The chaos API failed.
    #[error("chaos: {0}")]
    Chaos(#[from] llm_chaos::ClientError),
    /// A socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// Address.
        addr: String,
        /// OS error.
        source: std::io::Error,
    },
    /// The gateway could not be built or did not become ready.
    #[error("gateway: {0}")]
    Gateway(String),
}

struct InProcess {
    stop: oneshot::Sender<()>,
    task: JoinHandle<std::io::Result<()>>,
}

/// A running stand.
pub struct Stand {
    /// Fakes by provider name.
    pub fakes: BTreeMap<String, FakeServer>,
    /// Chaos API client.
    pub chaos: Client,
    /// Proxy listen addresses by provider name (the proxy has the provider's name).
    pub proxies: BTreeMap<String, String>,
    /// Gateway API base URL (the first replica's).
    pub gateway_url: String,
    /// Every replica's API base URL (one without replicas).
    pub gateway_urls: Vec<String>,
    /// Gateway `/metrics` URL (the first replica's).
    pub metrics_url: String,
    /// Every replica's `/metrics` URL: a scrape is their texts one after the other, so sums add up over replicas.
    metrics_urls: Vec<String>,
    /// The gateway's configured mode (what `restore_mode` goes back to).
    pub config_mode: String,
    /// HTTP client for the gateway and its admin routes.
    pub http: reqwest::Client,
    /// Bearer token for `/admin/*` (`server.admin_token` of the config), if any.
    admin_token: Option<String>,
    chaos_server: Option<ServerHandle>,
    gateways: Vec<InProcess>,
    /// The replicas' Redis (killed when the stand is dropped).
    redis: Option<RedisServer>,
}

impl std::fmt::Debug for Stand {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stand")
            .field("gateway_url", &self.gateway_url)
            .field("proxies", &self.proxies)
            .finish()
    }
}

fn fake_kind(kind: ProviderKind) -> Provider {
    match kind {
        ProviderKind::OpenAi => Provider::OpenAi,
        ProviderKind::Kimi => Provider::Kimi,
        ProviderKind::Qwen => Provider::Qwen,
        ProviderKind::GigaChat => Provider::GigaChat,
        ProviderKind::Ollama => Provider::Ollama,
    }
}

/// `host:port` of a URL (default port by scheme).
/// Where a proxy of an ephemeral stand listens: a port outside the kernel's ephemeral range, so a proxy a
/// fault disables can be enabled again on its port (see [`llm_chaos::harness::stable_loopback_listen`]).
fn proxy_listen() -> String {
    llm_chaos::harness::stable_loopback_listen().unwrap_or_else(|| "127.0.0.1:0".to_string())
}

fn authority(url: &str) -> Option<String> {
    let u = reqwest::Url::parse(url).ok()?;
    Some(format!("{}:{}", u.host_str()?, u.port_or_known_default()?))
}

/// The same URL with its host and port replaced by `addr`.
fn redirect(url: &str, addr: &str) -> String {
    let Ok(mut u) = reqwest::Url::parse(url) else {
        return url.to_string();
    };
    let (host, port) = addr.rsplit_once(':').unwrap_or((addr, "80"));
    let _ = u.set_scheme("http");
    let _ = u.set_host(Some(host));
    let _ = u.set_port(port.parse().ok());
    u.as_str().trim_end_matches('/').to_string()
}

async fn bind(addr: &str) -> Result<TcpListener, StandError> {
    TcpListener::bind(addr).await.map_err(|source| StandError::Bind {
        addr: addr.to_string(),
        source,
    })
}

impl Stand {
    /// Brings the stand up for `config` and waits until the gateway answers `/healthz`.
    pub async fn start(config: &Config, seed: u64, opts: &StandOptions) -> Result<Stand, StandError> {
        Stand::start_replicas(config, seed, opts, 1).await
    }

    /// [`Stand::start`] with `replicas` gateways in process sharing one Redis (more than one needs the ephemeral
    /// layout and no deployed gateway).
    pub async fn start_replicas(
        config: &Config,
        seed: u64,
        opts: &StandOptions,
        replicas: u32,
    ) -> Result<Stand, StandError> {
        let fixed = opts.layout == Layout::Fixed;
        let redis = if replicas > 1 {
            if fixed || opts.gateway_url.is_some() {
                return Err(StandError::Gateway(
                    "gateway.replicas above 1 needs the in-process stand (no --gateway-url, not rehearse)"
                        .into(),
                ));
            }
            match RedisServer::start().await {
                Ok(Some(r)) => Some(r),
                Ok(None) => {
                    return Err(StandError::Gateway(
                        "gateway.replicas needs redis-server: install Debian's redis-server (scripts/test.sh does)"
                            .into(),
                    ))
                }
                Err(e) => return Err(StandError::Gateway(e.to_string())),
            }
        } else {
            None
        };
        let mut fakes = BTreeMap::new();
        for (name, p) in &config.providers {
            let kind = fake_kind(p.kind);
            let fake = if fixed && !fakes.values().any(|f: &FakeServer| f.provider() == kind) {
                FakeServer::bind(kind, &format!("127.0.0.1:{}", kind.default_port())).await?
            } else {
                FakeServer::start(kind).await?
            };
            fakes.insert(name.clone(), fake);
        }
        let (chaos, chaos_server) = match &opts.chaos_url {
            Some(url) => (Client::new(url.clone())?, None),
            None => {
                let addr = if fixed { "127.0.0.1:8474" } else { "127.0.0.1:0" };
                let listener = bind(addr).await?;
                let handle = Server::start(
                    listener,
                    ServerConfig {
                        seed: Some(seed),
                        ..ServerConfig::default()
                    },
                )
                .map_err(|source| StandError::Bind {
                    addr: addr.to_string(),
                    source,
                })?;
                (handle.client()?, Some(handle))
            }
        };
        // One proxy per provider, named after it. Fixed layout: where the config points, unless that is the fake.
        let mut wanted = Vec::new();
        for (name, p) in &config.providers {
            let fake_addr = fakes.get(name).map(|f| f.addr().to_string()).unwrap_or_default();
            let listen = if fixed {
                authority(&p.base_url).unwrap_or_default()
            } else {
                proxy_listen()
            };
            if fixed && listen == fake_addr {
                continue;
            }
            wanted.push(NewProxy::new(name.clone(), listen, fake_addr));
        }
        if let Some(r) = &redis {
            wanted.push(NewProxy::new(REDIS_PROXY, proxy_listen(), r.addr()));
        }
        let created = chaos.populate(&wanted).await?;
        let proxies: BTreeMap<String, String> = created.into_iter().map(|p| (p.name, p.listen)).collect();
        let config_mode = config.mode.as_str().to_string();
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(256)
            .build()
            .map_err(|e| StandError::Gateway(format!("cannot build the HTTP client: {e}")))?;
        let mut stand = Stand {
            fakes,
            chaos,
            proxies,
            gateway_url: String::new(),
            gateway_urls: Vec::new(),
            metrics_url: String::new(),
            metrics_urls: Vec::new(),
            config_mode,
            http,
            admin_token: config.server.admin_token.as_ref().map(|t| t.expose().to_string()),
            chaos_server,
            gateways: Vec::new(),
            redis,
        };
        if let Some(url) = &opts.gateway_url {
            stand.gateway_url = url.trim_end_matches('/').to_string();
            stand.metrics_url = opts
                .gateway_metrics_url
                .clone()
                .unwrap_or_else(|| format!("{}/metrics", stand.gateway_url));
            stand.gateway_urls = vec![stand.gateway_url.clone()];
            stand.metrics_urls = vec![stand.metrics_url.clone()];
        } else {
            let mut cfg = config.clone();
            if let Some(proxy) = stand.proxies.get(REDIS_PROXY).filter(|_| stand.redis.is_some()) {
                cfg.state = shared_state(&cfg.state, proxy);
            }
            for _ in 0..replicas.max(1) {
                stand.start_gateway(cfg.clone(), fixed).await?;
            }
        }
        stand.wait_ready().await?;
        Ok(stand)
    }

    async fn start_gateway(&mut self, mut cfg: Config, fixed: bool) -> Result<(), StandError> {
        if !fixed {
            for (name, p) in cfg.providers.iter_mut() {
                if let Some(addr) = self.proxies.get(name) {
                    p.base_url = redirect(&p.base_url, addr);
                    if let Some(auth) = p.gigachat_auth.as_mut() {
                        auth.url = redirect(&auth.url, addr);
                    }
                }
            }
            cfg.server.shutdown_grace = Duration::from_millis(500);
        }
        let listen = if fixed {
            cfg.server.listen.to_string()
        } else {
            "127.0.0.1:0".to_string()
        };
        let listener = bind(&listen).await?;
        let addr = listener
            .local_addr()
            .map_err(|source| StandError::Bind { addr: listen, source })?;
        let metrics_listener = match (fixed, cfg.server.metrics_listen) {
            (true, Some(m)) => Some(bind(&m.to_string()).await?),
            _ => None,
        };
        let gateway_url = format!("http://{addr}");
        let metrics_url = match cfg.server.metrics_listen {
            Some(m) if fixed => format!("http://{m}/metrics"),
            _ => format!("{gateway_url}/metrics"),
        };
        if self.gateway_urls.is_empty() {
            self.gateway_url.clone_from(&gateway_url);
            self.metrics_url.clone_from(&metrics_url);
        }
        self.gateway_urls.push(gateway_url);
        self.metrics_urls.push(metrics_url);
        let state: Arc<AppState> = AppState::new(cfg).map_err(|e| StandError::Gateway(e.to_string()))?;
        let (stop, rx) = oneshot::channel::<()>();
        let task = tokio::spawn(llm_gateway::server::run(
            listener,
            metrics_listener,
            state,
            async move {
                let _ = rx.await;
            },
        ));
        self.gateways.push(InProcess { stop, task });
        Ok(())
    }

    /// Polls every replica's `/healthz` (explicit readiness, no sleeps on the happy path).
    async fn wait_ready(&self) -> Result<(), StandError> {
        for g in &self.gateway_urls {
            self.wait_one_ready(g).await?;
        }
        Ok(())
    }

    async fn wait_one_ready(&self, gateway_url: &str) -> Result<(), StandError> {
        let url = format!("{gateway_url}/healthz");
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            match self.http.get(&url).timeout(Duration::from_secs(2)).send().await {
                Ok(r) if r.status().is_success() => return Ok(()),
                Ok(r) if tokio::time::Instant::now() >= deadline => {
                    return Err(StandError::Gateway(format!("{url} answered {}", r.status())))
                }
                Err(e) if tokio::time::Instant::now() >= deadline => {
                    return Err(StandError::Gateway(format!("{url} did not answer: {e}")))
                }
                _ => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }

    /// `POST /admin/mode` on the first replica. With replicas the switch reaches the others through Redis: this
    /// waits (bounded) until every replica says it runs in `mode`.
    pub async fn set_mode(&self, mode: &str) -> Result<(), String> {
        let url = format!("{}/admin/mode", self.gateway_url);
        let mut req = self.http.post(&url).json(&serde_json::json!({ "mode": mode }));
        if let Some(t) = &self.admin_token {
            req = req.bearer_auth(t);
        }
        let r = req.send().await.map_err(|e| format!("{url}: {e}"))?;
        if !r.status().is_success() {
            return Err(format!("{url} answered {}", r.status()));
        }
        let deadline = tokio::time::Instant::now() + MODE_REACHES_ALL;
        for g in self.gateway_urls.iter().skip(1) {
            loop {
                if self.mode_of(g).await.as_deref() == Some(mode) {
                    break;
                }
                if tokio::time::Instant::now() >= deadline {
                    return Err(format!(
                        "{g} is not in mode {mode} {MODE_REACHES_ALL:?} after the switch"
                    ));
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        }
        Ok(())
    }

    async fn mode_of(&self, gateway_url: &str) -> Option<String> {
        let mut req = self.http.get(format!("{gateway_url}/admin/mode"));
        if let Some(t) = &self.admin_token {
            req = req.bearer_auth(t);
        }
        let v: serde_json::Value = req.send().await.ok()?.json().await.ok()?;
        v["mode"].as_str().map(str::to_string)
    }

    /// The gateway's metrics text (every replica's, one after the other).
    pub async fn scrape(&self) -> Result<String, String> {
        let mut out = String::new();
        for url in &self.metrics_urls {
            let r = self
                .http
                .get(url)
                .send()
                .await
                .map_err(|e| format!("{url}: {e}"))?;
            if !r.status().is_success() {
                return Err(format!("{url} answered {}", r.status()));
            }
            out.push_str(&r.text().await.map_err(|e| format!("{url}: {e}"))?);
            out.push('\n');
        }
        Ok(out)
    }

    /// The chaos API URL.
    pub fn chaos_url(&self) -> &str {
        self.chaos.url()
    }

    /// Stops the gateway (if in process), the proxies (if embedded) and the fakes.
    pub async fn shutdown(mut self) {
        for g in std::mem::take(&mut self.gateways) {
            let _ = g.stop.send(());
            let mut task = g.task;
            if tokio::time::timeout(Duration::from_secs(2), &mut task)
                .await
                .is_err()
            {
                task.abort();
            }
        }
        if let Some(s) = self.chaos_server.take() {
            s.shutdown().await;
        } else {
            for name in self.proxies.keys() {
                let _ = self.chaos.delete_proxy(name).await;
            }
        }
    }
}

/// A switch on one replica reaches the others within a second (the gateways read the shared mode every 200 ms).
const MODE_REACHES_ALL: Duration = Duration::from_secs(1);

/// `state:` for replicas: Redis through its chaos proxy at `proxy`, keeping `timeout` and `on_error` when the
/// scenario's config sets them.
fn shared_state(configured: &StateConfig, proxy: &str) -> StateConfig {
    let (timeout, on_error) = configured
        .redis
        .as_ref()
        .map_or((Duration::from_millis(100), OnError::Local), |r| {
            (r.timeout, r.on_error)
        });
    StateConfig {
        backend: StateBackendKind::Redis,
        redis: Some(RedisStateConfig {
            url: Secret::new(format!("redis://{proxy}")),
            key_prefix: "llm-scenarios:".into(),
            timeout,
            on_error,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        assert_eq!(
            redirect("http://127.0.0.1:28083/compatible-mode/v1", "127.0.0.1:4000"),
            "http://127.0.0.1:4000/compatible-mode/v1"
        );
        assert_eq!(
            redirect("https://api.openai.com/v1/", "127.0.0.1:1"),
            "http://127.0.0.1:1/v1"
        );
        assert_eq!(
            authority("https://api.openai.com/v1").as_deref(),
            Some("api.openai.com:443")
        );
    }
}
