//! The admin protocol: line-delimited JSON over the admin Unix socket, shared by the server
//! (this crate) and its clients ([`client`](crate::client), `mcp-cors-tui`).
//!
//! On connect the server sends one [`ServerLine::Hello`] naming the protocol and its
//! version; a client of another version stops there with a clear error. The client then
//! states its own version with [`Request::Hello`], which the server answers with
//! [`ServerLine::HelloOk`] or, for a version it does not speak, an
//! [`ErrorCode::UnsupportedVersion`] error: each side refuses a mismatch. The client then
//! sends one [`Request`] per line and gets one reply per request; after `subscribe`,
//! [`ServerLine::Event`] lines follow as decisions are made, with a
//! [`ServerLine::Dropped`] line whenever events had to be dropped because the client read
//! too slowly. A line longer than [`MAX_LINE`] bytes is refused and the connection closed.
//!
//! Every time on the wire is a `*_ms` field: milliseconds since the Unix epoch.
//!
//! ```text
//! <- {"type":"hello","protocol":"mcp-cors-admin","version":6,"server":"0.1.0"}
//! -> {"cmd":"hello","version":6}
//! <- {"type":"hello_ok"}
//! -> {"cmd":"add_origin","origin":"https://app.example.com"}
//! <- {"type":"origin_changed","origin":"https://app.example.com","changed":true}
//! -> {"cmd":"add_origin","origin":"https://docs.example.com","route":"oauth-metadata"}
//! <- {"type":"origin_changed","origin":"https://docs.example.com","changed":true,"route":"oauth-metadata"}
//! ```
//!
//! Version 3 changed, from 2: a refused reload's time is `at_ms` (Unix ms) where it was a
//! serialised `SystemTime` (`at`), and a `reload_rejected` event carries it once, as the
//! error's own `at_ms`, beside `message` and `diagnostics`.
//!
//! Version 4 changed, from 3: `add_origin` refuses `*` (which opens the server to every
//! site) unless it carries `"force": true`, with the new error code `force_required` that
//! a version 3 client could not read; `add_host` / `remove_host` edit `allowed_hosts`
//! (reply `host_changed`, error `invalid_host`); `stats` gains `hosts`, the refusals
//! counted per `Host`.
//!
//! Version 5 changed, from 4: `add_origin`, `remove_origin`, `add_host` and `remove_host`
//! take an optional `route`, which edits that `[routes.NAME]` table's list instead of the
//! top level's, and their replies name it back; the error code `unguarded` refuses an
//! edit of a `guard = false` route. A version 4 server would not know the field and
//! could apply a route's edit to the top level, opening `/mcp` where one route was
//! meant: so neither side talks to the other (the version check above), and a route edit
//! never reaches a server that would misread it.
//!
//! Version 6 changed, from 5: the audit trail. Each change to the policy (an admin edit,
//! or a reload that changed it) is an [`Event::Audit`] event carrying an [`AuditRecord`],
//! which a version 5 client could not parse (its `Event` has no `audit` kind); the new
//! command `audit` answers [`ServerLine::Audit`], the recent records.
//!
//! Within version 6, the hello gained two optional fields, `hostname` and `pid`: which
//! replica of a fleet answers (a client that does not know them ignores them, and a
//! server that does not send them is labelled by its socket).

use std::path::PathBuf;
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use crate::policy::{PolicyDiff, PolicySettings};
use crate::status::ReloadError;

