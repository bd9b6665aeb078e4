//! The policy file's keys, with their MCP-ready defaults: the one serde model of `cors.toml`.

use std::collections::BTreeMap;
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

/// The `[admin]` table: the local admin socket the TUI connects to, and the audit trail of
/// the changes made through it (and by reloads).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdminSettings {
    /// Whether the socket is served.
    pub enabled: bool,
    /// The socket path; default: the config file's path with extension `.sock`. A relative
    /// path is relative to the config file's folder.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub socket: Option<PathBuf>,
    /// Where the audit trail is appended, one JSON line per change (admin edits with the
    /// peer's uid, pid and executable; reloads that changed the policy, with their diff);
    /// none by default. A relative path is relative to the config file's folder (see
    /// [`audit_log_path`]). A file the server creates is mode 0600.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub audit_log: Option<PathBuf>,
}

impl Default for AdminSettings {
    fn default() -> Self {
        AdminSettings {
            enabled: true,
            socket: None,
            audit_log: None,
        }
    }
}

/// Where the audit trail of a policy file is appended: `[admin] audit_log`, relative to the
/// file's folder like `[admin] socket`; `None` when not set.
///
/// For a remote source (etcd) the "file" is the stand-in the admin socket's rule uses
/// ([`remote_socket_path`](crate::remote_socket_path)): a relative path is relative to
/// [`remote_socket_folder`](crate::remote_socket_folder), where that source's socket is.
///
/// ```
/// use std::path::Path;
/// use mcp_cors::{AdminSettings, audit_log_path};
///
/// let config = Path::new("/etc/mcp/cors.toml");
/// assert_eq!(audit_log_path(config, &AdminSettings::default()), None);
/// let relative = AdminSettings { audit_log: Some("audit.jsonl".into()), ..AdminSettings::default() };
/// assert_eq!(audit_log_path(config, &relative).as_deref(), Some(Path::new("/etc/mcp/audit.jsonl")));
/// let absolute = AdminSettings { audit_log: Some("/var/log/mcp.jsonl".into()), ..AdminSettings::default() };
/// assert_eq!(audit_log_path(config, &absolute).as_deref(), Some(Path::new("/var/log/mcp.jsonl")));
/// ```
pub fn audit_log_path(config: &Path, settings: &AdminSettings) -> Option<PathBuf> {
    let log = settings.audit_log.as_ref()?;
    Some(folder_of(config).join(log))
}

/// The folder relative paths in `[admin]` are relative to.
fn folder_of(config: &Path) -> &Path {
    config.parent().unwrap_or_else(|| Path::new("."))
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
        Some(socket) => folder_of(config).join(socket),
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
    /// Reverse proxies (CIDRs, or single addresses) whose `X-Forwarded-For` / `Forwarded`
    /// header names the client in events and logs; never read from any other peer. Top
    /// level only: the client belongs to the connection, whatever the path.
    ///
    /// ```
    /// use mcp_cors::Policy;
    ///
    /// let policy = Policy::from_toml_str(r#"trusted_proxies = ["10.0.0.0/8", "fd00::7"]"#)?;
    /// // A single address is stored as its one-address range.
    /// assert_eq!(policy.settings().trusted_proxies, ["10.0.0.0/8", "fd00::7/128"]);
    /// let err = Policy::from_toml_str(r#"trusted_proxies = ["proxy.internal"]"#).unwrap_err();
    /// assert_eq!(err.diagnostics()[0].key.as_deref(), Some("trusted_proxies"));
    /// # Ok::<(), mcp_cors::PolicyError>(())
    /// ```
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub trusted_proxies: Vec<String>,
    /// The admin socket.
    pub admin: AdminSettings,
    /// `[routes.NAME]`: a policy for some paths, overriding the keys above for them.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub routes: BTreeMap<String, RouteSettings>,
}

