//! The audit log file: one JSON line per record, appended and synced.
//!
//! The file is opened `O_APPEND`: several servers, a client editing with no server (or a
//! rotation tool's new file) can share it and no line lands in another's middle. A file
//! created here is mode 0600 (it records who changed the policy, and from which program)
//! and its folder is fsynced so the file survives a crash; an existing file keeps the
//! mode its operator gave it.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use crate::protocol::AuditRecord;

/// Why a record could not be appended.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WriteError {
    /// Opening (or creating) the file failed.
    #[error("cannot open audit log {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
    /// Appending the line or syncing it failed.
    #[error("cannot append to audit log {}: {source}", path.display())]
    Append {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Opens the log for appending, creating it mode 0600 when missing (and then syncing its
/// folder, so the new file's name is as durable as its lines).
pub(crate) fn open_log(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.append(true).mode(0o600);
    match options.clone().create_new(true).open(path) {
        Ok(file) => {
            if let Some(folder) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
                File::open(folder)?.sync_all()?;
            }
            Ok(file)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => options.open(path),
        Err(e) => Err(e),
    }
}

/// Appends `record` to `file` (the log at `path`, opened by [`open_log`]) as one line,
/// and syncs it.
pub(crate) fn write_line(
    file: &mut File,
    path: &Path,
    record: &AuditRecord,
) -> Result<(), WriteError> {
    let mut line = serde_json::to_vec(record).map_err(|e| WriteError::Append {
        path: path.to_path_buf(),
        source: e.into(),
    })?;
    line.push(b'\n');
    // One write of the whole line: with O_APPEND it lands whole at the end.
    file.write_all(&line)
        .and_then(|()| file.sync_data())
        .map_err(|source| WriteError::Append {
            path: path.to_path_buf(),
            source,
        })
}
