//! Route-aware admin edits end to end: a real server on a real policy file, its real admin
//! socket, and real requests to paths of a route and of the top level.

mod common;

use std::fs;
use std::net::SocketAddr;

use common::client::Client;
use common::server::setup;
use mcp_cors::protocol::{ErrorCode, Request, ServerLine};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const A: &str = "https://a.example.com";
const DOCS: &str = "https://docs.example.com";

const POLICY: &str = "\
# Production policy. Owner: platform team.
allowed_origins = [\"https://a.example.com\"]  # the web UI

# Public metadata for OAuth discovery.
[routes.meta]
paths = [\"/meta/*\"]  # RFC 9728
allowed_origins = [
  \"https://a.example.com\",  # the web UI too
]

# Kept for probes.
[routes.health]
paths = [\"/health\"]
guard = false
";

/// The status of a POST to `path` with `Host: host` and, if given, `Origin: origin`, sent
/// as raw HTTP so that the `Host` header is exactly the one given.
async fn post(addr: SocketAddr, path: &str, host: &str, origin: Option<&str>) -> u16 {
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{origin}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    let status = response.split(' ').nth(1).expect("a status line");
    status.parse().expect("a numeric status")
}

async fn from(addr: SocketAddr, path: &str, origin: &str) -> u16 {
    post(addr, path, "localhost", Some(origin)).await
}

fn add_origin(origin: &str, route: Option<&str>, force: bool) -> Request {
    Request::AddOrigin {
        origin: origin.into(),
        force,
        route: route.map(str::to_owned),
    }
}

#[actix_web::test]
async fn an_origin_added_to_a_route_persists_in_its_table_and_serves_that_route_only() {
    let s = setup(POLICY).await;
    let mut client = Client::connect(&s.socket).await;
    assert_eq!(from(s.server.addr, "/meta/x", DOCS).await, 403);

    let reply = client
        .call(add_origin(
            "HTTPS://Docs.Example.com:443",
            Some("meta"),
            false,
        ))
        .await;
    assert_eq!(
        reply,
        ServerLine::OriginChanged {
            origin: DOCS.into(),
            changed: true,
            route: Some("meta".into()),
        }
    );
    // The reply came once the policy serves it: the very next request to the route
    // passes, and `/mcp` (the top level) still refuses it.
    assert_eq!(from(s.server.addr, "/meta/x", DOCS).await, 200);
    assert_eq!(from(s.server.addr, "/mcp", DOCS).await, 403);
    assert_eq!(from(s.server.addr, "/mcp", A).await, 200);
    assert_eq!(
        fs::read_to_string(&s.config).unwrap(),
        POLICY.replace(
            "  \"https://a.example.com\",  # the web UI too\n",
            "  \"https://a.example.com\",  # the web UI too\n  \"https://docs.example.com\",\n"
        ),
        "the entry is in [routes.meta], comments and layout kept"
    );

    let reply = client
        .call(Request::RemoveOrigin {
            origin: DOCS.into(),
            route: Some("meta".into()),
        })
        .await;
    assert_eq!(
        reply,
        ServerLine::OriginChanged {
            origin: DOCS.into(),
            changed: true,
            route: Some("meta".into()),
        }
    );
    assert_eq!(from(s.server.addr, "/meta/x", DOCS).await, 403);
    assert_eq!(fs::read_to_string(&s.config).unwrap(), POLICY);
    s.server.handle.stop(true).await;
}

#[actix_web::test]
async fn adding_to_a_route_that_inherits_keeps_what_it_inherited() {
    let policy =
        "allowed_origins = [\"https://a.example.com\"]\n\n[routes.meta]\npaths = [\"/meta\"]\n";
    let s = setup(policy).await;
    let mut client = Client::connect(&s.socket).await;
    let reply = client.call(add_origin(DOCS, Some("meta"), false)).await;
    assert!(
        matches!(reply, ServerLine::OriginChanged { changed: true, .. }),
        "{reply:?}"
    );
    assert_eq!(from(s.server.addr, "/meta", DOCS).await, 200);
    assert_eq!(
        from(s.server.addr, "/meta", A).await,
        200,
        "the inherited origin still passes on the route"
    );
    assert_eq!(from(s.server.addr, "/mcp", DOCS).await, 403);
    assert_eq!(
        fs::read_to_string(&s.config).unwrap(),
        format!(
            "{policy}allowed_origins = [\"https://a.example.com\", \"https://docs.example.com\"]\n"
        )
    );
    s.server.handle.stop(true).await;
}

#[actix_web::test]
async fn a_host_added_to_a_route_passes_the_guard_there_only() {
    let s = setup(POLICY).await;
    let mut client = Client::connect(&s.socket).await;
    let pod = "10.1.2.3:8080";
    assert_eq!(post(s.server.addr, "/meta/x", pod, None).await, 403);
    let reply = client
        .call(Request::AddHost {
            host: "10.0.0.0/8".into(),
            force: false,
            route: Some("meta".into()),
        })
        .await;
    assert_eq!(
        reply,
        ServerLine::HostChanged {
            host: "10.0.0.0/8".into(),
            changed: true,
            route: Some("meta".into()),
        }
    );
    assert_eq!(post(s.server.addr, "/meta/x", pod, None).await, 200);
    assert_eq!(post(s.server.addr, "/mcp", pod, None).await, 403);
    assert_eq!(
        post(s.server.addr, "/meta/x", "localhost:8080", None).await,
        200,
        "the loopback defaults it inherited are written out with it"
    );
    let on_disk = fs::read_to_string(&s.config).unwrap();
    assert!(
        on_disk.contains(
            "  \"https://a.example.com\",  # the web UI too\n]\nallowed_hosts = [\"localhost\", \"127.0.0.1\", \"[::1]\", \"10.0.0.0/8\"]\n\n# Kept for probes.\n"
        ),
        "{on_disk}"
    );
    s.server.handle.stop(true).await;
}

#[actix_web::test]
async fn route_edits_that_cannot_be_made_are_refused_and_write_nothing() {
    let policy =
        format!("{POLICY}\n[routes.creds]\npaths = [\"/creds\"]\nallow_credentials = true\n");
    let s = setup(&policy).await;
    let mut client = Client::connect(&s.socket).await;
    let refused = [
        (
            add_origin(DOCS, Some("metadata"), false),
            ErrorCode::NotFound,
            "its routes are: creds, health, meta",
        ),
        (
            add_origin(DOCS, Some("health"), false),
            ErrorCode::Unguarded,
            "guard = false",
        ),
        (
            Request::RemoveHost {
                host: "localhost".into(),
                route: Some("health".into()),
            },
            ErrorCode::Unguarded,
            "allowed_hosts",
        ),
        (
            add_origin("*", Some("creds"), false),
            ErrorCode::ForceRequired,
            "routes.creds.allowed_origins",
        ),
        // Forced, `*` with credentials inside the route breaks a loader rule, which names
        // the route's key.
        (
            add_origin("*", Some("creds"), true),
            ErrorCode::InvalidOrigin,
            "routes.creds.allowed_origins",
        ),
        (
            Request::RemoveOrigin {
                origin: DOCS.into(),
                route: Some("meta".into()),
            },
            ErrorCode::NotFound,
            "routes.meta.allowed_origins",
        ),
    ];
    for (request, code, says) in refused {
        match client.call(request.clone()).await {
            ServerLine::Error { code: got, message } => {
                assert_eq!(got, code, "{request:?}: {message}");
                assert!(message.contains(says), "{request:?}: {message}");
            }
            other => panic!("{request:?} was not refused: {other:?}"),
        }
    }
    assert_eq!(fs::read_to_string(&s.config).unwrap(), policy);
    assert_eq!(
        from(s.server.addr, "/creds", "https://any.example").await,
        403
    );
    s.server.handle.stop(true).await;
}

/// A route edit costs what a top-level edit costs, per origin in the file: the entries
/// are compared as the parsed policy holds them, never normalised again one by one. On
/// 100 000 inherited origins, the route's edit writes them all out (the file then holds
/// twice as many), so it may cost about twice a top-level edit, never more than a few
/// times; and each finishes in seconds, not the minutes a quadratic compare would take.
#[actix_web::test]
async fn a_route_edit_on_100_000_origins_costs_about_what_a_top_level_edit_does() {
    let origins: Vec<String> = (0..100_000)
        .map(|i| format!("\"https://o{i}.example.com\""))
        .collect();
    let policy = format!(
        "allowed_origins = [\n  {},\n]\n\n[routes.meta]\npaths = [\"/meta\"]\n",
        origins.join(",\n  ")
    );
    let s = setup(&policy).await;
    let mut client = Client::connect(&s.socket).await;
    let mut timed = async |request: Request| {
        let start = std::time::Instant::now();
        let reply = client.call(request).await;
        assert!(
            matches!(reply, ServerLine::OriginChanged { changed: true, .. }),
            "{reply:?}"
        );
        start.elapsed()
    };
    let top = timed(add_origin("https://new.example", None, false)).await;
    let inherited = timed(add_origin(DOCS, Some("meta"), false)).await;
    let own = timed(Request::RemoveOrigin {
        origin: "https://o50000.example.com".into(),
        route: Some("meta".into()),
    })
    .await;
    eprintln!(
        "100 000 origins: top-level add {top:?}; route add writing the inherited list out \
         {inherited:?} ({:.2}x); route remove from its own list {own:?} ({:.2}x)",
        inherited.as_secs_f64() / top.as_secs_f64(),
        own.as_secs_f64() / top.as_secs_f64()
    );
    for (what, took) in [("inherited", inherited), ("own", own)] {
        assert!(
            took < top * 5 + std::time::Duration::from_millis(500),
            "the route edit ({what}) took {took:?}, a top-level one {top:?}"
        );
    }
    assert_eq!(from(s.server.addr, "/meta", DOCS).await, 200);
    assert_eq!(
        from(s.server.addr, "/meta", "https://o50000.example.com").await,
        403
    );
    assert_eq!(
        from(s.server.addr, "/mcp", "https://o50000.example.com").await,
        200
    );
    s.server.handle.stop(true).await;
}
