//! # mcp-cors
//!
//! The CORS and Origin guard for actix-web MCP servers: correct to the letter of the Fetch
//! standard and the MCP specification, safe by default.
//!
//! - Answers CORS preflights itself (`204`, one origin echoed, never a list).
//! - Adds CORS headers to every response for an allowed origin, errors and streams included.
//! - Refuses bad origins and bad `Host` headers (DNS rebinding) with `403` and a JSON-RPC
//!   error body, as the MCP specification requires.
//! - Reads its policy through an `ArcSwap`: no lock on the request path.
//!
//! ```
//! use actix_web::{App, HttpResponse, web};
//! use mcp_cors::{McpCors, Policy};
//!
//! let policy = Policy::from_toml_str(r#"
//!     allowed_origins = ["https://app.example.com", "http://localhost:*"]
//!     allowed_hosts = ["localhost", "mcp.example.com"]
//! "#)?;
//! let app = App::new()
//!     .wrap(McpCors::from_policy(policy))
//!     .route("/mcp", web::post().to(HttpResponse::Ok));
//! # Ok::<(), mcp_cors::PolicyError>(())
//! ```
//!
//! The policy file and every key are described in the README and on [`PolicySettings`].

#![warn(missing_docs)]

mod admin;
mod allow_headers;
pub mod client;
mod decision;
mod error;
mod events;
mod host;
mod matcher;
mod middleware;
mod origin;
mod policy;
pub mod protocol;
mod response;
mod source;
mod status;
mod store;
mod vary;

pub use admin::AdminError;
pub use decision::{Decision, DenyReason};
pub use error::{Diagnostic, Error, PolicyError, WatchError};
pub use middleware::{McpCors, McpCorsMiddleware};
pub use policy::{
    AdminSettings, MAX_FILE_SIZE, Mode, Policy, PolicyDiff, PolicySettings, admin_socket_path,
};
pub use protocol::Verdict;
pub use status::{ReloadError, ReloadStatus};
