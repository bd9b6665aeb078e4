//! The log lines that explain a 403 (target `mcp_cors::decision`, at `warn`), through a
//! real actix app: what a line says, and that a flood of refusals gives a handful of
//! lines, not one per request.

mod common;

use actix_web::{App, HttpResponse, test, web};
use common::log::Captured;
use mcp_cors::{McpCors, Policy};

/// The refusal lines logged so far.
fn refusals(captured: &Captured) -> Vec<String> {
    captured.lines_with("request refused")
}

fn post(origin: Option<&str>, host: &str) -> test::TestRequest {
    let req = test::TestRequest::post()
        .uri("/mcp")
        .insert_header(("Host", host));
    match origin {
        Some(origin) => req.insert_header(("Origin", origin)),
        None => req,
    }
}

#[actix_web::test]
async fn a_refusal_is_explained_at_warn_and_a_flood_gives_a_few_lines() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber(tracing::Level::WARN));
    let policy = Policy::from_toml_str(r#"allowed_origins = ["https://app.example"]"#).unwrap();
    let app = test::init_service(
        App::new()
            .wrap(McpCors::from_policy(policy))
            .route("/mcp", web::post().to(HttpResponse::Ok)),
    )
    .await;

    for _ in 0..100 {
        let res = test::call_service(
            &app,
            post(Some("https://app.example"), "localhost").to_request(),
        )
        .await;
        assert_eq!(res.status(), 200);
    }
    assert!(
        refusals(&captured).is_empty(),
        "allows are not logged: {:?}",
        refusals(&captured)
    );

    for _ in 0..500 {
        let res = test::call_service(
            &app,
            post(Some("https://evil.example"), "localhost").to_request(),
        )
        .await;
        assert_eq!(res.status(), 403);
    }
    let lines = refusals(&captured);
    assert!(
        (1..=5).contains(&lines.len()),
        "500 refusals gave {} lines: {lines:?}",
        lines.len()
    );
    let first = &lines[0];
    for field in [
        " WARN ",
        "mcp_cors::decision",
        // Values from the request are quoted (Debug): a hostile one cannot pass for
        // another field.
        r#"origin="https://evil.example""#,
        r#"host="localhost""#,
        r#"method="POST""#,
        r#"path="/mcp""#,
        "reason=origin not allowed",
        r#"kind="origin""#,
        r#"verdict="deny""#,
    ] {
        assert!(first.contains(field), "{field:?} missing from {first}");
    }

    // Another origin, and a Host refusal, each get their own first line.
    let res = test::call_service(
        &app,
        post(Some("https://other.example"), "localhost").to_request(),
    )
    .await;
    assert_eq!(res.status(), 403);
    let res = test::call_service(&app, post(None, "evil.example:8080").to_request()).await;
    assert_eq!(res.status(), 403);
    let lines = refusals(&captured);
    assert!(
        lines
            .iter()
            .any(|l| l.contains(r#"origin="https://other.example""#)),
        "{lines:?}"
    );
    let host_line = lines
        .iter()
        .find(|l| l.contains(r#"host="evil.example:8080""#))
        .unwrap_or_else(|| panic!("no line for the Host refusal: {lines:?}"));
    assert!(
        host_line.contains(r#"kind="host""#) && host_line.contains(r#"origin="-""#),
        "{host_line}"
    );
}

#[actix_web::test]
async fn a_refusal_line_names_the_client_through_trusted_and_untrusted_proxies() {
    let captured = Captured::default();
    let _guard = tracing::subscriber::set_default(captured.subscriber(tracing::Level::WARN));
    let policy = Policy::from_toml_str(
        "allowed_origins = [\"https://app.example\"]\ntrusted_proxies = [\"10.0.0.0/8\"]\n",
    )
    .unwrap();
    let app = test::init_service(
        App::new()
            .wrap(McpCors::from_policy(policy))
            .route("/mcp", web::post().to(HttpResponse::Ok)),
    )
    .await;

    // Each case from its own origin: lines are rate-limited per origin.
    let cases = [
        // No proxy in between: the peer, without its port.
        (
            "https://direct.example",
            "198.51.100.7:50000",
            None,
            "198.51.100.7",
        ),
        // An untrusted peer claiming to forward for someone: its claim is ignored.
        (
            "https://spoof.example",
            "198.51.100.7:50000",
            Some("10.0.0.5, 203.0.113.9"),
            "198.51.100.7",
        ),
        // A trusted proxy: the right-most address that is not a trusted proxy.
        (
            "https://proxied.example",
            "10.0.0.1:443",
            Some("6.6.6.6, 203.0.113.9, 10.3.3.3"),
            "203.0.113.9",
        ),
    ];
    for (origin, from, forwarded_for, _) in cases {
        let mut req = post(Some(origin), "localhost").peer_addr(from.parse().unwrap());
        if let Some(xff) = forwarded_for {
            req = req.insert_header(("X-Forwarded-For", xff));
        }
        let res = test::call_service(&app, req.to_request()).await;
        assert_eq!(res.status(), 403);
    }
    let lines = refusals(&captured);
    for (origin, from, _, client) in cases {
        let line = lines
            .iter()
            .find(|l| l.contains(&format!("origin={origin:?}")))
            .unwrap_or_else(|| panic!("no line for {origin}: {lines:?}"));
        assert!(
            line.contains(&format!("client={client:?}")),
            "from {from}, the client is {client}: {line}"
        );
    }
}
