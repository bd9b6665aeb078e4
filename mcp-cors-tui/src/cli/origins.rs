//! `origins list | add ORIGIN [--force] | remove ORIGIN` and
//! `hosts list | add HOST [--force] | remove HOST`: the two lists an operator edits, with
//! one implementation.

use std::io::Write;
use std::path::Path;

use mcp_cors::protocol::Request;

use super::CliError;
use crate::conn::Client;
use crate::escape::escaped;

/// Which list of the policy a subcommand works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// `allowed_origins`.
    Origins,
    /// `allowed_hosts`.
    Hosts,
}

impl List {
    pub(crate) fn add(self, entry: &str, force: bool) -> Request {
        let entry = entry.to_owned();
        match self {
            List::Origins => Request::AddOrigin {
                origin: entry,
                force,
            },
            List::Hosts => Request::AddHost { host: entry, force },
        }
    }

    pub(crate) fn remove(self, entry: &str) -> Request {
        let entry = entry.to_owned();
        match self {
            List::Origins => Request::RemoveOrigin { origin: entry },
            List::Hosts => Request::RemoveHost { host: entry },
        }
    }
}

/// Prints the list's entries, one per line, escaped ([`escaped`]) like all terminal
/// output.
pub async fn list(socket: &Path, which: List) -> Result<(), CliError> {
    let mut client = Client::connect(socket).await?;
    let policy = client.policy().await?;
    let entries = match which {
        List::Origins => &policy.settings.allowed_origins,
        List::Hosts => &policy.settings.allowed_hosts,
    };
    let mut out = std::io::stdout().lock();
    for entry in entries {
        writeln!(out, "{}", escaped(entry))?;
    }
    Ok(())
}

/// Adds `entry`; succeeds also when it was already there (the end state is the same).
/// `*` is refused by the server unless `force`.
pub async fn add(socket: &Path, which: List, entry: &str, force: bool) -> Result<(), CliError> {
    change(socket, which.add(entry, force)).await
}

/// Removes `entry`; fails when it is not in the policy.
pub async fn remove(socket: &Path, which: List, entry: &str) -> Result<(), CliError> {
    change(socket, which.remove(entry)).await
}

async fn change(socket: &Path, request: Request) -> Result<(), CliError> {
    let mut client = Client::connect(socket).await?;
    let (entry, changed) = client.change_entry(&request).await?;
    let message = crate::conn::describe(&request, &escaped(&entry), changed);
    writeln!(std::io::stdout().lock(), "{message}")?;
    Ok(())
}
