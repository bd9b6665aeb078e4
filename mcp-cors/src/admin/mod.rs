//! The admin socket: a local Unix socket where operators (and `mcp-cors-tui`) watch
//! decisions live, read the policy and counters, and add or remove origins and hosts, of
//! the top level or of one `[routes.NAME]` table.
//!
//! One per config file per process, served from a thread of its own (a single-threaded
//! tokio runtime), so the request path never shares a scheduler with it. The socket is
//! created mode 0600 and connections from other users are refused by their peer
//! credentials (root may connect). A socket file left by a crashed process is replaced;
//! one that a live process still answers on is never taken over.

mod peer;

use std::cell::Cell;
use std::fs;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener as StdListener, UnixStream as StdStream};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, Weak};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::OwnedWriteHalf;
use tokio::sync::oneshot;
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

use crate::change::{Change, Edit, ListKey};
use crate::events::{self, Subscription};
use crate::protocol::{
    AuditRecord, ErrorCode, Event, MAX_LINE, PROTOCOL, PolicyReply, Request, ServerLine, Stats,
    VERSION, unix_millis,
};
use crate::source::EditTarget;
use crate::store::PolicyStore;
use crate::temp::{self, remove_stale as remove_stale_temps};
use peer::Peer;

/// Connections served at once; more are told `busy` and closed.
pub(crate) const MAX_CONNECTIONS: usize = 1024;
/// Queued events taken for one write to a subscriber, at most (fewer lines go out: runs
/// of identical decisions are folded). Covers a whole listener poll at high rates. The
/// events taken stay counted against the listener's share of the listeners' budget until
/// written (see `events::queue`).
const EVENT_BATCH: usize = 1024;
/// A batch's lines are written in pieces of about this many bytes, so that a client that
/// stops reading keeps one piece in this process, not a whole batch's text.
const WRITE_CHUNK: usize = 16 * 1024;
/// After this many connections have closed since the most were open, the memory they
/// held (their buffers, their listeners' queues) is handed back to the system.
const RELEASE_AFTER_CLOSED: usize = 64;
/// After a failed accept (out of file descriptors, most often), the admin thread waits
/// this long before accepting again, rather than spinning on the error.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);
/// Failed accepts are logged at most this often.
const ACCEPT_WARN_EVERY: Duration = Duration::from_secs(10);
/// The admin thread's scheduling niceness (Linux): under CPU contention the request
/// workers come first, and a subscriber that cannot be fed in time gets its events
/// dropped and counted instead of slowing requests down.
#[cfg(target_os = "linux")]
const ADMIN_NICENESS: libc::c_int = 10;
/// A connection that is not subscribed and sends no complete request line for this long
/// is closed, so idle or trickling (slowloris) clients cannot hold the connection slots.
pub(crate) const IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// A write that cannot complete this long (a client that stopped reading) ends the
/// connection.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) use crate::policy::admin_socket_path;

/// Why the admin socket could not be served.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    /// Another live process answers on the socket: it is never taken over.
    #[error("admin socket {} is in use by another live process; not taking it over (stop that process, or set [admin] socket to another path)", .0.display())]
    InUse(PathBuf),
    /// Something other than a socket is at the path: it is never replaced.
    #[error("{} exists and is not a socket; not replacing it (remove it, or set [admin] socket to another path)", .0.display())]
    NotASocket(PathBuf),
    /// The operating system refused to create or serve the socket.
    #[error("cannot create admin socket {}: {}", .0.display(), .1)]
    Io(PathBuf, #[source] std::io::Error),
}

/// Owns the admin thread; dropping it stops the thread and removes the socket file.
#[derive(Debug)]
pub(crate) struct AdminHandle {
    path: PathBuf,
    /// The socket file's device and inode: only that file is removed on drop, never one
    /// that another process put at the same path since.
    id: (u64, u64),
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl AdminHandle {
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the socket file at the path is still the one this handle bound.
    pub(crate) fn is_in_place(&self) -> bool {
        file_id(&self.path) == Some(self.id)
    }
}

impl Drop for AdminHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(thread) = self.thread.take() {
            // The admin thread never owns its handle (the source does), so this is never
            // the admin thread waiting for itself.
            let _ = thread.join();
        }
        if file_id(&self.path).is_some_and(|id| id == self.id) {
            let _ = fs::remove_file(&self.path);
        }
    }
}

