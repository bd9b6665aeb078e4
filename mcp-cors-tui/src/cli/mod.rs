//! The scriptable subcommands: one line of output per item on stdout, errors on stderr,
//! exit 0 on success and 1 otherwise.

pub mod audit;
pub mod origins;
mod reach;
pub mod source;
pub mod status;
pub mod tail;

use std::future::Future;
use std::io;
use std::process::ExitCode;

use crate::conn::ClientError;

/// Why a subcommand failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Talking to the server failed, or it refused the request.
    #[error(transparent)]
    Conn(#[from] ClientError),
    /// The route named is not one whose list can be shown.
    #[error(transparent)]
    Route(#[from] crate::lists::RouteError),
    /// A policy (kept in etcd, or a file worked on with no server) could not be read, or
    /// is not valid.
    #[error("{0}")]
    Source(String),
    /// An edit of a policy kept in etcd, or of a file with no server, was refused.
    #[error(transparent)]
    Remote(#[from] mcp_cors::EditRefused),
    /// The audit trail could not be read from the server nor from its file.
    #[error("{0}")]
    Audit(String),
    /// Writing the output failed.
    #[error("cannot write output: {0}")]
    Output(#[from] io::Error),
}

/// Runs a subcommand's future to completion and turns its outcome into an exit code.
pub fn execute<F>(command: F) -> ExitCode
where
    F: Future<Output = Result<(), CliError>>,
{
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("mcp-cors-tui: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(command) {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`| head`) is not an error of ours.
        Err(CliError::Output(e)) if e.kind() == io::ErrorKind::BrokenPipe => ExitCode::SUCCESS,
        Err(e) => {
            // A refusal quotes the server, which quotes what it was sent.
            let text = e.to_string();
            let lines: Vec<_> = text.lines().map(crate::escape::escaped).collect();
            eprintln!("mcp-cors-tui: {}", lines.join("\n"));
            ExitCode::FAILURE
        }
    }
}
