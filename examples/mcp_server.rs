//! A real MCP Streamable HTTP server (rmcp + rmcp-actix-web) behind mcp-cors.
//!
//! ```sh
//! cargo run --example mcp_server                      # examples/cors.toml, 127.0.0.1:8080
//! cargo run --example mcp_server -- --config cors.toml --bind 127.0.0.1:9000
//! cargo run --example mcp_server -- --source 'etcd://127.0.0.1:2379/mcp/cors?cache=/tmp/cors.toml'
//! ```
//!
//! `/mcp` speaks MCP (tools `echo`, `add`, `refresh_tools`); `GET /health` answers
//! `{"status":"ok"}` and `GET /ready` `{"status":"ready"}` (the `health` route of
//! `examples/cors.toml` opens both to probes); `GET /.well-known/oauth-protected-resource`
//! is the endpoint's RFC 9728 metadata (the `oauth-metadata` route lets any origin read
//! it); `GET /metrics` is mcp-cors's metrics in the Prometheus text format (the `metrics`
//! route). Edit the config file while it runs: the policy reloads. Watch and manage it
//! with `cargo run -p mcp-cors-tui -- --config examples/cors.toml`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use actix_web::{App, HttpResponse, HttpServer, web};
use clap::Parser;
use mcp_cors::{McpCors, Source};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing_subscriber::EnvFilter;

/// The mcp-cors example MCP server.
#[derive(Debug, Parser)]
struct Args {
    /// The policy file (watched: edits take effect without a restart).
    #[arg(long, default_value = "examples/cors.toml")]
    config: PathBuf,
    /// Where the policy lives instead of --config: a file, or
    /// etcd://HOST:PORT[,HOST:PORT…]/KEY[?cache=PATH] (one policy for a fleet of replicas).
    #[arg(long, value_name = "URI", conflicts_with = "config")]
    source: Option<String>,
    /// Where to listen.
    #[arg(long, default_value = "127.0.0.1:8080")]
    bind: SocketAddr,
}

/// `GET /metrics`: every metric in the Prometheus text format, for a scraper (the
/// `metrics` route of `examples/cors.toml` lets it in with any `Host`).
async fn metrics_text(handle: web::Data<PrometheusHandle>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(handle.render())
}

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let source = match &args.source {
        Some(uri) => Source::parse(uri)
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?,
        None => Source::from(args.config.clone()),
    };
    let named = match &source {
        Source::File(path) => path.display().to_string(),
        Source::Etcd(etcd) => etcd.name(),
    };
    if !args.bind.ip().is_loopback() {
        // The MCP specification: local servers SHOULD bind only to localhost.
        tracing::warn!(
            bind = %args.bind,
            "listening on a non-loopback address: make sure allowed_hosts and allowed_origins in {} are what you intend",
            named
        );
    }

    // The metrics recorder first: the middleware registers its counters when it is built.
    let metrics = PrometheusBuilder::new()
        .install_recorder()
        .map_err(std::io::Error::other)?;
    // One call here to report the policy at start-up; the workers' calls below share it.
    let cors = McpCors::watched(source.clone());
    let status = cors.status();
    if status.loaded {
        tracing::info!(
            source = %named,
            origins = ?cors.policy().settings().allowed_origins,
            admin_socket = ?cors.admin_socket(),
            "policy loaded"
        );
    } else {
        // There is no last good policy to keep serving: say what is refused, and why.
        let why = status.last_error.map(|e| e.message).unwrap_or_default();
        tracing::error!(
            source = %named,
            "no policy loaded: {why}; every cross-origin request is refused (403) until the policy is fixed (or its source answers), which takes effect without a restart"
        );
    }

    let mcp = mcp_cors_e2e::mcp_service(Arc::new(AtomicUsize::new(0)));
    let resource = format!("http://{}/mcp", args.bind);
    tracing::info!(bind = %args.bind, "MCP endpoint at http://{}/mcp", args.bind);
    HttpServer::new(move || {
        App::new()
            .configure(mcp_cors_e2e::routes(mcp.clone()))
            .configure(mcp_cors_e2e::oauth_metadata(resource.clone()))
            .route("/metrics", web::get().to(metrics_text))
            .app_data(web::Data::new(metrics.clone()))
            // Wrapped last, so it is the outermost layer: preflights and refusals never
            // reach rmcp, and every response (errors included) gets the CORS headers.
            .wrap(McpCors::watched(source.clone()))
    })
    .bind(args.bind)?
    .run()
    .await?;
    drop(cors);
    Ok(())
}
