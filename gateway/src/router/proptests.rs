//! Property tests: over random failure sequences and clock jumps the router never calls a provider whose breaker
//! is open or that is cooling down, never passes the deadline, and tries candidates in order.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use proptest::prelude::*;
use tokio::time::Instant;

use super::tests::router;
use super::*;
use crate::providers::capabilities::Needs;

#[derive(Debug, Clone)]
enum Out {
    Ok,
    Fail(ErrorClass, Option<u64>),
    Hang,
    Slow(u64),
}

fn out() -> impl Strategy<Value = Out> {
    prop_oneof![
        3 => Just(Out::Ok),
        6 => (proptest::sample::select(ErrorClass::ALL.to_vec()), proptest::option::of(0u64..120))
            .prop_map(|(c, ra)| Out::Fail(c, ra)),
        1 => Just(Out::Hang),
        1 => (0u64..6000).prop_map(Out::Slow),
    ]
}

fn request() -> impl Strategy<Value = (Vec<Out>, u64, Option<usize>)> {
    (
        proptest::collection::vec(out(), 0..10),
        0u64..40_000,
        proptest::option::of(0usize..4),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

    #[test]
    fn router_invariants(requests in proptest::collection::vec(request(), 1..25)) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().start_paused(true).build().unwrap();
        rt.block_on(async move {
            let r = Arc::new(router(""));
            let names = ["a", "b", "c", "local"];
            for (outs, jump_ms, preferred) in requests {
                tokio::time::advance(Duration::from_millis(jump_ms)).await;
                let preferred = preferred.map(|i| names[i]);
                let cands = r.plan("default", r.mode(), preferred).unwrap();
                let order: Vec<String> = cands.iter().map(|c| c.provider.clone()).collect();
                let outs = Arc::new(Mutex::new(outs.into_iter()));
                let calls = Arc::new(Mutex::new(Vec::<String>::new()));
                let violations = Arc::new(Mutex::new(Vec::<String>::new()));
                let start = Instant::now();
                let rr = r.clone();
                let res = r.execute(&cands, &Needs::default(), Settle::OnAnswer, |c, budget| {
                    let name = c.provider.clone();
                    calls.lock().unwrap().push(name.clone());
                    // At call time the provider must be admitted: not open, not cooling down.
                    let snap = futures::FutureExt::now_or_never(rr.snapshot()).unwrap();
                    let st = snap.iter().find(|s| s.name == name).unwrap();
                    if st.breaker == BreakerState::Open || st.cooldown_remaining_ms.is_some() {
                        violations.lock().unwrap().push(format!("{name} called while {st:?}"));
                    }
                    if start.elapsed() + budget > rr.policy().deadline {
                        violations.lock().unwrap().push(format!("{name} budget {budget:?} passes the deadline"));
                    }
                    let next = outs.lock().unwrap().next().unwrap_or(Out::Ok);
                    async move {
                        match next {
                            Out::Ok => Ok(()),
                            Out::Fail(class, ra) => Err(ProviderError::new(class, "p").with_retry_after(ra.map(Duration::from_secs))),
                            Out::Hang => std::future::pending().await,
                            Out::Slow(ms) => {
                                tokio::time::sleep(Duration::from_millis(ms)).await;
                                Ok(())
                            }
                        }
                    }
                }).await;
                let elapsed = start.elapsed();
                assert!(elapsed <= r.policy().deadline, "took {elapsed:?}");
                let v = violations.lock().unwrap().clone();
                assert!(v.is_empty(), "{v:?}");
                // Candidates in order: each call's position never goes backwards (retries repeat it).
                let positions: Vec<usize> = calls.lock().unwrap().iter()
                    .map(|n| order.iter().position(|o| o == n).unwrap()).collect();
                assert!(positions.windows(2).all(|w| w[0] <= w[1]), "order {order:?}, calls {positions:?}");
                if let Ok(served) = &res {
                    assert_eq!(Some(&served.candidate.provider), calls.lock().unwrap().last());
                }
            }
        });
    }
}
