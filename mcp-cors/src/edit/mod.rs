//! Adding and removing entries of the policy file's lists (`allowed_origins`,
//! `allowed_hosts`), the way an operator would: comments, order and formatting kept
//! (`toml_edit`), written atomically, and only replied to once the new policy serves
//! requests. Both lists go through the same exchange and race machinery below, whoever
//! makes the edit: the server's admin socket (applied to its store: `served`), or a client
//! with no server running (`alone`: [`edit_file`]).
//!
//! An edit never loses a hand save, nor writes a file that is empty, partial or invalid:
//! - It is built on a read that parses, and replaces the file only if the file still holds
//!   exactly what was read.
//! - The new file is put in place with `renameat2(RENAME_EXCHANGE)`, so the file it
//!   replaces comes back at the temporary name and is looked at. A rename-style save (vim,
//!   VS Code) that landed in between, or an in-place save (`cat >`, nano) written into the
//!   replaced file, is exchanged back into place, and the edit starts again from it. The
//!   replaced file is watched for a few milliseconds more before the edit is done: an
//!   in-place save whose `open` had found it just before the exchange writes it late.
//! - The temporary file has an unpredictable name and the final owner, group and mode
//!   from its creation on.
//!
//! Where the file system cannot exchange, a plain rename is used (logged): an in-place
//! save written into the replaced file is still recovered once it parses, but a
//! rename-style save in the microseconds between the last check and the rename is lost.

use std::fs;
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

mod alone;
#[cfg(feature = "server")]
mod served;

pub use alone::edit_file;

use crate::change::{self, Edit, EditError, ListKey, refuse};
use crate::error::PolicyError;
use crate::policy::Policy;
use crate::policy::file as policy_file;
use crate::protocol::ErrorCode;
use crate::temp;

/// How many times an edit starts again when the file changes underneath it.
const ATTEMPTS: usize = 5;
/// How many times the file is exchanged back and forth, at most, while putting back hand
/// saves that keep landing during the exchanges.
const EXCHANGES: usize = 8;
/// How long an edit waits, at most, for a file that does not parse (perhaps an editor is
/// writing it) to become valid before refusing; and how often it looks again meanwhile.
const SETTLE_WAIT: Duration = Duration::from_millis(300);
const SETTLE_STEP: Duration = Duration::from_millis(20);
/// How long, after an exchange, the replaced file is watched for an in-place save whose
/// `open` had already found it (the saving process preempted inside the system call)
/// before the edit is done. Edits wait that long under the appliers' lock: short enough
/// not to be felt, long enough for a preempted process on a loaded machine to run again.
const REPLACED_WATCH: Duration = Duration::from_millis(25);

fn cannot(what: &str, path: &Path, e: io::Error) -> EditError {
    refuse(
        ErrorCode::Conflict,
        format!("cannot {what} {}: {e}", path.display()),
    )
}

