//! A client of the admin socket: connect, check who listens, handshake, then one request
//! and one reply per line (see [`protocol`](crate::protocol)).
//!
//! It uses only the protocol types, `serde`, `tokio`, `libc` and `thiserror`, so that a
//! tool built without the server side (actix-web, notify) can use it.
//!
//! Before anything is read or sent, the server's peer credentials (`SO_PEERCRED`) are
//! checked: in a shared folder another user can bind the socket path first and answer
//! like a server would, so a socket whose listener is neither this user nor root is
//! refused ([`ClientError::ForeignOwner`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), mcp_cors::client::ClientError> {
//! use mcp_cors::client::Client;
//!
//! let mut client = Client::connect("/etc/mcp/cors.sock".as_ref()).await?;
//! let stats = client.stats().await?;
//! println!("{} allowed, {} denied", stats.allowed, stats.denied);
//! # Ok(()) }
//! ```

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::protocol::{
    AuditRecord, ErrorCode, Event, MAX_SERVER_LINE, PROTOCOL, PolicyReply, ReplicaId, Request,
    ServerLine, Stats, VERSION,
};

/// How long the server may take to say hello: a socket file that accepts but never
/// answers is not an mcp-cors server.
pub const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a reply may take. Adding an origin waits until the new policy serves, which
/// includes a file write and an fsync, so this is generous.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// Why talking to the admin socket failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing answers at the socket path.
    #[error(
        "cannot connect to the admin socket {}: {source} (is the server running? choose the socket with --config FILE or --socket PATH)",
        path.display()
    )]
    Connect {
        /// The socket path tried.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The listener's credentials could not be read, so it cannot be trusted.
    #[error("admin socket {}: cannot read the server's peer credentials: {source}", path.display())]
    PeerCredentials {
        /// The socket path.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The process listening on the socket is another user: it may have bound the path
    /// before the real server did. Nothing was sent to it.
    #[error(
        "admin socket {}: the process listening on it runs as uid {owner}, neither you (uid {us}) nor root; refusing to talk to it (another user may have bound the path first): remove that socket and restart the server, or choose the server's own socket with --socket PATH",
        path.display()
    )]
    ForeignOwner {
        /// The socket path.
        path: PathBuf,
        /// The listener's uid.
        owner: u32,
        /// Our effective uid.
        us: u32,
    },
    /// The server speaks another protocol version.
    #[error(
        "admin socket {}: the server speaks admin protocol version {server}, this client speaks version {client}; use a client built with the server's mcp-cors version",
        path.display()
    )]
    Version {
        /// The socket path.
        path: PathBuf,
        /// The server's version.
        server: u32,
        /// Ours ([`VERSION`]).
        client: u32,
    },
    /// The server did not answer in time.
    #[error("admin socket {}: no {what} from the server within {} s", path.display(), after.as_secs())]
    Timeout {
        /// The socket path.
        path: PathBuf,
        /// What was awaited (`hello`, `reply`).
        what: &'static str,
        /// How long we waited.
        after: Duration,
    },
    /// A line from the server is not a protocol line.
    #[error("admin socket {}: unreadable line from the server: {source}", path.display())]
    Unreadable {
        /// The socket path.
        path: PathBuf,
        /// Why it does not parse.
        #[source]
        source: serde_json::Error,
    },
    /// The peer is not an mcp-cors admin socket, or broke the protocol.
    #[error("admin socket {}: {detail}", path.display())]
    Protocol {
        /// The socket path.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The server closed the connection.
    #[error("admin socket {}: connection lost: the server closed the connection", path.display())]
    Closed {
        /// The socket path.
        path: PathBuf,
    },
    /// Reading or writing failed.
    #[error("admin socket {}: connection lost: {source}", path.display())]
    Io {
        /// The socket path.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: io::Error,
    },
    /// The server answered a request with an error.
    #[error("{message}")]
    Refused {
        /// The server's machine-readable code.
        code: ErrorCode,
        /// The server's explanation.
        message: String,
    },
}

/// A connection to the admin socket, past the peer check and the handshake.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    server: String,
    replica: ReplicaId,
    reader: BufReader<OwnedReadHalf>,
    /// The part of a line read so far: kept here so that a `recv` cancelled (in a
    /// `select!`) loses nothing.
    partial: Vec<u8>,
    out: OwnedWriteHalf,
}

