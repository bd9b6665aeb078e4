//! `check FILE`: offline validation of a policy file, through the same reader the server
//! uses, so it accepts exactly what the server accepts and reports every error at once.

use std::path::Path;
use std::process::ExitCode;

use mcp_cors::Policy;

/// Validates `file`; prints a summary on stdout when valid, each error on stderr otherwise.
pub fn run(file: &Path) -> ExitCode {
    match Policy::from_file(file) {
        Ok(policy) => {
            let s = policy.settings();
            println!(
                "{}: ok ({} allowed origin entries, {} regexes, mode {})",
                file.display(),
                s.allowed_origins.len(),
                s.allowed_origin_regexes.len(),
                s.mode
            );
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("{err}");
            eprintln!("{}: invalid", file.display());
            ExitCode::FAILURE
        }
    }
}
