//! Automatic degradation and recovery (connectivity probes, all breakers open) and provider budgets, on paused
//! time with scripted attempts (no network).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::connectivity::probe_loop;
use super::tests::{router, run, Step};
use super::*;

fn s(p: &str, step: Step) -> (String, Step) {
    (p.to_string(), step)
}

#[tokio::test(start_paused = true)]
async fn failed_probes_send_traffic_straight_to_local_and_recovery_resumes_remote() {
    let r = router("");
    let up = Arc::new(AtomicBool::new(true));
    let probed = up.clone();
    let mut rounds = r.connectivity().rounds();
    tokio::spawn(probe_loop(
        Arc::downgrade(r.connectivity()),
        Duration::from_secs(5),
        Duration::from_secs(1),
        move |_name: String| {
            let up = probed.clone();
            async move {
                if up.load(Ordering::SeqCst) {
                    Some(true)
                } else {
                    // A black-holed probe: only the probe timeout ends it.
                    std::future::pending::<Option<bool>>().await
                }
            }
        },
    ));
    rounds.changed().await.unwrap();
    assert!(!r.connectivity().degraded());
    let (calls, res) = run(&r, &mut vec![]).await;
    assert_eq!((calls, res.unwrap()), (vec!["a".to_string()], "a".to_string()));

    // The internet goes: the next round's probes time out and every remote provider is marked unreachable.
    up.store(false, Ordering::SeqCst);
    rounds.changed().await.unwrap();
    assert!(r.connectivity().degraded());
    let start = Instant::now();
    let (calls, res) = run(
        &r,
        &mut vec![s("a", Step::Hang), s("b", Step::Hang), s("c", Step::Hang)],
    )
    .await;
    assert_eq!(calls, ["local"], "remote providers are not called at all");
    assert_eq!(res.unwrap(), "local");
    assert_eq!(start.elapsed(), Duration::ZERO, "no timeout is waited on");

    // Everything down, local too: the failure lists each remote provider as skipped, in order.
    let (_, res) = run(&r, &mut vec![s("local", Step::Fail(ErrorClass::Connect, None))]).await;
    match res {
        Err(RouteError::AllFailed { attempts, .. }) => {
            let what: Vec<(&str, &str)> = attempts
                .iter()
                .map(|a| (a.provider.as_str(), a.outcome.as_str()))
                .collect();
            assert_eq!(
                what,
                [
                    ("a", "skipped_unreachable"),
                    ("b", "skipped_unreachable"),
                    ("c", "skipped_unreachable"),
                    ("local", "connect")
                ]
            );
        }
        other => panic!("{other:?}"),
    }

    // Connectivity returns: the next successful round resumes remote traffic.
    up.store(true, Ordering::SeqCst);
    rounds.changed().await.unwrap();
    assert!(!r.connectivity().degraded());
    let (calls, _) = run(&r, &mut vec![]).await;
    assert_eq!(calls, ["a"]);
    let m = r.metrics.encode();
    assert!(
        m.contains(r#"llm_gateway_provider_reachable{provider="a"} 1"#),
        "{m}"
    );
    assert!(
        m.contains(r#"llm_gateway_provider_requests_total{provider="a",outcome="skipped_unreachable"} 2"#),
        "{m}"
    );
}

#[tokio::test(start_paused = true)]
async fn probes_skip_a_round_when_told_and_stop_with_the_router() {
    let r = router("");
    let mut rounds = r.connectivity().rounds();
    let handle = tokio::spawn(probe_loop(
        Arc::downgrade(r.connectivity()),
        Duration::from_secs(5),
        Duration::from_secs(1),
        |_name: String| async { None },
    ));
    rounds.changed().await.unwrap();
    assert!(!r.connectivity().degraded(), "a skipped probe changes nothing");
    drop(r);
    tokio::time::advance(Duration::from_secs(5)).await;
    handle.await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn all_breakers_open_goes_to_local_at_once_and_half_open_probe_recovers() {
    let r = router("");
    // Three connect failures per remote provider open every remote breaker (min_requests 3).
    for _ in 0..3 {
        let fail = |p: &str| s(p, Step::Fail(ErrorClass::Connect, None));
        let (_, res) = run(&r, &mut vec![fail("a"), fail("b"), fail("c")]).await;
        assert_eq!(res.unwrap(), "local");
    }
    let start = Instant::now();
    let (calls, res) = run(
        &r,
        &mut vec![s("a", Step::Hang), s("b", Step::Hang), s("c", Step::Hang)],
    )
    .await;
    assert_eq!(calls, ["local"]);
    assert_eq!(res.unwrap(), "local");
    assert_eq!(start.elapsed(), Duration::ZERO);
    // After open_for the half-open probe goes to the first provider; success closes its breaker.
    tokio::time::advance(Duration::from_secs(20)).await;
    let (calls, res) = run(&r, &mut vec![]).await;
    assert_eq!((calls, res.unwrap()), (vec!["a".to_string()], "a".to_string()));
}

#[tokio::test(start_paused = true)]
async fn provider_budgets_route_to_the_next_provider_before_its_quota_bites() {
    let r = router("  # budgets\n")
        .with_limits_for_tests("a", "{ requests_per_minute: 2, tokens_per_day: 1000 }");
    for _ in 0..2 {
        let (calls, _) = run(&r, &mut vec![]).await;
        assert_eq!(calls, ["a"]);
    }
    let (calls, res) = run(&r, &mut vec![]).await;
    assert_eq!(
        calls,
        ["b"],
        "a's requests/min budget is used up: skipped without a call"
    );
    assert_eq!(res.unwrap(), "b");
    let st = r.snapshot().await.into_iter().find(|p| p.name == "a").unwrap();
    assert_eq!(st.budgets[0].budget, "requests_minute");
    assert_eq!((st.budgets[0].used, st.budgets[0].limit), (2, 2));
    tokio::time::advance(Duration::from_secs(60)).await;
    let (calls, _) = run(&r, &mut vec![]).await;
    assert_eq!(calls, ["a"], "a new minute");
    r.record_tokens("a", 1500).await;
    let (calls, _) = run(&r, &mut vec![]).await;
    assert_eq!(calls, ["b"], "a's tokens/day budget is used up");
    let m = r.metrics.encode();
    assert!(
        m.contains(r#"llm_gateway_provider_budget_used{provider="a",budget="tokens_day"} 1500"#),
        "{m}"
    );
    assert!(
        m.contains(r#"llm_gateway_provider_requests_total{provider="a",outcome="skipped_budget"} 2"#),
        "{m}"
    );
}