/// The points of an edit where tests look at, or change, the files, to reproduce races
/// with a hand edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage<'a> {
    /// The file was read; the edit is being made and written to a temporary file.
    Read,
    /// The temporary file was just created, before its owner and mode are set.
    Created(&'a Path),
    /// The file was checked unchanged, just before it is replaced by the temporary file.
    Checked(&'a Path),
    /// The file was exchanged and what came back looked at; the replaced file is at the
    /// temporary name.
    Replaced(&'a Path),
}

/// How the edited file is put in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Swap {
    /// `renameat2(RENAME_EXCHANGE)`, then a look at what came back.
    Exchange,
    /// A plain rename, where the file system cannot exchange.
    Rename,
}

/// What serves the policy file while it is edited: the server's store, whose appliers'
/// lock keeps the watcher from applying the file's previous content after an edit; or,
/// for an edit made with no server running, nothing but the validation.
pub(crate) trait Serving {
    /// Held while a read is applied, and from the last check of the file until its
    /// replacement is applied.
    type Held<'a>: Held
    where
        Self: 'a;

    /// Takes the appliers' lock (or nothing).
    fn hold(&self) -> Self::Held<'_>;
}

/// What [`Serving::hold`] gives: the policy applied while it is held.
pub(crate) trait Held {
    /// The policy of `bytes`, just read from the file at `path`, applied as the watcher
    /// would apply it.
    fn read(&mut self, bytes: &[u8], path: &Path) -> Result<Arc<Policy>, PolicyError>;

    /// Validates the edited `content`, about to be put in place, and applies it. An edit
    /// is audited by whoever asked for it (the admin connection, with the peer), so this
    /// applies it without a `reload` record.
    fn apply_edit(&mut self, content: &[u8], path: &Path) -> Result<(), PolicyError>;
}

/// Applies `edit` to the policy file at `path` and to what serves it. Returns the entry
/// as stored and whether anything changed.
pub(crate) async fn change_list(
    serving: &impl Serving,
    path: &Path,
    edit: Edit<'_>,
) -> Result<(String, bool), EditError> {
    change_list_with(serving, path, edit, |_| {}).await
}

/// [`change_list`], calling `hook` at each [`Stage`].
pub(crate) async fn change_list_with(
    serving: &impl Serving,
    path: &Path,
    edit: Edit<'_>,
    hook: impl FnMut(Stage<'_>),
) -> Result<(String, bool), EditError> {
    edit_in_place(serving, path, edit, Swap::Exchange, hook).await
}

/// A read of the policy file that parses, and its policy.
struct Base {
    bytes: Vec<u8>,
    policy: Arc<Policy>,
}

async fn edit_in_place(
    serving: &impl Serving,
    path: &Path,
    change: Edit<'_>,
    mut swap: Swap,
    mut hook: impl FnMut(Stage<'_>),
) -> Result<(String, bool), EditError> {
    let wanted = change.wanted()?;
    // Set when a hand save went into the file a plain rename had just replaced: their
    // content (settled, valid) and what the file holds now, to put theirs back with ours
    // on top.
    let mut recovering: Option<(Base, Vec<u8>)> = None;
    for _ in 0..ATTEMPTS {
        let (base, expected) = match recovering.take() {
            Some(pair) => pair,
            None => {
                let base = read_valid(serving, path).await?;
                let expected = base.bytes.clone();
                (base, expected)
            }
        };
        let owner = Owner::of(path)?;
        hook(Stage::Read);
        let restoring = base.bytes != expected;
        let content = match edit(&base, path, change, &wanted) {
            Ok(Some(edited)) => edited.into_bytes(),
            Ok(None) if !restoring => return Ok((wanted, false)),
            Err(e) if !restoring => return Err(e),
            // Their content already has the change, or refuses it: it goes back as it is.
            Ok(None) | Err(_) => base.bytes.clone(),
        };
        let replaced = replace(serving, path, &expected, &content, &owner, swap, &mut hook)
            .map_err(|e| refused_for(change.key, e))?;
        match replaced {
            // Changed meanwhile (a hand save, put back if it had been replaced): start
            // again from it.
            Replaced::Changed => continue,
            Replaced::CannotExchange(error) => {
                tracing::warn!(
                    file = %path.display(),
                    %error,
                    "the file system cannot exchange files atomically; replacing the policy \
                     file by a plain rename, which loses a rename-style save landing just \
                     before it"
                );
                swap = Swap::Rename;
            }
            Replaced::Detached(old) => {
                tracing::warn!(
                    file = %path.display(),
                    "the file was written while being replaced; redoing the edit over that write"
                );
                recovering = Some((settled(old, path).await?, content));
            }
            Replaced::Done(_) if restoring && content == base.bytes => {
                // Their edit is back; it already had this change, or refuses it.
                return edit(&base, path, change, &wanted).map(|_| (wanted, false));
            }
            Replaced::Done(applied) => {
                applied.map_err(|e| {
                    refuse(
                        ErrorCode::Conflict,
                        format!("the edited file was refused: {e}"),
                    )
                })?;
                return Ok((wanted, true));
            }
        }
    }
    Err(refuse(
        ErrorCode::Conflict,
        format!(
            "{} kept changing while being edited; try again",
            path.display()
        ),
    ))
}

/// `replace` names a policy the edit would make invalid an invalid origin; for a host
/// edit it is an invalid host.
fn refused_for(key: ListKey, mut error: EditError) -> EditError {
    if error.code == ErrorCode::InvalidOrigin {
        error.code = key.invalid();
    }
    error
}

/// The owner, group and mode the edited file keeps.
struct Owner {
    uid: u32,
    gid: u32,
    mode: u32,
}

impl Owner {
    /// Those of the file at `path`, which must be a file of its own (not a symlink).
    fn of(path: &Path) -> Result<Owner, EditError> {
        let meta = fs::symlink_metadata(path).map_err(|e| cannot("read", path, e))?;
        if meta.file_type().is_symlink() {
            return Err(refuse(
                ErrorCode::Conflict,
                format!(
                    "{} is a symlink: the file is managed elsewhere (a Kubernetes ConfigMap, \
                     a configuration tool); change it at its source",
                    path.display()
                ),
            ));
        }
        Ok(Owner {
            uid: meta.uid(),
            gid: meta.gid(),
            mode: meta.mode() & 0o7777,
        })
    }
}

/// The file's content once it parses, and its policy. A file that does not (or is
/// missing) may be being written (an editor truncates, then writes; or moves the file
/// away, then writes a new one): it is read again for up to [`SETTLE_WAIT`], then
/// refused. An edit is never built on, nor written over, a file that is invalid.
async fn read_valid(serving: &impl Serving, path: &Path) -> Result<Base, EditError> {
    let start = Instant::now();
    loop {
        let waited = start.elapsed() >= SETTLE_WAIT;
        match read_and_apply(serving, path) {
            Ok(base) => return Ok(base),
            Err(Unsettled::Missing(_) | Unsettled::Invalid(_)) if !waited => {}
            Err(Unsettled::Missing(e) | Unsettled::Unreadable(e)) => {
                return Err(cannot("read", path, e));
            }
            Err(Unsettled::Invalid(e)) => {
                return Err(refuse(
                    ErrorCode::Conflict,
                    format!(
                        "the file is being changed or is invalid: {e} (nothing was changed; \
                         fix the file, `mcp-cors-tui check FILE` shows what is wrong, and try \
                         again)"
                    ),
                ));
            }
        }
        tokio::time::sleep(SETTLE_STEP).await;
    }
}

/// Why a read of the policy file is not a base for an edit (yet).
enum Unsettled {
    Missing(io::Error),
    Unreadable(io::Error),
    Invalid(PolicyError),
}

/// Reads the file and applies it, under the appliers' lock, as the watcher does.
fn read_and_apply(serving: &impl Serving, path: &Path) -> Result<Base, Unsettled> {
    let mut held = serving.hold();
    // The one reader: a FIFO, a device or a huge file at the path is refused, not read.
    let bytes = policy_file::read(path).map_err(|e| match e {
        PolicyError::Read { source, .. } if source.kind() == io::ErrorKind::NotFound => {
            Unsettled::Missing(source)
        }
        PolicyError::Read { source, .. } => Unsettled::Unreadable(source),
        other => Unsettled::Invalid(other),
    })?;
    let policy = held.read(&bytes, path).map_err(Unsettled::Invalid)?;
    drop(held);
    Ok(Base { bytes, policy })
}

/// The content of a replaced file that a hand save was written into, once that save is
/// finished: it parses, and reads the same one [`SETTLE_STEP`] later. Never an empty,
/// partial or invalid read.
async fn settled(mut old: fs::File, path: &Path) -> Result<Base, EditError> {
    let start = Instant::now();
    let mut last: Option<Vec<u8>> = None;
    loop {
        let bytes = reread(&mut old).map_err(|e| cannot("re-read", path, e))?;
        if last.as_deref() == Some(&bytes[..]) {
            if let Ok(policy) = policy_file::parse(&bytes, path) {
                let policy = Arc::new(policy);
                return Ok(Base { bytes, policy });
            }
        }
        if start.elapsed() >= SETTLE_WAIT {
            return Err(refuse(
                ErrorCode::Conflict,
                format!(
                    "{} was saved by hand while this edit replaced it, and that save did not \
                     finish within {} ms: the file holds this edit over the content before \
                     that save; check it, and save again",
                    path.display(),
                    SETTLE_WAIT.as_millis()
                ),
            ));
        }
        last = Some(bytes);
        tokio::time::sleep(SETTLE_STEP).await;
    }
}

/// What [`replace`] did.
enum Replaced {
    /// The file no longer held what was expected: nothing was written, or what had been
    /// written was exchanged back for the hand save found.
    Changed,
    /// The file system cannot exchange files: nothing was written.
    CannotExchange(io::Error),
    /// Replaced by a plain rename, and applied; but a hand save went into the replaced
    /// file meanwhile, which is no longer linked: here it is, to be put back.
    Detached(fs::File),
    /// Written, and applied (or refused, for content being restored that a hand edit
    /// left invalid: the watcher deals with it like with any other write).
    Done(Result<(), PolicyError>),
}

/// A file's device and inode.
type FileId = (u64, u64);

fn id_of(meta: &fs::Metadata) -> FileId {
    (meta.dev(), meta.ino())
}

/// Replaces the file with `content` (atomically, keeping `owner`) and applies it, unless
/// it no longer holds `expected`. The check, the replacement and the apply happen under
/// the store's appliers' lock, so the watcher cannot apply the file's previous content
/// after ours.
fn replace(
    serving: &impl Serving,
    path: &Path,
    expected: &[u8],
    content: &[u8],
    owner: &Owner,
    swap: Swap,
    hook: &mut impl FnMut(Stage<'_>),
) -> Result<Replaced, EditError> {
    let mut temp = TempFile::write(path, content, owner, hook)?;
    let mut held = serving.hold();
    // Kept open: after the replacement it still reads the replaced file.
    // Without blocking: whatever was put at the path since it was read may be a FIFO.
    let mut old = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| cannot("re-read", path, e))?;
    let current = read_all(&mut old).map_err(|e| cannot("re-read", path, e))?;
    let old_id = old.metadata().map(|m| id_of(&m)).ok();
    let at_path = fs::symlink_metadata(path).map(|m| id_of(&m)).ok();
    if current != expected || old_id.is_none() || old_id != at_path {
        return Ok(Replaced::Changed);
    }
    let old_id = old_id.unwrap_or_default();
    hook(Stage::Checked(&temp.path));
    // Applied before it is put in place, which validates it with the one parse it needs:
    // an invalid policy is never written. Should a hand save turn up below, the watcher
    // applies it once it is put back.
    // The edit is audited by the connection that asked for it, with who asked: no
    // `reload` record for it too.
    held.apply_edit(content, path).map_err(|e| {
        refuse(
            ErrorCode::InvalidOrigin,
            format!("the policy would be invalid: {e}"),
        )
    })?;
    if swap == Swap::Rename {
        return rename_into_place(temp, path, held, old, expected);
    }
    match exchange(&temp.path, path) {
        Ok(()) => {}
        Err(e) if cannot_exchange(&e) => return Ok(Replaced::CannotExchange(e)),
        // Moved away meanwhile (an editor saving by moving the file aside first).
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Replaced::Changed),
        Err(e) => return Err(cannot("replace", path, e)),
    }
    let exchanged = Instant::now();
    let ours = temp.id;
    // What came back must be the file we checked, unchanged: otherwise a hand save landed
    // (renamed over it, or written into it) between the check and the exchange.
    let came_back = fs::symlink_metadata(&temp.path).map(|m| id_of(&m)).ok();
    if came_back != Some(old_id) || reread(&mut old).ok().as_deref() != Some(expected) {
        put_back(&mut temp, path, came_back, ours)?;
        return Ok(Replaced::Changed);
    }
    hook(Stage::Replaced(&temp.path));
    sync_folder(path);
    // An in-place save whose `open` found the file just before the exchange truncates and
    // writes the file that came back, perhaps a while later (its process preempted inside
    // the system call): keep that file, and look at it once more when the watch is over.
    thread::sleep(REPLACED_WATCH.saturating_sub(exchanged.elapsed()));
    if reread(&mut old).ok().as_deref() != Some(expected) {
        put_back(&mut temp, path, Some(old_id), ours)?;
        return Ok(Replaced::Changed);
    }
    drop(held);
    drop(temp); // The replaced file, now at the temporary name.
    Ok(Replaced::Done(Ok(())))
}

/// The fallback where files cannot be exchanged: a plain rename. A hand save written into
/// the replaced file is noticed afterwards ([`Replaced::Detached`]); one renamed into
/// place just before is lost.
fn rename_into_place(
    mut temp: TempFile,
    path: &Path,
    held: impl Held,
    mut old: fs::File,
    expected: &[u8],
) -> Result<Replaced, EditError> {
    fs::rename(&temp.path, path).map_err(|e| cannot("replace", path, e))?;
    temp.keep();
    drop(held);
    let renamed = Instant::now();
    sync_folder(path);
    thread::sleep(REPLACED_WATCH.saturating_sub(renamed.elapsed()));
    Ok(match reread(&mut old) {
        Ok(after) if after != expected => Replaced::Detached(old),
        _ => Replaced::Done(Ok(())),
    })
}

/// After an exchange found a hand save (`theirs`, now at `temp`; `ours` at `path`), puts
/// it back at `path` by exchanging again. A rename-style save can land on `path` between
/// two exchanges, too; what comes back is then newer than what was put in, and goes back
/// in its turn. `theirs` is `None` when nothing came back (cannot happen: an exchange
/// needs both files). When this fails, the temporary file is kept: it may hold a save.
fn put_back(
    temp: &mut TempFile,
    path: &Path,
    theirs: Option<FileId>,
    ours: FileId,
) -> Result<(), EditError> {
    let result = exchange_until_settled(&temp.path, path, theirs, ours);
    if let Err(e) = &result {
        temp.keep();
        tracing::error!(
            file = %path.display(),
            kept = %temp.path.display(),
            error = %e.message,
            "a hand save may be in the kept file"
        );
    }
    result
}

fn exchange_until_settled(
    temp: &Path,
    path: &Path,
    theirs: Option<FileId>,
    ours: FileId,
) -> Result<(), EditError> {
    let (mut putting, mut expect_back) = (theirs, ours);
    for _ in 0..EXCHANGES {
        match exchange(temp, path) {
            Ok(()) => {}
            // Moved away meanwhile: put theirs there, unless a newer file arrived since.
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                return match rename_no_replace(temp, path) {
                    Ok(()) => Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
                    Err(e) => Err(cannot("put back the hand save at", path, e)),
                };
            }
            Err(e) => return Err(cannot("put back the hand save at", path, e)),
        }
        let back = fs::symlink_metadata(temp).map(|m| id_of(&m)).ok();
        if back == Some(expect_back) {
            return Ok(());
        }
        tracing::debug!(file = %path.display(), "another hand save landed while one was put back");
        let Some(newer) = back else {
            break;
        };
        (putting, expect_back) = (Some(newer), putting.unwrap_or_default());
    }
    Err(refuse(
        ErrorCode::Conflict,
        format!(
            "{} kept being replaced while a hand save was put back; check that it holds the \
             latest save, and try again",
            path.display()
        ),
    ))
}

/// Exchanges the files at `a` and `b` atomically (both must exist).
#[cfg(target_os = "linux")]
fn exchange(a: &Path, b: &Path) -> io::Result<()> {
    renameat2(a, b, libc::RENAME_EXCHANGE)
}

/// Moves `from` to `to` unless something is at `to`.
#[cfg(target_os = "linux")]
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    renameat2(from, to, libc::RENAME_NOREPLACE)
}

