//! An absolute-form request target (`POST http://host/mcp HTTP/1.1`) is judged by its own
//! authority, not by the `Host` header (RFC 9112 §3.2.2), over a real TCP connection to a
//! real actix server: HTTP clients never send this form, so the request is written raw.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use mcp_cors::{McpCors, Policy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A server on a loopback port with the default hosts (`localhost`, `127.0.0.1`, `[::1]`)
/// and one route, `/mcp`, whose handler counts its runs and answers the path and `Host`
/// it was given.
fn start() -> (SocketAddr, Arc<AtomicUsize>, actix_web::dev::ServerHandle) {
    let hits = Arc::new(AtomicUsize::new(0));
    let counted = Arc::clone(&hits);
    let cors = McpCors::from_policy(
        Policy::from_toml_str(r#"allowed_origins = ["https://app.example.com"]"#).unwrap(),
    );
    let server = HttpServer::new(move || {
        let hits = Arc::clone(&counted);
        App::new().wrap(cors.clone()).route(
            "/mcp",
            web::post().to(move |req: HttpRequest| {
                let hits = Arc::clone(&hits);
                async move {
                    hits.fetch_add(1, Ordering::SeqCst);
                    let host = req
                        .headers()
                        .get("host")
                        .and_then(|h| h.to_str().ok())
                        .unwrap_or("-")
                        .to_owned();
                    HttpResponse::Ok().body(format!(
                        "path={} host={host} info={}",
                        req.path(),
                        req.connection_info().host()
                    ))
                }
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    (addr, hits, handle)
}

/// Writes `head` (the request line and headers, without the blank line) and returns the
/// status code and the body.
async fn raw(addr: SocketAddr, head: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let request = format!("{head}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stream.read_to_end(&mut answer),
    )
    .await
    .expect("answered within 10 s")
    .unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

#[actix_web::test]
async fn the_target_authority_is_judged_not_the_host_header() {
    let (addr, hits, handle) = start();

    // A disallowed authority in the target, an allowed Host header: refused.
    let (status, body) = raw(
        addr,
        "POST http://evil.example/mcp HTTP/1.1\r\nHost: localhost",
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("host not allowed"), "{body}");
    assert_eq!(hits.load(Ordering::SeqCst), 0, "the handler did not run");

    // The other way round: allowed, routed to `/mcp`, and the handler is told the host
    // that was judged, not the Host header that was ignored.
    let (status, body) = raw(
        addr,
        "POST http://localhost/mcp HTTP/1.1\r\nHost: evil.example",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, "path=/mcp host=localhost info=localhost");
    assert_eq!(hits.load(Ordering::SeqCst), 1);

    // With a port, and with the usual origin form, nothing changes.
    let (status, body) = raw(addr, "POST http://127.0.0.1:8080/mcp HTTP/1.1\r\nHost: x").await;
    assert_eq!(
        (status, body.as_str()),
        (200, "path=/mcp host=127.0.0.1:8080 info=127.0.0.1:8080")
    );
    let (status, _) = raw(addr, "POST /mcp HTTP/1.1\r\nHost: localhost").await;
    assert_eq!(status, 200);
    let (status, _) = raw(addr, "POST /mcp HTTP/1.1\r\nHost: evil.example").await;
    assert_eq!(status, 403);
    assert_eq!(hits.load(Ordering::SeqCst), 3);
    handle.stop(true).await;
}

#[actix_web::test]
async fn an_absolute_target_routes_on_its_path_and_userinfo_is_refused() {
    let (addr, hits, handle) = start();
    // The path decides the route: an allowed authority with another path is not `/mcp`.
    let (status, _) = raw(
        addr,
        "POST http://localhost/other HTTP/1.1\r\nHost: localhost",
    )
    .await;
    assert_eq!(status, 404);
    let (status, body) = raw(
        addr,
        "POST http://localhost/mcp?x=1 HTTP/1.1\r\nHost: localhost",
    )
    .await;
    assert_eq!(
        (status, body.as_str()),
        (200, "path=/mcp host=localhost info=localhost")
    );
    // Userinfo in the target (RFC 9110 §4.2.4: an error) is not a host to let through.
    let (status, _) = raw(
        addr,
        "POST http://localhost@evil.example/mcp HTTP/1.1\r\nHost: localhost",
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = raw(
        addr,
        "POST http://evil.example@localhost/mcp HTTP/1.1\r\nHost: localhost",
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(hits.load(Ordering::SeqCst), 1);
    handle.stop(true).await;
}
