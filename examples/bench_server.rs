//! The baseline for every performance figure: one small handler, served bare, behind
//! actix-cors configured to the same effect, or behind McpCors.
//!
//! ```sh
//! cargo run --release --example bench_server -- --cors mcp --bind 127.0.0.1:8081
//! cargo run --release --example bench_server -- --cors mcp --watched bench.toml
//! cargo run --release --example bench_server -- --cors mcp --watched etcd://127.0.0.1:2379/bench
//! cargo run --release --example bench_server -- --cors actix
//! cargo run --release --example bench_server -- --cors none
//! cargo run --release --example bench_server -- --cors headers   # the headers, no decision
//! cargo run --release --example bench_server -- --cors mcp --metrics   # metrics recorded
//! cargo run --release --example bench_server -- --cors mcp --handler mcp   # a real MCP server
//! ```
//!
//! `--handler mcp` serves the example MCP server's tools (rmcp Streamable HTTP, stateless,
//! JSON answers) at `/mcp` instead of the small fixed handler: what a real MCP server
//! spends on each request, to see the middleware's cost in proportion. Stateless, so that
//! wrk's connections do not queue behind one session.
//!
//! The policy (both middlewares): origins `https://app.example.com`,
//! `https://admin.example.com`, `http://localhost:5173`; methods GET, POST, DELETE; the
//! MCP request headers; `Mcp-Session-Id` and friends exposed; max-age 600; refusals
//! blocked. `scripts/load.sh` drives it with wrk.

use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::dev::Service;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::{App, HttpResponse, HttpServer, web};
use clap::{Parser, ValueEnum};
use mcp_cors::{McpCors, Policy};
use rmcp_actix_web::transport::{LocalSessionManager, StreamableHttpService};

/// The origins both middlewares allow.
const ORIGINS: [&str; 3] = [
    "https://app.example.com",
    "https://admin.example.com",
    "http://localhost:5173",
];
const HEADERS: [&str; 6] = [
    "content-type",
    "accept",
    "authorization",
    "mcp-session-id",
    "mcp-protocol-version",
    "last-event-id",
];
const EXPOSED: [&str; 4] = [
    "Mcp-Session-Id",
    "Mcp-Protocol-Version",
    "WWW-Authenticate",
    "Last-Event-ID",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Cors {
    /// McpCors.
    Mcp,
    /// actix-cors, configured alike.
    Actix,
    /// No CORS middleware.
    None,
    /// No decision at all: the same CORS response headers McpCors adds to an allowed
    /// request, written by a bare `wrap_fn`. The floor any CORS middleware on actix pays
    /// for the headers themselves (insertion and encoding), to tell that cost apart from
    /// the cost of deciding.
    Headers,
}

/// What answers at `/mcp`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Handler {
    /// One small fixed JSON answer: the middleware's cost at its most visible.
    Tiny,
    /// The example MCP server's tools (rmcp Streamable HTTP, stateless, JSON answers).
    Mcp,
}

/// A minimal server for load tests.
#[derive(Debug, Parser)]
struct Args {
    /// Which middleware to put in front of the handler.
    #[arg(long, value_enum)]
    cors: Cors,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8081")]
    bind: SocketAddr,
    /// With `--cors mcp`: serve this policy source, watched (and its admin socket),
    /// instead of the built-in static policy: a file, or `etcd://HOST:PORT/KEY`.
    #[arg(long, value_name = "SOURCE")]
    watched: Option<String>,
    /// actix worker threads.
    #[arg(long, default_value_t = 1)]
    workers: usize,
    /// What answers at `/mcp`.
    #[arg(long, value_enum, default_value = "tiny")]
    handler: Handler,
    /// Install a Prometheus metrics recorder first, so that McpCors's metrics count
    /// (without it they count into nothing).
    #[arg(long)]
    metrics: bool,
}

fn static_policy() -> Policy {
    let quoted: Vec<String> = ORIGINS.iter().map(|o| format!("{o:?}")).collect();
    let source = format!(
        "allowed_origins = [{}]\nallowed_hosts = [\"*\"]\n",
        quoted.join(", ")
    );
    match Policy::from_toml_str(&source) {
        Ok(policy) => policy,
        Err(e) => unreachable!("the built-in policy is valid: {e}"),
    }
}

fn actix_cors() -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "DELETE"])
        .allowed_headers(HEADERS)
        .expose_headers(EXPOSED)
        .max_age(600)
        .block_on_origin_mismatch(true);
    for origin in ORIGINS {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Adds, unconditionally, the headers McpCors adds to an allowed actual request.
fn add_static_cors_headers(headers: &mut HeaderMap) {
    const EXPOSE: &str = "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate, Last-Event-ID";
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static(ORIGINS[0]),
    );
    headers.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static(EXPOSE),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
}

async fn handler() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#)
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let args = Args::parse();
    if args.metrics {
        metrics_exporter_prometheus::PrometheusBuilder::new()
            .install_recorder()
            .map_err(std::io::Error::other)?;
    }
    let mcp = match (&args.watched, args.cors) {
        (Some(source), Cors::Mcp) => {
            let source = mcp_cors::Source::parse(source).map_err(std::io::Error::other)?;
            McpCors::try_watched(source).map_err(std::io::Error::other)?
        }
        _ => McpCors::from_policy(static_policy()),
    };
    // Built only when asked for: the tiny handler's runs pay nothing for rmcp.
    let mcp_server = (args.handler == Handler::Mcp).then(|| {
        StreamableHttpService::builder()
            .service_factory(Arc::new(|| Ok(mcp_cors_e2e::DemoTools::new())))
            .session_manager(Arc::new(LocalSessionManager::default()))
            .stateful_mode(false)
            .json_response(true)
            .allowed_hosts(Vec::new())
            .build()
    });
    // The same routes in every mode.
    let routes = move |cfg: &mut web::ServiceConfig| match &mcp_server {
        None => {
            cfg.route("/mcp", web::to(handler));
        }
        Some(server) => mcp_cors_e2e::routes(server.clone())(cfg),
    };
    // Distinct apps, so that `none` is truly bare and each mode pays only for its own
    // middleware.
    macro_rules! serve {
        ($app:expr) => {
            HttpServer::new($app)
                .workers(args.workers)
                .bind(args.bind)?
                .run()
                .await
        };
    }
    match args.cors {
        Cors::None => serve!(move || App::new().configure(routes.clone())),
        Cors::Actix => serve!(move || App::new().configure(routes.clone()).wrap(actix_cors())),
        Cors::Mcp => serve!(move || App::new().configure(routes.clone()).wrap(mcp.clone())),
        Cors::Headers => {
            serve!(
                move || App::new().configure(routes.clone()).wrap_fn(|req, srv| {
                    let call = srv.call(req);
                    async move {
                        let mut res = call.await?;
                        add_static_cors_headers(res.headers_mut());
                        Ok(res)
                    }
                })
            )
        }
    }
}
