//! `tail [--json]`: follow decisions, one line per event, like `kubectl logs -f`.

use std::io::Write;
use std::path::Path;

use mcp_cors::protocol::{Event, Request, ServerLine};

use super::CliError;
use crate::clock;
use crate::conn::{Client, ClientError};
use crate::escape::escaped;

/// Follows events until the connection ends (an error: the stream is meant to be endless)
/// or stdout is closed. `replay` recent events are printed first.
pub async fn run(socket: &Path, json: bool, replay: usize) -> Result<(), CliError> {
    let mut client = Client::connect(socket).await?;
    client.call(&Request::Subscribe { replay }).await?;
    // Buffered, and flushed whenever no further line is already waiting: each line still
    // reaches a pipe as it happens, but a burst costs one write, not one per line.
    let mut out = std::io::BufWriter::new(std::io::stdout());
    loop {
        let (raw, line) = client.recv_raw().await?;
        match line {
            ServerLine::Event(event) => {
                if json {
                    writeln!(out, "{raw}")?;
                } else {
                    writeln!(out, "{}", plain(&event))?;
                }
                if !client.line_pending() {
                    out.flush()?;
                }
            }
            ServerLine::Dropped { count, total } => {
                eprintln!(
                    "mcp-cors-tui: the server dropped {count} decisions ({total} in all): reading too slowly"
                );
            }
            ServerLine::Error { code, message } => {
                return Err(ClientError::Refused { code, message }.into());
            }
            _ => {}
        }
    }
}

/// An event as one readable line: time, verdict, origin, method, path, then what applies
/// (preflight, count, route, client), then the reason. What the
/// request carried is escaped ([`escaped`]): it must not drive the operator's terminal.
pub fn plain(event: &Event) -> String {
    match event {
        Event::Decision(d) => {
            let mut line = format!(
                "{} {:<10} {} {} {}",
                clock::iso(d.at_ms),
                d.verdict.to_string(),
                escaped(d.origin.as_deref().unwrap_or("-")),
                escaped(&d.method),
                escaped(&d.path)
            );
            if d.preflight {
                line.push_str(" (preflight)");
            }
            if d.count > 1 {
                // A run of identical decisions, folded by the server.
                line.push_str(&format!(" x{}", d.count));
            }
            if let Some(route) = &d.route {
                line.push_str(" route=");
                line.push_str(&escaped(route));
            }
            if let Some(client) = &d.client {
                // An IP address from the server; escaped all the same, as an older or
                // foreign server could send anything here.
                line.push_str(" client=");
                line.push_str(&escaped(client));
            }
            if let Some(reason) = &d.reason {
                line.push_str(": ");
                line.push_str(&escaped(reason));
            }
            line
        }
        Event::Reloaded { at_ms, diff } => {
            let diff = diff.to_string();
            format!(
                "{} {:<10} {}",
                clock::iso(*at_ms),
                "reloaded",
                escaped(&diff)
            )
        }
        Event::Audit(record) => format!(
            "{} {:<10} {} {}",
            clock::iso(record.at_ms),
            "audit",
            record.action,
            super::audit::details(record)
        ),
        Event::ReloadRejected(error) => {
            // One line per event: the error's lines joined, each escaped.
            let message: Vec<_> = error.message.lines().map(escaped).collect();
            format!(
                "{} {:<10} {}",
                clock::iso(error.at_ms),
                "rejected",
                message.join(" | ")
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;
    use mcp_cors::Verdict;
    use mcp_cors::protocol::DecisionEvent;

    #[test]
    fn plain_lines_name_time_verdict_origin_method_path_reason() {
        let event = Event::Decision(DecisionEvent {
            at_ms: 1_700_000_000_000,
            verdict: Verdict::Deny,
            origin: Some("https://evil.example".into()),
            method: "OPTIONS".into(),
            path: "/mcp".into(),
            preflight: true,
            reason: Some("origin not allowed".into()),
            count: 1,
            route: None,
            client: None,
        });
        assert_eq!(
            plain(&event),
            "2023-11-14T22:13:20.000Z deny       https://evil.example OPTIONS /mcp (preflight): origin not allowed"
        );
    }

    #[test]
    fn the_route_that_decided_is_named() {
        let mut event =
            fixtures::decision(0, Verdict::Allow, "https://any.example", "/.well-known/x");
        if let Event::Decision(d) = &mut event {
            d.route = Some("oauth-metadata".into());
        }
        assert_eq!(
            plain(&event),
            "2024-05-01T12:00:00.000Z allow      https://any.example POST /.well-known/x route=oauth-metadata client=192.0.2.10"
        );
    }

    #[test]
    fn the_client_is_named_before_the_reason() {
        let mut event = fixtures::decision(0, Verdict::Deny, "https://evil.example", "/mcp");
        if let Event::Decision(d) = &mut event {
            d.client = Some("2001:db8::5".into());
            d.reason = Some("origin not allowed".into());
        }
        assert_eq!(
            plain(&event),
            "2024-05-01T12:00:00.000Z deny       https://evil.example POST /mcp client=2001:db8::5: origin not allowed"
        );
    }

    #[test]
    fn what_a_request_carried_is_escaped() {
        let mut event =
            fixtures::decision(0, Verdict::Deny, "https://e.example\x1b[2J", "/\u{9b}0m");
        if let Event::Decision(d) = &mut event {
            d.method = "P\x7fST".into();
            d.reason = Some("header X-\x07 not allowed".into());
        }
        assert_eq!(
            plain(&event),
            r"2024-05-01T12:00:00.000Z deny       https://e.example\x1b[2J P\x7fST /\u{9b}0m client=192.0.2.10: header X-\x07 not allowed"
        );
    }

    #[test]
    fn a_rejected_reload_is_one_line_with_its_own_time() {
        let mut error = fixtures::reload_error();
        error.message = "cors.toml:1:1: bad \x1b]0;x\x07\ncors.toml:2:1: worse".into();
        assert_eq!(
            plain(&Event::ReloadRejected(error)),
            r"2024-05-01T11:59:30.000Z rejected   cors.toml:1:1: bad \x1b]0;x\x07 | cors.toml:2:1: worse"
        );
    }

    #[test]
    fn an_audit_record_is_one_line_with_its_action_and_peer() {
        use mcp_cors::protocol::{AuditAction, AuditRecord};
        let record = AuditRecord {
            host: Some("api.example.com".into()),
            uid: Some(0),
            pid: Some(9),
            ..AuditRecord::new(1_714_564_800_000, AuditAction::RemoveHost)
        };
        assert_eq!(
            plain(&Event::Audit(record)),
            "2024-05-01T12:00:00.000Z audit      remove-host api.example.com uid=0 pid=9"
        );
    }

    #[test]
    fn a_folded_run_shows_its_count() {
        let event = fixtures::folded(
            fixtures::decision(0, Verdict::Allow, "https://app.example", "/mcp"),
            250,
        );
        assert_eq!(
            plain(&event),
            "2024-05-01T12:00:00.000Z allow      https://app.example POST /mcp x250 client=192.0.2.10"
        );
    }
}