#[cfg(target_os = "linux")]
fn renameat2(from: &Path, to: &Path, flags: libc::c_uint) -> io::Result<()> {
    use std::os::unix::ffi::OsStrExt;
    let c = |p: &Path| {
        std::ffi::CString::new(p.as_os_str().as_bytes())
            .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))
    };
    let (from, to) = (c(from)?, c(to)?);
    // SAFETY: both are NUL-terminated paths that outlive the call. Through `syscall`,
    // so that a C library without the `renameat2` wrapper still works.
    let result = unsafe {
        libc::syscall(
            libc::SYS_renameat2,
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            flags,
        )
    };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(not(target_os = "linux"))]
fn exchange(_: &Path, _: &Path) -> io::Result<()> {
    Err(io::Error::from_raw_os_error(libc::ENOSYS))
}

#[cfg(not(target_os = "linux"))]
fn rename_no_replace(from: &Path, to: &Path) -> io::Result<()> {
    fs::hard_link(from, to)?;
    fs::remove_file(from)
}

/// Whether an exchange failed because the file system (or kernel) has none.
fn cannot_exchange(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EINVAL | libc::ENOSYS | libc::EOPNOTSUPP)
    )
}

/// Syncs the folder holding `path`, so the replacement itself is on disk.
fn sync_folder(path: &Path) {
    if let Ok(dir) = fs::File::open(path.parent().unwrap_or_else(|| Path::new("."))) {
        let _ = dir.sync_all();
    }
}

