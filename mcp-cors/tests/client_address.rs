//! The client's address in decision events, through a real actix service over a watched
//! file, with the events read from its admin socket: the peer's IP by default, the
//! forwarded client behind a trusted proxy, never what an untrusted peer claims; and two
//! runs of allows from two clients stay two events.

mod common;

use std::net::SocketAddr;

use actix_web::http::Method;
use common::client::Client;
use common::server::wait_for_socket;
use common::{APP, call, request, service_with};
use mcp_cors::McpCors;
use mcp_cors::protocol::{DecisionEvent, Event, Request};

const EVIL: &str = "https://evil.example";

const POLICY: &str = r#"allowed_origins = ["https://app.example.com"]
trusted_proxies = ["10.0.0.0/8", "fd00::/8"]

[routes.api]
paths = ["/api/*"]
allowed_origins = ["https://app.example.com"]
"#;

/// A request's path, its peer, its forwarding headers, and the client its event names.
type Case = (
    &'static str,
    &'static str,
    &'static [(&'static str, &'static str)],
    &'static str,
);

async fn next_decision(client: &mut Client) -> DecisionEvent {
    match client
        .expect_event(|e| matches!(e, Event::Decision(_)))
        .await
    {
        Event::Decision(d) => d,
        _ => unreachable!(),
    }
}

fn peer(addr: &str) -> SocketAddr {
    addr.parse().expect("a socket address")
}

/// A POST to `path` from `origin`, sent by `from`, with extra `headers`.
fn post(
    path: &str,
    origin: &str,
    from: &str,
    headers: &[(&str, &str)],
) -> actix_web::test::TestRequest {
    let mut req = request(Method::POST, path)
        .insert_header(("origin", origin))
        .peer_addr(peer(from));
    for (name, value) in headers {
        req = req.append_header((*name, *value));
    }
    req
}

#[actix_web::test]
async fn events_name_the_peer_or_the_client_a_trusted_proxy_forwarded() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cors.toml");
    std::fs::write(&config, POLICY).unwrap();
    let (svc, _) = service_with(McpCors::try_watched(&config).expect("valid policy")).await;
    let socket = dir.path().join("cors.sock");
    wait_for_socket(&socket).await;
    let mut client = Client::connect(&socket).await;
    client.call(Request::Subscribe { replay: 0 }).await;

    let cases: [Case; 6] = [
        // Straight from a browser: the peer, without its port.
        ("/mcp", "198.51.100.7:51000", &[], "198.51.100.7"),
        // An untrusted peer's forwarding headers are never read.
        (
            "/mcp",
            "198.51.100.7:51000",
            &[
                ("x-forwarded-for", "10.0.0.9"),
                ("forwarded", "for=192.0.2.1"),
            ],
            "198.51.100.7",
        ),
        // Through two trusted proxies, with an address the sender forged on the left.
        (
            "/mcp",
            "10.0.0.1:443",
            &[("x-forwarded-for", "6.6.6.6, 203.0.113.5, 10.2.2.2")],
            "203.0.113.5",
        ),
        // `Forwarded` when there is no `X-Forwarded-For`, IPv6 behind an IPv6 proxy.
        (
            "/mcp",
            "[fd00::1]:443",
            &[("forwarded", r#"for="[2001:db8::5]:4711";proto=https"#)],
            "2001:db8::5",
        ),
        // A route's decision: the top level's proxies still apply.
        (
            "/api/x",
            "10.0.0.1:443",
            &[("x-forwarded-for", "203.0.113.6")],
            "203.0.113.6",
        ),
        // A trusted proxy that cannot name the sender: the proxy itself.
        (
            "/mcp",
            "10.0.0.1:443",
            &[("x-forwarded-for", "unknown")],
            "10.0.0.1",
        ),
    ];
    for (path, from, headers, want) in cases {
        let res = call(&svc, post(path, EVIL, from, headers)).await;
        assert_eq!(res.status, 403);
        let d = next_decision(&mut client).await;
        assert_eq!(
            (d.path.as_str(), d.client.as_deref()),
            (path, Some(want)),
            "from {from} with {headers:?}: {d:?}"
        );
    }

    // Allows from two clients behind one proxy: two runs, each with its count.
    for client_ip in ["203.0.113.1", "203.0.113.1", "203.0.113.2"] {
        let headers = [("x-forwarded-for", client_ip)];
        let res = call(&svc, post("/mcp", APP, "10.0.0.1:443", &headers)).await;
        assert_eq!(res.status, 200);
    }
    let mut runs = Vec::new();
    while runs.len() < 2 {
        let d = next_decision(&mut client).await;
        runs.push((d.verdict.to_string(), d.client, d.count));
    }
    assert_eq!(
        runs,
        [
            ("allow".to_owned(), Some("203.0.113.1".to_owned()), 2),
            ("allow".to_owned(), Some("203.0.113.2".to_owned()), 1),
        ]
    );
}
