//! Hostile clients: requests built to confuse the guard, and admin-socket clients built to
//! exhaust it. Requests must keep being decided correctly and other clients keep working.

mod common;

use std::time::{Duration, Instant};

use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{App, HttpResponse, test, web};
use common::server::{Setup, post, setup};
use common::*;
use mcp_cors::protocol::{ErrorCode, Request, ServerLine};
use mcp_cors::{DenyReason, McpCors, Policy};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

const POLICY: &str = r#"allowed_origins = ["https://app.example.com", "https://münchen.example"]"#;

#[actix_web::test]
async fn confusing_origins_are_refused() {
    let (svc, hits) = service(POLICY).await;
    let huge = format!("https://{}.example.com", "a".repeat(100_000));
    let cases: Vec<(&str, HeaderValue)> = vec![
        ("huge", HeaderValue::from_str(&huge).unwrap()),
        (
            "two values in one header",
            HeaderValue::from_static("https://app.example.com, https://evil.example"),
        ),
        (
            "non-UTF-8 bytes",
            HeaderValue::from_bytes(b"https://app.example.com\xff").unwrap(),
        ),
        (
            "unicode host as sent raw",
            HeaderValue::from_bytes("https://münchen.example".as_bytes()).unwrap(),
        ),
        (
            "upper case",
            HeaderValue::from_static("https://APP.example.com"),
        ),
        (
            "default port",
            HeaderValue::from_static("https://app.example.com:443"),
        ),
        (
            "trailing slash",
            HeaderValue::from_static("https://app.example.com/"),
        ),
        (
            "path",
            HeaderValue::from_static("https://app.example.com/mcp"),
        ),
        (
            "userinfo",
            HeaderValue::from_static("https://user@app.example.com"),
        ),
        ("null", HeaderValue::from_static("null")),
        ("empty", HeaderValue::from_static("")),
        (
            "suffix trick",
            HeaderValue::from_static("https://app.example.com.evil.example"),
        ),
    ];
    for (what, origin) in cases {
        let res = call(
            &svc,
            request(Method::POST, "/mcp").insert_header(("origin", origin)),
        )
        .await;
        assert_eq!(res.status, StatusCode::FORBIDDEN, "{what}");
        res.assert_no_cors_headers();
    }
    assert_eq!(hits.get(), 0);
}

/// The reason `Policy::decide` gives for `origin` from a request with an allowed Host.
fn refusal_reason(policy: &str, origins: &[&[u8]]) -> Option<DenyReason> {
    let policy = Policy::from_toml_str(policy).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(header::HOST, HeaderValue::from_static(HOST));
    for origin in origins {
        headers.append(header::ORIGIN, HeaderValue::from_bytes(origin).unwrap());
    }
    policy
        .decide(&Method::POST, &headers, None)
        .reason()
        .cloned()
}

/// README: a request's `Origin` must be exactly what a browser sends; anything else is
/// malformed, not merely "not allowed" (the file's entries are normalised, requests never).
#[actix_web::test]
async fn non_browser_serialisations_are_refused_as_malformed() {
    for origin in [
        &b"https://APP.example.com"[..],
        b"HTTPS://app.example.com",
        b"https://app.example.com:443",
        b"http://localhost:80",
        b"https://app.example.com/",
        b"https://app.example.com, https://evil.example",
        b"https://app.example.com https://app.example.com",
        b"https://app.example.com\xff",
        "https://münchen.example".as_bytes(),
    ] {
        assert_eq!(
            refusal_reason(POLICY, &[origin]),
            Some(DenyReason::OriginMalformed),
            "{}",
            String::from_utf8_lossy(origin)
        );
    }
    // Repeated headers, even of one allowed origin, are malformed too.
    let app = APP.as_bytes();
    assert_eq!(
        refusal_reason(POLICY, &[app, app]),
        Some(DenyReason::OriginMalformed)
    );
    // Well-formed but not listed is the other reason.
    assert_eq!(
        refusal_reason(POLICY, &[b"https://evil.example"]),
        Some(DenyReason::OriginNotAllowed)
    );
    assert_eq!(refusal_reason(POLICY, &[app]), None);
}

