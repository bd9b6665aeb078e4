//! `origins list | add ORIGIN | remove ORIGIN`.

use std::io::Write;
use std::path::Path;

use mcp_cors::protocol::Request;

use super::CliError;
use crate::conn::Client;
use crate::escape::escaped;

/// Prints the allowed origins, one per line, escaped ([`escaped`]) like all terminal
/// output.
pub async fn list(socket: &Path) -> Result<(), CliError> {
    let mut client = Client::connect(socket).await?;
    let policy = client.policy().await?;
    let mut out = std::io::stdout().lock();
    for origin in &policy.settings.allowed_origins {
        writeln!(out, "{}", escaped(origin))?;
    }
    Ok(())
}

/// Adds `origin`; succeeds also when it was already allowed (the end state is the same).
pub async fn add(socket: &Path, origin: &str) -> Result<(), CliError> {
    change(
        socket,
        Request::AddOrigin {
            origin: origin.to_owned(),
        },
    )
    .await
}

/// Removes `origin`; fails when it is not in the policy.
pub async fn remove(socket: &Path, origin: &str) -> Result<(), CliError> {
    change(
        socket,
        Request::RemoveOrigin {
            origin: origin.to_owned(),
        },
    )
    .await
}

async fn change(socket: &Path, request: Request) -> Result<(), CliError> {
    let mut client = Client::connect(socket).await?;
    let (origin, changed) = client.change_origin(&request).await?;
    let message = crate::conn::describe(&request, &escaped(&origin), changed);
    writeln!(std::io::stdout().lock(), "{message}")?;
    Ok(())
}
