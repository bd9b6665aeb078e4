//! Edits of a policy file with no server running (`mcp-cors-tui origins add …` when no
//! server answers on the admin socket): the same exchange as the server's edits, so that
//! a hand save landing meanwhile is never lost, and editors of one file take turns.

use std::cell::RefCell;
use std::fs;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use super::{Held, Serving, cannot};
use crate::audit::log::{WriteError, open_log, write_line};
use crate::change::{Edit, EditError, EditOutcome, EditRefused, refuse};
use crate::error::PolicyError;
use crate::policy::file as policy_file;
use crate::policy::{Policy, audit_log_path};
use crate::protocol::{AuditRecord, ErrorCode, Request, unix_millis};

/// How long an edit waits for the editors before it (other processes editing a file of
/// the same folder) before refusing. Each takes some tens of milliseconds.
const TURN_WAIT: Duration = Duration::from_secs(10);
/// How often it looks whether its turn has come.
const TURN_STEP: Duration = Duration::from_millis(5);

/// Makes the edit `request` asks for (`add_origin`, `remove_origin`, `add_host`,
/// `remove_host`) on the policy file at `path` itself, with no server: what
/// `mcp-cors-tui origins add …` does when no server answers on the admin socket.
///
/// It is the server's edit without the server: built on a read of the file that parses,
/// comments and layout kept, validated as the server validates, written to a temporary
/// file with the file's owner, group and mode, and exchanged into place; a hand save that
/// lands meanwhile is put back and the edit made again over it. Processes editing files
/// of the same folder take turns (an `flock` on the folder). A changed policy is recorded
/// in its `[admin] audit_log`, with this process as who made it. A server that watches the
/// file picks the edit up like any save. A symlink is refused: the file is managed
/// elsewhere (a Kubernetes ConfigMap).
///
/// ```
/// use mcp_cors::protocol::Request;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let dir = tempfile::tempdir()?;
/// let path = dir.path().join("cors.toml");
/// std::fs::write(&path, "# ours\nallowed_origins = []\n")?;
/// let request = Request::AddOrigin {
///     origin: "https://App.example.com".into(),
///     force: false,
///     route: None,
/// };
/// let done = mcp_cors::edit_file(&path, &request).await?;
/// assert_eq!(done.entry, "https://app.example.com");
/// assert!(done.changed);
/// assert_eq!(
///     std::fs::read_to_string(&path)?,
///     "# ours\nallowed_origins = [\"https://app.example.com\"]\n"
/// );
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(run())?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub async fn edit_file(
    path: impl AsRef<Path>,
    request: &Request,
) -> Result<EditOutcome, EditRefused> {
    let path = path.as_ref();
    let edit = Edit::from_request(request)?;
    let _turn = FolderTurn::take(path).await?;
    let alone = Alone::default();
    let (entry, changed) = super::change_list(&alone, path, edit).await?;
    if let (true, Some(written)) = (changed, alone.written.take()) {
        audit(
            path,
            &written,
            edit.audit_record(&entry, unix_millis(SystemTime::now())),
        )?;
    }
    Ok(EditOutcome {
        entry,
        changed,
        revision: None,
    })
}

/// Appends `record`, made by this process, to the `[admin] audit_log` the edited policy
/// `written` names, if any: an edit made without a server is on the trail like one made
/// through it. The edit is made by then; a record that cannot be written says so.
fn audit(path: &Path, written: &Policy, record: AuditRecord) -> Result<(), EditError> {
    let Some(log) = audit_log_path(path, &written.settings().admin) else {
        return Ok(());
    };
    // SAFETY: geteuid has no preconditions and cannot fail.
    let uid = unsafe { libc::geteuid() };
    let record = AuditRecord {
        uid: Some(uid),
        pid: Some(std::process::id()),
        exe: fs::read_link("/proc/self/exe")
            .ok()
            .map(|e| e.display().to_string()),
        ..record
    };
    let written = open_log(&log)
        .map_err(|source| WriteError::Open {
            path: log.clone(),
            source,
        })
        .and_then(|mut file| write_line(&mut file, &log, &record));
    written.map_err(|e| {
        refuse(
            ErrorCode::Conflict,
            format!(
                "{} was edited, but the edit is not on the audit trail: {e}; fix the log's \
                 folder or permissions ([admin] audit_log)",
                path.display()
            ),
        )
    })
}