/// One `[routes.NAME]` table: the paths it covers, and the policy keys it overrides (a key
/// left out is inherited from the top level).
///
/// ```
/// use mcp_cors::Policy;
///
/// let policy = Policy::from_toml_str(r#"
///     allowed_origins = ["https://app.example.com"]
///     [routes.oauth-metadata]
///     paths = ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/*"]
///     allowed_origins = ["*"]
/// "#)?;
/// let route = &policy.settings().routes["oauth-metadata"];
/// assert_eq!(route.allowed_origins.as_deref(), Some(&["*".to_owned()][..]));
/// assert_eq!(route.max_age, None); // inherited
/// # Ok::<(), mcp_cors::PolicyError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RouteSettings {
    /// Exact paths (`/health`) and prefixes (`/x/*`: `/x` and everything under `/x/`).
    pub paths: Vec<String>,
    /// `false`: no Host check, no Origin check, no CORS headers (health probes).
    pub guard: bool,
    /// Overrides `allowed_origins`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_origins: Option<Vec<String>>,
    /// Overrides `allowed_origin_regexes`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_origin_regexes: Option<Vec<String>>,
    /// Overrides `allow_null_origin`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_null_origin: Option<bool>,
    /// Overrides `allowed_hosts`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_hosts: Option<Vec<String>>,
    /// Overrides `allowed_methods`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_methods: Option<Vec<String>>,
    /// Overrides `allowed_headers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allowed_headers: Option<Vec<String>>,
    /// Overrides `exposed_headers`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exposed_headers: Option<Vec<String>>,
    /// Overrides `allow_credentials`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_credentials: Option<bool>,
    /// Overrides `max_age`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u32>,
    /// Overrides `allow_private_network`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_private_network: Option<bool>,
    /// Overrides `allow_same_origin`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub allow_same_origin: Option<bool>,
    /// Overrides `mode`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
}

impl Default for RouteSettings {
    fn default() -> Self {
        RouteSettings {
            paths: Vec::new(),
            guard: true,
            allowed_origins: None,
            allowed_origin_regexes: None,
            allow_null_origin: None,
            allowed_hosts: None,
            allowed_methods: None,
            allowed_headers: None,
            exposed_headers: None,
            allow_credentials: None,
            max_age: None,
            allow_private_network: None,
            allow_same_origin: None,
            mode: None,
        }
    }
}

impl RouteSettings {
    /// The keys this route overrides, by their top-level names.
    pub(crate) fn overridden(&self) -> Vec<&'static str> {
        let set = [
            ("allowed_origins", self.allowed_origins.is_some()),
            (
                "allowed_origin_regexes",
                self.allowed_origin_regexes.is_some(),
            ),
            ("allow_null_origin", self.allow_null_origin.is_some()),
            ("allowed_hosts", self.allowed_hosts.is_some()),
            ("allowed_methods", self.allowed_methods.is_some()),
            ("allowed_headers", self.allowed_headers.is_some()),
            ("exposed_headers", self.exposed_headers.is_some()),
            ("allow_credentials", self.allow_credentials.is_some()),
            ("max_age", self.max_age.is_some()),
            (
                "allow_private_network",
                self.allow_private_network.is_some(),
            ),
            ("allow_same_origin", self.allow_same_origin.is_some()),
            ("mode", self.mode.is_some()),
        ];
        set.into_iter()
            .filter(|(_, on)| *on)
            .map(|(k, _)| k)
            .collect()
    }

    /// The route's whole policy: `top` with this route's overrides, without routes or
    /// admin settings of its own.
    pub(crate) fn merged(&self, top: &PolicySettings) -> PolicySettings {
        let pick = |own: &Option<Vec<String>>, top: &Vec<String>| {
            own.clone().unwrap_or_else(|| top.clone())
        };
        PolicySettings {
            allowed_origins: pick(&self.allowed_origins, &top.allowed_origins),
            allowed_origin_regexes: pick(&self.allowed_origin_regexes, &top.allowed_origin_regexes),
            allow_null_origin: self.allow_null_origin.unwrap_or(top.allow_null_origin),
            allowed_hosts: pick(&self.allowed_hosts, &top.allowed_hosts),
            allowed_methods: pick(&self.allowed_methods, &top.allowed_methods),
            allowed_headers: pick(&self.allowed_headers, &top.allowed_headers),
            exposed_headers: pick(&self.exposed_headers, &top.exposed_headers),
            allow_credentials: self.allow_credentials.unwrap_or(top.allow_credentials),
            max_age: self.max_age.unwrap_or(top.max_age),
            allow_private_network: self
                .allow_private_network
                .unwrap_or(top.allow_private_network),
            allow_same_origin: self.allow_same_origin.unwrap_or(top.allow_same_origin),
            mode: self.mode.unwrap_or(top.mode),
            // Not a route key: who sent a request does not depend on its path.
            trusted_proxies: top.trusted_proxies.clone(),
            admin: AdminSettings::default(),
            routes: BTreeMap::new(),
        }
    }
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
            trusted_proxies: Vec::new(),
            admin: AdminSettings::default(),
            routes: BTreeMap::new(),
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
