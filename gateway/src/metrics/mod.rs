//! Every metric of DESIGN.md, defined in one place. Labels come from closed enums (provider labels are config
//! names, bounded and validated as `[a-z0-9_-]{1,40}`).

mod labels;

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::config::Mode;
pub use labels::*;

type HistFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
    ])
}

fn overhead_histogram() -> Histogram {
    Histogram::new([
        0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
    ])
}

/// Breaker state gauge values.
pub const BREAKER_CLOSED: i64 = 0;
/// Open.
pub const BREAKER_OPEN: i64 = 1;
/// Half-open.
pub const BREAKER_HALF_OPEN: i64 = 2;

/// All instruments plus the registry that encodes them.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// `llm_gateway_requests_total{route,status,source}`.
    pub requests: Family<RequestLabels, Counter>,
    /// `llm_gateway_fallbacks_total{from,to,reason}`.
    pub fallbacks: Family<FallbackLabels, Counter>,
    /// `llm_gateway_offline_hits_total{source}`.
    pub offline_hits: Family<SourceLabels, Counter>,
    /// `llm_gateway_offline_misses_total`.
    pub offline_misses: Counter,
    /// `llm_gateway_cache_shared_hits_total`: answers (fresh or stale) the local cache lacked and the shared
    /// Redis tier had.
    pub cache_shared_hits: Counter,
    /// `llm_gateway_cooldowns_total{provider,reason}`: cooldowns started (or extended) by error class.
    pub cooldowns: Family<CooldownLabels, Counter>,
    /// `llm_gateway_provider_requests_total{provider,outcome}`.
    pub provider_requests: Family<ProviderOutcomeLabels, Counter>,
    /// `llm_gateway_request_duration_seconds{route}`.
    pub request_duration: HistFamily<RouteLabels>,
    /// `llm_gateway_provider_duration_seconds{provider}`.
    pub provider_duration: HistFamily<ProviderLabels>,
    /// `llm_gateway_time_to_first_token_seconds{provider}`.
    pub ttft: HistFamily<ProviderLabels>,
    /// `llm_gateway_overhead_seconds`: total minus time waiting on upstream.
    pub overhead: Histogram,
    /// `llm_gateway_breaker_state{provider}`: 0 closed, 1 open, 2 half-open.
    pub breaker_state: Family<ProviderLabels, Gauge>,
    /// `llm_gateway_cache_requests_total{result}`.
    pub cache_requests: Family<CacheLabels, Counter>,
    /// `llm_gateway_rate_limited_total{scope}`.
    pub rate_limited: Family<ScopeLabels, Counter>,
    /// `llm_gateway_tokens_total{provider,kind}`.
    pub tokens: Family<TokenLabels, Counter>,
    /// `llm_gateway_mode{mode}`: 1 for the current mode.
    pub mode: Family<ModeLabels, Gauge>,
    /// `llm_gateway_provider_budget_used{provider,budget}`: used in the current window.
    pub budget_used: Family<BudgetLabels, Gauge>,
    /// `llm_gateway_provider_budget_limit{provider,budget}`: the configured limit.
    pub budget_limit: Family<BudgetLabels, Gauge>,
    /// `llm_gateway_provider_secret_present{provider}`: 1 when a provider of the fallback order that needs a secret
    /// has one, 0 when it has none (config drift); providers without secrets (Ollama) have no series.
    pub secret_present: Family<ProviderLabels, Gauge>,
    /// `llm_gateway_provider_reachable{provider}`: 1 when the last connectivity probe succeeded (remote providers
    /// only, with `connectivity:` configured).
    pub reachable: Family<ProviderLabels, Gauge>,
    /// `llm_gateway_connections_shed_total`: connections closed at accept because a listener was full
    /// (`server.max_connections` plus the health reserve).
    pub connections_shed: Counter,
    /// `llm_gateway_mcp_tool_calls_total{tool,outcome}`: MCP tool calls (stdio and `/mcp`).
    pub mcp_tool_calls: Family<McpLabels, Counter>,
    /// `llm_gateway_trace_spans_dropped_total`: finished spans not exported (export queue full, export failed or
    /// after shutdown); always 0 with traces off.
    pub spans_dropped: Counter,
    /// `llm_gateway_dropped_tools_total{route,tool}`: hosted tools left out of upstream calls.
    pub dropped_tools: Family<DroppedToolLabels, Counter>,
    /// `llm_gateway_state_backend_errors_total{op}`: calls to the shared state backend (Redis) that failed or
    /// timed out; each fell back to local state.
    pub state_errors: Family<StateOpLabels, Counter>,
    /// `llm_gateway_state_backend_degraded`: 1 while the shared state backend fails and state is local.
    pub state_degraded: Gauge,
    /// Each configured provider's pre-created series (breaker, outcomes, tokens) and its duration histogram, so
    /// that a request neither allocates a label nor hashes one to find them.
    per_provider: Vec<ProviderSeries>,
}

