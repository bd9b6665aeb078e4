//! The example MCP server's parts, shared by `examples/mcp_server.rs` and the end-to-end
//! tests in `tests/`, so that the tests exercise exactly what the example runs.
//!
//! The one rule this module shows: **`McpCors` is the single source of truth for `Host`
//! and `Origin`.** rmcp has checks of its own (a loopback-only `Host` allow-list, an
//! optional `Origin` list) and answers `OPTIONS` with 405; left on, they would refuse what
//! `cors.toml` allows, and a hot-reloaded origin would still be refused by rmcp. So rmcp's
//! checks are turned off here and `McpCors` wraps the whole app, answering preflights
//! before they reach rmcp.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use actix_web::{HttpResponse, web};
use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{ServerCapabilities, ServerConfig};
use rmcp::{Peer, RoleServer, ServerHandler, schemars, tool, tool_handler, tool_router};
use rmcp_actix_web::transport::{LocalSessionManager, StreamableHttpService};

/// Arguments of the `echo` tool.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct EchoArgs {
    /// The text to send back.
    pub text: String,
}

/// Arguments of the `add` tool.
#[derive(Debug, serde::Deserialize, schemars::JsonSchema)]
pub struct AddArgs {
    /// The left operand.
    pub a: i64,
    /// The right operand.
    pub b: i64,
}

/// The example's MCP tools: `echo`, `add`, and `refresh_tools`, which makes the server
/// send a notification on the session's event stream (the `GET /mcp` stream).
#[derive(Debug, Clone)]
pub struct DemoTools {
    tool_router: ToolRouter<Self>,
}

#[tool_router]
impl DemoTools {
    /// A new instance (one per MCP session).
    pub fn new() -> Self {
        DemoTools {
            tool_router: Self::tool_router(),
        }
    }

    #[tool(description = "Send the text back unchanged")]
    fn echo(&self, Parameters(EchoArgs { text }): Parameters<EchoArgs>) -> String {
        text
    }

    #[tool(description = "Add two integers")]
    fn add(&self, Parameters(AddArgs { a, b }): Parameters<AddArgs>) -> String {
        a.saturating_add(b).to_string()
    }

    #[tool(
        description = "Ask connected clients to re-read the tool list: sends notifications/tools/list_changed on the session's event stream"
    )]
    fn refresh_tools(&self, peer: Peer<RoleServer>) -> String {
        // Sent after this call has answered, so it is not tied to the request: rmcp
        // delivers it on the standalone GET stream.
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if let Err(e) = peer.notify_tool_list_changed().await {
                tracing::warn!(error = %e, "could not notify the client");
            }
        });
        "notification queued".into()
    }
}

impl Default for DemoTools {
    fn default() -> Self {
        DemoTools::new()
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for DemoTools {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_instructions("mcp-cors example server: echo, add, refresh_tools")
    }
}

/// The Streamable HTTP service, built once and shared by every worker (so sessions are
/// too). `sessions` counts the MCP sessions created: a refused request never makes one.
pub fn mcp_service(sessions: Arc<AtomicUsize>) -> StreamableHttpService<DemoTools> {
    StreamableHttpService::builder()
        .service_factory(Arc::new(move || {
            sessions.fetch_add(1, Ordering::SeqCst);
            Ok(DemoTools::new())
        }))
        .session_manager(Arc::new(LocalSessionManager::default()))
        .stateful_mode(true)
        // An empty list turns rmcp's own Host check off: McpCors guards Host (and
        // Origin) from cors.toml, hot-reloaded.
        .allowed_hosts(Vec::new())
        .sse_keep_alive(Duration::from_secs(15))
        .build()
}

/// Mounts the MCP endpoint at `/mcp`, and `GET /health` and `GET /ready` for probes.
pub fn routes(mcp: StreamableHttpService<DemoTools>) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg| {
        cfg.route(
            "/health",
            web::get()
                .to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }),
        )
        .route(
            "/ready",
            web::get()
                .to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ready"})) }),
        )
        .service(web::scope("/mcp").service(mcp.scope()));
    }
}

/// The OAuth 2.0 Protected Resource Metadata document (RFC 9728) for the MCP endpoint
/// `resource`: what an MCP client fetches during authorization discovery.
pub fn protected_resource_metadata(resource: &str) -> serde_json::Value {
    serde_json::json!({
        "resource": resource,
        "authorization_servers": ["https://auth.example.com"],
        "bearer_methods_supported": ["header"],
        "scopes_supported": ["mcp:tools"],
        "resource_name": "mcp-cors example MCP server",
        "resource_documentation": "https://github.com/modelcontextprotocol",
    })
}

/// Serves [`protected_resource_metadata`] at `/.well-known/oauth-protected-resource`
/// and at its path-suffixed form for `/mcp` (RFC 9728 §3.1), as a static document.
pub fn oauth_metadata(resource: String) -> impl FnOnce(&mut web::ServiceConfig) {
    let body = protected_resource_metadata(&resource).to_string();
    move |cfg| {
        for path in [
            "/.well-known/oauth-protected-resource",
            "/.well-known/oauth-protected-resource/mcp",
        ] {
            let body = body.clone();
            cfg.route(
                path,
                web::get().to(move || {
                    let body = body.clone();
                    async move {
                        HttpResponse::Ok()
                            .content_type("application/json")
                            .body(body)
                    }
                }),
            );
        }
    }
}
