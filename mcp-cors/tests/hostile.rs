//! Hostile clients: requests built to confuse the guard, and admin-socket clients built to
//! exhaust it. Requests must keep being decided correctly and other clients keep working.

mod common;

use std::time::{Duration, Instant};

use actix_web::http::header::HeaderValue;
use actix_web::http::{Method, StatusCode};
use actix_web::{App, HttpResponse, test, web};
use common::server::{Setup, post, setup};
use common::*;
use mcp_cors::protocol::{ErrorCode, Request, ServerLine};
use mcp_cors::{McpCors, Policy};
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

#[actix_web::test]
async fn idn_origins_match_in_punycode_the_form_browsers_send() {
    let (svc, _) = service(POLICY).await;
    let res = call(
        &svc,
        request(Method::POST, "/mcp").insert_header(("origin", "https://xn--mnchen-3ya.example")),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(
        res.header("access-control-allow-origin"),
        Some("https://xn--mnchen-3ya.example")
    );
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
    let policy = Policy::from_toml_str(POLICY).unwrap();
    let app = App::new().wrap(McpCors::from_policy(policy)).route(
        "/mcp",
        web::get().to(|| async {
            HttpResponse::Ok()
                .insert_header(("Vary", "origin, Accept"))
                .finish()
        }),
    );
    let svc = test::init_service(app).await;
    let res = call(
        &svc,
        request(Method::GET, "/mcp").insert_header(("origin", APP)),
    )
    .await;
    assert_eq!(res.header("vary"), Some("origin, Accept"));
    assert_eq!(res.header("access-control-allow-origin"), Some(APP));
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
