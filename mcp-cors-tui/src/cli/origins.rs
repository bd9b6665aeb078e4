//! `origins list | add ORIGIN [--force] | remove ORIGIN` and
//! `hosts list | add HOST [--force] | remove HOST`, each with `--route NAME` for a
//! `[routes.NAME]` table's list: the two lists an operator edits, with one
//! implementation.

use std::io::Write;
use std::path::Path;

use mcp_cors::protocol::Request;

use super::CliError;
use crate::conn::Client;
use crate::escape::escaped;
pub use crate::lists::List;

/// Prints the entries requests get under `route` (`None`: the top level), one per line,
/// escaped ([`escaped`]) like all terminal output: a route's own list, or the top
/// level's that it inherits.
pub async fn list(socket: &Path, which: List, route: Option<&str>) -> Result<(), CliError> {
    let mut client = Client::connect(socket).await?;
    let policy = client.policy().await?;
    let entries = which.serving(&policy.settings, route)?;
    let mut out = std::io::stdout().lock();
    for entry in entries {
        writeln!(out, "{}", escaped(entry))?;
    }
    Ok(())
}

/// Adds `entry` (to `route`'s list, or the top level's); succeeds also when it was
/// already there (the end state is the same). `*` is refused by the server unless
/// `force`.
pub async fn add(
    socket: &Path,
    which: List,
    entry: &str,
    force: bool,
    route: Option<&str>,
) -> Result<(), CliError> {
    change(socket, which.add(entry, force, route)).await
}

/// Removes `entry` (from `route`'s list, or the top level's); fails when it is not there.
pub async fn remove(
    socket: &Path,
    which: List,
    entry: &str,
    route: Option<&str>,
) -> Result<(), CliError> {
    change(socket, which.remove(entry, route)).await
}

async fn change(socket: &Path, request: Request) -> Result<(), CliError> {
    let mut client = Client::connect(socket).await?;
    let (entry, changed) = client.change_entry(&request).await?;
    let message = crate::conn::describe(&request, &escaped(&entry), changed);
    writeln!(std::io::stdout().lock(), "{message}")?;
    Ok(())
}
