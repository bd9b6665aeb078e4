//! Whom a subcommand works with: the server on its admin socket, or, when no server
//! answers there and the command line names the policy file, the file itself.

use std::io;
use std::path::Path;

use super::CliError;
use crate::conn::{Client, ClientError};

/// Where the policy is: the server's admin socket, and the policy file it watches when
/// the command line names one (`--config`, `--source FILE`; not `--socket` alone).
#[derive(Debug, Clone, Copy)]
pub struct Where<'a> {
    /// The admin socket.
    pub socket: &'a Path,
    /// The policy file, worked on directly when no server answers on the socket.
    pub file: Option<&'a Path>,
}

/// A server answering, or the policy file to work on because none does.
pub enum Reached<'a> {
    /// Connected, past the peer check and the handshake.
    Server(Box<Client>),
    /// No server answers, and this is the policy file.
    File(&'a Path),
}

impl<'a> Where<'a> {
    /// Connects to the server, or falls back on the file when nobody listens on the
    /// socket. Never when something answers but fails the peer check, or refuses: that
    /// is not "no server", and going around it could undo what it serves.
    pub async fn reach(self) -> Result<Reached<'a>, CliError> {
        match (Client::connect(self.socket).await, self.file) {
            (Ok(client), _) => Ok(Reached::Server(Box::new(client))),
            (Err(ClientError::Connect { source, .. }), Some(file)) if nobody_listens(&source) => {
                Ok(Reached::File(file))
            }
            (Err(e), _) => Err(e.into()),
        }
    }
}

/// Whether a failed connect means that no server runs there: no socket file, or a
/// socket file nobody listens on any more (a server that stopped). Anything else
/// (permission denied: another user's socket) is not a reason to go around the server.
fn nobody_listens(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::ConnectionRefused
    )
}
