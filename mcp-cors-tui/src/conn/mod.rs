//! The connection to a server's admin socket: finding the socket from `--config` or
//! `--socket`, the hello and version check, and a small request/response client shared by
//! the interactive UI and the scriptable subcommands.

mod backoff;
mod locate;
mod session;

use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use futures_util::StreamExt;
use mcp_cors::protocol::{
    ErrorCode, Event, PROTOCOL, PolicyReply, Request, ServerLine, Stats, VERSION,
};
use tokio::io::AsyncWriteExt;
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::codec::{FramedRead, LinesCodec, LinesCodecError};

pub use backoff::Backoff;
pub use session::{NetMsg, describe, run_session};

/// How long the server may take to say hello: a socket file that accepts but never
/// answers is not an mcp-cors server.
const HELLO_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a reply may take. Adding an origin waits until the new policy serves, which
/// includes a file write and an fsync, so this is generous.
const CALL_TIMEOUT: Duration = Duration::from_secs(30);

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
}

/// Why talking to the admin socket failed.
#[derive(Debug, thiserror::Error)]
pub enum ConnError {
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
    /// The server speaks another protocol version.
    #[error(
        "admin socket {}: the server speaks admin protocol version {server}, this mcp-cors-tui speaks version {client}; use an mcp-cors-tui built with the server's mcp-cors version",
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
    /// The peer is not an mcp-cors admin socket, or broke the protocol.
    #[error("admin socket {}: {detail}", path.display())]
    Protocol {
        /// The socket path.
        path: PathBuf,
        /// What was wrong.
        detail: String,
    },
    /// The connection broke or was closed.
    #[error("admin socket {}: connection lost: {detail}", path.display())]
    Lost {
        /// The socket path.
        path: PathBuf,
        /// What happened.
        detail: String,
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

/// A connection to the admin socket, past the hello.
#[derive(Debug)]
pub struct Client {
    path: PathBuf,
    server: String,
    lines: FramedRead<OwnedReadHalf, LinesCodec>,
    out: OwnedWriteHalf,
}

impl Client {
    /// Connects to `path`, reads the hello and checks the protocol version.
    pub async fn connect(path: &Path) -> Result<Client, ConnError> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| ConnError::Connect {
                path: path.to_path_buf(),
                source,
            })?;
        let (read, out) = stream.into_split();
        let mut client = Client {
            path: path.to_path_buf(),
            server: String::new(),
            lines: FramedRead::new(
                read,
                LinesCodec::new_with_max_length(mcp_cors::protocol::MAX_SERVER_LINE),
            ),
            out,
        };
        let hello = tokio::time::timeout(HELLO_TIMEOUT, client.recv())
            .await
            .map_err(|_| client.protocol("no hello from the server within 5 s"))??;
        client.check_hello(hello)?;
        Ok(client)
    }

    fn check_hello(&mut self, hello: ServerLine) -> Result<(), ConnError> {
        match hello {
            ServerLine::Hello {
                protocol,
                version,
                server,
            } if protocol == PROTOCOL => {
                if version != VERSION {
                    return Err(ConnError::Version {
                        path: self.path.clone(),
                        server: version,
                        client: VERSION,
                    });
                }
                self.server = server;
                Ok(())
            }
            ServerLine::Hello { protocol, .. } => {
                Err(self.protocol(format!("speaks protocol {protocol:?}, not {PROTOCOL:?}")))
            }
            ServerLine::Error { code, message } => Err(ConnError::Refused { code, message }),
            other => Err(self.protocol(format!("expected a hello line, got {other:?}"))),
        }
    }

    /// The server's mcp-cors version, from its hello.
    pub fn server_version(&self) -> &str {
        &self.server
    }

    fn protocol(&self, detail: impl Into<String>) -> ConnError {
        ConnError::Protocol {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    fn lost(&self, detail: impl Into<String>) -> ConnError {
        ConnError::Lost {
            path: self.path.clone(),
            detail: detail.into(),
        }
    }

    /// Sends one request line.
    pub async fn send(&mut self, request: &Request) -> Result<(), ConnError> {
        let mut line = serde_json::to_vec(request).map_err(|e| self.protocol(e.to_string()))?;
        line.push(b'\n');
        let written = self.out.write_all(&line).await;
        written.map_err(|e| self.lost(e.to_string()))
    }

    /// The next line from the server, raw and parsed.
    pub async fn recv_raw(&mut self) -> Result<(String, ServerLine), ConnError> {
        let line = match self.lines.next().await {
            None => return Err(self.lost("the server closed the connection")),
            Some(Ok(line)) => line,
            Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                return Err(self.protocol("a line from the server is too long"));
            }
            Some(Err(LinesCodecError::Io(e))) => return Err(self.lost(e.to_string())),
        };
        match serde_json::from_str(&line) {
            Ok(parsed) => Ok((line, parsed)),
            Err(e) => Err(self.protocol(format!("unreadable line from the server: {e}"))),
        }
    }

    /// Whether another whole line has already been received (so the next `recv` will not
    /// wait). Lets a follower batch its output under load and still flush when idle.
    pub fn line_pending(&self) -> bool {
        self.lines.read_buffer().contains(&b'\n')
    }

    /// The next line from the server, parsed.
    pub async fn recv(&mut self) -> Result<ServerLine, ConnError> {
        self.recv_raw().await.map(|(_, line)| line)
    }

    /// Sends `request` and returns its reply; an error reply becomes
    /// [`ConnError::Refused`]. Only for connections that are not subscribed (events would
    /// interleave with replies).
    pub async fn call(&mut self, request: &Request) -> Result<ServerLine, ConnError> {
        self.send(request).await?;
        let reply = tokio::time::timeout(CALL_TIMEOUT, self.recv())
            .await
            .map_err(|_| self.lost("no reply within 30 s"))??;
        match reply {
            ServerLine::Error { code, message } => Err(ConnError::Refused { code, message }),
            reply => Ok(reply),
        }
    }

    /// Subscribes to events; returns the replayed ones. Later events arrive through
    /// [`Client::recv`].
    pub async fn subscribe(&mut self, replay: usize) -> Result<Vec<Event>, ConnError> {
        let count = match self.call(&Request::Subscribe { replay }).await? {
            ServerLine::Subscribed { replayed } => replayed,
            other => return Err(self.unexpected("subscribed", &other)),
        };
        let mut events = Vec::with_capacity(count);
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
    pub async fn policy(&mut self) -> Result<PolicyReply, ConnError> {
        match self.call(&Request::Policy).await? {
            ServerLine::Policy(policy) => Ok(policy),
            other => Err(self.unexpected("policy", &other)),
        }
    }

    /// Counters and reload status.
    pub async fn stats(&mut self) -> Result<Stats, ConnError> {
        match self.call(&Request::Stats).await? {
            ServerLine::Stats(stats) => Ok(stats),
            other => Err(self.unexpected("stats", &other)),
        }
    }

    /// Sends an `add_origin` or `remove_origin` request; returns the origin as stored and
    /// whether the file changed.
    pub async fn change_origin(&mut self, request: &Request) -> Result<(String, bool), ConnError> {
        match self.call(request).await? {
            ServerLine::OriginChanged { origin, changed } => Ok((origin, changed)),
            other => Err(self.unexpected("origin_changed", &other)),
        }
    }

    fn unexpected(&self, wanted: &str, got: &ServerLine) -> ConnError {
        self.protocol(format!("expected {wanted}, got {got:?}"))
    }
}