impl Client {
    /// Connects to `path`, checks that its listener is this user or root, reads the
    /// server's hello, and states our version (the server refuses a mismatch too).
    pub async fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| ClientError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        check_peer(path, &stream)?;
        let (read, out) = stream.into_split();
        let mut client = Client {
            path: path.to_path_buf(),
            server: String::new(),
            replica: ReplicaId::default(),
            reader: BufReader::new(read),
            partial: Vec::new(),
            out,
        };
        let hello = client.recv_within(HELLO_TIMEOUT, "hello").await?;
        client.check_hello(hello)?;
        client.send(&Request::Hello { version: VERSION }).await?;
        match client.recv_within(HELLO_TIMEOUT, "hello").await? {
            ServerLine::HelloOk => Ok(client),
            ServerLine::Error { code, message } => Err(ClientError::Refused { code, message }),
            other => Err(client.unexpected("hello_ok", &other)),
        }
    }

    fn check_hello(&mut self, hello: ServerLine) -> Result<(), ClientError> {
        match hello {
            ServerLine::Hello {
                protocol,
                version,
                server,
                hostname,
                pid,
            } if protocol == PROTOCOL => {
                if version != VERSION {
                    return Err(ClientError::Version {
                        path: self.path.clone(),
                        server: version,
                        client: VERSION,
                    });
                }
                self.server = server;
                self.replica = ReplicaId { hostname, pid };
                Ok(())
            }
            ServerLine::Hello { protocol, .. } => {
                Err(self.protocol(format!("speaks protocol {protocol:?}, not {PROTOCOL:?}")))
            }
            // A server that refuses us at once (busy, another user) says why instead.
            ServerLine::Error { code, message } => Err(ClientError::Refused { code, message }),
            other => Err(self.unexpected("a hello line", &other)),
        }
    }

    /// The socket path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The server's mcp-cors version, from its hello.
    pub fn server_version(&self) -> &str {
        &self.server
    }

    /// Which process answers (host name and pid), from its hello.
    pub fn replica(&self) -> &ReplicaId {
        &self.replica
    }

    /// Sends one request line.
    pub async fn send(&mut self, request: &Request) -> Result<(), ClientError> {
        let mut line = serde_json::to_vec(request).map_err(|e| self.protocol(e.to_string()))?;
        line.push(b'\n');
        self.send_raw(&line).await
    }

    /// Writes `bytes` as they are: for a line a [`Request`] cannot express, such as a
    /// check of how a server takes malformed input.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        let written = self.out.write_all(bytes).await;
        written.map_err(|source| self.io(source))
    }

    /// The next line from the server, as sent and parsed. Cancel-safe.
    pub async fn recv_raw(&mut self) -> Result<(String, ServerLine), ClientError> {
        let line = self.next_line().await?;
        match serde_json::from_str(&line) {
            Ok(parsed) => Ok((line, parsed)),
            Err(source) => Err(ClientError::Unreadable {
                path: self.path.clone(),
                source,
            }),
        }
    }

    /// The next line from the server, parsed. Cancel-safe.
    pub async fn recv(&mut self) -> Result<ServerLine, ClientError> {
        self.recv_raw().await.map(|(_, line)| line)
    }

    /// Whether another whole line has already been received (so the next `recv` will not
    /// wait). Lets a follower batch its output under load and still flush when idle.
    pub fn line_pending(&self) -> bool {
        self.reader.buffer().contains(&b'\n')
    }

    /// Sends `request` and returns its reply; an error reply becomes
    /// [`ClientError::Refused`]. Only for connections that are not subscribed (events
    /// would interleave with replies).
    pub async fn call(&mut self, request: &Request) -> Result<ServerLine, ClientError> {
        self.send(request).await?;
        match self.recv_within(CALL_TIMEOUT, "reply").await? {
            ServerLine::Error { code, message } => Err(ClientError::Refused { code, message }),
            reply => Ok(reply),
        }
    }

    /// Subscribes to events; returns the replayed ones. Later events arrive through
    /// [`Client::recv`].
    pub async fn subscribe(&mut self, replay: usize) -> Result<Vec<Event>, ClientError> {
        let count = match self.call(&Request::Subscribe { replay }).await? {
            ServerLine::Subscribed { replayed } => replayed,
            other => return Err(self.unexpected("subscribed", &other)),
        };
        let mut events = Vec::with_capacity(count.min(crate::protocol::MAX_REPLAY));
        while events.len() < count {
            match self.recv().await? {
                ServerLine::Event(event) => events.push(event),
                ServerLine::Dropped { .. } => {}
                other => return Err(self.unexpected("a replayed event", &other)),
            }
        }
        Ok(events)
    }

    /// The serving policy.
    pub async fn policy(&mut self) -> Result<PolicyReply, ClientError> {
        match self.call(&Request::Policy).await? {
            ServerLine::Policy(policy) => Ok(policy),
            other => Err(self.unexpected("policy", &other)),
        }
    }

    /// The server's recent audit records, oldest first (at most `limit`, the most
    /// recent; all it keeps when `None`).
    pub async fn audit(&mut self, limit: Option<usize>) -> Result<Vec<AuditRecord>, ClientError> {
        match self.call(&Request::Audit { limit }).await? {
            ServerLine::Audit { records } => Ok(records),
            other => Err(self.unexpected("audit", &other)),
        }
    }

    /// Counters and reload status.
    pub async fn stats(&mut self) -> Result<Stats, ClientError> {
        match self.call(&Request::Stats).await? {
            ServerLine::Stats(stats) => Ok(stats),
            other => Err(self.unexpected("stats", &other)),
        }
    }

    /// Sends an `add_origin` or `remove_origin` request; returns the origin as stored and
    /// whether the file changed.
    pub async fn change_origin(
        &mut self,
        request: &Request,
    ) -> Result<(String, bool), ClientError> {
        match self.call(request).await? {
            ServerLine::OriginChanged {
                origin,
                changed,
                route,
            } => self.edited_where_asked(request, route.as_deref(), (origin, changed)),
            other => Err(self.unexpected("origin_changed", &other)),
        }
    }

    /// Sends any edit of the policy's lists (`add_origin`, `remove_origin`, `add_host`,
    /// `remove_host`, each on the top level or on a route); returns the entry as stored
    /// and whether the file changed.
    pub async fn change_entry(&mut self, request: &Request) -> Result<(String, bool), ClientError> {
        match self.call(request).await? {
            ServerLine::OriginChanged {
                origin,
                changed,
                route,
            } => self.edited_where_asked(request, route.as_deref(), (origin, changed)),
            ServerLine::HostChanged {
                host,
                changed,
                route,
            } => self.edited_where_asked(request, route.as_deref(), (host, changed)),
            other => Err(self.unexpected("origin_changed or host_changed", &other)),
        }
    }

    /// `outcome`, if the reply names the route the request did. The version check
    /// already keeps route edits from servers that do not know routes; this catches a
    /// server that edited another list all the same, and says so rather than report
    /// success.
    fn edited_where_asked<T>(
        &self,
        request: &Request,
        replied: Option<&str>,
        outcome: T,
    ) -> Result<T, ClientError> {
        if replied == request.route() {
            return Ok(outcome);
        }
        let name =
            |r: Option<&str>| r.map_or("the top level".to_owned(), |r| format!("route {r:?}"));
        Err(self.protocol(format!(
            "asked to edit {}, the server replied that it edited {}: check the policy file",
            name(request.route()),
            name(replied)
        )))
    }

    async fn recv_within(
        &mut self,
        after: Duration,
        what: &'static str,
    ) -> Result<ServerLine, ClientError> {
        match tokio::time::timeout(after, self.recv()).await {
            Ok(line) => line,
            Err(_) => Err(ClientError::Timeout {
                path: self.path.clone(),
                what,
                after,
            }),
        }
    }

    /// One line without its `\n` (and a `\r` before it), at most [`MAX_SERVER_LINE`]
    /// bytes.
    async fn next_line(&mut self) -> Result<String, ClientError> {
        loop {
            let buf = match self.reader.fill_buf().await {
                Ok(buf) => buf,
                Err(source) => {
                    return Err(ClientError::Io {
                        path: self.path.clone(),
                        source,
                    });
                }
            };
            if buf.is_empty() {
                return Err(ClientError::Closed {
                    path: self.path.clone(),
                });
            }
            let (taken, done) = match buf.iter().position(|&b| b == b'\n') {
                Some(at) => (at, true),
                None => (buf.len(), false),
            };
            self.partial.extend_from_slice(&buf[..taken]);
            self.reader.consume(if done { taken + 1 } else { taken });
            if self.partial.len() > MAX_SERVER_LINE {
                return Err(self.protocol(format!(
                    "a line from the server is longer than {MAX_SERVER_LINE} bytes"
                )));
            }
            if done {
                break;
            }
        }
        let mut line = std::mem::take(&mut self.partial);
        if line.last() == Some(&b'\r') {
            line.pop();
        }
        String::from_utf8(line).map_err(|_| self.protocol("a line from the server is not UTF-8"))
    }

    fn protocol(&self, detail: impl Into<String>) -> ClientError {
        ClientError::Protocol {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    fn io(&self, source: io::Error) -> ClientError {
        ClientError::Io {
            path: self.path.clone(),
            source,
        }
    }

    fn unexpected(&self, wanted: &str, got: &ServerLine) -> ClientError {
        self.protocol(format!("expected {wanted}, got {got:?}"))
    }
}

/// Refuses a listener that is neither this user nor root (`SO_PEERCRED`, taken when the
/// listener called `listen`).
fn check_peer(path: &Path, stream: &UnixStream) -> Result<(), ClientError> {
    let owner = stream
        .peer_cred()
        .map_err(|source| ClientError::PeerCredentials {
            path: path.to_path_buf(),
            source,
        })?
        .uid();
    // SAFETY: geteuid has no preconditions and cannot fail.
    let us = unsafe { libc::geteuid() };
    if owner == us || owner == 0 {
        return Ok(());
    }
    Err(ClientError::ForeignOwner {
        path: path.to_path_buf(),
        owner,
        us,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::UnixListener;

    fn hello(version: u32) -> String {
        let line = ServerLine::Hello {
            protocol: PROTOCOL.into(),
            version,
            server: "9.9.9".into(),
            hostname: Some("web-1".into()),
            pid: Some(42),
        };
        format!("{}\n", serde_json::to_string(&line).unwrap())
    }

    /// A peer on a fresh socket that writes `script` after each line it reads (the first
    /// right away), then holds the connection; returns what it was sent.
    fn peer(script: Vec<String>) -> (tempfile::TempDir, PathBuf, tokio::task::JoinHandle<String>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer.sock");
        let listener = UnixListener::bind(&path).unwrap();
        let task = tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut out) = stream.into_split();
            let mut read = BufReader::new(read);
            let mut seen = String::new();
            for (i, chunk) in script.iter().enumerate() {
                if i > 0 && read.read_line(&mut seen).await.unwrap() == 0 {
                    break;
                }
                out.write_all(chunk.as_bytes()).await.unwrap();
            }
            let mut rest = String::new();
            let _ =
                tokio::time::timeout(Duration::from_millis(200), read.read_to_string(&mut rest))
                    .await;
            seen + &rest
        });
        (dir, path, task)
    }

    #[tokio::test]
    async fn a_hello_without_hostname_and_pid_is_accepted_and_labels_nothing() {
        let old = format!(
            "{{\"type\":\"hello\",\"protocol\":\"{PROTOCOL}\",\"version\":{VERSION},\"server\":\"0.1.0\"}}\n"
        );
        let ok = "{\"type\":\"hello_ok\"}\n".to_owned();
        let (_dir, path, _seen) = peer(vec![old, ok]);
        let client = Client::connect(&path).await.unwrap();
        assert_eq!(client.replica(), &ReplicaId::default());
    }

    #[tokio::test]
    async fn the_handshake_states_our_version_and_needs_hello_ok() {
        let ok = "{\"type\":\"hello_ok\"}\n".to_owned();
        let (_dir, path, seen) = peer(vec![hello(VERSION), ok]);
        let client = Client::connect(&path).await.unwrap();
        assert_eq!(client.server_version(), "9.9.9");
        assert_eq!(client.replica().label().as_deref(), Some("web-1:42"));
        drop(client);
        assert_eq!(
            seen.await.unwrap(),
            format!("{{\"cmd\":\"hello\",\"version\":{VERSION}}}\n")
        );
    }

    #[tokio::test]
    async fn a_server_of_another_version_is_refused_naming_both() {
        let (_dir, path, seen) = peer(vec![hello(VERSION + 1)]);
        let err = Client::connect(&path).await.unwrap_err();
        assert!(
            matches!(err, ClientError::Version { server, client, .. } if server == VERSION + 1 && client == VERSION),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(text.contains(&format!("version {}", VERSION + 1)), "{text}");
        assert_eq!(seen.await.unwrap(), "", "nothing is sent to it");
    }

    #[tokio::test]
    async fn a_server_that_refuses_our_version_is_an_error_with_its_words() {
        let no = ServerLine::Error {
            code: ErrorCode::UnsupportedVersion,
            message: "this server speaks admin protocol version 7".into(),
        };
        let no = format!("{}\n", serde_json::to_string(&no).unwrap());
        let (_dir, path, _seen) = peer(vec![hello(VERSION), no]);
        let err = Client::connect(&path).await.unwrap_err();
        assert!(
            matches!(&err, ClientError::Refused { code: ErrorCode::UnsupportedVersion, message } if message.contains("version 7")),
            "{err:?}"
        );
    }

    #[tokio::test]
    async fn a_reply_that_edited_another_list_than_the_route_asked_for_is_an_error() {
        let ok = "{\"type\":\"hello_ok\"}\n".to_owned();
        let top =
            "{\"type\":\"origin_changed\",\"origin\":\"https://a.example\",\"changed\":true}\n";
        let (_dir, path, _seen) = peer(vec![hello(VERSION), ok, top.to_owned()]);
        let mut client = Client::connect(&path).await.unwrap();
        let asked = Request::AddOrigin {
            origin: "https://a.example".into(),
            force: false,
            route: Some("meta".into()),
        };
        let err = client.change_entry(&asked).await.unwrap_err();
        let text = err.to_string();
        assert!(
            matches!(err, ClientError::Protocol { .. })
                && text.contains("route \"meta\"")
                && text.contains("the top level"),
            "{text}"
        );
    }

    /// A peer that greets, agrees to our hello, then writes each of `chunks` 50 ms apart.
    fn slow_peer(chunks: Vec<Vec<u8>>) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peer.sock");
        let listener = UnixListener::bind(&path).unwrap();
        tokio::spawn(async move {
            let (stream, _) = listener.accept().await.unwrap();
            let (read, mut out) = stream.into_split();
            out.write_all(hello(VERSION).as_bytes()).await.unwrap();
            let mut line = String::new();
            BufReader::new(read).read_line(&mut line).await.unwrap();
            out.write_all(b"{\"type\":\"hello_ok\"}\r\n").await.unwrap();
            for chunk in chunks {
                tokio::time::sleep(Duration::from_millis(50)).await;
                if out.write_all(&chunk).await.is_err() {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        });
        (dir, path)
    }

    #[tokio::test]
    async fn a_recv_cancelled_mid_line_loses_nothing() {
        let line = "{\"type\":\"dropped\",\"count\":1,\"total\":2}\n";
        let (a, b) = line.split_at(12);
        let (_dir, path) = slow_peer(vec![a.into(), b.into()]);
        let mut client = Client::connect(&path).await.unwrap();
        // Cancelled after the first half arrived, as a `select!` would.
        let waited = tokio::time::timeout(Duration::from_millis(80), client.recv()).await;
        assert!(waited.is_err());
        assert_eq!(
            client.recv().await.unwrap(),
            ServerLine::Dropped { count: 1, total: 2 }
        );
        assert!(matches!(
            client.recv().await,
            Err(ClientError::Closed { .. })
        ));
    }

    #[tokio::test]
    async fn a_line_longer_than_the_limit_is_an_error_not_a_buffer_without_end() {
        let (_dir, path) = slow_peer(vec![vec![b'x'; MAX_SERVER_LINE + 1]]);
        let mut client = Client::connect(&path).await.unwrap();
        let err = client.recv().await.unwrap_err();
        assert!(
            err.to_string().contains("longer than 16777216 bytes"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn a_socket_that_speaks_something_else_is_refused() {
        let (_dir, path, _seen) = peer(vec!["SSH-2.0-OpenSSH_9.2\r\n".into()]);
        let err = Client::connect(&path).await.unwrap_err();
        assert!(matches!(err, ClientError::Unreadable { .. }), "{err:?}");
    }
}