#[actix_web::test]
async fn a_thousand_repeated_origin_headers_are_refused() {
    let (svc, hits) = service(POLICY).await;
    let mut req = request(Method::POST, "/mcp");
    for _ in 0..1000 {
        req = req.append_header(("origin", APP));
    }
    let res = call(&svc, req).await;
    res.assert_forbidden_origin();
    let mut req = preflight(APP, "POST", None);
    for _ in 0..1000 {
        req = req.append_header(("origin", "https://evil.example"));
    }
    call(&svc, req).await.assert_forbidden_origin();
    assert_eq!(hits.get(), 0);
}

#[actix_web::test]
async fn idn_origins_match_in_punycode_the_form_browsers_send() {
    // Listed in Unicode form (POLICY) and in punycode form: both match the punycode a
    // browser sends, and echo it as sent.
    let punycode_listed = r#"allowed_origins = ["https://xn--mnchen-3ya.example"]"#;
    for policy in [POLICY, punycode_listed] {
        let (svc, hits) = service(policy).await;
        let res = call(
            &svc,
            request(Method::POST, "/mcp")
                .insert_header(("origin", "https://xn--mnchen-3ya.example")),
        )
        .await;
        assert_eq!(res.status, StatusCode::OK, "{policy}");
        assert_eq!(
            res.header("access-control-allow-origin"),
            Some("https://xn--mnchen-3ya.example")
        );
        // Another IDN (zürich), and a lookalike of the listed one (mùnchen): refused.
        for other in [
            "https://xn--zrich-kva.example",
            "https://xn--mnchen-2ya.example",
        ] {
            call(
                &svc,
                request(Method::POST, "/mcp").insert_header(("origin", other)),
            )
            .await
            .assert_forbidden_origin();
        }
        assert_eq!(hits.get(), 1, "{policy}");
    }
}

#[actix_web::test]
async fn host_forms_with_and_without_ports_and_ipv6() {
    let (svc, hits) = service(POLICY).await;
    for (host, ok) in [
        ("localhost", true),
        ("localhost:8080", true),
        ("LOCALHOST:8080", true),
        ("127.0.0.1:1", true),
        ("[::1]", true),
        ("[::1]:8080", true),
        ("[::2]:8080", false),
        ("[::2]", false),
        ("[::1", false),
        ("::1", false),
        ("[0:0:0:0:0:0:0:1]:8080", false), // not the canonical form browsers send
        ("localhost.:8080", false),
        ("localhost:8080:1", false),
        ("localhost:99999", false),
        ("127.0.0.1.nip.io", false),
        ("", false),
    ] {
        let req = test::TestRequest::get()
            .uri("/mcp")
            .insert_header(("host", host));
        let res = call(&svc, req).await;
        let want = if ok {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(res.status, want, "Host: {host:?}");
    }
    let req = test::TestRequest::get()
        .uri("/mcp")
        .append_header(("host", "localhost"))
        .append_header(("host", "evil.example"));
    assert_eq!(
        call(&svc, req).await.status,
        StatusCode::FORBIDDEN,
        "two Host headers"
    );
    assert_eq!(hits.get(), 6);
}

#[actix_web::test]
async fn a_vary_already_naming_origin_is_not_repeated() {
    for (handler_vary, want) in [
        ("origin", "origin"),
        ("origin, Accept", "origin, Accept"),
        ("Accept, ORIGIN", "Accept, ORIGIN"),
        ("Accept", "Accept, Origin"),
    ] {
        let policy = Policy::from_toml_str(POLICY).unwrap();
        let app = App::new().wrap(McpCors::from_policy(policy)).route(
            "/mcp",
            web::get().to(move || async move {
                HttpResponse::Ok()
                    .insert_header(("Vary", handler_vary))
                    .finish()
            }),
        );
        let svc = test::init_service(app).await;
        // Allowed origin, and no Origin at all: both merge into the handler's Vary.
        for origin in [Some(APP), None] {
            let mut req = request(Method::GET, "/mcp");
            if let Some(o) = origin {
                req = req.insert_header(("origin", o));
            }
            let res = call(&svc, req).await;
            assert_eq!(
                res.header("vary"),
                Some(want),
                "{handler_vary:?} {origin:?}"
            );
            assert_eq!(res.header("access-control-allow-origin"), origin);
        }
    }
}

// ---- the admin socket ----

const FILE_POLICY: &str = "allowed_origins = [\"https://app.example.com\"]\n";

async fn hello(stream: &mut BufReader<UnixStream>) -> ServerLine {
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_line(&mut line))
        .await
        .expect("a line within 10 s")
        .unwrap();
    serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"))
}

