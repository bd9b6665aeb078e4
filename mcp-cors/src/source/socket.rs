//! Where the admin socket of a server following a remote source (etcd) is: a default
//! derived from the key under the runtime folder, overridable by `[admin] socket` in the
//! value. The server and `mcp-cors-tui --source` use this one rule.

use std::path::PathBuf;

use super::spec::EtcdSource;

/// The folder the admin sockets of remote sources go in by default:
/// `$XDG_RUNTIME_DIR/mcp-cors` when `XDG_RUNTIME_DIR` is set (a user's session), else
/// `/run/mcp-cors` (a service).
pub fn remote_socket_folder() -> PathBuf {
    match std::env::var_os("XDG_RUNTIME_DIR").filter(|v| !v.is_empty()) {
        Some(runtime) => PathBuf::from(runtime).join("mcp-cors"),
        None => PathBuf::from("/run/mcp-cors"),
    }
}

/// Where the server of a remote source named `name` serves its admin socket, and where
/// `mcp-cors-tui --source URI` looks for it.
///
/// By default, `<folder>/<key made safe>.sock` in [`remote_socket_folder`]: the key (for
/// etcd; the whole name for another backend) with every character other than an ASCII
/// letter, digit, `.`, `-` or `_` turned into `_`, and leading `_` dropped. `[admin]
/// socket` in the policy overrides it; a relative path there is relative to the same
/// folder.
///
/// ```
/// use std::path::Path;
/// use mcp_cors::{AdminSettings, Source, remote_socket_path};
///
/// let Source::Etcd(etcd) = Source::parse("etcd://127.0.0.1:2379/mcp/cors")? else { unreachable!() };
/// let socket = remote_socket_path(etcd.key(), &AdminSettings::default());
/// assert!(socket.ends_with("mcp-cors/mcp_cors.sock"));
/// let custom = AdminSettings { socket: Some("/run/ops.sock".into()), ..AdminSettings::default() };
/// assert_eq!(remote_socket_path(etcd.key(), &custom), Path::new("/run/ops.sock"));
/// # Ok::<(), mcp_cors::SourceParseError>(())
/// ```
pub fn remote_socket_path(name: &str, settings: &crate::AdminSettings) -> PathBuf {
    crate::admin_socket_path(&remote_config_stand_in(name), settings)
}

/// The file path a remote source stands at for the admin socket's rules (the socket is
/// the "config file" with `.sock`; a relative `[admin] socket` is relative to its folder).
pub(crate) fn remote_config_stand_in(name: &str) -> PathBuf {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let safe = safe.trim_start_matches('_');
    let safe = if safe.is_empty() { "policy" } else { safe };
    remote_socket_folder().join(format!("{safe}.toml"))
}

impl EtcdSource {
    /// The admin socket of a server following this source, by [`remote_socket_path`].
    pub fn admin_socket(&self, settings: &crate::AdminSettings) -> PathBuf {
        remote_socket_path(&self.key, settings)
    }
}