/// The protocol's name, in the hello line.
pub const PROTOCOL: &str = "mcp-cors-admin";
/// The protocol version this crate speaks. A client speaking another version must stop
/// with a clear error rather than guess.
pub const VERSION: u32 = 6;
/// The longest line the server accepts from a client, in bytes (without the newline).
pub const MAX_LINE: usize = 64 * 1024;
/// The longest line a client accepts from the server, in bytes (without the newline).
///
/// Larger than [`MAX_LINE`] because the server is trusted (same uid, peer-checked) and
/// some replies grow with the policy and the traffic: a `policy` reply with thousands of
/// allowed origins, or `stats` with hundreds of tracked origins, exceeds 64 KiB. Still
/// bounded, so a broken peer cannot make a client buffer without end.
pub const MAX_SERVER_LINE: usize = 16 * 1024 * 1024;
/// The name under which [`Stats::origins`] counts together every origin past the
/// server's tracking limit. Not an origin: a client must not offer to allow it.
pub const UNTRACKED_ORIGIN: &str = "(other)";
/// The name under which [`Stats::hosts`] counts together every refused `Host` past the
/// server's tracking limit. Not a host: a client must not offer to allow it.
pub const UNTRACKED_HOST: &str = UNTRACKED_ORIGIN;
/// The most events a `subscribe` can replay.
pub const MAX_REPLAY: usize = 512;
/// The most audit records the server keeps in memory, and so the most an `audit` request
/// can get (the `[admin] audit_log` file keeps them all).
pub const MAX_AUDIT: usize = 1000;

/// Milliseconds since the Unix epoch: how times travel on the wire.
pub fn unix_millis(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The verdict on a request, as events report it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// The request goes on, with CORS headers where it carried an allowed `Origin`.
    Allow,
    /// Refused with 403; the handler did not run.
    Deny,
    /// Would have been refused, but the policy is in report-only mode.
    WouldDeny,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::WouldDeny => "would-deny",
        })
    }
}

/// A request from a client.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Request {
    /// The client states the version it speaks, right after the server's hello; the
    /// server answers [`ServerLine::HelloOk`], or an error if it does not speak it.
    /// Optional for the server; [`Client`](crate::client::Client) always sends it.
    Hello {
        /// The client's protocol version.
        version: u32,
    },
    /// Stream events from now on, after replaying up to `replay` recent ones.
    Subscribe {
        /// How many recent events to replay first (at most [`MAX_REPLAY`]).
        #[serde(default)]
        replay: usize,
    },
    /// The serving policy and where it came from.
    Policy,
    /// Counters, dropped events, reload status.
    Stats,
    /// Add an origin to `allowed_origins` in the policy file; the reply comes once the
    /// new policy serves requests.
    AddOrigin {
        /// The origin (or wildcard entry), validated and normalised like the file's.
        origin: String,
        /// Must be `true` to add `*`, which allows every origin: refused otherwise with
        /// [`ErrorCode::ForceRequired`], so that no slip opens the server to every site.
        #[serde(default, skip_serializing_if = "is_false")]
        force: bool,
        /// The `[routes.NAME]` whose `allowed_origins` is edited; absent: the top level's.
        /// A route that inherits the list gets the top level's written out with the new
        /// entry.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        route: Option<String>,
    },
    /// Remove an origin from `allowed_origins` in the policy file.
    RemoveOrigin {
        /// The origin, compared after normalisation.
        origin: String,
        /// The `[routes.NAME]` whose list is edited; absent: the top level's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        route: Option<String>,
    },
    /// Add a host to `allowed_hosts` in the policy file (the DNS-rebinding guard); the
    /// reply comes once the new policy serves requests. When the file has no
    /// `allowed_hosts`, the defaults it stood for are written with the new host, so that
    /// adding one never drops `localhost`.
    AddHost {
        /// The entry (`api.example.com`, `localhost:8080`, `*.example.com`, `[::1]`,
        /// `10.0.0.0/8`), validated and normalised like the file's.
        host: String,
        /// Must be `true` to add `*`, which turns the Host guard off: refused otherwise
        /// with [`ErrorCode::ForceRequired`].
        #[serde(default, skip_serializing_if = "is_false")]
        force: bool,
        /// The `[routes.NAME]` whose `allowed_hosts` is edited; absent: the top level's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        route: Option<String>,
    },
    /// Remove a host from `allowed_hosts` in the policy file.
    RemoveHost {
        /// The entry, compared after normalisation.
        host: String,
        /// The `[routes.NAME]` whose list is edited; absent: the top level's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        route: Option<String>,
    },
    /// The recent audit records, oldest first (at most [`MAX_AUDIT`], since the server
    /// started); reply [`ServerLine::Audit`].
    Audit {
        /// At most this many, the most recent; absent: all the server keeps.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        limit: Option<usize>,
    },
}