fn read_all(file: &mut fs::File) -> io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn reread(file: &mut fs::File) -> io::Result<Vec<u8>> {
    file.rewind()?;
    read_all(file)
}

/// A temporary file next to the policy file; removed when dropped unless kept.
struct TempFile {
    path: PathBuf,
    id: FileId,
    kept: bool,
}

impl TempFile {
    /// Writes `content` to a new temporary file next to `path`, with `owner`'s owner,
    /// group and mode from the start (never wider), synced to disk.
    fn write(
        path: &Path,
        content: &[u8],
        owner: &Owner,
        hook: &mut impl FnMut(Stage<'_>),
    ) -> Result<TempFile, EditError> {
        let failed = |e| cannot("write a temporary file next to", path, e);
        let (temp, file) = temp::create(path, |candidate| {
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .custom_flags(libc::O_NOFOLLOW)
                // At most the final mode from the start: the umask can only narrow it.
                .mode(owner.mode & 0o777)
                .open(candidate)
        })
        .map_err(failed)?;
        let mut temp = TempFile {
            path: temp,
            id: (0, 0),
            kept: false,
        };
        hook(Stage::Created(&temp.path));
        let meta = file.metadata().map_err(failed)?;
        temp.id = id_of(&meta);
        if (meta.uid(), meta.gid()) != (owner.uid, owner.gid) {
            fchown(&file, owner).map_err(|e| {
                refuse(
                    ErrorCode::Conflict,
                    format!(
                        "cannot keep the owner {}:{} of {} ({e}): this server's user may not \
                         give files to that owner; the edit is refused rather than changing \
                         who owns the file (make the server's user its owner, or edit it by \
                         hand)",
                        owner.uid,
                        owner.gid,
                        path.display()
                    ),
                )
            })?;
        }
        // After the chown, which clears set-id bits; and whatever the umask was.
        fchmod(&file, owner.mode).map_err(failed)?;
        let mut file = file;
        file.write_all(content).map_err(failed)?;
        file.sync_all().map_err(failed)?;
        Ok(temp)
    }

    /// Not to be removed: renamed into place, or holding a file that may be a hand save.
    fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = fs::remove_file(&self.path);
        }
    }
}

