//! `audit [--json]`: the trail of changes to the policy — admin edits with who made them,
//! reloads with what changed — from the server, or, when no server answers, from the
//! `[admin] audit_log` file named in `--config`.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use mcp_cors::protocol::{AuditRecord, AuditSource};

use super::CliError;
use crate::clock;
use crate::conn::{Client, ClientError};
use crate::escape::escaped;

/// Prints the trail, oldest first: the server's recent records, or the whole file `log`
/// when no server is listening on `socket`.
pub async fn run(socket: &Path, log: Option<PathBuf>, json: bool) -> Result<(), CliError> {
    let (records, unreadable) = match Client::connect(socket).await {
        Ok(mut client) => (client.audit(None).await?, 0),
        // No server: the file has the trail (all of it, past restarts included).
        Err(ClientError::Connect { .. }) if log.is_some() => {
            let log = log.unwrap_or_default();
            read_log(&log)?
        }
        Err(e @ ClientError::Connect { .. }) => {
            return Err(CliError::Audit(format!(
                "{e}; and no [admin] audit_log is set in the config to read instead"
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for record in &records {
        if json {
            let text = serde_json::to_string(record).map_err(std::io::Error::other)?;
            writeln!(out, "{text}")?;
        } else {
            writeln!(out, "{}", plain(record))?;
        }
    }
    out.flush()?;
    match unreadable {
        0 => Ok(()),
        n => Err(CliError::Audit(format!(
            "{n} line(s) of the audit log could not be read (see above)"
        ))),
    }
}

/// The records of an audit log file, and how many lines could not be read (each named
/// on stderr with its line number: a crash can leave a last line half written, and the
/// rest of the trail is still worth showing).
fn read_log(path: &Path) -> Result<(Vec<AuditRecord>, usize), CliError> {
    let cannot =
        |e: std::io::Error| CliError::Audit(format!("cannot read {}: {e}", path.display()));
    let file = File::open(path).map_err(cannot)?;
    let mut records = Vec::new();
    let mut unreadable = 0;
    for (number, line) in BufReader::new(file).split(b'\n').enumerate() {
        let line = line.map_err(cannot)?;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        match serde_json::from_slice::<AuditRecord>(&line) {
            Ok(record) => records.push(record),
            Err(e) => {
                unreadable += 1;
                let message = format!(
                    "{}:{}: not an audit record: {e}",
                    path.display(),
                    number + 1
                );
                eprintln!("mcp-cors-tui: {}", escaped(&message));
            }
        }
    }
    Ok((records, unreadable))
}

/// A record as one line: time, action, then what and who, escaped ([`escaped`]): an
/// origin or an executable's name must not drive the terminal.
pub fn plain(record: &AuditRecord) -> String {
    format!(
        "{} {:<13} {}",
        clock::iso(record.at_ms),
        record.action.as_str(),
        details(record)
    )
}

/// What a record is about, and who made it: `https://a.example route=meta uid=1000
/// pid=42 exe=/usr/bin/mcp-cors-tui`, or a reload's diff and source.
pub fn details(record: &AuditRecord) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(entry) = record.origin.as_deref().or(record.host.as_deref()) {
        parts.push(escaped(entry).into_owned());
    }
    if let Some(route) = &record.route {
        parts.push(format!("route={}", escaped(route)));
    }
    if let Some(diff) = &record.diff {
        parts.push(escaped(&diff.to_string()).into_owned());
    }
    if let Some(source) = record.source {
        parts.push(
            match source {
                AuditSource::File => "(file)",
                AuditSource::Remote => "(remote source)",
            }
            .to_owned(),
        );
    }
    if let Some(uid) = record.uid {
        parts.push(format!("uid={uid}"));
    }
    if let Some(pid) = record.pid {
        parts.push(format!("pid={pid}"));
    }
    if let Some(exe) = &record.exe {
        parts.push(format!("exe={}", escaped(exe)));
    }
    parts.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_cors::PolicyDiff;
    use mcp_cors::protocol::AuditAction;

    #[test]
    fn an_edit_names_its_entry_route_and_peer() {
        let record = AuditRecord {
            origin: Some("https://docs.example".into()),
            route: Some("meta".into()),
            uid: Some(1000),
            pid: Some(42),
            exe: Some("/usr/bin/mcp-cors-tui".into()),
            ..AuditRecord::new(1_700_000_000_000, AuditAction::AddOrigin)
        };
        assert_eq!(
            plain(&record),
            "2023-11-14T22:13:20.000Z add-origin    https://docs.example route=meta uid=1000 pid=42 exe=/usr/bin/mcp-cors-tui"
        );
    }

    #[test]
    fn a_reload_shows_its_diff_and_source() {
        let record = AuditRecord {
            diff: Some(PolicyDiff {
                origins_added: vec!["https://new.example".into()],
                keys_changed: vec!["max_age".into()],
                ..PolicyDiff::default()
            }),
            source: Some(AuditSource::File),
            ..AuditRecord::new(1_700_000_000_000, AuditAction::Reload)
        };
        assert_eq!(
            plain(&record),
            "2023-11-14T22:13:20.000Z reload        +https://new.example changed max_age (file)"
        );
    }

    #[test]
    fn control_characters_are_escaped() {
        let record = AuditRecord {
            host: Some("evil\x1b[2J.example".into()),
            exe: Some("/tmp/x\u{9b}0m".into()),
            ..AuditRecord::new(0, AuditAction::AddHost)
        };
        assert_eq!(
            plain(&record),
            r"1970-01-01T00:00:00.000Z add-host      evil\x1b[2J.example exe=/tmp/x\u{9b}0m"
        );
    }

    #[test]
    fn a_log_file_is_read_line_by_line_and_a_torn_line_is_counted_not_fatal() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        std::fs::write(
            &path,
            "{\"at_ms\":1,\"action\":\"add-host\",\"host\":\"a.example\"}\n\n{\"at_ms\":2,\"act",
        )
        .unwrap();
        let (records, unreadable) = read_log(&path).unwrap();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].host.as_deref(), Some("a.example"));
        assert_eq!(unreadable, 1);
    }
}
