//! REST conformance for the server and proxies, case by case against TOXIPROXY.md §1 (routes, statuses, bodies,
//! defaults, populate and reset rules).
#![allow(clippy::unwrap_used, clippy::panic)] // Tests: helpers fail loudly, like the tests themselves.

mod common;

use common::{assert_error, connect, echo_server, json, raw, round_trip, start};
use serde_json::json;

#[tokio::test]
async fn version_not_found_method_and_browser_rules() {
    let s = start().await;
    let v = raw(&s, "GET", "/version", None).await;
    assert_eq!(
        (v.status, v.content_type.as_str(), v.body.as_str()),
        (
            200,
            "application/json;charset=utf-8",
            "{\"version\": \"2.12.0\"}\n"
        )
    );
    let id = v
        .headers
        .get("x-toxiproxy-request-id")
        .unwrap()
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(id.len(), 20);
    let nf = raw(&s, "GET", "/nope", None).await;
    assert_eq!((nf.status, nf.body.as_str()), (404, "404 page not found\n"));
    assert_eq!(nf.content_type, "text/plain; charset=utf-8");
    assert!(nf.headers.contains_key("x-toxiproxy-request-id"));
    assert_eq!(raw(&s, "PUT", "/proxies", Some("{}")).await.status, 405);
    assert_eq!(raw(&s, "GET", "/reset", None).await.status, 405);
    assert_eq!(raw(&s, "DELETE", "/version", None).await.status, 405);
    let browser = reqwest::Client::new()
        .get(format!("{}/proxies", s.url()))
        .header("User-Agent", "Mozilla/5.0 (X11)")
        .send()
        .await
        .unwrap();
    assert_eq!(browser.status().as_u16(), 403);
    assert!(browser.headers().contains_key("x-toxiproxy-request-id"));
    assert_eq!(browser.text().await.unwrap(), "User agent not allowed\n");
    // Without a metrics flag /metrics does not exist.
    let plain = llm_chaos::Server::start(
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
        llm_chaos::ServerConfig::default(),
    )
    .unwrap();
    assert_eq!(raw(&plain, "GET", "/metrics", None).await.status, 404);
}