/// A file's device and inode, without following a symlink.
fn file_id(path: &Path) -> Option<(u64, u64)> {
    fs::symlink_metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// Binds the socket at `path` and serves `store` on it from a new thread; its edits go to
/// `target` (the policy file, or a remote source).
pub(crate) fn start(
    store: Weak<PolicyStore>,
    target: impl Into<EditTarget>,
    path: PathBuf,
) -> Result<AdminHandle, AdminError> {
    let config = target.into();
    // What a crashed run left: its edits' temporary files, its socket's.
    if let EditTarget::File(file) = &config {
        remove_stale_temps(file);
    }
    remove_stale_temps(&path);
    let (listener, id) = bind(&path)?;
    let (tx, rx) = oneshot::channel();
    let thread = thread::Builder::new()
        .name("mcp-cors-admin".into())
        .spawn(move || serve(listener, store, config, rx))
        .map_err(|e| AdminError::Io(path.clone(), e))?;
    tracing::info!(socket = %path.display(), "admin socket listening");
    Ok(AdminHandle {
        path,
        id,
        shutdown: Some(tx),
        thread: Some(thread),
    })
}

/// Creates the socket: replaces a stale one, refuses a live one, and never exposes it
/// with wider permissions than 0600 (it is bound under a temporary name, restricted, then
/// linked into place). The temporary name is unpredictable and never reused, so another
/// user of a shared folder cannot take it first. Returns the listener and the socket
/// file's identity.
fn bind(path: &Path) -> Result<(StdListener, (u64, u64)), AdminError> {
    let io = |e| AdminError::Io(path.to_path_buf(), e);
    if let Ok(meta) = fs::symlink_metadata(path) {
        if !meta.file_type().is_socket() {
            return Err(AdminError::NotASocket(path.to_path_buf()));
        }
    }
    let (temp, listener) = temp::create(path, |t| StdListener::bind(t)).map_err(io)?;
    let prepared = fs::set_permissions(&temp, fs::Permissions::from_mode(0o600))
        .and_then(|()| listener.set_nonblocking(true))
        .and_then(|()| fs::symlink_metadata(&temp))
        .map(|m| (m.dev(), m.ino()));
    let placed = prepared
        .map_err(io)
        .and_then(|id| place(&temp, path).map(|()| id));
    let _ = fs::remove_file(&temp);
    placed.map(|id| (listener, id))
}

/// Puts the socket bound at `temp` at `path`. A hard link never replaces what is there
/// (a rename would: two processes starting at once could each take the path from the
/// other); when something is, a live socket is refused and a stale one removed, and the
/// link is tried again.
fn place(temp: &Path, path: &Path) -> Result<(), AdminError> {
    let io = |e| AdminError::Io(path.to_path_buf(), e);
    for _ in 0..3 {
        match fs::hard_link(temp, path) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(io(e)),
        }
        let Ok(meta) = fs::symlink_metadata(path) else {
            continue; // Removed meanwhile: try again.
        };
        if !meta.file_type().is_socket() {
            return Err(AdminError::NotASocket(path.to_path_buf()));
        }
        if StdStream::connect(path).is_ok() {
            return Err(AdminError::InUse(path.to_path_buf()));
        }
        // Remove the stale file checked, not one another process has put there since.
        if file_id(path) == Some((meta.dev(), meta.ino())) {
            tracing::info!(socket = %path.display(), "replacing a stale admin socket");
            match fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io(e)),
            }
        }
    }
    // Replaced by someone else every time we looked: someone else is starting on it.
    Err(AdminError::InUse(path.to_path_buf()))
}

