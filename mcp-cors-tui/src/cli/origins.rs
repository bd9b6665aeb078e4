//! `origins list | add ORIGIN [--force] | remove ORIGIN` and
//! `hosts list | add HOST [--force] | remove HOST`, each with `--route NAME` for a
//! `[routes.NAME]` table's list: the two lists an operator edits, with one
//! implementation.
//!
//! They ask the server on its admin socket. When no server answers there (no socket
//! file, or one a stopped server left behind) and the policy file is known (`--config`,
//! `--source FILE`), they work on the file itself: the library's [`mcp_cors::edit_file`],
//! the server's own edit without the server. Never when something answers but fails the
//! peer check, or refuses: that is not "no server", and the file is left alone.

use std::io::Write;

use mcp_cors::Policy;
use mcp_cors::protocol::Request;

use super::CliError;
use super::reach::Reached;
pub use super::reach::Where;
use crate::escape::escaped;
pub use crate::lists::List;

/// Prints the entries requests get under `route` (`None`: the top level), one per line,
/// escaped ([`escaped`]) like all terminal output: a route's own list, or the top
/// level's that it inherits.
pub async fn list(at: Where<'_>, which: List, route: Option<&str>) -> Result<(), CliError> {
    let settings = match at.reach().await? {
        Reached::Server(mut client) => client.policy().await?.settings,
        Reached::File(file) => Policy::from_file(file)
            .map_err(|e| CliError::Source(format!("{}: invalid policy:\n{e}", file.display())))?
            .settings()
            .clone(),
    };
    let entries = which.serving(&settings, route)?;
    let mut out = std::io::stdout().lock();
    for entry in entries {
        writeln!(out, "{}", escaped(entry))?;
    }
    Ok(())
}

/// Adds `entry` (to `route`'s list, or the top level's); succeeds also when it was
/// already there (the end state is the same). `*` is refused unless `force`.
pub async fn add(
    at: Where<'_>,
    which: List,
    entry: &str,
    force: bool,
    route: Option<&str>,
) -> Result<(), CliError> {
    change(at, which.add(entry, force, route)).await
}

/// Removes `entry` (from `route`'s list, or the top level's); fails when it is not there.
pub async fn remove(
    at: Where<'_>,
    which: List,
    entry: &str,
    route: Option<&str>,
) -> Result<(), CliError> {
    change(at, which.remove(entry, route)).await
}

async fn change(at: Where<'_>, request: Request) -> Result<(), CliError> {
    let (entry, changed) = match at.reach().await? {
        Reached::Server(mut client) => client.change_entry(&request).await?,
        Reached::File(file) => {
            let done = mcp_cors::edit_file(file, &request).await?;
            // On stderr: stdout stays the one line a script reads, as with a server.
            eprintln!(
                "mcp-cors-tui: no server answers at {}: {} edited directly",
                escaped(&at.socket.display().to_string()),
                escaped(&file.display().to_string())
            );
            (done.entry, done.changed)
        }
    };
    let message = crate::conn::describe(&request, &escaped(&entry), changed);
    writeln!(std::io::stdout().lock(), "{message}")?;
    Ok(())
}