impl Request {
    /// The route an edit names (`None`: the top level, or not an edit).
    pub fn route(&self) -> Option<&str> {
        match self {
            Request::AddOrigin { route, .. }
            | Request::RemoveOrigin { route, .. }
            | Request::AddHost { route, .. }
            | Request::RemoveHost { route, .. } => route.as_deref(),
            _ => None,
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// Which process answers on an admin socket, as its hello says: what labels a replica of
/// a fleet. Both parts are optional (a server of an earlier 6 sends neither).
///
/// ```
/// use mcp_cors::protocol::ReplicaId;
///
/// let id = ReplicaId { hostname: Some("web-1".into()), pid: Some(42) };
/// assert_eq!(id.label().as_deref(), Some("web-1:42"));
/// assert_eq!(ReplicaId::default().label(), None);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplicaId {
    /// The server's host name.
    pub hostname: Option<String>,
    /// The server's process id.
    pub pid: Option<u32>,
}

impl ReplicaId {
    /// `HOST:PID`, or whichever part is known (`pid PID` alone); `None` when neither is.
    pub fn label(&self) -> Option<String> {
        match (&self.hostname, self.pid) {
            (Some(host), Some(pid)) => Some(format!("{host}:{pid}")),
            (Some(host), None) => Some(host.clone()),
            (None, Some(pid)) => Some(format!("pid {pid}")),
            (None, None) => None,
        }
    }
}

/// A line from the server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerLine {
    /// The first line of every connection.
    Hello {
        /// Always [`PROTOCOL`].
        protocol: String,
        /// The server's [`VERSION`].
        version: u32,
        /// The server's mcp-cors version.
        server: String,
        /// The host the server runs on, to label a replica of a fleet.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        hostname: Option<String>,
        /// The server's process id, to tell replicas on one host apart.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pid: Option<u32>,
    },
    /// Reply to `hello`.
    HelloOk,
    /// Reply to `subscribe`: how many events are replayed before the live ones.
    Subscribed {
        /// The number of replayed events that follow.
        replayed: usize,
    },
    /// Reply to `policy`.
    Policy(PolicyReply),
    /// Reply to `stats`.
    Stats(Stats),
    /// Reply to `add_origin` / `remove_origin`: the policy file was edited and the new
    /// policy serves requests (or nothing needed changing).
    OriginChanged {
        /// The origin as stored (normalised).
        origin: String,
        /// `false` when it was already present (add) — nothing was written.
        changed: bool,
        /// The route whose list was edited, as the request named it; absent: the top
        /// level's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        route: Option<String>,
    },
    /// Reply to `add_host` / `remove_host`, like [`ServerLine::OriginChanged`].
    HostChanged {
        /// The host entry as stored (normalised).
        host: String,
        /// `false` when it was already present (add) — nothing was written.
        changed: bool,
        /// The route whose list was edited; absent: the top level's.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        route: Option<String>,
    },
    /// An event, after `subscribe`.
    Event(Event),
    /// Reply to `audit`: the recent records, oldest first.
    Audit {
        /// The records.
        records: Vec<AuditRecord>,
    },
    /// Events were dropped because this client read too slowly. Counts are decisions:
    /// a dropped run of identical decisions counts as its `count`.
    Dropped {
        /// Decisions dropped since the last `dropped` line.
        count: u64,
        /// Decisions dropped on this connection in all.
        total: u64,
    },
    /// A request failed; the connection stays usable unless said otherwise.
    Error {
        /// A stable, machine-readable code.
        code: ErrorCode,
        /// What went wrong, for a person.
        message: String,
    },
}

/// Machine-readable error codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// Not JSON, or not a known command.
    BadRequest,
    /// The line exceeded [`MAX_LINE`]; the connection is closed.
    LineTooLong,
    /// The client speaks another protocol version.
    UnsupportedVersion,
    /// The origin is not a valid `allowed_origins` entry.
    InvalidOrigin,
    /// The host is not a valid `allowed_hosts` entry.
    InvalidHost,
    /// The entry is `*` (every origin, or no Host guard) and the request did not say
    /// `force: true`.
    ForceRequired,
    /// The origin or host to remove is not in the policy, or the route named is not.
    NotFound,
    /// The route named has `guard = false`: nothing is checked there, so its lists are
    /// not edited.
    Unguarded,
    /// The policy file cannot be edited (symlink, invalid, unreadable, changed underneath).
    Conflict,
    /// The server has no policy file (a policy built in code).
    NoFile,
    /// Too many connections; this one is closed.
    Busy,
    /// The peer is another user; this connection is closed.
    Forbidden,
}