fn serve(
    listener: StdListener,
    store: Weak<PolicyStore>,
    config: EditTarget,
    mut shutdown: oneshot::Receiver<()>,
) {
    lower_priority();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!(error = %e, "cannot start the admin socket's runtime");
            return;
        }
    };
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, async move {
        let listener = match tokio::net::UnixListener::from_std(listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "cannot serve the admin socket");
                return;
            }
        };
        let config = Rc::new(config);
        let open = Rc::new(Connections::default());
        let mut last_warned: Option<Instant> = None;
        loop {
            tokio::select! {
                _ = &mut shutdown => return,
                accepted = listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        Err(error) => {
                            if last_warned.is_none_or(|t| t.elapsed() >= ACCEPT_WARN_EVERY) {
                                last_warned = Some(Instant::now());
                                tracing::warn!(%error, "admin socket cannot accept connections; retrying");
                            }
                            // Out of file descriptors stays so until connections close:
                            // retrying at once would spin the thread.
                            tokio::time::sleep(ACCEPT_BACKOFF).await;
                            continue;
                        }
                    };
                    let (store, config, open) = (store.clone(), Rc::clone(&config), Rc::clone(&open));
                    tokio::task::spawn_local(async move {
                        let busy = open.opened() > MAX_CONNECTIONS;
                        Connection::new(stream, store, config).run(busy).await;
                        open.closed();
                    });
                }
            }
        }
    });
}

/// The connections open, and the most open since memory was last handed back.
#[derive(Default)]
struct Connections {
    open: Cell<usize>,
    peak: Cell<usize>,
}

impl Connections {
    /// Counts a new connection; returns how many are open with it.
    fn opened(&self) -> usize {
        let open = self.open.get() + 1;
        self.open.set(open);
        self.peak.set(self.peak.get().max(open));
        open
    }

    /// Counts a connection closed. After many have closed, hands the memory they freed
    /// back to the system: glibc keeps freed memory in its arenas (hundreds of closed
    /// subscribers measured 16 MB kept), and a server that once had many connections
    /// should not keep their memory for good.
    fn closed(&self) {
        let open = self.open.get() - 1;
        self.open.set(open);
        if self.peak.get() - open >= RELEASE_AFTER_CLOSED {
            self.peak.set(open);
            release_free_memory();
        }
    }
}

/// Returns free memory in every malloc arena to the system. It runs on the admin thread,
/// rarely (see [`RELEASE_AFTER_CLOSED`]), never on the request path.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn release_free_memory() {
    // SAFETY: malloc_trim has no preconditions; it only gives free pages back.
    let released = unsafe { libc::malloc_trim(0) };
    tracing::debug!(
        released = released != 0,
        "admin socket: freed memory handed back"
    );
}

/// Other allocators return memory on their own terms.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn release_free_memory() {}

/// Lowers this thread's priority (on Linux, `setpriority` on a thread id affects only that
/// thread). Failing leaves it at normal priority, which is still correct, only less kind.
#[cfg(target_os = "linux")]
fn lower_priority() {
    // SAFETY: gettid and setpriority have no memory-safety preconditions.
    let result = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, ADMIN_NICENESS)
    };
    if result != 0 {
        tracing::debug!(error = %std::io::Error::last_os_error(), "admin thread keeps normal priority");
    }
}

/// Elsewhere `setpriority` would renice the whole process, request workers included: the
/// admin thread keeps normal priority.
#[cfg(not(target_os = "linux"))]
fn lower_priority() {}

/// The effective uid of this process.
fn euid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// This host's name, for the hello: with the pid, it labels this replica in a client
/// that watches several (a fleet). `None` when the kernel will not say or it is not UTF-8.
fn hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: the buffer is valid for its length; gethostname writes at most that much.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let len = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    std::str::from_utf8(&buf[..len])
        .ok()
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
}

struct Connection {
    lines: FramedRead<tokio::net::unix::OwnedReadHalf, LinesCodec>,
    out: OwnedWriteHalf,
    /// Read at accept: the uid decides whether to serve, and edits are audited with all of
    /// it.
    peer: Peer,
    store: Weak<PolicyStore>,
    config: Rc<EditTarget>,
    subscription: Option<Subscription>,
}

impl Connection {
    fn new(stream: UnixStream, store: Weak<PolicyStore>, config: Rc<EditTarget>) -> Self {
        let peer = Peer::of(&stream);
        let (read, out) = stream.into_split();
        Connection {
            lines: FramedRead::new(read, LinesCodec::new_with_max_length(MAX_LINE)),
            out,
            peer,
            store,
            config,
            subscription: None,
        }
    }

