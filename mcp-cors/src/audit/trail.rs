//! The trail in memory and its three ways out: the event stream, the info log, the file.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::Mutex;

use crate::events::EventBus;
use crate::protocol::{AuditRecord, Event, MAX_AUDIT};
use crate::sync::lock;

use super::writer::Writer;

/// The recent records, kept for the `audit` command, and the writer of the log file.
#[derive(Debug, Default)]
pub(crate) struct AuditTrail {
    recent: Mutex<VecDeque<AuditRecord>>,
    /// Started on the first record that has a file to go to.
    writer: Mutex<Option<Writer>>,
}

impl AuditTrail {
    /// Records `record`: logged, kept, published on `events`, and appended to `log` when
    /// the policy names one.
    pub(crate) fn record(&self, record: AuditRecord, log: Option<PathBuf>, events: &EventBus) {
        log_line(&record);
        // Held to the end, so that the trail in memory, the file and the event stream
        // have records of two threads (the watcher, the admin socket) in one order.
        let mut recent = lock(&self.recent);
        if recent.len() == MAX_AUDIT {
            recent.pop_front();
        }
        recent.push_back(record.clone());
        if let Some(path) = log {
            let mut writer = lock(&self.writer);
            match &*writer {
                Some(w) => w.append(path, &record),
                None => match Writer::start() {
                    Ok(w) => {
                        w.append(path, &record);
                        *writer = Some(w);
                    }
                    Err(error) => {
                        tracing::error!(target: "mcp_cors::audit", file = %path.display(), %error, "cannot start the audit log's writer; the record is not written");
                    }
                },
            }
        }
        events.publish(Event::Audit(record));
    }

    /// The `limit` most recent records (all kept when `None`), oldest first.
    pub(crate) fn recent(&self, limit: Option<usize>) -> Vec<AuditRecord> {
        let recent = lock(&self.recent);
        let skip = limit.map_or(0, |n| recent.len().saturating_sub(n));
        recent.iter().skip(skip).cloned().collect()
    }
}

/// The record's info line, every field its own, so log pipelines can filter on them.
fn log_line(r: &AuditRecord) {
    let diff = r.diff.as_ref().map(ToString::to_string);
    tracing::info!(
        target: "mcp_cors::audit",
        action = %r.action,
        origin = r.origin.as_deref(),
        host = r.host.as_deref(),
        route = r.route.as_deref(),
        uid = r.uid,
        pid = r.pid,
        exe = r.exe.as_deref(),
        diff = diff.as_deref(),
        source = r.source.map(|s| match s {
            crate::protocol::AuditSource::File => "file",
            crate::protocol::AuditSource::Remote => "remote",
        }),
        at_ms = r.at_ms,
        "policy changed"
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::AuditAction;

    /// A log sink shared with the test.
    #[derive(Clone, Default)]
    struct Captured(std::sync::Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            lock(&self.0).extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn each_record_is_an_info_line_of_the_audit_target_with_its_fields() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(tracing::Level::INFO)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let record = AuditRecord {
            origin: Some("https://a.example".into()),
            uid: Some(1000),
            pid: Some(42),
            exe: Some("/usr/bin/mcp-cors-tui".into()),
            ..AuditRecord::new(7, AuditAction::AddOrigin)
        };
        AuditTrail::default().record(record, None, &EventBus::new());
        let text = String::from_utf8(lock(&captured.0).clone()).unwrap();
        let line = text
            .lines()
            .find(|l| l.contains("policy changed"))
            .unwrap_or_default();
        for part in [
            "INFO mcp_cors::audit:",
            "action=add-origin",
            "origin=\"https://a.example\"",
            "uid=1000",
            "pid=42",
            "exe=\"/usr/bin/mcp-cors-tui\"",
        ] {
            assert!(line.contains(part), "{part} in {text:?}");
        }
    }

    #[test]
    fn the_trail_keeps_the_most_recent_records_oldest_first_and_publishes_each() {
        let events = EventBus::new();
        let (_, mut subscription) = events.subscribe(0);
        let trail = AuditTrail::default();
        for at in 0..(MAX_AUDIT as u64 + 5) {
            trail.record(AuditRecord::new(at, AuditAction::AddHost), None, &events);
        }
        let all = trail.recent(None);
        assert_eq!(all.len(), MAX_AUDIT);
        assert_eq!(all[0].at_ms, 5, "the oldest went first");
        let last: Vec<u64> = trail.recent(Some(2)).iter().map(|r| r.at_ms).collect();
        assert_eq!(last, [MAX_AUDIT as u64 + 3, MAX_AUDIT as u64 + 4]);
        let published = subscription.queued(10);
        assert!(
            matches!(published.first(), Some(Event::Audit(r)) if r.at_ms == 0),
            "{published:?}"
        );
    }
}