/// A well-behaved client: connects, asks for stats, gets them.
async fn assert_admin_works(socket: &std::path::Path) {
    let mut client = BufReader::new(UnixStream::connect(socket).await.unwrap());
    assert!(matches!(hello(&mut client).await, ServerLine::Hello { .. }));
    let mut req = serde_json::to_vec(&Request::Stats).unwrap();
    req.push(b'\n');
    client.get_mut().write_all(&req).await.unwrap();
    assert!(matches!(hello(&mut client).await, ServerLine::Stats(_)));
}

#[actix_web::test]
async fn a_thousand_held_connections_starve_no_one() {
    let Setup {
        server,
        socket,
        _dir,
        ..
    } = setup(FILE_POLICY).await;

    let mut held = Vec::new();
    for _ in 0..1000 {
        held.push(UnixStream::connect(&socket).await.unwrap());
    }
    assert_eq!(
        post(server.addr, APP).await.0,
        200,
        "requests are still served"
    );
    assert_admin_works(&socket).await;
    drop(held);
    server.handle.stop(true).await;
}

#[actix_web::test]
async fn slowloris_and_a_100_mb_line_are_cut_off() {
    let Setup {
        server,
        socket,
        _dir,
        ..
    } = setup(FILE_POLICY).await;

    // One byte a second: never a complete line. The server closes it once idle too long.
    let slow = {
        let socket = socket.clone();
        actix_web::rt::spawn(async move {
            let mut stream = BufReader::new(UnixStream::connect(&socket).await.unwrap());
            assert!(matches!(hello(&mut stream).await, ServerLine::Hello { .. }));
            let begun = Instant::now();
            for byte in b"{\"cmd\":\"stats\"".iter().cycle() {
                if stream.get_mut().write_all(&[*byte]).await.is_err() {
                    break;
                }
                let mut buf = [0u8; 512];
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await
                {
                    let text = String::from_utf8_lossy(&buf[..n]).into_owned();
                    assert!(text.contains("no complete request"), "{text}");
                    break;
                }
                assert!(
                    begun.elapsed() < Duration::from_secs(30),
                    "a trickling client was never cut off"
                );
            }
            begun.elapsed()
        })
    };

    // 100 MB without a newline: refused after the first 64 KiB, memory does not follow.
    let mut big = BufReader::new(UnixStream::connect(&socket).await.unwrap());
    assert!(matches!(hello(&mut big).await, ServerLine::Hello { .. }));
    let chunk = vec![b'x'; 1 << 20];
    let mut sent = 0usize;
    while sent < 100 << 20 {
        if big.get_mut().write_all(&chunk).await.is_err() {
            break;
        }
        sent += chunk.len();
    }
    let mut rest = String::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), big.read_to_string(&mut rest)).await;
    if !rest.is_empty() {
        let first: ServerLine = serde_json::from_str(rest.lines().next().unwrap()).unwrap();
        assert!(
            matches!(
                first,
                ServerLine::Error {
                    code: ErrorCode::LineTooLong,
                    ..
                }
            ),
            "{first:?}"
        );
    }
    assert!(
        sent < 100 << 20,
        "the server should stop reading long before 100 MB"
    );

    // Meanwhile, and after: requests served, other clients fine.
    assert_eq!(post(server.addr, APP).await.0, 200);
    assert_admin_works(&socket).await;
    let waited = slow.await.unwrap();
    assert!(
        waited >= Duration::from_secs(5),
        "cut off too early: {waited:?}"
    );
    assert_admin_works(&socket).await;
    server.handle.stop(true).await;
}