    async fn run(mut self, busy: bool) {
        let me = euid();
        if !self.peer.uid.is_some_and(|uid| uid == me || uid == 0) {
            tracing::warn!(peer_uid = ?self.peer.uid, peer_pid = ?self.peer.pid, "admin connection from another user refused");
            let _ = self
                .error(
                    ErrorCode::Forbidden,
                    "connections are accepted from the server's own user (or root) only",
                )
                .await;
            return;
        }
        if busy {
            let _ = self
                .error(
                    ErrorCode::Busy,
                    format!("too many admin connections (limit {MAX_CONNECTIONS})"),
                )
                .await;
            return;
        }
        let hello = ServerLine::Hello {
            protocol: PROTOCOL.into(),
            version: VERSION,
            server: env!("CARGO_PKG_VERSION").into(),
            hostname: hostname(),
            pid: Some(std::process::id()),
        };
        if self.send(&hello).await.is_err() {
            return;
        }
        while self.step().await {}
    }

    /// Handles one incoming line or one event; `false` ends the connection.
    async fn step(&mut self) -> bool {
        // Only a subscriber may stay quiet for long: it is there to receive.
        let idle_limit = self.subscription.is_none().then_some(IDLE_TIMEOUT);
        let input = {
            let (lines, subscription) = (&mut self.lines, &mut self.subscription);
            tokio::select! {
                line = async {
                    match idle_limit {
                        Some(limit) => tokio::time::timeout(limit, lines.next()).await.ok(),
                        None => Some(lines.next().await),
                    }
                } => Input::Line(line),
                events = next_events(subscription) => Input::Events(events),
            }
        };
        match input {
            Input::Line(None) => {
                let message = format!(
                    "no complete request within {}s; closing",
                    IDLE_TIMEOUT.as_secs()
                );
                let _ = self.error(ErrorCode::BadRequest, message).await;
                false
            }
            Input::Line(Some(None)) => false,
            Input::Line(Some(Some(Ok(line)))) => self.handle(&line).await,
            Input::Line(Some(Some(Err(LinesCodecError::MaxLineLengthExceeded)))) => {
                let message = format!("line longer than {MAX_LINE} bytes; closing");
                let _ = self.error(ErrorCode::LineTooLong, message).await;
                false
            }
            Input::Line(Some(Some(Err(LinesCodecError::Io(e))))) => {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    let _ = self
                        .error(ErrorCode::BadRequest, "not UTF-8 text; closing")
                        .await;
                }
                false
            }
            Input::Events(Some(batch)) => self.forward(batch).await,
            Input::Events(None) => false,
        }
    }

    async fn handle(&mut self, line: &str) -> bool {
        if line.trim().is_empty() {
            return true;
        }
        let request: Request = match serde_json::from_str(line) {
            Ok(r) => r,
            Err(e) => {
                return self
                    .error(ErrorCode::BadRequest, format!("not a request: {e}"))
                    .await
                    .is_ok();
            }
        };
        let Some(store) = self.store.upgrade() else {
            return false;
        };
        let reply = match request {
            Request::Hello { version } if version == VERSION => ServerLine::HelloOk,
            Request::Hello { version } => ServerLine::Error {
                code: ErrorCode::UnsupportedVersion,
                message: format!(
                    "this server speaks admin protocol version {VERSION}; the client speaks {version}: use a matching mcp-cors-tui"
                ),
            },
            Request::Subscribe { replay } => {
                let (replayed, subscription) = store.events().subscribe(replay);
                self.subscription = Some(subscription);
                drop(store);
                if self
                    .send(&ServerLine::Subscribed {
                        replayed: replayed.len(),
                    })
                    .await
                    .is_err()
                {
                    return false;
                }
                for event in replayed {
                    if self
                        .send(&ServerLine::Event((*event).clone()))
                        .await
                        .is_err()
                    {
                        return false;
                    }
                }
                return true;
            }
            Request::Policy => {
                let status = store.status();
                ServerLine::Policy(PolicyReply {
                    source: status.source,
                    loaded: status.loaded,
                    settings: store.load_full().settings().clone(),
                })
            }
            Request::Stats => ServerLine::Stats(stats(&store)),
            Request::Audit { limit } => ServerLine::Audit {
                records: store.audit_trail(limit),
            },
            Request::AddOrigin {
                origin,
                force,
                route,
            } => {
                let edit = Edit::new(ListKey::Origins, Change::Add(&origin), force);
                self.change(&store, edit.on_route(route.as_deref())).await
            }
            Request::RemoveOrigin { origin, route } => {
                let edit = Edit::new(ListKey::Origins, Change::Remove(&origin), false);
                self.change(&store, edit.on_route(route.as_deref())).await
            }
            Request::AddHost { host, force, route } => {
                let edit = Edit::new(ListKey::Hosts, Change::Add(&host), force);
                self.change(&store, edit.on_route(route.as_deref())).await
            }
            Request::RemoveHost { host, route } => {
                let edit = Edit::new(ListKey::Hosts, Change::Remove(&host), false);
                self.change(&store, edit.on_route(route.as_deref())).await
            }
        };
        // Let go of the store before the client can see the reply: a client that then
        // drops the last `McpCors` must find the store (and its socket file) gone at once,
        // not dropped a moment later on this thread.
        drop(store);
        self.send(&reply).await.is_ok()
    }

    async fn change(&self, store: &Arc<PolicyStore>, edit: Edit<'_>) -> ServerLine {
        if store.status().source.is_none() {
            return ServerLine::Error {
                code: ErrorCode::NoFile,
                message: "this server's policy was built in code; there is no file to edit".into(),
            };
        }
        // Two clients' edits may interleave only while one waits for a file being
        // written to settle; each replaces the file only if it still holds what it read.
        let changed = match &*self.config {
            EditTarget::File(config) => crate::edit::change_list(&**store, config, edit).await,
            EditTarget::Remote(remote) => remote.change_list(edit).await,
        };
        match changed {
            Ok((entry, changed)) => {
                tracing::info!(key = %edit.place(), %entry, changed, change = ?edit.change, force = edit.force, "policy edited through the admin socket");
                // Served by now; an edit that changed nothing (already there) is not a
                // change to audit.
                if changed {
                    store.audit_edit(self.audit_record(&edit, &entry));
                }
                let route = edit.route.map(str::to_owned);
                match edit.key {
                    ListKey::Origins => ServerLine::OriginChanged {
                        origin: entry,
                        changed,
                        route,
                    },
                    ListKey::Hosts => ServerLine::HostChanged {
                        host: entry,
                        changed,
                        route,
                    },
                }
            }
            Err(e) => ServerLine::Error {
                code: e.code,
                message: e.message,
            },
        }
    }

    /// The audit record of `edit`, served with `entry` as stored, made by this peer.
    fn audit_record(&self, edit: &Edit<'_>, entry: &str) -> AuditRecord {
        AuditRecord {
            uid: self.peer.uid,
            pid: self.peer.pid,
            exe: self.peer.exe.clone(),
            ..edit.audit_record(entry, unix_millis(std::time::SystemTime::now()))
        }
    }

    /// Writes a batch of events, in pieces of about [`WRITE_CHUNK`] bytes (one write for
    /// a usual batch), preceded by a `dropped` line if events were dropped for this
    /// client.
    async fn forward(&mut self, batch: Vec<Event>) -> bool {
        let dropped = self
            .subscription
            .as_mut()
            .and_then(Subscription::take_dropped)
            .map(|(count, total)| ServerLine::Dropped { count, total });
        let lines = dropped
            .into_iter()
            .chain(batch.into_iter().map(ServerLine::Event));
        let mut bytes = Vec::new();
        for line in lines {
            if serde_json::to_writer(&mut bytes, &line).is_err() {
                return false;
            }
            bytes.push(b'\n');
            if bytes.len() >= WRITE_CHUNK {
                if self.write(&bytes).await.is_err() {
                    return false;
                }
                bytes.clear();
            }
        }
        bytes.is_empty() || self.write(&bytes).await.is_ok()
    }

    async fn error(&mut self, code: ErrorCode, message: impl Into<String>) -> std::io::Result<()> {
        self.send(&ServerLine::Error {
            code,
            message: message.into(),
        })
        .await
    }

    async fn send(&mut self, line: &ServerLine) -> std::io::Result<()> {
        let mut bytes = serde_json::to_vec(line).map_err(std::io::Error::other)?;
        bytes.push(b'\n');
        self.write(&bytes).await
    }

    async fn write(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        match tokio::time::timeout(WRITE_TIMEOUT, self.out.write_all(bytes)).await {
            Ok(result) => result,
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "client stopped reading",
            )),
        }
    }
}

