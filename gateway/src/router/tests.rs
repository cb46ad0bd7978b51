//! Router policy tests on paused time with scripted attempts (no network).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::*;
use crate::config::{Config, Mode};
use crate::metrics::{Metrics, Outcome};
use crate::providers::capabilities::Needs;

pub(crate) fn config(extra: &str) -> Config {
    let text = format!(
        r#"
models:
  default: {{ a: a-model, b: b-model, c: c-model, local: llama }}
  only-a: {{ a: big-a }}
providers:
  a: {{ kind: openai, base_url: "http://127.0.0.1:9/v1" }}
  b: {{ kind: kimi, base_url: "http://127.0.0.1:9/v1" }}
  c: {{ kind: qwen, base_url: "http://127.0.0.1:9/v1" }}
  local: {{ kind: ollama, base_url: "http://127.0.0.1:9" }}
fallback_policy:
  order: [local, a, b, c]
  deadline: 10s
  attempt_timeout: 4s
  first_token_timeout: 2s
  retries: {{ max_retries: 1, backoff_base: 100ms, backoff_max: 400ms, budget_ratio: 0.5, budget_min_per_second: 1 }}
  breaker: {{ window: 60s, min_requests: 3, failure_ratio: 0.5, open_for: 20s }}
  cooldowns: {{ rate_limited: 5s, rate_limited_max: 30s, quota_exhausted: 10m, auth: 60s }}
{extra}"#
    );
    Config::from_yaml(&text, &|_| None).unwrap_or_else(|e| panic!("{e}"))
}

pub(crate) fn router(extra: &str) -> Router {
    let cfg = config(extra);
    let metrics = Arc::new(Metrics::new(cfg.providers.keys().map(String::as_str), cfg.mode));
    Router::new(&cfg, metrics)
}

/// A scripted outcome for one call.
#[derive(Debug, Clone)]
pub(crate) enum Step {
    Ok,
    Fail(ErrorClass, Option<Duration>),
    Hang,
}

/// Runs one request; returns the providers called, in order, and the result.
pub(crate) async fn run(
    r: &Router,
    script: &mut Vec<(String, Step)>,
) -> (Vec<String>, Result<String, RouteError>) {
    let calls = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(std::mem::take(script)));
    let cands = r.plan("default", r.mode(), None).unwrap();
    let res = r
        .execute(&cands, &Needs::default(), Settle::OnAnswer, |c, _budget| {
            let calls = calls.clone();
            let script = script.clone();
            let name = c.provider.clone();
            async move {
                calls.lock().unwrap().push(name.clone());
                let step = {
                    let mut s = script.lock().unwrap();
                    let pos = s.iter().position(|(p, _)| *p == name);
                    pos.map(|i| s.remove(i).1).unwrap_or(Step::Ok)
                };
                match step {
                    Step::Ok => Ok(name),
                    Step::Fail(class, ra) => Err(ProviderError::new(class, "scripted").with_retry_after(ra)),
                    Step::Hang => std::future::pending().await,
                }
            }
        })
        .await
        .map(|s| s.value);
    let calls = calls.lock().unwrap().clone();
    (calls, res)
}

fn s(p: &str, step: Step) -> (String, Step) {
    (p.to_string(), step)
}

#[test]
fn plan_puts_local_last_in_auto_and_honours_preference_and_mode() {
    let r = router("");
    let names = |v: crate::router::Plan| v.iter().map(|c| c.provider.clone()).collect::<Vec<_>>();
    assert_eq!(
        names(r.plan("default", r.mode(), None).unwrap()),
        ["a", "b", "c", "local"]
    );
    assert_eq!(
        names(r.plan("default", r.mode(), Some("c")).unwrap()),
        ["c", "a", "b", "local"]
    );
    assert_eq!(r.plan("default", r.mode(), None).unwrap()[1].model, "b-model");
    r.set_mode(Mode::Offline);
    assert_eq!(names(r.plan("default", r.mode(), Some("a")).unwrap()), ["local"]);
    assert!(matches!(
        r.plan("only-a", r.mode(), None),
        Err(PlanError::NoCandidates { .. })
    ));
    // Plans are made once per logical model; an alias's error still names the model the client sent.
    let aliased = router("aliases: { claude-big: only-a }\n");
    assert_eq!(
        aliased.plan("claude-big", Mode::Offline, None),
        Err(PlanError::NoCandidates {
            model: "claude-big".into(),
            mode: "offline"
        })
    );
    assert_eq!(
        names(aliased.plan("claude-big", Mode::Auto, None).unwrap()),
        ["a"]
    );
    r.set_mode(Mode::Remote);
    assert_eq!(names(r.plan("default", r.mode(), None).unwrap()), ["a", "b", "c"]);
    assert_eq!(
        names(r.plan("big-a", r.mode(), None).unwrap()),
        ["a"],
        "a concrete provider model"
    );
    let direct = r.plan("b/kimi-latest", r.mode(), None).unwrap();
    assert_eq!(
        (
            direct[0].provider.as_str(),
            direct[0].model.as_str(),
            direct.len()
        ),
        ("b", "kimi-latest", 1)
    );
    assert!(r.plan("zz/x", r.mode(), None).is_err());
    assert!(r.plan("b/", r.mode(), None).is_err());
    assert_eq!(
        r.plan("gpt-9", r.mode(), None),
        Err(PlanError::UnknownModel("gpt-9".into()))
    );
    assert_eq!(
        r.plan("default", r.mode(), Some("zz")),
        Err(PlanError::UnknownProvider("zz".into()))
    );
}