/// Reply to `policy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyReply {
    /// The policy file.
    pub source: Option<PathBuf>,
    /// `false` while failing closed.
    pub loaded: bool,
    /// The serving policy, normalised.
    pub settings: PolicySettings,
}

/// Reply to `stats`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stats {
    /// Requests allowed (with an `Origin`).
    pub allowed: u64,
    /// Requests refused.
    pub denied: u64,
    /// Requests that would have been refused (report-only mode).
    pub would_deny: u64,
    /// Decisions not told to slow listeners, over all listeners (a dropped run of
    /// identical decisions counts as its `count`).
    pub dropped_events: u64,
    /// Listeners subscribed now.
    pub listeners: usize,
    /// Per-origin counters, most refused first.
    pub origins: Vec<OriginStats>,
    /// Refusals per `Host` not in `allowed_hosts`, most refused first (empty from a
    /// server that does not count them).
    #[serde(default)]
    pub hosts: Vec<HostStats>,
    /// `enforce` or `report-only`.
    pub mode: crate::policy::Mode,
    /// How many times the policy was replaced.
    pub reloads: u64,
    /// When the serving policy was put in place (Unix ms).
    pub last_reload_ms: Option<u64>,
    /// The last refused policy file, until a good one is applied.
    pub last_error: Option<ReloadError>,
    /// `false` while failing closed.
    pub loaded: bool,
    /// Requests to `guard = false` routes (probes): counted, not evented.
    #[serde(default)]
    pub unguarded: u64,
    /// When the counters were read (Unix ms, the clock decision events are stamped
    /// with): a client adds the decisions it is told of after this time, so that its
    /// counts move with the events between two polls. Absent from older servers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at_ms: Option<u64>,
}

/// Counters for one origin.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OriginStats {
    /// The origin as sent (or [`UNTRACKED_ORIGIN`] once the table is full).
    pub origin: String,
    /// Allowed requests.
    pub allowed: u64,
    /// Refused requests.
    pub denied: u64,
    /// Would-be refusals (report-only).
    pub would_deny: u64,
    /// When it was last seen (Unix ms).
    pub last_seen_ms: u64,
    /// The reason of its last refusal.
    pub last_reason: Option<String>,
}

/// Refusals of one `Host` value (lower-cased, as sent, port included).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostStats {
    /// The host as sent, lower-cased and clipped (or [`UNTRACKED_HOST`] once the table is
    /// full).
    pub host: String,
    /// Refused requests.
    pub denied: u64,
    /// Would-be refusals (report-only).
    pub would_deny: u64,
    /// When it was last refused (Unix ms).
    pub last_seen_ms: u64,
}

/// Something the server decided or a change to its policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A decision on a request that carried `Origin`, or a `Host` refusal.
    Decision(DecisionEvent),
    /// A new policy now serves.
    Reloaded {
        /// When (Unix ms).
        at_ms: u64,
        /// What changed.
        diff: PolicyDiff,
    },
    /// A change to the policy, for the audit trail: an admin edit (who made it), or a
    /// reload that changed the policy (what changed).
    Audit(AuditRecord),
    /// A policy file was refused; the previous policy keeps serving. When (`at_ms`), why
    /// and where (file, line and column) are the error's.
    ReloadRejected(ReloadError),
}

