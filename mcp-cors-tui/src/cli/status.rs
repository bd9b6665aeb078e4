//! `status`: totals, mode, listeners, reloads, last reload error, per-origin counters and
//! refused hosts; as `key: value` lines, or one JSON document with `--json`.

use std::io::Write;
use std::path::Path;

use mcp_cors::Policy;
use mcp_cors::protocol::{PolicyReply, Stats};

use super::CliError;
use super::reach::{Reached, Where};
use crate::clock;
use crate::conn::Client;
use crate::escape::escaped;

/// Prints the server's status as `key: value` lines, or as JSON.
pub async fn run(socket: &Path, json: bool) -> Result<(), CliError> {
    let client = Client::connect(socket).await?;
    report(socket, client, json).await
}

/// [`run`], or, when no server answers and the policy file is known, the file's status
/// ([`offline`]).
pub async fn run_at(at: Where<'_>, json: bool) -> Result<(), CliError> {
    match at.reach().await? {
        Reached::Server(client) => report(at.socket, *client, json).await,
        Reached::File(file) => offline(
            &Offline {
                policy: file.display().to_string(),
                revision: None,
                parsed: Policy::from_file(file).map_err(|e| e.to_string()),
                socket: at.socket,
            },
            json,
        ),
    }
}

async fn report(socket: &Path, mut client: Client, json: bool) -> Result<(), CliError> {
    let stats = client.stats().await?;
    let policy = client.policy().await?;
    let text = match json {
        false => render(socket, client.server_version(), &stats, &policy),
        true => render_json(socket, client.server_version(), &stats, &policy),
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// A policy's status with no server running: where it is, and whether it is valid.
pub struct Offline<'a> {
    /// The file, or the source's name (`etcd://…/KEY`).
    pub policy: String,
    /// The value's revision, for a store that has them.
    pub revision: Option<u64>,
    /// The policy, or why it is not valid.
    pub parsed: Result<Policy, String>,
    /// The admin socket where no server answers.
    pub socket: &'a Path,
}

/// Prints `status` as `key: value` lines (or one JSON document, `server` null).
pub fn offline(status: &Offline<'_>, json: bool) -> Result<(), CliError> {
    let origins = status
        .parsed
        .as_ref()
        .map_or(0, |p| p.settings().allowed_origins.len());
    let text = if json {
        let mut doc = serde_json::json!({
            "policy": status.policy,
            "valid": status.parsed.is_ok(),
            "origins": origins,
            "server": null,
        });
        if let Some(revision) = status.revision {
            doc["revision"] = revision.into();
        }
        format!("{doc}\n")
    } else {
        let valid = match &status.parsed {
            Ok(_) => "yes".to_owned(),
            Err(e) => format!("no: {}", escaped(e)),
        };
        let mut rows = vec![("policy", escaped(&status.policy).into_owned())];
        rows.extend(status.revision.map(|r| ("revision", r.to_string())));
        rows.extend([
            ("valid", valid),
            ("origins", origins.to_string()),
            (
                "server",
                format!(
                    "none answering at {}",
                    escaped(&status.socket.display().to_string())
                ),
            ),
        ]);
        rows.iter()
            .map(|(k, v)| format!("{:<18} {v}\n", format!("{k}:")))
            .collect()
    };
    std::io::stdout().lock().write_all(text.as_bytes())?;
    Ok(())
}

/// The status as one JSON document (and a newline): `socket`, `server`, the `stats`
/// reply (totals, per-origin and per-host counters, reloads) and the `policy` reply, as
/// the admin socket sends them. JSON escapes control characters itself.
pub fn render_json(socket: &Path, server: &str, stats: &Stats, policy: &PolicyReply) -> String {
    let doc = serde_json::json!({
        "socket": socket,
        "server": server,
        "stats": stats,
        "policy": policy,
    });
    format!("{doc}\n")
}

/// The status report. Every value is escaped ([`escaped`]): a reload error quotes the
/// policy file, which need not be the operator's own writing.
pub fn render(socket: &Path, server: &str, stats: &Stats, policy: &PolicyReply) -> String {
    let source = policy
        .source
        .as_ref()
        .map_or("(built in code)".to_owned(), |p| p.display().to_string());
    let last_reload = stats.last_reload_ms.map_or("never".to_owned(), clock::iso);
    let last_error = stats.last_error.as_ref().map_or("none".to_owned(), |e| {
        let lines: Vec<_> = e.message.lines().map(escaped).collect();
        format!("{} {}", clock::iso(e.at_ms), lines.join("\n    "))
    });
    let rows = [
        (
            "socket",
            escaped(&socket.display().to_string()).into_owned(),
        ),
        ("server", escaped(server).into_owned()),
        ("policy", escaped(&source).into_owned()),
        ("loaded", loaded(stats.loaded).to_owned()),
        ("mode", stats.mode.to_string()),
        ("origins", policy.settings.allowed_origins.len().to_string()),
        ("allowed", stats.allowed.to_string()),
        ("denied", stats.denied.to_string()),
        ("would-deny", stats.would_deny.to_string()),
        ("dropped", stats.dropped_events.to_string()),
        ("listeners", stats.listeners.to_string()),
        ("routes", routes(&policy.settings)),
        ("unguarded", stats.unguarded.to_string()),
        ("reloads", stats.reloads.to_string()),
        ("last reload", last_reload),
        ("last reload error", last_error),
    ];
    let mut text: String = rows
        .iter()
        .map(|(k, v)| format!("{:<18} {v}\n", format!("{k}:")))
        .collect();
    text.push_str(&origins(stats));
    text.push_str(&denied_hosts(stats));
    text
}

/// One `origin:` line per origin seen, most refused first (as the server sorts them):
/// its allowed, denied and would-deny counts, the origin (escaped: a request chose it)
/// and when it was last seen.
fn origins(stats: &Stats) -> String {
    stats
        .origins
        .iter()
        .map(|o| {
            format!(
                "{:<18} {} allowed, {} denied, {} would-deny  {} (last {})\n",
                "origin:",
                o.allowed,
                o.denied,
                o.would_deny,
                escaped(&o.origin),
                clock::iso(o.last_seen_ms)
            )
        })
        .collect()
}

/// One `denied host:` line per refused `Host`, most refused first: the count, the host
/// (escaped: a request chose it) and when it was last refused.
fn denied_hosts(stats: &Stats) -> String {
    stats
        .hosts
        .iter()
        .map(|h| {
            format!(
                "{:<18} {} {} (last {})\n",
                "denied host:",
                h.denied + h.would_deny,
                escaped(&h.host),
                clock::iso(h.last_seen_ms)
            )
        })
        .collect()
}

/// Each route with its paths (and `guard off`), or `none`.
fn routes(settings: &mcp_cors::PolicySettings) -> String {
    if settings.routes.is_empty() {
        return "none".to_owned();
    }
    let each = settings.routes.iter().map(|(name, route)| {
        let guard = if route.guard { "" } else { "; guard off" };
        escaped(&format!("{name} ({}{guard})", route.paths.join(", "))).into_owned()
    });
    each.collect::<Vec<_>>().join(", ")
}

fn loaded(loaded: bool) -> &'static str {
    if loaded {
        "yes"
    } else {
        "no (failing closed: every cross-origin request is refused)"
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    #[test]
    fn each_origin_is_a_line_with_its_counters_most_refused_first() {
        let stats = fixtures::stats();
        let text = render(
            Path::new("/run/cors.sock"),
            "0.1",
            &stats,
            &fixtures::policy(),
        );
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("origin:")).collect();
        assert_eq!(lines.len(), stats.origins.len(), "{text}");
        for (line, origin) in lines.iter().zip(&stats.origins) {
            let counts = format!(
                "{} allowed, {} denied, {} would-deny  {}",
                origin.allowed, origin.denied, origin.would_deny, origin.origin
            );
            assert!(line.contains(&counts), "{line} vs {counts}");
        }
    }

    #[test]
    fn the_json_status_is_the_server_s_replies_as_sent() {
        let stats = fixtures::stats();
        let policy = fixtures::policy();
        let text = render_json(Path::new("/run/cors.sock"), "0.1", &stats, &policy);
        assert!(text.ends_with('\n') && text.lines().count() == 1, "{text}");
        let doc: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(doc["socket"], "/run/cors.sock");
        assert_eq!(doc["server"], "0.1");
        let back: Stats = serde_json::from_value(doc["stats"].clone()).unwrap();
        assert_eq!(back, stats);
        let back: PolicyReply = serde_json::from_value(doc["policy"].clone()).unwrap();
        assert_eq!(back, policy);
    }

    #[test]
    fn routes_and_unguarded_requests_are_shown() {
        let mut stats = fixtures::stats();
        stats.unguarded = 12;
        let mut policy = fixtures::policy();
        let toml = "[routes.health]\npaths = [\"/health\", \"/ready\"]\nguard = false\n\
                    [routes.meta]\npaths = [\"/m/*\"]\nallowed_origins = [\"*\"]\n";
        policy.settings.routes = mcp_cors::Policy::from_toml_str(toml)
            .unwrap()
            .settings()
            .routes
            .clone();
        let text = render(Path::new("/run/cors.sock"), "0.1", &stats, &policy);
        assert!(
            text.contains("routes:            health (/health, /ready; guard off), meta (/m/*)\n"),
            "{text}"
        );
        assert!(text.contains("unguarded:         12\n"), "{text}");
    }

    #[test]
    fn control_characters_in_what_the_server_reports_are_escaped() {
        let mut stats = fixtures::stats();
        let mut error = fixtures::reload_error();
        error.message = "cors.toml:1:1: \u{9b}31m\ncors.toml:2:1: \x1b[2J".into();
        stats.last_error = Some(error);
        stats.mode = mcp_cors::Mode::ReportOnly;
        stats.hosts = fixtures::host_stats();
        stats.hosts.push(mcp_cors::protocol::HostStats {
            host: "a\x1b[2j.example".into(),
            denied: 1,
            would_deny: 0,
            last_seen_ms: fixtures::NOW - 9000,
        });
        let text = render(
            Path::new("/run/a\x07.sock"),
            "0.1\x1b",
            &stats,
            &fixtures::policy(),
        );
        assert!(
            !text.chars().any(|c| c.is_control() && c != '\n'),
            "{text:?}"
        );
        assert!(
            text.contains(r"socket:            /run/a\x07.sock"),
            "{text}"
        );
        assert!(text.contains(r"server:            0.1\x1b"), "{text}");
        assert!(
            text.contains(
                "denied host:       3 evil.example:8080 (last 2024-05-01T11:59:58.000Z)\n"
            ) && text.contains(r"denied host:       1 a\x1b[2j.example"),
            "{text}"
        );
        assert!(text.contains("mode:              report-only\n"), "{text}");
        assert!(text.contains("routes:            none\n"), "{text}");
        assert!(
            text.contains(r"2024-05-01T11:59:30.000Z cors.toml:1:1: \u{9b}31m")
                && text.contains("\n    cors.toml:2:1: \\x1b[2J\n"),
            "{text}"
        );
    }
}
