//! One source of truth for `Host`: the example app turns rmcp's own Host check off
//! (`allowed_hosts(vec![])` in `src/lib.rs`), so `cors.toml` alone decides. A host that
//! rmcp's loopback-only default would refuse works when `cors.toml` names it, through the
//! real rmcp service; a host `cors.toml` does not name gets mcp-cors's 403.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{App, test};
use mcp_cors::McpCors;
use serde_json::json;

const APP: &str = "https://app.example.com";
/// Outside rmcp's default Host allow-list (loopback names only).
const INTERNAL: &str = "mcp.internal.test";

/// A `cors.toml` allowing [`APP`] and only the host [`INTERNAL`]; kept while the guard
/// lives.
fn policy() -> (tempfile::TempDir, McpCors) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cors.toml");
    std::fs::write(
        &config,
        format!("allowed_origins = [\"{APP}\"]\nallowed_hosts = [\"{INTERNAL}\"]\n"),
    )
    .unwrap();
    let cors = McpCors::try_watched(&config).expect("valid policy");
    (dir, cors)
}

fn initialize(host: &str) -> test::TestRequest {
    test::TestRequest::post()
        .uri("/mcp")
        .insert_header(("host", host))
        .insert_header(("origin", APP))
        .insert_header(("content-type", "application/json"))
        .insert_header(("accept", "application/json, text/event-stream"))
        .insert_header(("mcp-protocol-version", "2025-06-18"))
        .set_json(json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {
                "protocolVersion": "2025-06-18",
                "capabilities": {},
                "clientInfo": {"name": "hosts-test", "version": "1.0"}
            }
        }))
}

#[actix_web::test]
async fn a_host_named_in_cors_toml_reaches_rmcp() {
    let (_dir, cors) = policy();
    let sessions = Arc::new(AtomicUsize::new(0));
    let mcp = mcp_cors_e2e::mcp_service(Arc::clone(&sessions));
    let app = test::init_service(App::new().configure(mcp_cors_e2e::routes(mcp)).wrap(cors)).await;
    let res = test::call_service(&app, initialize(INTERNAL).to_request()).await;
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers().get("access-control-allow-origin").unwrap(),
        APP
    );
    assert!(res.headers().contains_key("mcp-session-id"));
    let body = tokio::time::timeout(Duration::from_secs(10), test::read_body(res))
        .await
        .expect("the initialize reply ends");
    let body = String::from_utf8_lossy(&body);
    assert!(body.contains("\"serverInfo\""), "{body}");
    assert_eq!(sessions.load(Ordering::SeqCst), 1, "rmcp made the session");
}

#[actix_web::test]
async fn a_host_not_in_cors_toml_gets_mcp_cors_403() {
    let (_dir, cors) = policy();
    let sessions = Arc::new(AtomicUsize::new(0));
    let mcp = mcp_cors_e2e::mcp_service(Arc::clone(&sessions));
    let app = test::init_service(App::new().configure(mcp_cors_e2e::routes(mcp)).wrap(cors)).await;
    // Loopback: rmcp's own default would let it in; cors.toml does not.
    let res = test::call_service(&app, initialize("localhost:8080").to_request()).await;
    assert_eq!(res.status(), 403);
    assert_eq!(
        res.headers().get("content-type").unwrap(),
        "application/json"
    );
    assert!(!res.headers().contains_key("access-control-allow-origin"));
    let body = test::read_body(res).await;
    assert_eq!(
        body,
        r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Forbidden: host not allowed"},"id":null}"#
    );
    assert_eq!(sessions.load(Ordering::SeqCst), 0, "rmcp never ran");
}