/// Kubernetes probes and load balancers send `Host: <pod-ip>:<port>`: a CIDR entry lets
/// those through without listing every address, and never a name that looks like one.
#[actix_web::test]
async fn cidr_host_entries_pass_pod_addresses_and_nothing_that_merely_looks_like_one() {
    let (svc, hits) =
        service("allowed_hosts = [\"localhost\", \"10.0.0.0/8\", \"fd00::/8\"]\n").await;
    let mut passed = 0;
    for (host, ok) in [
        ("10.42.0.17:8080", true),
        ("10.42.0.17", true),
        ("[fd00::17]:8080", true),
        ("[fd00::17]", true),
        ("localhost:8080", true),
        ("11.42.0.17:8080", false),
        ("10.42.0.17.evil.com:8080", false),
        ("010.42.0.17:8080", false),
        ("[fe80::1]:8080", false),
        ("evil.example:8080", false),
    ] {
        let req = test::TestRequest::get()
            .uri("/mcp")
            .insert_header(("host", host));
        let res = call(&svc, req).await;
        let want = if ok {
            passed += 1;
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(res.status, want, "Host: {host:?}");
    }
    assert_eq!(hits.get(), passed);
}

/// A page served by the server itself (the MCP conformance suite's `LocalhostHostAccepted`:
/// `Host: localhost:8080`, `Origin: http://localhost:8080`) is allowed without being
/// listed; a rebound Host is still refused by the Host guard, and the switch turns it off.
#[actix_web::test]
async fn same_origin_pages_are_allowed_and_a_rebound_host_is_not() {
    let (svc, hits) = service("allowed_origins = [\"https://app.example.com\"]\n").await;
    let ask = |host: &'static str, origin: &'static str| {
        test::TestRequest::post()
            .uri("/mcp")
            .insert_header(("host", host))
            .insert_header(("origin", origin))
    };
    for (host, origin, ok) in [
        ("localhost:8080", "http://localhost:8080", true),
        ("LOCALHOST:8080", "http://localhost:8080", true),
        ("127.0.0.1:3000", "http://127.0.0.1:3000", true),
        ("[::1]:8080", "http://[::1]:8080", true),
        ("localhost", "http://localhost", true),
        ("localhost:443", "https://localhost", true),
        ("localhost:8080", "http://localhost:8081", false),
        ("localhost:8080", "http://127.0.0.1:8080", false),
        ("localhost", "https://localhost:8443", false),
        ("evil.example:8080", "http://evil.example:8080", false),
        ("localhost:8080", "http://localhost:8080/", false),
    ] {
        let res = call(&svc, ask(host, origin)).await;
        let want = if ok {
            StatusCode::OK
        } else {
            StatusCode::FORBIDDEN
        };
        assert_eq!(res.status, want, "Host: {host}, Origin: {origin}");
        if ok {
            assert_eq!(
                res.headers.get("access-control-allow-origin").unwrap(),
                origin
            );
        }
    }
    assert_eq!(hits.get(), 6);

    let (svc, _) =
        service("allowed_origins = [\"https://app.example.com\"]\nallow_same_origin = false\n")
            .await;
    let res = call(&svc, ask("localhost:8080", "http://localhost:8080")).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "turned off");
    // With the Host guard off, no Host is trusted to say what the server's origin is.
    let (svc, _) = service("allowed_hosts = [\"*\"]\n").await;
    let res = call(&svc, ask("evil.example:8080", "http://evil.example:8080")).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN, "guard off");
}
