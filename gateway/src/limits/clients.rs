//! Client API keys (`limits.clients`): `Authorization: Bearer <key>` (or `x-api-key`) checked in constant time
//! against every configured key; per-key requests/min (governor GCRA on tokio time) and tokens/min.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use governor::clock::Clock;
use governor::middleware::NoOpMiddleware;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};
use tokio::time::Instant;

use super::constant_time_eq;
use super::window::Window;
use crate::config::ClientKey;
use crate::metrics::StateOp;
use crate::state::{self, scripts, StateBackend};

/// governor on tokio time, so paused-time tests move it like everything else.
#[derive(Debug, Clone, Copy)]
pub(crate) struct TokioClock {
    origin: Instant,
}

impl Clock for TokioClock {
    type Instant = Duration;

    fn now(&self) -> Duration {
        self.origin.elapsed()
    }
}

type Limiter = RateLimiter<NotKeyed, InMemoryState, TokioClock, NoOpMiddleware<Duration>>;

struct Client {
    name: String,
    key: crate::config::Secret,
    rpm: u32,
    tpm: u64,
    requests: Option<Limiter>,
    tokens: Option<Mutex<Window>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Which configured client a request authenticated as (a request extension).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientId(pub usize);

/// Why a client request is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Denied {
    /// No key, or a key no client has.
    Unauthorized,
    /// Over requests/min or tokens/min.
    RateLimited {
        /// The client's name.
        client: String,
        /// `requests_per_minute` or `tokens_per_minute`.
        limit: &'static str,
        /// When to come back.
        retry_after: Duration,
    },
}

/// Every configured client.
#[derive(Debug)]
pub struct ClientLimits {
    clients: Vec<Client>,
    clock: TokioClock,
    backend: StateBackend,
}

impl ClientLimits {
    /// From config (no clients: the API is open), limits in this process.
    pub fn new(keys: &[ClientKey]) -> ClientLimits {
        ClientLimits::with_backend(keys, StateBackend::memory())
    }

    /// From config, limits on `backend` (local limits when it is memory, or while Redis fails).
    pub fn with_backend(keys: &[ClientKey], backend: StateBackend) -> ClientLimits {
        let clock = TokioClock {
            origin: Instant::now(),
        };
        let clients = keys
            .iter()
            .map(|k| Client {
                name: k.name.clone(),
                key: k.key.clone(),
                rpm: k.requests_per_minute.unwrap_or(0),
                tpm: k.tokens_per_minute.unwrap_or(0),
                requests: k
                    .requests_per_minute
                    .and_then(NonZeroU32::new)
                    .map(|n| RateLimiter::direct_with_clock(Quota::per_minute(n), clock)),
                tokens: k
                    .tokens_per_minute
                    .map(|n| Mutex::new(Window::new(n, Duration::from_secs(60)))),
            })
            .collect();
        ClientLimits {
            clients,
            clock,
            backend,
        }
    }

    /// True when keys are required.
    pub fn enabled(&self) -> bool {
        !self.clients.is_empty()
    }

    /// A client's name.
    pub fn name(&self, id: ClientId) -> &str {
        self.clients.get(id.0).map_or("", |c| c.name.as_str())
    }

    /// Finds the client whose key is `given`, comparing against every key (no early exit), then applies its
    /// limits (one request counted): on Redis when the backend is shared and answers, else locally (or, under
    /// `on_error: fail_closed`, refused while Redis fails).
    pub async fn admit(&self, given: Option<&str>) -> Result<ClientId, Denied> {
        let given = given.unwrap_or("").as_bytes();
        let mut found = None;
        for (i, c) in self.clients.iter().enumerate() {
            if constant_time_eq(given, c.key.expose().as_bytes()) && found.is_none() {
                found = Some(i);
            }
        }
        let i = found.ok_or(Denied::Unauthorized)?;
        let Some(c) = self.clients.get(i) else {
            return Err(Denied::Unauthorized);
        };
        if c.rpm == 0 && c.tpm == 0 {
            return Ok(ClientId(i));
        }
        if let Some(r) = self.backend.redis() {
            let keys = [
                r.key(&format!("client:{}:rpm", c.name)),
                r.key(&format!("client:{}:tpm", c.name)),
            ];
            let args = [i64::from(c.rpm), i64::try_from(c.tpm).unwrap_or(i64::MAX)];
            let shared: Result<(i64, i64), _> = r
                .eval(StateOp::ClientLimit, &scripts::CLIENT_ADMIT, &keys, &args)
                .await;
            match shared {
                Ok((0, _)) => return Ok(ClientId(i)),
                Ok((which, wait)) => {
                    return Err(Denied::RateLimited {
                        client: c.name.clone(),
                        limit: if which == 2 {
                            "tokens_per_minute"
                        } else {
                            "requests_per_minute"
                        },
                        retry_after: state::from_ms(wait),
                    })
                }
                Err(_) if r.fail_closed() => {
                    return Err(Denied::RateLimited {
                        client: c.name.clone(),
                        limit: if c.rpm > 0 {
                            "requests_per_minute"
                        } else {
                            "tokens_per_minute"
                        },
                        retry_after: state::RETRY_AFTER,
                    })
                }
                Err(_) => {}
            }
        }
        self.admit_local(i, c)
    }