/// What woke a connection up: a line (`None`: idle too long; `Some(None)`: closed), or an
/// event (`None`: the policy store is gone).
enum Input {
    Line(Option<Option<Result<String, LinesCodecError>>>),
    Events(Option<Vec<Event>>),
}

/// The next batch of events (up to [`EVENT_BATCH`] queued ones, runs of identical
/// decisions folded), or never when not subscribed.
async fn next_events(subscription: &mut Option<Subscription>) -> Option<Vec<Event>> {
    match subscription {
        Some(s) => s.next_batch(EVENT_BATCH).await,
        None => std::future::pending().await,
    }
}

fn stats(store: &PolicyStore) -> Stats {
    // Read before the counters: a decision stamped earlier is in them (the client adds
    // only what is stamped later, so at worst it lags by one decision until next poll).
    let at_ms = events::now_ms();
    let (allowed, denied, would_deny, dropped_events) = store.events().totals();
    let status = store.status();
    Stats {
        allowed,
        denied,
        would_deny,
        dropped_events,
        listeners: store.events().listener_count(),
        origins: store.events().origin_stats(events::MAX_REPORTED_ORIGINS),
        hosts: store.events().host_stats(events::MAX_REPORTED_HOSTS),
        mode: store.load().settings().mode,
        reloads: status.reloads,
        last_reload_ms: status.last_reload.map(unix_millis),
        last_error: status.last_error,
        loaded: status.loaded,
        unguarded: store.events().unguarded(),
        at_ms: Some(at_ms),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Barrier;

    fn start_at(path: &Path) -> Result<AdminHandle, AdminError> {
        start(Weak::new(), PathBuf::from("cors.toml"), path.to_path_buf())
    }

    #[test]
    fn two_binds_racing_on_one_path_one_wins_and_the_other_is_told_it_is_in_use() {
        for _ in 0..20 {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("cors.sock");
            let barrier = Arc::new(Barrier::new(2));
            let racers: Vec<_> = (0..2)
                .map(|_| {
                    let (barrier, path) = (Arc::clone(&barrier), path.clone());
                    thread::spawn(move || {
                        barrier.wait();
                        start_at(&path)
                    })
                })
                .collect();
            let results: Vec<_> = racers.into_iter().map(|t| t.join().unwrap()).collect();
            let (won, lost): (Vec<_>, Vec<_>) = results.into_iter().partition(Result::is_ok);
            assert_eq!((won.len(), lost.len()), (1, 1), "exactly one wins");
            let error = lost.into_iter().next().unwrap().unwrap_err();
            assert!(matches!(error, AdminError::InUse(_)), "{error}");
            assert!(error.to_string().contains("in use by another live process"));
            StdStream::connect(&path).expect("the winner serves");
            // Only the socket file remains: no temporary file left behind.
            assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
            drop(won);
            assert!(!path.exists(), "the winner removes its socket");
        }
    }

    #[test]
    fn dropping_removes_only_its_own_socket_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cors.sock");
        let ours = start_at(&path).unwrap();
        // Another process has since put its own socket at the path.
        fs::remove_file(&path).unwrap();
        let theirs = StdListener::bind(&path).unwrap();
        drop(ours);
        assert!(path.exists(), "another process's socket is never removed");
        StdStream::connect(&path).unwrap();
        theirs.accept().unwrap();
    }

    #[test]
    fn a_stale_socket_is_replaced_and_a_file_is_not() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cors.sock");
        drop(StdListener::bind(&path).unwrap());
        let handle = start_at(&path).expect("a stale socket is replaced");
        StdStream::connect(&path).unwrap();
        drop(handle);
        fs::write(&path, "not a socket").unwrap();
        assert!(matches!(start_at(&path), Err(AdminError::NotASocket(_))));
        assert_eq!(fs::read_to_string(&path).unwrap(), "not a socket");
    }
}