/// The series of one configured provider: the same instruments as the families hold (a clone shares the value).
#[derive(Debug)]
struct ProviderSeries {
    name: String,
    breaker: Gauge,
    /// In the order of [`Outcome::ALL`].
    outcomes: Vec<Counter>,
    /// In the order of [`TokenKind::ALL`].
    tokens: Vec<Counter>,
    duration: Histogram,
}

impl Metrics {
    /// Registers every instrument; pre-creates the series that should read 0 before anything happens.
    pub fn new<'a>(providers: impl IntoIterator<Item = &'a str>, mode: Mode) -> Metrics {
        let mut r = Registry::with_prefix("llm_gateway");
        let mut m = Metrics {
            requests: Family::default(),
            fallbacks: Family::default(),
            offline_hits: Family::default(),
            offline_misses: Counter::default(),
            cache_shared_hits: Counter::default(),
            cooldowns: Family::default(),
            provider_requests: Family::default(),
            request_duration: Family::new_with_constructor(latency_histogram),
            provider_duration: Family::new_with_constructor(latency_histogram),
            ttft: Family::new_with_constructor(latency_histogram),
            overhead: overhead_histogram(),
            breaker_state: Family::default(),
            cache_requests: Family::default(),
            rate_limited: Family::default(),
            tokens: Family::default(),
            mode: Family::default(),
            budget_used: Family::default(),
            budget_limit: Family::default(),
            reachable: Family::default(),
            mcp_tool_calls: Family::default(),
            secret_present: Family::default(),
            connections_shed: Counter::default(),
            spans_dropped: Counter::default(),
            dropped_tools: Family::default(),
            state_errors: Family::default(),
            state_degraded: Gauge::default(),
            registry: Registry::default(),
            per_provider: Vec::new(),
        };
        r.register(
            "requests",
            "API requests by route, status and source",
            m.requests.clone(),
        );
        r.register(
            "fallbacks",
            "Fallbacks from one provider to the next, by error class",
            m.fallbacks.clone(),
        );
        r.register(
            "offline_hits",
            "Requests answered without a remote provider",
            m.offline_hits.clone(),
        );
        r.register(
            "offline_misses",
            "Offline lookups that found no answer",
            m.offline_misses.clone(),
        );
        r.register(
            "cooldowns",
            "Cooldowns started or extended, by provider and the error class that caused them",
            m.cooldowns.clone(),
        );
        r.register(
            "provider_requests",
            "Provider attempts and skips by outcome",
            m.provider_requests.clone(),
        );
        r.register(
            "request_duration_seconds",
            "End-to-end request latency",
            m.request_duration.clone(),
        );
        r.register(
            "provider_duration_seconds",
            "Upstream attempt latency",
            m.provider_duration.clone(),
        );
        r.register(
            "time_to_first_token_seconds",
            "Stream time to first chunk",
            m.ttft.clone(),
        );
        r.register(
            "overhead_seconds",
            "Gateway time not spent waiting on upstream",
            m.overhead.clone(),
        );
        r.register(
            "breaker_state",
            "Breaker state: 0 closed, 1 open, 2 half-open",
            m.breaker_state.clone(),
        );
        r.register(
            "cache_requests",
            "Cache lookups by result",
            m.cache_requests.clone(),
        );
        r.register(
            "cache_shared_hits",
            "Cached answers the local cache lacked and the shared Redis tier had",
            m.cache_shared_hits.clone(),
        );
        r.register(
            "rate_limited",
            "Rate-limit events by scope",
            m.rate_limited.clone(),
        );
        r.register("tokens", "Tokens by provider and kind", m.tokens.clone());
        r.register(
            "mode",
            "Current mode (1) among auto, remote, offline",
            m.mode.clone(),
        );
        r.register(
            "provider_budget_used",
            "Provider budget used in the current window",
            m.budget_used.clone(),
        );
        r.register(
            "provider_budget_limit",
            "Provider budget limit per window",
            m.budget_limit.clone(),
        );
        r.register(
            "provider_secret_present",
            "Secret present (1) or missing (0) for each provider of the fallback order that needs one",
            m.secret_present.clone(),
        );
        r.register(
            "provider_reachable",
            "Last connectivity probe: 1 reachable, 0 not",
            m.reachable.clone(),
        );
        r.register(
            "connections_shed",
            "Connections closed at accept because the listener was at server.max_connections",
            m.connections_shed.clone(),
        );
        r.register(
            "mcp_tool_calls",
            "MCP tool calls by tool and outcome",
            m.mcp_tool_calls.clone(),
        );
        r.register(
            "trace_spans_dropped",
            "Finished trace spans not exported: the export queue was full, the export failed, or after shutdown",
            m.spans_dropped.clone(),
        );
        r.register(
            "dropped_tools",
            "Hosted tools (web_search, ...) left out of upstream calls, by route and tool",
            m.dropped_tools.clone(),
        );
        r.register(
            "state_backend_errors",
            "Calls to the shared state backend (Redis) that failed or timed out, by operation",
            m.state_errors.clone(),
        );
        r.register(
            "state_backend_degraded",
            "1 while the shared state backend fails and this replica uses its local state",
            m.state_degraded.clone(),
        );
        for &op in StateOp::ALL {
            let _ = m.state_errors.get_or_create(&StateOpLabels { op });
        }
        for tool in HostedTool::ALL {
            m.dropped_tools
                .get_or_create(&DroppedToolLabels {
                    route: Route::Responses,
                    tool: *tool,
                })
                .inc_by(0);
        }
        let providers: Vec<&str> = providers.into_iter().collect();
        for &p in &providers {
            m.breaker_state
                .get_or_create(&ProviderLabels {
                    provider: p.to_string(),
                })
                .set(BREAKER_CLOSED);
            // Every outcome per provider reads 0 from the start: an `increase()` alert (quota, auth) then sees
            // the very first event as a step from 0 to 1, not as a new series that starts at 1.
            for &outcome in Outcome::ALL {
                let _ = m.provider_requests.get_or_create(&ProviderOutcomeLabels {
                    provider: p.to_string(),
                    outcome,
                });
            }
            for &kind in TokenKind::ALL {
                let _ = m.tokens.get_or_create(&TokenLabels {
                    provider: p.to_string(),
                    kind,
                });
            }
            for reason in [Outcome::RateLimited, Outcome::QuotaExhausted, Outcome::Auth] {
                let _ = m.cooldowns.get_or_create(&CooldownLabels {
                    provider: p.to_string(),
                    reason,
                });
            }
        }
        m.per_provider = providers
            .iter()
            .map(|&p| {
                let provider = || p.to_string();
                ProviderSeries {
                    name: p.to_string(),
                    breaker: m
                        .breaker_state
                        .get_or_create(&ProviderLabels { provider: provider() })
                        .clone(),
                    outcomes: Outcome::ALL
                        .iter()
                        .map(|&outcome| {
                            m.provider_requests
                                .get_or_create(&ProviderOutcomeLabels {
                                    provider: provider(),
                                    outcome,
                                })
                                .clone()
                        })
                        .collect(),
                    tokens: TokenKind::ALL
                        .iter()
                        .map(|&kind| {
                            m.tokens
                                .get_or_create(&TokenLabels {
                                    provider: provider(),
                                    kind,
                                })
                                .clone()
                        })
                        .collect(),
                    duration: m
                        .provider_duration
                        .get_or_create(&ProviderLabels { provider: provider() })
                        .clone(),
                }
            })
            .collect();
        for source in [OfflineSource::Local, OfflineSource::Package] {
            let _ = m.offline_hits.get_or_create(&SourceLabels { source });
        }
        // Closed label sets read 0 from the start, so dashboards and `increase()` alerts see them at once.
        for result in [
            CacheResult::Hit,
            CacheResult::Miss,
            CacheResult::Stale,
            CacheResult::Bypass,
        ] {
            let _ = m.cache_requests.get_or_create(&CacheLabels { result });
        }
        for scope in [Scope::Client, Scope::Provider] {
            let _ = m.rate_limited.get_or_create(&ScopeLabels { scope });
        }
        for &tool in McpTool::ALL {
            let _ = m.mcp_tool_calls.get_or_create(&McpLabels {
                tool,
                outcome: McpOutcome::Ok,
            });
        }
        m.set_mode(mode);
        Metrics { registry: r, ..m }
    }

    /// Counts a failed call to the shared state backend.
    pub fn state_error(&self, op: StateOp) {
        self.state_errors.get_or_create(&StateOpLabels { op }).inc();
    }

    /// Sets the mode gauge.
    pub fn set_mode(&self, mode: Mode) {
        for mm in [Mode::Auto, Mode::Remote, Mode::Offline] {
            self.mode
                .get_or_create(&ModeLabels { mode: mm.into() })
                .set(i64::from(mm == mode));
        }
    }

    /// Sets a provider budget's used gauge.
    pub fn budget_used(&self, provider: &str, budget: BudgetKind, used: u64) {
        set_budget(&self.budget_used, provider, budget, used);
    }

    /// Sets a provider budget's limit gauge.
    pub fn budget_limit(&self, provider: &str, budget: BudgetKind, limit: u64) {
        set_budget(&self.budget_limit, provider, budget, limit);
    }

    /// Counts one cache lookup.
    pub fn cache(&self, result: CacheResult) {
        self.cache_requests.get_or_create(&CacheLabels { result }).inc();
    }

    /// Counts one offline hit.
    pub fn offline_hit(&self, source: OfflineSource) {
        self.offline_hits.get_or_create(&SourceLabels { source }).inc();
    }

    fn series(&self, provider: &str) -> Option<&ProviderSeries> {
        self.per_provider.iter().find(|s| s.name == provider)
    }

    /// Counts an answer's tokens by provider and kind.
    pub fn count_tokens(&self, provider: &str, usage: &crate::canonical::Usage) {
        let series = self.series(provider);
        for (i, kind) in TokenKind::ALL.iter().enumerate() {
            let n = match kind {
                TokenKind::Prompt => usage.prompt_tokens,
                TokenKind::Completion => usage.completion_tokens,
            };
            if n == 0 {
                continue;
            }
            match series.and_then(|s| s.tokens.get(i)) {
                Some(c) => {
                    c.inc_by(n);
                }
                None => {
                    self.tokens
                        .get_or_create(&TokenLabels {
                            provider: provider.to_string(),
                            kind: *kind,
                        })
                        .inc_by(n);
                }
            }
        }
    }

    /// Sets `provider`'s breaker state (`BREAKER_CLOSED`, `BREAKER_OPEN`, `BREAKER_HALF_OPEN`).
    pub fn set_breaker(&self, provider: &str, v: i64) {
        match self.series(provider) {
            Some(s) => {
                s.breaker.set(v);
            }
            None => {
                self.breaker_state
                    .get_or_create(&ProviderLabels {
                        provider: provider.to_string(),
                    })
                    .set(v);
            }
        }
    }

    /// Observes one attempt's duration at `provider`.
    pub fn provider_duration(&self, provider: &str, seconds: f64) {
        match self.series(provider) {
            Some(s) => s.duration.observe(seconds),
            None => self
                .provider_duration
                .get_or_create(&ProviderLabels {
                    provider: provider.to_string(),
                })
                .observe(seconds),
        }
    }

    /// Sets whether `provider`'s secret is present.
    pub fn secret_present(&self, provider: &str, present: bool) {
        self.secret_present
            .get_or_create(&ProviderLabels {
                provider: provider.to_string(),
            })
            .set(i64::from(present));
    }

    /// Counts one cooldown started (or extended) for `provider`.
    pub fn cooldown(&self, provider: &str, reason: Outcome) {
        self.cooldowns
            .get_or_create(&CooldownLabels {
                provider: provider.to_string(),
                reason,
            })
            .inc();
    }

    /// Counts one provider attempt outcome.
    pub fn provider_outcome(&self, provider: &str, outcome: Outcome) {
        let pos = Outcome::ALL.iter().position(|o| *o == outcome);
        if let Some(c) = self
            .series(provider)
            .zip(pos)
            .and_then(|(s, i)| s.outcomes.get(i))
        {
            c.inc();
            return;
        }
        self.provider_requests
            .get_or_create(&ProviderOutcomeLabels {
                provider: provider.to_string(),
                outcome,
            })
            .inc();
    }

    /// Text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if prometheus_client::encoding::text::encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

