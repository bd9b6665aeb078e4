//! The library's admin client (`mcp_cors::client`), with the test's manners: a broken
//! connection or a late answer is a failure with a message, and a closed connection is
//! `None` where a test waits for it.

use std::path::Path;
use std::time::Duration;

use mcp_cors::client::{self, ClientError};
use mcp_cors::protocol::{Event, Request, ServerLine, Stats};

/// How long a test waits for a line.
const WAIT: Duration = Duration::from_secs(10);

pub struct Client(pub client::Client);

impl Client {
    /// Connects and completes the handshake, or fails the test.
    pub async fn connect(path: &Path) -> Client {
        match client::Client::connect(path).await {
            Ok(client) => Client(client),
            Err(e) => panic!("connect to {}: {e}", path.display()),
        }
    }

    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), ClientError> {
        self.0.send_raw(bytes).await
    }

    pub async fn send(&mut self, request: &Request) {
        self.0.send(request).await.expect("send a request");
    }

    /// The next line as sent and parsed, or `None` when the server closed the connection.
    pub async fn recv_raw(&mut self) -> Option<(String, ServerLine)> {
        let line = tokio::time::timeout(WAIT, self.0.recv_raw())
            .await
            .expect("the server answers within 10 s");
        match line {
            Ok(line) => Some(line),
            Err(ClientError::Closed { .. } | ClientError::Io { .. }) => None,
            Err(e) => panic!("{e}"),
        }
    }

    /// The next line, or `None` when the server closed the connection.
    pub async fn recv(&mut self) -> Option<ServerLine> {
        self.recv_raw().await.map(|(_, line)| line)
    }

    /// Sends `request` and returns the reply, error replies included.
    pub async fn call(&mut self, request: Request) -> ServerLine {
        self.send(&request).await;
        self.recv().await.expect("a reply")
    }

    pub async fn stats(&mut self) -> Stats {
        match self.call(Request::Stats).await {
            ServerLine::Stats(stats) => stats,
            other => panic!("expected stats, got {other:?}"),
        }
    }

    /// Skips lines until an event matching `want` arrives.
    pub async fn expect_event(&mut self, want: impl Fn(&Event) -> bool) -> Event {
        loop {
            match self.recv().await {
                Some(ServerLine::Event(e)) if want(&e) => return e,
                Some(_) => continue,
                None => panic!("connection closed while waiting for an event"),
            }
        }
    }
}
