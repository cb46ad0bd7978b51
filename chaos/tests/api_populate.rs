//! REST conformance for `/populate` and `/reset`, case by case against TOXIPROXY.md §1.5.
#![allow(clippy::unwrap_used, clippy::panic)] // Tests: helpers fail loudly, like the tests themselves.

mod common;

use common::{json, raw, start};
use serde_json::json;

#[tokio::test]
async fn populate_rules() {
    let s = start().await;
    let none = raw(&s, "POST", "/populate", Some("[]")).await;
    assert_eq!(
        (none.status, none.content_type.as_str(), none.body.as_str()),
        (201, "application/json", r#"{"proxies":null}"#)
    );

    // Validation first: nothing is created when any element is invalid.
    let invalid = raw(
        &s,
        "POST",
        "/populate",
        Some(r#"[{"name":"a","upstream":"x:1","listen":"127.0.0.1:0"},{"upstream":"x:2"}]"#),
    )
    .await;
    assert_eq!(
        (invalid.status, invalid.content_type.as_str()),
        (400, "application/json")
    );
    assert_eq!(
        invalid.body,
        r#"{"error":"missing required field: name at proxy 2","status":400,"proxies":null}"#
    );
    let invalid = raw(&s, "POST", "/populate", Some(r#"[{"name":"a"}]"#)).await;
    assert_eq!(
        json(&invalid)["error"],
        "missing required field: upstream at proxy 1"
    );
    assert_eq!(raw(&s, "GET", "/proxies", None).await.body, "{}");
    let bad = raw(&s, "POST", "/populate", Some(r#"{"name":"a"}"#)).await;
    assert_eq!(
        (
            bad.status,
            json(&bad)["status"].clone(),
            json(&bad)["proxies"].clone()
        ),
        (400, json!(400), json!(null))
    );
    assert!(json(&bad)["error"]
        .as_str()
        .unwrap()
        .starts_with("bad request body: "));

    let first = raw(&s, "POST", "/populate", Some(r#"[{"name":"keep","listen":"127.0.0.1:0","upstream":"x:1"},{"name":"off","listen":"127.0.0.1:0","upstream":"x:1","enabled":false}]"#)).await;
    assert_eq!(first.status, 201);
    let proxies = json(&first)["proxies"].as_array().unwrap().clone();
    assert_eq!(proxies.len(), 2);
    assert_eq!(
        (proxies[0]["name"].clone(), proxies[0]["enabled"].clone()),
        (json!("keep"), json!(true))
    );
    assert_eq!(
        (proxies[1]["name"].clone(), proxies[1]["enabled"].clone()),
        (json!("off"), json!(false))
    );
    let keep_listen = proxies[0]["listen"].as_str().unwrap().to_owned();

    // Same resolved listen and upstream: kept as is, toxics and disabled state included.
    raw(&s, "POST", "/proxies/keep/toxics", Some(r#"{"type":"latency"}"#)).await;
    raw(&s, "POST", "/proxies/keep", Some(r#"{"enabled":false}"#)).await;
    let again = raw(
        &s,
        "POST",
        "/populate",
        Some(&format!(
            r#"[{{"name":"keep","listen":"{keep_listen}","upstream":"x:1","enabled":true}}]"#
        )),
    )
    .await;
    let kept = &json(&again)["proxies"][0];
    assert_eq!(
        (kept["enabled"].clone(), kept["toxics"].as_array().unwrap().len()),
        (json!(false), 1)
    );

    // Different upstream: replaced, without toxics; proxies absent from the input stay.
    let replaced = raw(
        &s,
        "POST",
        "/populate",
        Some(&format!(
            r#"[{{"name":"keep","listen":"{keep_listen}","upstream":"x:2"}}]"#
        )),
    )
    .await;
    let r = &json(&replaced)["proxies"][0];
    assert_eq!(
        (r["upstream"].clone(), r["enabled"].clone(), r["toxics"].clone()),
        (json!("x:2"), json!(true), json!([]))
    );
    assert!(json(&raw(&s, "GET", "/proxies", None).await).get("off").is_some());

    // The first failure stops processing; the body lists what was done before it.
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let partial = raw(&s, "POST", "/populate", Some(&format!(r#"[{{"name":"n1","listen":"127.0.0.1:0","upstream":"x:1"}},{{"name":"n2","listen":"{addr}","upstream":"x:1"}},{{"name":"n3","listen":"127.0.0.1:0","upstream":"x:1"}}]"#))).await;
    assert_eq!(partial.status, 500);
    let body = json(&partial);
    assert_eq!(
        body["error"],
        json!(format!("listen tcp {addr}: bind: address already in use"))
    );
    assert_eq!(body["status"], json!(500));
    assert_eq!(body["proxies"].as_array().unwrap().len(), 1);
    assert_eq!(body["proxies"][0]["name"], "n1");
    let all = json(&raw(&s, "GET", "/proxies", None).await);
    assert!(all.get("n1").is_some() && all.get("n2").is_none() && all.get("n3").is_none());
}

#[tokio::test]
async fn reset_enables_everything_and_removes_all_toxics() {
    let s = start().await;
    raw(&s, "POST", "/populate", Some(r#"[{"name":"a","listen":"127.0.0.1:0","upstream":"x:1"},{"name":"b","listen":"127.0.0.1:0","upstream":"x:1","enabled":false}]"#)).await;
    raw(
        &s,
        "POST",
        "/proxies/a/toxics",
        Some(r#"{"type":"latency","stream":"upstream"}"#),
    )
    .await;
    raw(&s, "POST", "/proxies/a/toxics", Some(r#"{"type":"latency"}"#)).await;
    raw(&s, "POST", "/proxies/a", Some(r#"{"enabled":false}"#)).await;
    let r = raw(&s, "POST", "/reset", Some("ignored body")).await;
    assert_eq!((r.status, r.body.as_str()), (204, ""));
    let all = json(&raw(&s, "GET", "/proxies", None).await);
    for name in ["a", "b"] {
        assert_eq!(all[name]["enabled"], json!(true), "{name}");
        assert_eq!(all[name]["toxics"], json!([]), "{name}");
        assert_ne!(
            all[name]["listen"],
            json!("127.0.0.1:0"),
            "{name} got a real port"
        );
    }
}
