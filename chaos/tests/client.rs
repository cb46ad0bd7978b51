//! The async client: every typed method against the embedded server, and its typed errors.
#![allow(clippy::unwrap_used, clippy::panic)] // Tests: helpers fail loudly, like the tests themselves.

mod common;

use common::{connect, echo_server, round_trip, start};
use llm_chaos::toxics::{Latency, LimitData, ResetPeer};
use llm_chaos::{Client, ClientError, NewProxy, NewToxic, ProxyUpdate, Stream, ToxicKind, ToxicUpdate};

#[tokio::test]
async fn every_endpoint_through_the_typed_client() {
    let s = start().await;
    let c = s.client().unwrap();
    let echo = echo_server().await.to_string();
    assert_eq!(c.version().await.unwrap(), "2.12.0");
    assert!(c.proxies().await.unwrap().is_empty());

    let p = c
        .create_proxy(&NewProxy::new("kimi", "127.0.0.1:0", &echo))
        .await
        .unwrap();
    assert!(p.enabled && p.toxics.is_empty() && !p.listen.ends_with(":0"));
    let populated = c
        .populate(&[
            NewProxy::new("kimi", &p.listen, &echo),
            NewProxy::new("qwen", "127.0.0.1:0", &echo),
        ])
        .await
        .unwrap();
    assert_eq!(
        populated.iter().map(|p| p.name.as_str()).collect::<Vec<_>>(),
        ["kimi", "qwen"]
    );
    assert_eq!(populated[0].listen, p.listen, "kept as is");

    let latency = ToxicKind::Latency(Latency {
        latency: 10,
        jitter: 1,
    });
    let added = c
        .add_toxic("kimi", &NewToxic::new(latency.clone()))
        .await
        .unwrap();
    assert_eq!(
        (added.name.as_str(), added.stream, added.toxicity),
        ("latency_downstream", Stream::Downstream, 1.0)
    );
    let reset = NewToxic::new(ToxicKind::ResetPeer(ResetPeer { timeout: 5 }))
        .named("rst")
        .stream(Stream::Upstream)
        .toxicity(0.0);
    c.add_toxic("kimi", &reset).await.unwrap();
    let listed = c.toxics("kimi").await.unwrap();
    assert_eq!(
        listed.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
        ["rst", "latency_downstream"]
    );
    let patch = ToxicUpdate {
        toxicity: Some(0.5),
        ..ToxicUpdate::attributes_of(&latency)
    };
    let updated = c
        .update_toxic("kimi", "latency_downstream", &patch)
        .await
        .unwrap();
    assert_eq!(updated.toxicity, 0.5);
    assert_eq!(c.toxic("kimi", "latency_downstream").await.unwrap(), updated);
    c.remove_toxic("kimi", "rst").await.unwrap();

    let off = c.disable("kimi").await.unwrap();
    assert!(!off.enabled);
    assert!(c.enable("kimi").await.unwrap().enabled);
    let moved = c
        .update_proxy(
            "qwen",
            &ProxyUpdate {
                upstream: Some("127.0.0.1:1".into()),
                ..ProxyUpdate::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(moved.upstream, "127.0.0.1:1");
    c.delete_proxy("qwen").await.unwrap();

    let mut sock = connect(p.listen.parse().unwrap()).await;
    round_trip(&mut sock, b"abc").await;
    drop(sock);
    s.link_tasks_idle().await;
    assert!(c.metrics().await.unwrap().contains("proxy=\"kimi\""));

    c.reset().await.unwrap();
    let all = c.proxies().await.unwrap();
    assert_eq!(all.len(), 1);
    assert!(all["kimi"].toxics.is_empty());
}

#[tokio::test]
async fn typed_errors_carry_toxiproxy_bodies() {
    let s = start().await;
    let c = s.client().unwrap();
    let missing = c.proxy("nope").await.unwrap_err();
    assert!(missing.is_not_found());
    match &missing {
        ClientError::Api {
            status,
            message,
            body,
        } => {
            assert_eq!((*status, message.as_str()), (404, "proxy not found"));
            assert_eq!(body, "{\"error\":\"proxy not found\",\"status\":404}\n");
        }
        other => panic!("{other:?}"),
    }
    let new = NewProxy::new("p", "127.0.0.1:0", "x:1");
    c.create_proxy(&new).await.unwrap();
    assert!(c.create_proxy(&new).await.unwrap_err().is_conflict());
    let limit = NewToxic::new(ToxicKind::LimitData(LimitData { bytes: 1 }));
    c.add_toxic("p", &limit).await.unwrap();
    assert!(c.add_toxic("p", &limit).await.unwrap_err().is_conflict());
    assert!(c.toxic("p", "nope").await.unwrap_err().is_not_found());
    assert!(c.remove_toxic("p", "nope").await.unwrap_err().is_not_found());
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let err = c
        .populate(&[
            NewProxy::new("a", "127.0.0.1:0", "x:1"),
            NewProxy::new("b", &addr, "x:1"),
        ])
        .await
        .unwrap_err();
    match err {
        ClientError::Api {
            status: 500,
            message,
            body,
        } => {
            assert!(message.ends_with("bind: address already in use"), "{message}");
            assert!(body.contains("\"proxies\":[{\"name\":\"a\""), "{body}");
        }
        other => panic!("{other:?}"),
    }
    // Nothing listens here: the error says so instead of panicking.
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let gone = Client::new(closed.to_string())
        .unwrap()
        .version()
        .await
        .unwrap_err();
    assert!(gone.is_unreachable(), "{gone:?}");
    assert!(gone
        .to_string()
        .contains(&format!("cannot reach Toxiproxy at http://{closed}/version")));
}

#[tokio::test]
async fn backend_is_external_when_a_url_is_given_and_embedded_otherwise() {
    use llm_chaos::{Backend, BackendError, ServerConfig};
    let embedded = Backend::from_url_or_embedded(None, ServerConfig::default())
        .await
        .unwrap();
    assert!(!embedded.is_external());
    let url = embedded.client().url().to_owned();
    embedded
        .client()
        .create_proxy(&NewProxy::new("p", "127.0.0.1:0", "x:1"))
        .await
        .unwrap();

    let external = Backend::from_url_or_embedded(Some(url.clone()), ServerConfig::default())
        .await
        .unwrap();
    assert!(external.is_external());
    assert!(external.client().proxies().await.unwrap().contains_key("p"));
    external.client().disable("p").await.unwrap();
    external.shutdown().await.unwrap();
    assert!(
        embedded.client().proxy("p").await.unwrap().enabled,
        "shutting down an external backend resets it"
    );
    embedded.shutdown().await.unwrap();

    let blank = Backend::from_url_or_embedded(Some("  ".into()), ServerConfig::default())
        .await
        .unwrap();
    assert!(!blank.is_external());
    let closed = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap()
        .local_addr()
        .unwrap();
    let err = Backend::from_url_or_embedded(Some(format!("http://{closed}")), ServerConfig::default())
        .await
        .unwrap_err();
    assert!(matches!(err, BackendError::Unreachable { .. }), "{err:?}");
    assert!(err
        .to_string()
        .starts_with(&format!("TOXIPROXY_URL=http://{closed} does not answer")));
}
