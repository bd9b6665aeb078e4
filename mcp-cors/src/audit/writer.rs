//! The audit log's one writer: a thread that appends each record as a JSON line to the
//! `[admin] audit_log` file and fsyncs it, so a record the trail reported is on disk.
//!
//! The file is written as [`log`](super::log) says. A failed write is logged at error and
//! the next record opens the file again.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, SyncSender, TrySendError};
use std::thread::{self, JoinHandle};

use super::log::{WriteError, open_log, write_line};
use crate::protocol::AuditRecord;

/// Records waiting for the writer, at most; more are logged and not written, so that a
/// stuck disk never holds an edit (or a reload) back.
const QUEUED: usize = 1024;

/// The handle of the writer thread; dropping it lets the thread write what is queued and
/// waits for it.
#[derive(Debug)]
pub(crate) struct Writer {
    queue: Option<SyncSender<(PathBuf, AuditRecord)>>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the writer thread.
    pub(crate) fn start() -> io::Result<Writer> {
        let (queue, records) = mpsc::sync_channel(QUEUED);
        let thread = thread::Builder::new()
            .name("mcp-cors-audit".into())
            .spawn(move || write_all(&records))?;
        Ok(Writer {
            queue: Some(queue),
            thread: Some(thread),
        })
    }

    /// Queues `record` to be appended to `path`, without waiting.
    pub(crate) fn append(&self, path: PathBuf, record: &AuditRecord) {
        let Some(queue) = &self.queue else { return };
        match queue.try_send((path, record.clone())) {
            Ok(()) => {}
            Err(TrySendError::Full((path, _))) => {
                tracing::error!(target: "mcp_cors::audit", file = %path.display(), action = %record.action, at_ms = record.at_ms, "the audit log's writer is {QUEUED} records behind (a stuck disk?); this record is not written to the file");
            }
            Err(TrySendError::Disconnected((path, _))) => {
                tracing::error!(target: "mcp_cors::audit", file = %path.display(), action = %record.action, at_ms = record.at_ms, "the audit log's writer has stopped; this record is not written to the file");
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        drop(self.queue.take());
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// The writer thread: one open file at a time, reopened when the path changes (a reload
/// that moved `audit_log`) or after an error.
fn write_all(records: &Receiver<(PathBuf, AuditRecord)>) {
    let mut open: Option<(PathBuf, File)> = None;
    for (path, record) in records {
        if let Err(error) = append(&mut open, &path, &record) {
            open = None;
            tracing::error!(target: "mcp_cors::audit", %error, action = %record.action, at_ms = record.at_ms, "audit record not written to the file");
        }
    }
}

fn append(
    open: &mut Option<(PathBuf, File)>,
    path: &Path,
    record: &AuditRecord,
) -> Result<(), WriteError> {
    let file = match open {
        Some((p, file)) if p == path => file,
        _ => {
            let file = open_log(path).map_err(|source| WriteError::Open {
                path: path.to_path_buf(),
                source,
            })?;
            &mut open.insert((path.to_path_buf(), file)).1
        }
    };
    write_line(file, path, record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::AuditAction;
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    fn record(at_ms: u64, origin: &str) -> AuditRecord {
        AuditRecord {
            origin: Some(origin.into()),
            uid: Some(1000),
            pid: Some(77),
            ..AuditRecord::new(at_ms, AuditAction::AddOrigin)
        }
    }

    fn lines(path: &Path) -> Vec<serde_json::Value> {
        fs::read_to_string(path)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[test]
    fn a_new_log_is_created_0600_and_each_record_is_one_json_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let writer = Writer::start().unwrap();
        writer.append(path.clone(), &record(1, "https://a.example"));
        writer.append(path.clone(), &record(2, "https://b.example"));
        drop(writer); // writes what is queued, then stops
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let got = lines(&path);
        assert_eq!(
            got[0],
            serde_json::json!({"at_ms": 1, "action": "add-origin", "origin": "https://a.example", "uid": 1000, "pid": 77})
        );
        assert_eq!(got[1]["origin"], "https://b.example");
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn an_existing_log_is_appended_to_and_keeps_its_mode() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        fs::write(&path, "{\"at_ms\":0,\"action\":\"reload\"}\n").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let writer = Writer::start().unwrap();
        writer.append(path.clone(), &record(5, "https://c.example"));
        drop(writer);
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o640,
            "the operator's mode is kept"
        );
        let got = lines(&path);
        assert_eq!(got.len(), 2, "appended, not replaced");
        assert_eq!(got[0]["action"], "reload");
        assert_eq!(got[1]["origin"], "https://c.example");
    }

    #[test]
    fn a_failed_write_is_not_fatal_and_the_next_record_opens_the_file_again() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("no-such-folder").join("audit.jsonl");
        let good = dir.path().join("audit.jsonl");
        let writer = Writer::start().unwrap();
        writer.append(missing.clone(), &record(1, "https://lost.example"));
        writer.append(good.clone(), &record(2, "https://kept.example"));
        drop(writer);
        assert!(!missing.exists());
        assert_eq!(lines(&good)[0]["origin"], "https://kept.example");
    }

    #[test]
    fn each_record_reaches_the_file_on_its_own_without_buffering() {
        // Written (and synced) as it comes, not when the writer stops.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let writer = Writer::start().unwrap();
        writer.append(path.clone(), &record(1, "https://a.example"));
        let start = std::time::Instant::now();
        while fs::read_to_string(&path).map_or(true, |t| !t.ends_with('\n')) {
            assert!(start.elapsed() < std::time::Duration::from_secs(10));
            thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(lines(&path).len(), 1);
        drop(writer);
    }
}
