//! The policy file's keys, with their MCP-ready defaults: the one serde model of `cors.toml`.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// Whether refusals are enforced or only reported.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Refused requests get 403 and never reach the handler.
    #[default]
    Enforce,
    /// Decide and report (`would-deny`), but never block: for rolling out a new policy.
    ReportOnly,
}

impl Mode {
    /// The mode as the policy file spells it: `enforce` or `report-only`.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Enforce => "enforce",
            Mode::ReportOnly => "report-only",
        }
    }
}

/// As the policy file spells it, so that what a tool shows can be pasted back.
///
/// ```
/// assert_eq!(mcp_cors::Mode::ReportOnly.to_string(), "report-only");
/// ```
impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The `[admin]` table: the local admin socket the TUI connects to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// Whether the socket is served.
    pub enabled: bool,
    /// The socket path; default: the config file's path with extension `.sock`. A relative
    /// path is relative to the config file's folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            enabled: true,
            socket: None,
        }
    }
}

/// Where the admin socket of a policy file lives: `[admin] socket` (relative to the
/// file's folder), or the file's path with the extension `.sock`.
///
/// ```
/// use std::path::Path;
/// use mcp_cors::{AdminSettings, admin_socket_path};
///
/// let default = AdminSettings::default();
/// assert_eq!(admin_socket_path(Path::new("/etc/mcp/cors.toml"), &default), Path::new("/etc/mcp/cors.sock"));
/// let custom = AdminSettings { socket: Some("run/admin.sock".into()), ..default };
/// assert_eq!(admin_socket_path(Path::new("/etc/mcp/cors.toml"), &custom), Path::new("/etc/mcp/run/admin.sock"));
/// ```
pub fn admin_socket_path(config: &Path, settings: &AdminSettings) -> PathBuf {
    match &settings.socket {
        Some(socket) if socket.is_absolute() => socket.clone(),
        Some(socket) => config
            .parent()
            .unwrap_or_else(|| Path::new("."))
            .join(socket),
        None => config.with_extension("sock"),
    }
}

/// Every key of `cors.toml`, as written by the operator (after normalisation when it comes
/// from a loaded [`Policy`](crate::Policy)).
///
/// Two settings that compare equal describe the same behaviour, which is how a
/// comment-only edit of the file is recognised and ignored.
///
/// ```
/// use mcp_cors::PolicySettings;
///
/// let defaults = PolicySettings::default();
/// assert!(defaults.allowed_origins.is_empty());
/// assert_eq!(defaults.allowed_methods, ["GET", "POST", "DELETE"]);
/// assert_eq!(defaults.max_age, 600);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PolicySettings {
    /// Exact origins and wildcard entries (`https://*.example.com`, `http://localhost:*`);
    /// `"*"` for any origin.
    pub allowed_origins: Vec<String>,
    /// Regexes matched against the whole origin (anchored even without `^…$`).
    pub allowed_origin_regexes: Vec<String>,
    /// Whether `Origin: null` (sandboxed iframes, `file://` pages) may pass.
    pub allow_null_origin: bool,
    /// The DNS-rebinding guard on `Host`; an entry without a port matches any port;
    /// `["*"]` turns the check off.
    pub allowed_hosts: Vec<String>,
    /// Methods a preflight may ask for.
    pub allowed_methods: Vec<String>,
    /// Request headers a preflight may ask for; case-insensitive; a trailing `*` is a prefix.
    pub allowed_headers: Vec<String>,
    /// Response headers the browser lets the page read (`Access-Control-Expose-Headers`).
    pub exposed_headers: Vec<String>,
    /// Whether cookies and HTTP authentication may be sent (`Access-Control-Allow-Credentials`).
    pub allow_credentials: bool,
    /// How long, in seconds, a browser may cache a preflight answer.
    pub max_age: u32,
    /// Whether to answer Private Network Access preflights
    /// (`Access-Control-Request-Private-Network: true`).
    pub allow_private_network: bool,
    /// Whether a page served by the server itself (its `Origin`'s host and port equal the
    /// `Host` header, and that `Host` passes `allowed_hosts`) is allowed without being
    /// listed. Never with the Host guard off (`allowed_hosts = ["*"]`): then no `Host`
    /// can be trusted to name the server.
    pub allow_same_origin: bool,
    /// `enforce` or `report-only`.
    pub mode: Mode,
    /// The admin socket.
    pub admin: AdminSettings,
}

impl Default for PolicySettings {
    fn default() -> Self {
        let strings = |items: &[&str]| items.iter().map(|s| (*s).to_owned()).collect();
        PolicySettings {
            allowed_origins: Vec::new(),
            allowed_origin_regexes: Vec::new(),
            allow_null_origin: false,
            allowed_hosts: strings(&["localhost", "127.0.0.1", "[::1]"]),
            allowed_methods: strings(&["GET", "POST", "DELETE"]),
            allowed_headers: strings(&[
                "Content-Type",
                "Accept",
                "Authorization",
                "Mcp-Session-Id",
                "Mcp-Protocol-Version",
                "Last-Event-ID",
                "Mcp-Method",
                "Mcp-Name",
                "Mcp-Param-*",
            ]),
            exposed_headers: strings(&[
                "Mcp-Session-Id",
                "Mcp-Protocol-Version",
                "WWW-Authenticate",
                "Last-Event-ID",
            ]),
            allow_credentials: false,
            max_age: 600,
            allow_private_network: false,
            allow_same_origin: true,
            mode: Mode::Enforce,
            admin: AdminSettings::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Mode;

    #[test]
    fn a_mode_is_displayed_as_the_file_spells_it() {
        for mode in [Mode::Enforce, Mode::ReportOnly] {
            let spelled = serde_json::to_string(&mode).unwrap();
            assert_eq!(format!("\"{mode}\""), spelled);
        }
    }
}