#[tokio::test]
async fn create_list_get_delete_proxy() {
    let s = start().await;
    let empty = raw(&s, "GET", "/proxies", None).await;
    assert_eq!(
        (empty.status, empty.content_type.as_str(), empty.body.as_str()),
        (200, "application/json", "{}")
    );
    let c = raw(
        &s,
        "POST",
        "/proxies",
        Some(r#"{"name":"p","listen":"127.0.0.1:0","upstream":"localhost:6379"}"#),
    )
    .await;
    assert_eq!((c.status, c.content_type.as_str()), (201, "application/json"));
    let port = json(&c)["listen"]
        .as_str()
        .unwrap()
        .rsplit(':')
        .next()
        .unwrap()
        .parse::<u16>()
        .unwrap();
    assert_ne!(port, 0, "listen on port 0 is reported with the real port");
    assert_eq!(
        c.body,
        format!(
            r#"{{"name":"p","listen":"127.0.0.1:{port}","upstream":"localhost:6379","enabled":true,"Logger":{{}},"toxics":[]}}"#
        )
    );
    let all = json(&raw(&s, "GET", "/proxies", None).await);
    assert_eq!(
        all,
        json!({"p": serde_json::from_str::<serde_json::Value>(&c.body).unwrap()})
    );
    let one = raw(&s, "GET", "/proxies/p", None).await;
    assert_eq!((one.status, one.body.clone()), (200, c.body.clone()));
    let d = raw(&s, "DELETE", "/proxies/p", None).await;
    assert_eq!((d.status, d.body.as_str()), (204, ""));
    assert_error(&raw(&s, "GET", "/proxies/p", None).await, 404, "proxy not found");
    assert_error(
        &raw(&s, "DELETE", "/proxies/p", None).await,
        404,
        "proxy not found",
    );
    // The listener is gone.
    assert!(tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_err());
}

#[tokio::test]
async fn create_errors() {
    let s = start().await;
    assert_error(
        &raw(&s, "POST", "/proxies", Some("")).await,
        400,
        "bad request body: EOF",
    );
    let bad = raw(&s, "POST", "/proxies", Some("{nope")).await;
    assert_eq!(bad.status, 400);
    assert!(json(&bad)["error"]
        .as_str()
        .unwrap()
        .starts_with("bad request body: "));
    assert_error(
        &raw(&s, "POST", "/proxies", Some(r#"{"upstream":"x:1"}"#)).await,
        400,
        "missing required field: name",
    );
    assert_error(
        &raw(&s, "POST", "/proxies", Some(r#"{"name":"a"}"#)).await,
        400,
        "missing required field: upstream",
    );
    assert_error(
        &raw(&s, "POST", "/proxies", Some(r#"{"name":1,"upstream":"x:1"}"#)).await,
        400,
        "bad request body: json: cannot unmarshal number into Go struct field Proxy.name of type string",
    );
    let ok = r#"{"name":"a","listen":"127.0.0.1:0","upstream":"x:1"}"#;
    assert_eq!(raw(&s, "POST", "/proxies", Some(ok)).await.status, 201);
    assert_error(
        &raw(&s, "POST", "/proxies", Some(ok)).await,
        409,
        "proxy already exists",
    );
    let taken = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = taken.local_addr().unwrap();
    let body = format!(r#"{{"name":"b","listen":"{addr}","upstream":"x:1"}}"#);
    assert_error(
        &raw(&s, "POST", "/proxies", Some(&body)).await,
        500,
        &format!("listen tcp {addr}: bind: address already in use"),
    );
    assert_error(&raw(&s, "GET", "/proxies/b", None).await, 404, "proxy not found");
    // Created disabled: not listening, reported as such, with its configured listen address.
    let off = raw(
        &s,
        "POST",
        "/proxies",
        Some(r#"{"name":"off","listen":"127.0.0.1:0","upstream":"x:1","enabled":false}"#),
    )
    .await;
    assert_eq!(
        (
            off.status,
            json(&off)["enabled"].clone(),
            json(&off)["listen"].clone()
        ),
        (201, json!(false), json!("127.0.0.1:0"))
    );
}

#[tokio::test]
async fn update_proxy_post_and_patch() {
    let s = start().await;
    let echo = echo_server().await;
    let c = raw(
        &s,
        "POST",
        "/proxies",
        Some(&format!(
            r#"{{"name":"p","listen":"127.0.0.1:0","upstream":"{echo}"}}"#
        )),
    )
    .await;
    let listen = json(&c)["listen"].as_str().unwrap().to_owned();
    let mut live = connect(listen.parse().unwrap()).await;
    assert_eq!(round_trip(&mut live, b"hi").await, b"hi");

    let off = raw(
        &s,
        "PATCH",
        "/proxies/p",
        Some(r#"{"enabled":false,"name":"ignored"}"#),
    )
    .await;
    assert_eq!(
        (
            off.status,
            json(&off)["enabled"].clone(),
            json(&off)["name"].clone()
        ),
        (200, json!(false), json!("p"))
    );
    assert!(
        tokio::net::TcpStream::connect(&listen).await.is_err(),
        "disabled proxy refuses connections"
    );
    let (rest, _) = common::read_to_end(&mut live).await;
    assert!(rest.is_empty(), "disabling closes live connections");

    let on = raw(&s, "POST", "/proxies/p", Some(r#"{"enabled":true}"#)).await;
    assert_eq!(
        (
            on.status,
            json(&on)["enabled"].clone(),
            json(&on)["listen"].as_str().unwrap()
        ),
        (200, json!(true), listen.as_str())
    );
    let mut again = connect(listen.parse().unwrap()).await;
    assert_eq!(round_trip(&mut again, b"yo").await, b"yo");

    // A new upstream restarts the proxy: live connections drop, the toxics stay.
    raw(
        &s,
        "POST",
        "/proxies/p/toxics",
        Some(r#"{"type":"latency","attributes":{"latency":1}}"#),
    )
    .await;
    let up = raw(&s, "POST", "/proxies/p", Some(r#"{"upstream":"127.0.0.1:9"}"#)).await;
    assert_eq!(
        (
            up.status,
            json(&up)["upstream"].clone(),
            json(&up)["toxics"].as_array().unwrap().len()
        ),
        (200, json!("127.0.0.1:9"), 1)
    );
    let (rest, _) = common::read_to_end(&mut again).await;
    assert!(rest.is_empty());

    assert_error(
        &raw(&s, "POST", "/proxies/zz", Some("{}")).await,
        404,
        "proxy not found",
    );
    assert_error(
        &raw(&s, "PATCH", "/proxies/zz", Some("garbage")).await,
        404,
        "proxy not found",
    );
    assert_error(
        &raw(&s, "PATCH", "/proxies/p", Some("")).await,
        400,
        "bad request body: EOF",
    );
    assert_error(
        &raw(&s, "PATCH", "/proxies/p", Some(r#"{"enabled":"yes"}"#)).await,
        400,
        "bad request body: json: cannot unmarshal string into Go struct field Proxy.enabled of type bool",
    );
    let bad_listen = raw(&s, "PATCH", "/proxies/p", Some(r#"{"listen":"nohost"}"#)).await;
    assert_error(&bad_listen, 500, "address nohost: missing port in address");
}

#[tokio::test]
async fn names_in_paths_are_percent_decoded() {
    let s = start().await;
    let c = raw(
        &s,
        "POST",
        "/proxies",
        Some(r#"{"name":"a b","listen":"127.0.0.1:0","upstream":"x:1"}"#),
    )
    .await;
    assert_eq!(c.status, 201);
    assert_eq!(json(&raw(&s, "GET", "/proxies/a%20b", None).await)["name"], "a b");
    let t = raw(
        &s,
        "POST",
        "/proxies/a%20b/toxics",
        Some(r#"{"type":"noop","name":"n/1"}"#),
    )
    .await;
    assert_eq!(t.status, 200);
    assert_eq!(
        raw(&s, "GET", "/proxies/a%20b/toxics/n%2F1", None).await.status,
        200
    );
    assert_error(
        &raw(&s, "GET", "/proxies/%FF", None).await,
        404,
        "proxy not found",
    );
    assert_error(
        &raw(&s, "GET", "/proxies/a%20b/toxics/%FF", None).await,
        404,
        "toxic not found",
    );
}

#[tokio::test]
async fn listen_forms_are_resolved_like_go() {
    let s = start().await;
    let localhost = raw(
        &s,
        "POST",
        "/proxies",
        Some(r#"{"name":"l","listen":"localhost:0","upstream":"x:1"}"#),
    )
    .await;
    let listen = json(&localhost)["listen"].as_str().unwrap().to_owned();
    assert!(
        listen.starts_with("127.0.0.1:") && !listen.ends_with(":0"),
        "{listen}"
    );
    // An empty listen means every interface and a free port, as net.Listen("tcp", "").
    let any = raw(&s, "POST", "/proxies", Some(r#"{"name":"any","upstream":"x:1"}"#)).await;
    let listen = json(&any)["listen"].as_str().unwrap().to_owned();
    assert!(
        listen.starts_with("[::]:") || listen.starts_with("0.0.0.0:"),
        "{listen}"
    );
    assert!(!listen.ends_with(":0"));
    // Toxicity is not range-checked.
    let t = raw(
        &s,
        "POST",
        "/proxies/l/toxics",
        Some(r#"{"type":"noop","toxicity":5}"#),
    )
    .await;
    assert_eq!((t.status, json(&t)["toxicity"].clone()), (200, json!(5)));
}
