//! `mcp-cors-tui`: operate a running mcp-cors server from the terminal.

mod check;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Operate an mcp-cors guarded MCP server: validate policy files, watch decisions live,
/// allow or remove origins without a restart.
#[derive(Debug, Parser)]
#[command(name = "mcp-cors-tui", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a policy file offline, printing each error with its line and column
    /// (like `nginx -t`). Exit 0 when valid, 1 otherwise.
    Check {
        /// The policy file, e.g. cors.toml.
        file: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { file } => check::run(&file),
    }
}
