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
// Without the `server` feature a policy is only loaded and validated (`check`): the code
// that matches requests against it is there, but nothing calls it.
#![cfg_attr(not(feature = "server"), allow(dead_code))]

#[cfg(feature = "server")]
mod admin;
mod allow_headers;
#[cfg(feature = "edit")]
mod audit;
// The TOML text edit of admin edits; also for a client built without the server that
// edits a policy itself (`mcp-cors-tui … origins add` with no server, or an etcd source).
#[cfg(feature = "edit")]
mod change;
pub mod client;
#[cfg(feature = "server")]
mod counters;
#[cfg(feature = "server")]
mod decision;
#[cfg(feature = "edit")]
mod edit;
mod error;
#[cfg(feature = "server")]
mod events;
mod extras;
mod forwarded;
mod host;
mod matcher;
mod memo;
#[cfg(feature = "metrics")]
mod metrics;
#[cfg(feature = "server")]
mod middleware;
mod origin;
mod policy;
pub mod protocol;
#[cfg(feature = "server")]
mod refusal;
#[cfg(feature = "server")]
mod response;
mod same_bytes;
#[cfg(feature = "server")]
mod set_header;
mod source;
mod status;
#[cfg(feature = "server")]
mod store;
#[cfg(feature = "server")]
mod sync;
#[cfg(feature = "edit")]
mod temp;
#[cfg(feature = "server")]
mod text;
#[cfg(feature = "server")]
mod vary;

#[cfg(feature = "server")]
pub use admin::AdminError;
#[cfg(feature = "edit")]
pub use change::{EditOutcome, EditRefused};
#[cfg(feature = "server")]
pub use decision::{Decision, DenyReason};
#[cfg(feature = "edit")]
pub use edit::edit_file;
#[cfg(feature = "server")]
pub use error::WatchError;
pub use error::{Diagnostic, Error, PolicyError, SourceParseError};
#[cfg(feature = "server")]
pub use middleware::{McpCors, McpCorsMiddleware};
pub use policy::{
    AdminSettings, MAX_FILE_SIZE, Mode, Policy, PolicyDiff, PolicySettings, RouteSettings,
    admin_socket_path, audit_log_path,
};
pub use protocol::Verdict;
#[cfg(feature = "etcd")]
pub use source::EtcdBackend;
#[cfg(any(feature = "server", feature = "etcd"))]
pub use source::{
    BackendError, BoxFuture, Change, ChangeStream, PolicyBackend, Snapshot, edit_remote,
};
pub use source::{
    ETCD_DEFAULT_PORT, EtcdSource, EtcdTls, Source, remote_socket_folder, remote_socket_path,
};
pub use status::{ReloadError, ReloadStatus};