/// One decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionEvent {
    /// When (Unix ms).
    pub at_ms: u64,
    /// `allow`, `deny` or `would-deny`.
    pub verdict: Verdict,
    /// The `Origin` as sent (lossy UTF-8), if any.
    pub origin: Option<String>,
    /// The request method.
    pub method: String,
    /// The request path.
    pub path: String,
    /// Whether it was a CORS preflight.
    pub preflight: bool,
    /// Why it was refused (`origin not allowed`, `method PUT not allowed`, …).
    pub reason: Option<String>,
    /// How many identical decisions in a row this event stands for (same verdict, origin,
    /// method, path, preflight and reason; `at_ms` is the first one's time). The server
    /// folds such runs when it sends a batch, so a busy tail stays readable and cheap.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub count: u64,
    /// The `[routes.NAME]` whose policy decided; absent for the top level.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The client's IP address, without a port: the peer's, or behind a trusted proxy
    /// (`trusted_proxies`) the forwarded client's. Part of what makes two decisions the
    /// same when runs are folded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
}

fn one() -> u64 {
    1
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

/// What an audit record is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditAction {
    /// An origin was added (through the admin socket, or by a client with no server).
    AddOrigin,
    /// An origin was removed (through the admin socket, or by a client with no server).
    RemoveOrigin,
    /// A host was added (through the admin socket, or by a client with no server).
    AddHost,
    /// A host was removed (through the admin socket, or by a client with no server).
    RemoveHost,
    /// The policy changed from its source: a hand edit, a ConfigMap swap, an etcd put (not
    /// an admin edit of this server, which has its own record).
    Reload,
}

impl AuditAction {
    /// The action as records spell it: `add-origin`, …, `reload`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditAction::AddOrigin => "add-origin",
            AuditAction::RemoveOrigin => "remove-origin",
            AuditAction::AddHost => "add-host",
            AuditAction::RemoveHost => "remove-host",
            AuditAction::Reload => "reload",
        }
    }
}

impl std::fmt::Display for AuditAction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a reloaded policy came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditSource {
    /// The policy file (a hand edit, an editor's save, a ConfigMap swap).
    File,
    /// A remote source (etcd, or a custom backend): a put from elsewhere.
    Remote,
}

/// One change to the policy, as the audit trail records it: on the event stream
/// ([`Event::Audit`]), in the `mcp_cors::audit` info log, and as one JSON line of the
/// `[admin] audit_log` file.
///
/// An admin edit names its entry (`origin` or `host`, and `route` when the edit was of a
/// `[routes.NAME]` table) and who made it, from the socket's peer credentials read when
/// the connection was accepted: `uid`, `pid` and `exe` (the peer's executable, when it
/// could be read). A `reload` carries the `diff` and its `source`.
///
/// ```
/// use mcp_cors::protocol::{AuditAction, AuditRecord};
///
/// let record = AuditRecord {
///     uid: Some(1000),
///     pid: Some(4242),
///     origin: Some("https://app.example.com".into()),
///     ..AuditRecord::new(1_700_000_000_000, AuditAction::AddOrigin)
/// };
/// let line = serde_json::to_string(&record)?;
/// assert_eq!(
///     line,
///     r#"{"at_ms":1700000000000,"action":"add-origin","origin":"https://app.example.com","uid":1000,"pid":4242}"#
/// );
/// assert_eq!(serde_json::from_str::<AuditRecord>(&line)?, record);
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When (Unix ms).
    pub at_ms: u64,
    /// What was done.
    pub action: AuditAction,
    /// The origin added or removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<String>,
    /// The host added or removed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// The `[routes.NAME]` whose list was edited; absent: the top level's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub route: Option<String>,
    /// The peer's user id (admin edits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// The peer's process id, when the connection was accepted (admin edits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pid: Option<u32>,
    /// The peer's executable (`/proc/PID/exe`), when it could be read (admin edits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exe: Option<String>,
    /// What a reload changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<PolicyDiff>,
    /// Where a reloaded policy came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<AuditSource>,
}

impl AuditRecord {
    /// A record of `action` at `at_ms`, every other field empty.
    pub fn new(at_ms: u64, action: AuditAction) -> AuditRecord {
        AuditRecord {
            at_ms,
            action,
            origin: None,
            host: None,
            route: None,
            uid: None,
            pid: None,
            exe: None,
            diff: None,
            source: None,
        }
    }
}
