//! `status`: totals, mode, listeners, reloads, last reload error.

use std::io::Write;
use std::path::Path;

use mcp_cors::Mode;
use mcp_cors::protocol::{PolicyReply, Stats, unix_millis};

use super::CliError;
use crate::clock;
use crate::conn::Client;

/// Prints the server's status as `key: value` lines.
pub async fn run(socket: &Path) -> Result<(), CliError> {
    let mut client = Client::connect(socket).await?;
    let stats = client.stats().await?;
    let policy = client.policy().await?;
    let text = render(socket, client.server_version(), &stats, &policy);
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// The status report.
pub fn render(socket: &Path, server: &str, stats: &Stats, policy: &PolicyReply) -> String {
    let source = policy
        .source
        .as_ref()
        .map_or("(built in code)".to_owned(), |p| p.display().to_string());
    let mode = match stats.mode {
        Mode::Enforce => "enforce",
        Mode::ReportOnly => "report-only",
    };
    let last_reload = stats.last_reload_ms.map_or("never".to_owned(), clock::iso);
    let last_error = stats.last_error.as_ref().map_or("none".to_owned(), |e| {
        format!(
            "{} {}",
            clock::iso(unix_millis(e.at)),
            e.message.replace('\n', "\n    ")
        )
    });
    let rows = [
        ("socket", socket.display().to_string()),
        ("server", server.to_owned()),
        ("policy", source),
        ("loaded", loaded(stats.loaded).to_owned()),
        ("mode", mode.to_owned()),
        ("origins", policy.settings.allowed_origins.len().to_string()),
        ("allowed", stats.allowed.to_string()),
        ("denied", stats.denied.to_string()),
        ("would-deny", stats.would_deny.to_string()),
        ("dropped", stats.dropped_events.to_string()),
        ("listeners", stats.listeners.to_string()),
        ("reloads", stats.reloads.to_string()),
        ("last reload", last_reload),
        ("last reload error", last_error),
    ];
    rows.iter()
        .map(|(k, v)| format!("{:<18} {v}\n", format!("{k}:")))
        .collect()
}

fn loaded(loaded: bool) -> &'static str {
    if loaded {
        "yes"
    } else {
        "no (failing closed: every cross-origin request is refused)"
    }
}
