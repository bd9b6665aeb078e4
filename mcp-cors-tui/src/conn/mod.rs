//! The connection to a server's admin socket: finding the socket from `--config` or
//! `--socket` (several, or patterns, for a fleet), and the interactive UI's sessions. The client itself (peer check, hello and
//! version check, requests) is the library's, [`mcp_cors::client`], shared by the UI, the
//! scriptable subcommands and the tests.

mod backoff;
mod locate;
mod session;
pub mod sockets;

use std::path::PathBuf;

pub use backoff::Backoff;
pub use locate::lenient_admin;
pub use mcp_cors::client::{Client, ClientError};
pub use session::{NetMsg, Outbox, Tagged, describe, run_session};

/// Where to find the admin socket, as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The policy file the server watches (`--config`).
    pub config: PathBuf,
    /// An explicit socket path (`--socket`), which wins over the config file.
    pub socket: Option<PathBuf>,
}

impl Target {
    /// The admin socket path: `--socket`, or derived from the config file exactly as the
    /// server derives it. An invalid config file is read leniently (its `[admin]` table
    /// alone), so the socket of a server whose file was just broken by an edit is still
    /// found.
    pub fn socket_path(&self) -> PathBuf {
        if let Some(socket) = &self.socket {
            return socket.clone();
        }
        let admin = locate::admin_settings(&self.config);
        mcp_cors::admin_socket_path(&self.config, &admin)
    }

    /// The audit log file of the config (`[admin] audit_log`, relative to its folder),
    /// read as leniently as the socket's path.
    pub fn audit_log_path(&self) -> Option<PathBuf> {
        let admin = locate::admin_settings(&self.config);
        mcp_cors::audit_log_path(&self.config, &admin)
    }
}