fn fchown(file: &fs::File, owner: &Owner) -> io::Result<()> {
    // SAFETY: the descriptor is open for the duration of the call.
    let result = unsafe { libc::fchown(file.as_raw_fd(), owner.uid, owner.gid) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn fchmod(file: &fs::File, mode: u32) -> io::Result<()> {
    // SAFETY: the descriptor is open for the duration of the call.
    let result = unsafe { libc::fchmod(file.as_raw_fd(), mode as libc::mode_t) };
    if result == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The file's new text, or `None` when there is nothing to change.
fn edit(
    base: &Base,
    path: &Path,
    change: Edit<'_>,
    wanted: &str,
) -> Result<Option<String>, EditError> {
    // `base` parsed, so it is UTF-8 text (and not broken, nor empty, like the loader).
    let text = std::str::from_utf8(&base.bytes).map_err(|_| {
        refuse(
            ErrorCode::Conflict,
            format!("{} is not UTF-8 text", path.display()),
        )
    })?;
    change::edited(text, &base.policy, change, wanted, &path.display())
}

#[cfg(all(test, feature = "server"))]
mod tests {
    use super::*;
    use crate::change::Change;
    use crate::store::PolicyStore;

    fn base(source: &str) -> Base {
        let bytes = source.as_bytes().to_vec();
        let policy = policy_file::parse(&bytes, Path::new("cors.toml")).unwrap();
        Base {
            bytes,
            policy: Arc::new(policy),
        }
    }

    fn added(source: &str, origin: &str) -> String {
        edit(
            &base(source),
            Path::new("cors.toml"),
            Edit::origins(Change::Add(origin)),
            origin,
        )
        .unwrap()
        .unwrap()
    }

    const POLICY: &str =
        "# hand-written\nallowed_origins = [\"https://a.example\"]\nmax_age = 600\n";

    /// A store for a `cors.toml` holding [`POLICY`], in a fresh folder.
    fn file_store() -> (tempfile::TempDir, PathBuf, PolicyStore) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cors.toml");
        fs::write(&path, POLICY).unwrap();
        let loaded = crate::policy::file::load(&path);
        let store = PolicyStore::for_file(&path, loaded);
        (dir, path, store)
    }

    fn run<T>(future: impl std::future::Future<Output = T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap()
            .block_on(future)
    }

    fn add_with(
        store: &PolicyStore,
        path: &Path,
        origin: &str,
        hook: impl FnMut(Stage<'_>),
    ) -> Result<(String, bool), EditError> {
        run(change_list_with(
            store,
            path,
            Edit::origins(Change::Add(origin)),
            hook,
        ))
    }

    const HAND_EDIT: &str =
        "# hand-written\nallowed_origins = [\"https://a.example\"]\nmax_age = 60\n";

    fn assert_both_changes_kept(path: &Path, store: &PolicyStore) {
        let on_disk = fs::read_to_string(path).unwrap();
        assert!(
            on_disk.contains("max_age = 60\n") && on_disk.contains("https://b.example"),
            "{on_disk}"
        );
        let settings = store.load_full().settings().clone();
        assert_eq!(settings.max_age, 60);
        assert!(
            settings
                .allowed_origins
                .contains(&"https://b.example".to_owned())
        );
    }

    #[test]
    fn a_hand_edit_between_the_read_and_the_write_is_kept() {
        let (_dir, path, store) = file_store();
        let mut once = true;
        let result = add_with(&store, &path, "https://b.example", |stage| {
            if stage == Stage::Read && std::mem::take(&mut once) {
                fs::write(&path, HAND_EDIT).unwrap();
            }
        });
        assert_eq!(result.unwrap(), ("https://b.example".to_owned(), true));
        assert_both_changes_kept(&path, &store);
    }

    #[test]
    fn a_hand_edit_in_place_just_before_the_rename_is_put_back_with_the_change() {
        let (_dir, path, store) = file_store();
        let mut once = true;
        let result = add_with(&store, &path, "https://b.example", |stage| {
            // After the check, before the rename: the write goes into the file that the
            // rename then replaces.
            if matches!(stage, Stage::Checked(_)) && std::mem::take(&mut once) {
                fs::write(&path, HAND_EDIT).unwrap();
            }
        });
        assert_eq!(result.unwrap(), ("https://b.example".to_owned(), true));
        assert_both_changes_kept(&path, &store);
    }

    /// An in-place save (truncate, then write) caught between the check and the
    /// replacement: their half-written file is never taken as the base, nor written.
    /// (Failed before this fix: the empty read was renamed into place.)
    fn in_place_save_before_the_replacement(swap: Swap) {
        let (_dir, path, store) = file_store();
        let mut writer = None;
        let result = run(edit_in_place(
            &store,
            &path,
            Edit::origins(Change::Add("https://b.example")),
            swap,
            |stage| {
                if matches!(stage, Stage::Checked(_)) && writer.is_none() {
                    // The editor opened (truncating) the file we are about to replace, and
                    // writes it a moment later.
                    let file = fs::OpenOptions::new()
                        .write(true)
                        .truncate(true)
                        .open(&path)
                        .unwrap();
                    writer = Some(std::thread::spawn(move || {
                        std::thread::sleep(Duration::from_millis(100));
                        let mut file = file;
                        file.write_all(HAND_EDIT.as_bytes()).unwrap();
                    }));
                }
            },
        ));
        writer.take().unwrap().join().unwrap();
        let on_disk = fs::read_to_string(&path).unwrap();
        assert!(!on_disk.is_empty(), "the file was emptied");
        assert_eq!(result.unwrap(), ("https://b.example".to_owned(), true));
        assert_both_changes_kept(&path, &store);
    }

    /// An in-place save whose `open` found the file just before the exchange (its process
    /// then preempted inside the system call), and which truncates and writes only after
    /// the edit looked at what came back: the save goes into the replaced file. It is put
    /// back, with the change on top. (Failed before this fix: the replaced file, holding
    /// the only copy of that save, was deleted; the CI run of stop 18 lost one so.)
    #[test]
    fn an_in_place_save_opened_before_the_exchange_and_written_after_it_is_put_back() {
        let (_dir, path, store) = file_store();
        let (mut opened, mut wrote) = (None, false);
        let result = add_with(&store, &path, "https://b.example", |stage| match stage {
            Stage::Checked(_) if opened.is_none() && !wrote => {
                opened = Some(fs::OpenOptions::new().write(true).open(&path).unwrap());
            }
            Stage::Replaced(_) => {
                if let Some(mut file) = opened.take() {
                    file.set_len(0).unwrap();
                    file.write_all(HAND_EDIT.as_bytes()).unwrap();
                    wrote = true;
                }
            }
            _ => {}
        });
        assert!(wrote, "the save was made");
        assert_eq!(result.unwrap(), ("https://b.example".to_owned(), true));
        assert_both_changes_kept(&path, &store);
    }

    #[test]
    fn an_in_place_save_truncated_just_before_the_replacement_is_never_written_empty() {
        in_place_save_before_the_replacement(Swap::Exchange);
    }

    #[test]
    fn without_exchange_an_in_place_save_is_still_never_written_empty() {
        in_place_save_before_the_replacement(Swap::Rename);
    }

    /// A rename-style save (vim, VS Code) landing between the check and the replacement
    /// is never overwritten: it is exchanged back, and the edit is made again on top of
    /// it. (Failed before this fix: the rename replaced their save.)
    #[test]
    fn a_rename_save_just_before_the_replacement_is_kept() {
        let (dir, path, store) = file_store();
        let mut once = true;
        let result = add_with(&store, &path, "https://b.example", |stage| {
            if matches!(stage, Stage::Checked(_)) && std::mem::take(&mut once) {
                let theirs = dir.path().join("cors.toml~");
                fs::write(&theirs, HAND_EDIT).unwrap();
                fs::rename(&theirs, &path).unwrap();
            }
        });
        assert_eq!(result.unwrap(), ("https://b.example".to_owned(), true));
        assert_both_changes_kept(&path, &store);
        let left: Vec<_> = fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "no temporary file left: {left:?}");
    }

    /// Saves that keep landing while one is put back: the newest stays.
    #[test]
    fn the_newest_of_saves_landing_during_the_exchanges_is_the_one_kept() {
        let dir = tempfile::tempdir().unwrap();
        let (temp, path) = (dir.path().join("temp"), dir.path().join("cors.toml"));
        let id = |p: &Path| id_of(&fs::symlink_metadata(p).unwrap());
        fs::write(&path, "ours").unwrap();
        fs::write(&temp, "first save").unwrap();
        let (ours, first) = (id(&path), id(&temp));
        // A second save lands on the path before the first is put back.
        fs::write(dir.path().join("s"), "second save").unwrap();
        fs::rename(dir.path().join("s"), &path).unwrap();
        exchange_until_settled(&temp, &path, Some(first), ours).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap(), "second save");
        assert_eq!(fs::read_to_string(&temp).unwrap(), "first save");
    }

    #[test]
    fn an_edit_keeps_owner_group_and_mode_and_the_temp_file_is_never_wider() {
        use std::os::unix::fs::PermissionsExt;
        let (_dir, path, store) = file_store();
        let (uid, gid) = (65534, 4243);
        std::os::unix::fs::chown(&path, Some(uid), Some(gid)).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        let mut seen = Vec::new();
        let result = add_with(&store, &path, "https://b.example", |stage| match stage {
            Stage::Created(temp) | Stage::Checked(temp) => {
                let meta = fs::symlink_metadata(temp).unwrap();
                seen.push((
                    stage_name(stage),
                    meta.uid(),
                    meta.gid(),
                    meta.mode() & 0o7777,
                ));
            }
            Stage::Read | Stage::Replaced(_) => {}
        });
        assert!(result.unwrap().1);
        let created = seen.iter().find(|s| s.0 == "created").unwrap();
        assert_eq!(
            created.3 & !0o640,
            0,
            "never wider than the final mode: {seen:?}"
        );
        assert!(seen.contains(&("checked", uid, gid, 0o640)), "{seen:?}");
        let meta = fs::metadata(&path).unwrap();
        assert_eq!(
            (meta.uid(), meta.gid(), meta.mode() & 0o7777),
            (uid, gid, 0o640)
        );
    }

    fn stage_name(stage: Stage<'_>) -> &'static str {
        match stage {
            Stage::Read => "read",
            Stage::Created(_) => "created",
            Stage::Checked(_) => "checked",
            Stage::Replaced(_) => "replaced",
        }
    }

    #[test]
    fn a_file_system_without_exchange_is_recognised() {
        for errno in [libc::EINVAL, libc::ENOSYS, libc::EOPNOTSUPP] {
            assert!(cannot_exchange(&io::Error::from_raw_os_error(errno)));
        }
        assert!(!cannot_exchange(&io::Error::from_raw_os_error(
            libc::EACCES
        )));
    }

    #[test]
    fn an_empty_file_is_waited_for_then_refused_and_left_alone() {
        let (_dir, path, store) = file_store();
        fs::write(&path, "").unwrap();
        let start = Instant::now();
        let err = add_with(&store, &path, "https://b.example", |_| {}).unwrap_err();
        assert!(start.elapsed() >= SETTLE_WAIT, "it waited for the writer");
        assert_eq!(err.code, ErrorCode::Conflict);
        assert!(
            err.message
                .starts_with("the file is being changed or is invalid: ")
                && err.message.contains("empty"),
            "{}",
            err.message
        );
        assert_eq!(fs::read(&path).unwrap(), b"");
    }

    #[test]
    fn a_file_finished_while_waiting_is_edited() {
        let (_dir, path, store) = file_store();
        fs::write(&path, "# hand-written\n").unwrap(); // truncated, the header written
        let writer = std::thread::spawn({
            let path = path.clone();
            move || {
                std::thread::sleep(Duration::from_millis(100));
                fs::write(&path, HAND_EDIT).unwrap();
            }
        });
        let result = add_with(&store, &path, "https://b.example", |_| {});
        writer.join().unwrap();
        assert_eq!(result.unwrap(), ("https://b.example".to_owned(), true));
        assert_both_changes_kept(&path, &store);
    }

    #[test]
    fn adding_keeps_comments_and_layout() {
        let source = "# top comment\nallowed_origins = [\n  \"https://a.example\",  # the first\n  \"https://b.example\",\n]\nmax_age = 60 # cache\n";
        assert_eq!(
            added(source, "https://c.example"),
            "# top comment\nallowed_origins = [\n  \"https://a.example\",  # the first\n  \"https://b.example\",\n  \"https://c.example\",\n]\nmax_age = 60 # cache\n"
        );
        assert_eq!(
            added(
                "allowed_origins = [\"https://a.example\"]\n",
                "https://c.example"
            ),
            "allowed_origins = [\"https://a.example\", \"https://c.example\"]\n"
        );
        assert_eq!(
            added("max_age = 5\n", "https://c.example"),
            "max_age = 5\nallowed_origins = [\"https://c.example\"]\n"
        );
    }

    #[test]
    fn removing_matches_after_normalisation() {
        let source = "allowed_origins = [\"https://A.example:443\", \"https://b.example\"]\n";
        let out = edit(
            &base(source),
            Path::new("c.toml"),
            Edit::origins(Change::Remove("x")),
            "https://a.example",
        )
        .unwrap()
        .unwrap();
        assert_eq!(out, "allowed_origins = [\"https://b.example\"]\n");
        let source = "allowed_origins = [\n  \"https://a.example\",  # a\n  \"https://b.example\",  # b\n  \"https://c.example\",  # c\n]\n";
        let remove = |o: &str| {
            edit(
                &base(source),
                Path::new("c.toml"),
                Edit::origins(Change::Remove(o)),
                o,
            )
            .unwrap()
            .unwrap()
        };
        assert_eq!(
            remove("https://b.example"),
            "allowed_origins = [\n  \"https://a.example\",  # a\n  \"https://c.example\",  # c\n]\n"
        );
        assert_eq!(
            remove("https://c.example"),
            "allowed_origins = [\n  \"https://a.example\",  # a\n  \"https://b.example\",  # b\n]\n"
        );
        assert_eq!(
            remove("https://a.example"),
            "allowed_origins = [\n  \"https://b.example\",  # b\n  \"https://c.example\",  # c\n]\n"
        );
        let missing = edit(
            &base(source),
            Path::new("c.toml"),
            Edit::origins(Change::Remove("x")),
            "https://z.example",
        );
        assert_eq!(missing.unwrap_err().code, ErrorCode::NotFound);
    }

    #[test]
    fn the_wildcard_credentials_mistake_cannot_be_made_through_the_socket() {
        let (_dir, path, store) = file_store();
        let source = "allowed_origins = []\nallow_credentials = true\n";
        fs::write(&path, source).unwrap();
        let forced = Edit {
            force: true,
            ..Edit::origins(Change::Add("*"))
        };
        let err = run(change_list(&store, &path, forced)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidOrigin);
        assert!(
            err.message.contains("wildcard + credentials"),
            "{}",
            err.message
        );
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            source,
            "nothing written"
        );
        assert!(
            !store
                .load_full()
                .settings()
                .allowed_origins
                .contains(&"*".to_owned())
        );
    }

    fn hosts(change: Change<'_>, force: bool) -> Edit<'_> {
        Edit::new(ListKey::Hosts, change, force)
    }

    fn host_edited(source: &str, change: Change<'_>) -> Result<Option<String>, EditError> {
        let edit_ = hosts(change, false);
        let wanted = edit_.wanted()?;
        edit(&base(source), Path::new("cors.toml"), edit_, &wanted)
    }

    #[test]
    fn hosts_are_added_and_removed_like_origins_with_comments_kept() {
        let source = "# hosts\nallowed_hosts = [\n  \"localhost\",  # dev\n  \"10.0.0.0/8\",\n]\nmax_age = 5 # cache\n";
        assert_eq!(
            host_edited(source, Change::Add("API.Example.com:8443"))
                .unwrap()
                .unwrap(),
            "# hosts\nallowed_hosts = [\n  \"localhost\",  # dev\n  \"10.0.0.0/8\",\n  \"api.example.com:8443\",\n]\nmax_age = 5 # cache\n"
        );
        assert_eq!(
            host_edited(source, Change::Remove("LOCALHOST"))
                .unwrap()
                .unwrap(),
            "# hosts\nallowed_hosts = [\n  \"10.0.0.0/8\",\n]\nmax_age = 5 # cache\n"
        );
        assert!(
            host_edited(source, Change::Add("localhost"))
                .unwrap()
                .is_none(),
            "already there: nothing to write"
        );
        let missing = host_edited(source, Change::Remove("evil.example")).unwrap_err();
        assert_eq!(missing.code, ErrorCode::NotFound);
        assert!(
            missing.message.contains("allowed_hosts"),
            "{}",
            missing.message
        );
    }

    #[test]
    fn adding_a_host_to_a_file_without_the_key_keeps_the_loopback_defaults() {
        let out = host_edited("max_age = 5\n", Change::Add("10.0.0.0/8"))
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            "max_age = 5\nallowed_hosts = [\"localhost\", \"127.0.0.1\", \"[::1]\", \"10.0.0.0/8\"]\n"
        );
        let out = host_edited("max_age = 5\n", Change::Remove("127.0.0.1"))
            .unwrap()
            .unwrap();
        assert_eq!(
            out,
            "max_age = 5\nallowed_hosts = [\"localhost\", \"[::1]\"]\n"
        );
    }

    #[test]
    fn bad_hosts_are_refused_naming_the_entry_and_the_rule() {
        for (bad, why) in [
            ("http://api.example.com", "not a URL"),
            ("10.0.0.0/33", "10.0.0.0/33"),
            ("a*b.example.com", "wildcard"),
            ("api.example.com:99999", "port"),
        ] {
            let err = host_edited("", Change::Add(bad)).unwrap_err();
            assert_eq!(err.code, ErrorCode::InvalidHost, "{bad}");
            assert!(
                err.message.contains(bad) && err.message.contains(why),
                "{bad}: {}",
                err.message
            );
        }
        let huge = format!("{}.example", "a".repeat(400));
        let err = host_edited("", Change::Add(&huge)).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidHost);
        assert!(err.message.contains("at most 300 bytes"), "{}", err.message);
    }

    #[test]
    fn a_star_is_refused_unless_forced_for_origins_and_hosts() {
        let err = Edit::origins(Change::Add(" * ")).wanted().unwrap_err();
        assert_eq!(err.code, ErrorCode::ForceRequired);
        assert!(
            err.message.contains("every origin") && err.message.contains("--force"),
            "{}",
            err.message
        );
        let err = hosts(Change::Add("*"), false).wanted().unwrap_err();
        assert_eq!(err.code, ErrorCode::ForceRequired);
        assert!(err.message.contains("Host guard off"), "{}", err.message);
        let forced = Edit {
            force: true,
            ..Edit::origins(Change::Add("*"))
        };
        assert_eq!(forced.wanted().unwrap(), "*");
        assert_eq!(hosts(Change::Add("*"), true).wanted().unwrap(), "*");
        // Removing `*` closes, so it needs no force.
        assert_eq!(Edit::origins(Change::Remove("*")).wanted().unwrap(), "*");
    }
}