/// No server: an edit is validated, and the policy written kept for its audit record.
#[derive(Default)]
struct Alone {
    written: RefCell<Option<Policy>>,
}

/// What [`Alone`] holds: no lock (the editors' turns are taken for the whole edit).
struct Validating<'a> {
    written: &'a RefCell<Option<Policy>>,
}

impl Serving for Alone {
    type Held<'a> = Validating<'a>;

    fn hold(&self) -> Validating<'_> {
        Validating {
            written: &self.written,
        }
    }
}

impl Held for Validating<'_> {
    fn read(&mut self, bytes: &[u8], path: &Path) -> Result<Arc<Policy>, PolicyError> {
        policy_file::parse(bytes, path).map(Arc::new)
    }

    fn apply_edit(&mut self, content: &[u8], path: &Path) -> Result<(), PolicyError> {
        *self.written.borrow_mut() = Some(policy_file::parse(content, path)?);
        Ok(())
    }
}

/// An exclusive `flock` on the folder holding the policy file, for one whole edit: two
/// editing processes would each find the other's write a hand save, put it back and try
/// again, which is safe but, forty at once, can run out of attempts. Released when
/// dropped (the descriptor closes). The folder is locked, not the file, because an edit
/// replaces the file (a lock on it would stay with the replaced one); and nothing is
/// created in the operator's folder for it.
struct FolderTurn {
    _folder: fs::File,
}

