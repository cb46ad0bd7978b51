//! REST conformance for toxics and metrics, case by case against TOXIPROXY.md §1.
#![allow(clippy::unwrap_used, clippy::panic)] // Tests: helpers fail loudly, like the tests themselves.

mod common;

use common::{assert_error, connect, echo_server, json, raw, round_trip, start};
use serde_json::json;

#[tokio::test]
async fn toxic_create_defaults_and_errors() {
    let s = start().await;
    raw(
        &s,
        "POST",
        "/proxies",
        Some(r#"{"name":"p","listen":"127.0.0.1:0","upstream":"x:1"}"#),
    )
    .await;
    let empty = raw(&s, "GET", "/proxies/p/toxics", None).await;
    assert_eq!((empty.status, empty.body.as_str()), (200, "[]"));

    let t = raw(
        &s,
        "POST",
        "/proxies/p/toxics",
        Some(r#"{"type":"latency","attributes":{"latency":5}}"#),
    )
    .await;
    assert_eq!(
        (t.status, t.content_type.as_str()),
        (200, "application/json"),
        "toxic create is 200, not 201"
    );
    assert_eq!(
        t.body,
        r#"{"attributes":{"latency":5,"jitter":0},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":1}"#
    );

    let up = raw(
        &s,
        "POST",
        "/proxies/p/toxics",
        Some(r#"{"type":"bandwidth","stream":"UpStream","toxicity":0.5,"attributes":{"rate":10,"bogus":1}}"#),
    )
    .await;
    assert_eq!(
        up.body,
        r#"{"attributes":{"rate":10},"name":"bandwidth_UpStream","type":"bandwidth","stream":"UpStream","toxicity":0.5}"#
    );
    let noop = raw(
        &s,
        "POST",
        "/proxies/p/toxics",
        Some(r#"{"type":"noop","name":"n","stream":"upstream"}"#),
    )
    .await;
    assert_eq!(
        noop.body,
        r#"{"attributes":{},"name":"n","type":"noop","stream":"upstream","toxicity":1}"#
    );
    let all_types = ["slow_close", "timeout", "reset_peer", "slicer", "limit_data"];
    for ty in all_types {
        let r = raw(
            &s,
            "POST",
            "/proxies/p/toxics",
            Some(&format!(r#"{{"type":"{ty}"}}"#)),
        )
        .await;
        assert_eq!(r.status, 200, "{ty}: {}", r.body);
    }
    let slicer = json(&raw(&s, "GET", "/proxies/p/toxics/slicer_downstream", None).await);
    assert_eq!(
        slicer["attributes"],
        json!({"average_size":0,"size_variation":0,"delay":0})
    );

    // Upstream first, then downstream, each in insertion order.
    let names: Vec<String> = json(&raw(&s, "GET", "/proxies/p/toxics", None).await)
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        names,
        [
            "bandwidth_UpStream",
            "n",
            "latency_downstream",
            "slow_close_downstream",
            "timeout_downstream",
            "reset_peer_downstream",
            "slicer_downstream",
            "limit_data_downstream"
        ]
    );
    let proxy = json(&raw(&s, "GET", "/proxies/p", None).await);
    assert_eq!(proxy["toxics"].as_array().unwrap().len(), 8);

    assert_error(
        &raw(&s, "POST", "/proxies/p/toxics", Some(r#"{"type":"latency"}"#)).await,
        409,
        "toxic already exists",
    );
    assert_error(
        &raw(
            &s,
            "POST",
            "/proxies/p/toxics",
            Some(r#"{"type":"latency","stream":"upstream","name":"n"}"#),
        )
        .await,
        409,
        "toxic already exists",
    );
    assert_error(
        &raw(
            &s,
            "POST",
            "/proxies/p/toxics",
            Some(r#"{"type":"latency","stream":"sideways"}"#),
        )
        .await,
        400,
        "stream was invalid, can be either upstream or downstream",
    );
    assert_error(
        &raw(
            &s,
            "POST",
            "/proxies/p/toxics",
            Some(r#"{"type":"latency","stream":""}"#),
        )
        .await,
        400,
        "stream was invalid, can be either upstream or downstream",
    );
    assert_error(
        &raw(&s, "POST", "/proxies/p/toxics", Some(r#"{"type":"down"}"#)).await,
        400,
        "invalid toxic type",
    );
    assert_error(
        &raw(&s, "POST", "/proxies/p/toxics", Some(r#"{}"#)).await,
        400,
        "invalid toxic type",
    );
    assert_error(
        &raw(&s, "POST", "/proxies/p/toxics", Some("")).await,
        400,
        "bad request body: EOF",
    );
    assert_error(
        &raw(&s, "POST", "/proxies/p/toxics", Some(r#"{"type":"latency","name":"l2","attributes":{"latency":"slow"}}"#)).await,
        400,
        "bad request body: json: cannot unmarshal string into Go struct field LatencyToxic.attributes.latency of type int64",
    );
    assert_eq!(
        raw(
            &s,
            "POST",
            "/proxies/p/toxics",
            Some(r#"{"type":"latency","name":"l3","attributes":7}"#)
        )
        .await
        .status,
        400
    );
    assert_error(
        &raw(&s, "POST", "/proxies/nope/toxics", Some(r#"{"type":"latency"}"#)).await,
        404,
        "proxy not found",
    );
    assert_error(
        &raw(&s, "GET", "/proxies/nope/toxics", None).await,
        404,
        "proxy not found",
    );
    assert_error(
        &raw(&s, "GET", "/proxies/nope/toxics/x", None).await,
        404,
        "proxy not found",
    );
    assert_error(
        &raw(&s, "GET", "/proxies/p/toxics/x", None).await,
        404,
        "toxic not found",
    );
}

#[tokio::test]
async fn toxic_update_and_delete() {
    let s = start().await;
    raw(
        &s,
        "POST",
        "/proxies",
        Some(r#"{"name":"p","listen":"127.0.0.1:0","upstream":"x:1"}"#),
    )
    .await;
    raw(
        &s,
        "POST",
        "/proxies/p/toxics",
        Some(r#"{"type":"latency","toxicity":0.25,"attributes":{"latency":5,"jitter":2}}"#),
    )
    .await;
    let patched = raw(
        &s,
        "PATCH",
        "/proxies/p/toxics/latency_downstream",
        Some(r#"{"attributes":{"jitter":9},"type":"timeout","stream":"upstream","name":"renamed"}"#),
    )
    .await;
    assert_eq!(patched.status, 200);
    assert_eq!(
        patched.body,
        r#"{"attributes":{"latency":5,"jitter":9},"name":"latency_downstream","type":"latency","stream":"downstream","toxicity":0.25}"#
    );
    let posted = raw(
        &s,
        "POST",
        "/proxies/p/toxics/latency_downstream",
        Some(r#"{"toxicity":1}"#),
    )
    .await;
    assert_eq!(json(&posted)["toxicity"], json!(1));
    assert_eq!(json(&posted)["attributes"], json!({"latency":5,"jitter":9}));
    assert_eq!(
        json(&raw(&s, "GET", "/proxies/p/toxics/latency_downstream", None).await),
        json(&posted)
    );

    assert_error(
        &raw(&s, "PATCH", "/proxies/p/toxics/none", Some("garbage")).await,
        404,
        "toxic not found",
    );
    assert_error(
        &raw(&s, "PATCH", "/proxies/none/toxics/none", Some("{}")).await,
        404,
        "proxy not found",
    );
    assert_error(
        &raw(&s, "PATCH", "/proxies/p/toxics/latency_downstream", Some("")).await,
        400,
        "bad request body: EOF",
    );
    assert_error(
        &raw(&s, "PATCH", "/proxies/p/toxics/latency_downstream", Some(r#"{"attributes":{"latency":1.5}}"#)).await,
        400,
        "bad request body: json: cannot unmarshal number 1.5 into Go struct field LatencyToxic.attributes.latency of type int64",
    );
    assert_eq!(
        raw(
            &s,
            "PATCH",
            "/proxies/p/toxics/latency_downstream",
            Some(r#"{"toxicity":"x"}"#)
        )
        .await
        .status,
        400
    );

    let del = raw(&s, "DELETE", "/proxies/p/toxics/latency_downstream", None).await;
    assert_eq!((del.status, del.body.as_str()), (204, ""));
    assert_error(
        &raw(&s, "DELETE", "/proxies/p/toxics/latency_downstream", None).await,
        404,
        "toxic not found",
    );
    assert_error(
        &raw(&s, "DELETE", "/proxies/q/toxics/latency_downstream", None).await,
        404,
        "proxy not found",
    );
}

#[tokio::test]
async fn metrics_count_bytes_when_links_end() {
    let s = start().await;
    let echo = echo_server().await;
    let client = s.client().unwrap();
    let listen = common::proxy_to(&client, "m", echo).await;
    let mut sock = connect(listen).await;
    round_trip(&mut sock, b"12345").await;
    let before = client.metrics().await.unwrap();
    assert!(
        !before.contains("proxy=\"m\""),
        "nothing counted while the connection is open:\n{before}"
    );
    drop(sock);
    s.link_tasks_idle().await;
    let text = client.metrics().await.unwrap();
    let line = |name: &str, dir: &str| {
        format!("toxiproxy_proxy_{name}_bytes_total{{direction=\"{dir}\",listener=\"{listen}\",proxy=\"m\",upstream=\"{echo}\"}} 5")
    };
    for (name, dir) in [
        ("received", "upstream"),
        ("sent", "upstream"),
        ("received", "downstream"),
        ("sent", "downstream"),
    ] {
        assert!(
            text.contains(&line(name, dir)),
            "missing {name}/{dir} in:\n{text}"
        );
    }
    let r = raw(&s, "GET", "/metrics", None).await;
    assert!(r.content_type.starts_with("text/plain"));
}