fn set_budget(gauges: &Family<BudgetLabels, Gauge>, provider: &str, budget: BudgetKind, value: u64) {
    gauges
        .get_or_create(&BudgetLabels {
            provider: provider.to_string(),
            budget,
        })
        .set(value.min(i64::MAX as u64) as i64);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::Usage;

    /// A configured provider's series are found without a label (the pre-created ones); a name outside the
    /// config still gets its own series through the families. Both land in the exposition.
    #[test]
    fn the_series_of_configured_and_unknown_providers_both_count() {
        let m = Metrics::new(["a"], Mode::Auto);
        for p in ["a", "zz"] {
            m.count_tokens(p, &Usage::new(3, 4));
            m.provider_outcome(p, Outcome::Timeout);
            m.set_breaker(p, BREAKER_OPEN);
            m.provider_duration(p, 0.25);
        }
        let text = m.encode();
        for p in ["a", "zz"] {
            for line in [
                format!("llm_gateway_tokens_total{{provider=\"{p}\",kind=\"prompt\"}} 3"),
                format!("llm_gateway_tokens_total{{provider=\"{p}\",kind=\"completion\"}} 4"),
                format!("llm_gateway_provider_requests_total{{provider=\"{p}\",outcome=\"timeout\"}} 1"),
                format!("llm_gateway_breaker_state{{provider=\"{p}\"}} 1"),
                format!("llm_gateway_provider_duration_seconds_count{{provider=\"{p}\"}} 1"),
            ] {
                assert!(text.contains(&line), "{line} in\n{text}");
            }
        }
    }
}