impl FolderTurn {
    async fn take(path: &Path) -> Result<FolderTurn, EditError> {
        let folder_path = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let folder = fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC)
            .open(folder_path)
            .map_err(|e| cannot("open the folder of", path, e))?;
        let start = Instant::now();
        loop {
            match try_lock(&folder) {
                Ok(()) => return Ok(FolderTurn { _folder: folder }),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(cannot("lock the folder of", path, e)),
            }
            if start.elapsed() >= TURN_WAIT {
                return Err(refuse(
                    ErrorCode::Conflict,
                    format!(
                        "another process has been editing a policy file in {} for {} s \
                         (it holds the folder's lock); nothing was changed: try again",
                        folder_path.display(),
                        TURN_WAIT.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(TURN_STEP).await;
        }
    }
}

fn try_lock(folder: &fs::File) -> io::Result<()> {
    // SAFETY: the descriptor is open for the duration of the call.
    let result = unsafe { libc::flock(folder.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    use super::*;
    use crate::change::Change;
    use crate::edit::{Stage, change_list_with};

    const POLICY: &str = "# ours\nallowed_origins = [\"https://a.example\"] # kept\nmax_age = 60\n";

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn add(origin: &str) -> Request {
        Request::AddOrigin {
            origin: origin.into(),
            force: false,
            route: None,
        }
    }

    fn policy_file() -> (tempfile::TempDir, std::path::PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cors.toml");
        fs::write(&path, POLICY).unwrap();
        (dir, path)
    }

    #[test]
    fn an_edit_without_a_server_keeps_comments_and_says_what_it_did() {
        let (_dir, path) = policy_file();
        let done = run(edit_file(&path, &add("https://B.example"))).unwrap();
        assert_eq!(
            done,
            EditOutcome {
                entry: "https://b.example".into(),
                changed: true,
                revision: None
            }
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "# ours\nallowed_origins = [\"https://a.example\", \"https://b.example\"] # kept\nmax_age = 60\n"
        );
        let again = run(edit_file(&path, &add("https://b.example"))).unwrap();
        assert!(!again.changed, "already there: nothing written");
        let remove = Request::RemoveOrigin {
            origin: "https://nowhere.example".into(),
            route: None,
        };
        let err = run(edit_file(&path, &remove)).unwrap_err();
        assert_eq!(err.code, ErrorCode::NotFound, "{}", err.message);
        let err = run(edit_file(&path, &Request::Stats)).unwrap_err();
        assert_eq!(err.code, ErrorCode::BadRequest);
    }

    #[test]
    fn a_hand_save_between_the_read_and_the_write_is_kept() {
        let (_dir, path) = policy_file();
        let hand = "# hand\nallowed_origins = [\"https://hand.example\"]\n";
        let edit = Edit::origins(Change::Add("https://b.example"));
        let (entry, changed) = run(change_list_with(&Alone::default(), &path, edit, |stage| {
            if stage == Stage::Read && fs::read_to_string(&path).unwrap() == POLICY {
                fs::write(&path, hand).unwrap();
            }
        }))
        .unwrap();
        assert!(changed);
        assert_eq!(entry, "https://b.example");
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "# hand\nallowed_origins = [\"https://hand.example\", \"https://b.example\"]\n"
        );
    }

    #[test]
    fn an_invalid_file_is_refused_and_left_byte_for_byte() {
        let (_dir, path) = policy_file();
        let broken = "allowed_origins = [\"https://a.example\"\n# half-saved\n";
        fs::write(&path, broken).unwrap();
        let err = run(edit_file(&path, &add("https://b.example"))).unwrap_err();
        assert_eq!(err.code, ErrorCode::Conflict);
        assert!(err.message.contains("invalid"), "{}", err.message);
        assert!(
            err.message.contains("cors.toml:1:"),
            "says where: {}",
            err.message
        );
        assert!(
            err.message.contains("check FILE"),
            "says what to do: {}",
            err.message
        );
        assert_eq!(fs::read_to_string(&path).unwrap(), broken);
    }

    #[test]
    fn a_symlinked_file_is_refused_as_managed_elsewhere() {
        let (dir, path) = policy_file();
        let link = dir.path().join("linked.toml");
        std::os::unix::fs::symlink(&path, &link).unwrap();
        let err = run(edit_file(&link, &add("https://b.example"))).unwrap_err();
        assert!(err.message.contains("symlink"), "{}", err.message);
        assert_eq!(fs::read_to_string(&path).unwrap(), POLICY);
    }

    #[test]
    fn owner_group_and_mode_are_kept() {
        let (_dir, path) = policy_file();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        // Tests run as root, who may give the file away; elsewhere the owner stays ours.
        let (uid, gid) = if unsafe { libc::geteuid() } == 0 {
            (65534, 65534)
        } else {
            let meta = fs::metadata(&path).unwrap();
            (meta.uid(), meta.gid())
        };
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        run(edit_file(&path, &add("https://b.example"))).unwrap();
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (uid, gid, 0o640)
        );
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .contains("https://b.example")
        );
    }

    #[test]
    fn an_edit_waits_for_the_editor_before_it() {
        let (dir, path) = policy_file();
        let holder = fs::File::open(dir.path()).unwrap();
        try_lock(&holder).unwrap();
        let released = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(150));
            drop(holder);
            Instant::now()
        });
        let started = Instant::now();
        run(edit_file(&path, &add("https://b.example"))).unwrap();
        let done = Instant::now();
        let released = released.join().unwrap();
        assert!(
            done >= released,
            "edited after {:?}, before the other editor let go",
            done - started
        );
    }

    #[test]
    fn an_edit_is_on_the_audit_trail_with_this_process_as_who_made_it() {
        let (dir, path) = policy_file();
        fs::write(
            &path,
            format!("{POLICY}[admin]\naudit_log = \"audit.jsonl\"\n"),
        )
        .unwrap();
        run(edit_file(&path, &add("https://b.example"))).unwrap();
        run(edit_file(&path, &add("https://b.example"))).unwrap();
        let log = fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = log
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(
            lines.len(),
            1,
            "only the edit that changed something: {log}"
        );
        let record = &lines[0];
        assert_eq!(record["action"], "add-origin", "{record}");
        assert_eq!(record["origin"], "https://b.example");
        assert_eq!(record["uid"], unsafe { libc::geteuid() });
        assert_eq!(record["pid"], std::process::id());
        assert!(
            record["exe"].as_str().is_some_and(|e| !e.is_empty()),
            "{record}"
        );
        let mode = fs::metadata(dir.path().join("audit.jsonl")).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    #[test]
    fn an_edit_whose_record_cannot_be_written_says_so() {
        let (_dir, path) = policy_file();
        let policy = format!("{POLICY}[admin]\naudit_log = \"no/such/folder/audit.jsonl\"\n");
        fs::write(&path, &policy).unwrap();
        let err = run(edit_file(&path, &add("https://b.example"))).unwrap_err();
        assert!(
            err.message
                .contains("was edited, but the edit is not on the audit trail")
                && err.message.contains("no/such/folder/audit.jsonl"),
            "{}",
            err.message
        );
        assert!(
            fs::read_to_string(&path)
                .unwrap()
                .contains("https://b.example")
        );
    }
}