#[tokio::test(start_paused = true)]
async fn one_deadline_bounds_all_attempts() {
    let r = router("");
    let start = Instant::now();
    let mut script = vec![
        s("a", Step::Hang),
        s("b", Step::Hang),
        s("c", Step::Hang),
        s("local", Step::Hang),
    ];
    let (calls, res) = run(&r, &mut script).await;
    assert_eq!(
        start.elapsed(),
        Duration::from_secs(10),
        "4s + 4s + the 2s left, never more"
    );
    assert_eq!(calls, ["a", "b", "c"]);
    match res {
        Err(RouteError::AllFailed {
            deadline: true,
            attempts,
            ..
        }) => {
            assert_eq!(
                attempts.iter().filter(|a| a.outcome == Outcome::Timeout).count(),
                3
            );
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn overload_is_retried_once_with_backoff_then_falls_back() {
    let r = router("");
    let start = Instant::now();
    let mut script = vec![s("a", Step::Fail(ErrorClass::Overloaded, None))];
    let (calls, res) = run(&r, &mut script).await;
    assert_eq!(calls, ["a", "a"]);
    assert_eq!(res.unwrap(), "a");
    assert!(
        start.elapsed() <= Duration::from_millis(100),
        "first backoff is at most backoff_base"
    );
    let r = router(""); // fresh: two more failures would open the breaker (min_requests 3)
    let mut script = vec![
        s("a", Step::Fail(ErrorClass::Overloaded, None)),
        s("a", Step::Fail(ErrorClass::Overloaded, None)),
    ];
    let (calls, res) = run(&r, &mut script).await;
    assert_eq!(calls, ["a", "a", "b"]);
    assert_eq!(res.unwrap(), "b");
}

#[tokio::test(start_paused = true)]
async fn no_retry_without_budget_and_none_for_other_classes() {
    let r = router("").with_budget_for_tests(0.0, 0);
    let mut script = vec![s("a", Step::Fail(ErrorClass::Overloaded, None))];
    assert_eq!(run(&r, &mut script).await.0, ["a", "b"]);
    for class in [
        ErrorClass::Connect,
        ErrorClass::Timeout,
        ErrorClass::Malformed,
        ErrorClass::ContextLength,
    ] {
        let r = router("");
        let mut script = vec![s("a", Step::Fail(class, None))];
        assert_eq!(run(&r, &mut script).await.0, ["a", "b"], "{class:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn retry_after_cools_the_provider_down_capped() {
    let r = router("");
    let mut script = vec![s(
        "a",
        Step::Fail(ErrorClass::RateLimited, Some(Duration::from_secs(7))),
    )];
    assert_eq!(run(&r, &mut script).await.0, ["a", "b"]);
    assert_eq!(
        run(&r, &mut vec![]).await.0,
        ["b"],
        "a cools down: skipped without a call"
    );
    tokio::time::advance(Duration::from_secs(7)).await;
    assert_eq!(run(&r, &mut vec![]).await.0, ["a"]);
    let mut script = vec![s(
        "a",
        Step::Fail(ErrorClass::RateLimited, Some(Duration::from_secs(3600))),
    )];
    let _ = run(&r, &mut script).await;
    let snap = r.snapshot().await;
    let a = snap.iter().find(|p| p.name == "a").unwrap();
    assert_eq!(
        a.cooldown_remaining_ms,
        Some(30_000),
        "capped at rate_limited_max"
    );
}

#[tokio::test(start_paused = true)]
async fn quota_means_a_long_cooldown_and_no_retry() {
    let r = router("");
    let mut script = vec![s("a", Step::Fail(ErrorClass::QuotaExhausted, None))];
    assert_eq!(run(&r, &mut script).await.0, ["a", "b"]);
    tokio::time::advance(Duration::from_secs(599)).await;
    assert_eq!(run(&r, &mut vec![]).await.0, ["b"]);
    tokio::time::advance(Duration::from_secs(2)).await;
    assert_eq!(run(&r, &mut vec![]).await.0, ["a"]);
}

#[tokio::test(start_paused = true)]
async fn breaker_opens_half_opens_with_one_probe_and_closes() {
    let r = router("");
    for _ in 0..3 {
        let mut script = vec![s("a", Step::Fail(ErrorClass::Connect, None))];
        assert_eq!(run(&r, &mut script).await.0, ["a", "b"]);
    }
    assert_eq!(r.snapshot().await[0].breaker, BreakerState::Open);
    assert_eq!(run(&r, &mut vec![]).await.0, ["b"], "open: skipped");
    tokio::time::advance(Duration::from_secs(20)).await;
    let mut script = vec![s("a", Step::Fail(ErrorClass::Timeout, None))];
    assert_eq!(run(&r, &mut script).await.0, ["a", "b"], "half-open probe fails");
    assert_eq!(r.snapshot().await[0].breaker, BreakerState::Open);
    assert_eq!(run(&r, &mut vec![]).await.0, ["b"]);
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(run(&r, &mut vec![]).await.0, ["a"], "probe succeeds");
    assert_eq!(r.snapshot().await[0].breaker, BreakerState::Closed);
}

#[tokio::test(start_paused = true)]
async fn bad_request_is_returned_without_fallback_and_content_filter_follows_policy() {
    let r = router("");
    let mut script = vec![s("a", Step::Fail(ErrorClass::BadRequest, None))];
    let (calls, res) = run(&r, &mut script).await;
    assert_eq!(calls, ["a"]);
    assert!(matches!(res, Err(RouteError::Rejected { .. })));
    let mut script = vec![s("a", Step::Fail(ErrorClass::ContentFilter, None))];
    assert_eq!(run(&r, &mut script).await.0, ["a", "b"], "fallback policy");
    let r = router("  content_filter: return\n");
    let mut script = vec![s("a", Step::Fail(ErrorClass::ContentFilter, None))];
    let (calls, res) = run(&r, &mut script).await;
    assert_eq!(calls, ["a"]);
    assert!(matches!(res, Err(RouteError::Rejected { .. })));
}

#[tokio::test(start_paused = true)]
async fn context_length_everywhere_is_reported_as_such() {
    let r = router("");
    let mut script: Vec<_> = ["a", "b", "c", "local"]
        .iter()
        .map(|p| s(p, Step::Fail(ErrorClass::ContextLength, None)))
        .collect();
    match run(&r, &mut script).await.1 {
        Err(RouteError::AllFailed { attempts, .. }) => {
            assert_eq!(super::uniform_class(&attempts), Some(Outcome::ContextLength))
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn context_length_skips_candidates_whose_window_is_not_larger() {
    let text = r#"
models:
  default:
    a: { model: a-8k, context_window: 8192 }
    b: { model: b-8k, context_window: 8192 }
    c: { model: c-128k, context_window: 131072 }
    local: llama
providers:
  a: { kind: openai, base_url: "http://127.0.0.1:9/v1" }
  b: { kind: kimi, base_url: "http://127.0.0.1:9/v1" }
  c: { kind: qwen, base_url: "http://127.0.0.1:9/v1" }
  local: { kind: ollama, base_url: "http://127.0.0.1:9" }
fallback_policy: { order: [a, b, c, local] }
"#;
    let cfg = Config::from_yaml(text, &|_| None).unwrap();
    let metrics = Arc::new(Metrics::new(cfg.providers.keys().map(String::as_str), cfg.mode));
    let r = Router::new(&cfg, metrics);
    let cands = r.plan("default", r.mode(), None).unwrap();
    assert_eq!(cands[0].caps.context_window, Some(8192));
    assert_eq!(cands[3].caps.context_window, None);
    let mut script = vec![s("a", Step::Fail(ErrorClass::ContextLength, None))];
    let (calls, res) = run(&r, &mut script).await;
    assert_eq!(
        calls,
        ["a", "c"],
        "b has no larger window: skipped without a call"
    );
    assert_eq!(res.unwrap(), "c");
    let mut script = vec![
        s("a", Step::Fail(ErrorClass::ContextLength, None)),
        s("c", Step::Fail(ErrorClass::ContextLength, None)),
        s("local", Step::Fail(ErrorClass::ContextLength, None)),
    ];
    match run(&r, &mut script).await {
        (calls, Err(RouteError::AllFailed { attempts, .. })) => {
            assert_eq!(calls, ["a", "c", "local"], "unknown windows are still tried");
            assert_eq!(super::uniform_class(&attempts), Some(Outcome::ContextLength));
            assert_eq!(attempts[1].outcome, Outcome::SkippedContextWindow);
        }
        other => panic!("{other:?}"),
    }
}