    fn admit_local(&self, i: usize, c: &Client) -> Result<ClientId, Denied> {
        if let Some(w) = &c.tokens {
            let mut w = match w.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            if let Some(wait) = w.blocked(Instant::now()) {
                return Err(Denied::RateLimited {
                    client: c.name.clone(),
                    limit: "tokens_per_minute",
                    retry_after: wait,
                });
            }
        }
        if let Some(l) = &c.requests {
            if let Err(not_until) = l.check() {
                return Err(Denied::RateLimited {
                    client: c.name.clone(),
                    limit: "requests_per_minute",
                    retry_after: not_until.wait_time_from(self.clock.now()),
                });
            }
        }
        Ok(ClientId(i))
    }

    /// Counts the tokens of an answer against the client's tokens/min (on Redis when shared; locally when memory
    /// or while Redis fails).
    pub async fn record_tokens(&self, id: ClientId, tokens: u64) {
        let Some(c) = self.clients.get(id.0) else {
            return;
        };
        if c.tpm == 0 {
            return;
        }
        if let Some(r) = self.backend.redis() {
            let keys = [r.key(&format!("client:{}:tpm", c.name))];
            let args = [i64::try_from(tokens).unwrap_or(i64::MAX), 60_000];
            let shared: Result<Vec<i64>, _> = r
                .eval(StateOp::ClientLimit, &scripts::WINDOWS_ADD, &keys, &args)
                .await;
            if shared.is_ok() {
                return;
            }
        }
        if let Some(w) = c.tokens.as_ref() {
            let mut w = match w.lock() {
                Ok(g) => g,
                Err(p) => p.into_inner(),
            };
            w.add(Instant::now(), tokens);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::config::Secret;

    fn key(name: &str, value: &str, rpm: Option<u32>, tpm: Option<u64>) -> ClientKey {
        ClientKey {
            name: name.into(),
            key: Secret::new(value),
            requests_per_minute: rpm,
            tokens_per_minute: tpm,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn keys_requests_and_tokens_per_minute() {
        let l = ClientLimits::new(&[
            key("a", "key-aaaaaaaa", Some(2), None),
            key("b", "key-bbbbbbbb", None, Some(100)),
        ]);
        assert_eq!(l.admit(None).await, Err(Denied::Unauthorized));
        assert_eq!(l.admit(Some("key-aaaaaaa")).await, Err(Denied::Unauthorized));
        assert_eq!(l.admit(Some("key-aaaaaaaa")).await, Ok(ClientId(0)));
        assert_eq!(l.admit(Some("key-aaaaaaaa")).await, Ok(ClientId(0)));
        match l.admit(Some("key-aaaaaaaa")).await {
            Err(Denied::RateLimited {
                limit, retry_after, ..
            }) => {
                assert_eq!(limit, "requests_per_minute");
                assert_eq!(retry_after, Duration::from_secs(30));
            }
            other => panic!("{other:?}"),
        }
        tokio::time::advance(Duration::from_secs(30)).await;
        assert_eq!(l.admit(Some("key-aaaaaaaa")).await, Ok(ClientId(0)));
        let b = l.admit(Some("key-bbbbbbbb")).await.unwrap();
        l.record_tokens(b, 150).await;
        assert!(matches!(
            l.admit(Some("key-bbbbbbbb")).await,
            Err(Denied::RateLimited {
                limit: "tokens_per_minute",
                ..
            })
        ));
        tokio::time::advance(Duration::from_secs(60)).await;
        assert_eq!(l.admit(Some("key-bbbbbbbb")).await, Ok(ClientId(1)));
    }
}
