//! Adding and removing origins in the policy file, the way an operator would: comments,
//! order and formatting kept (`toml_edit`), written atomically, and only replied to once
//! the new policy serves requests.

use std::fs;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use toml_edit::{Array, DocumentMut, Item, Value};

use crate::error::PolicyError;
use crate::origin;
use crate::policy::Policy;
use crate::policy::file as policy_file;
use crate::protocol::ErrorCode;
use crate::store::{Applied, PolicyStore};

/// How many times an edit is retried when the file changes underneath it.
const ATTEMPTS: usize = 3;
/// How long an edit waits, at most, for a file that does not parse (perhaps an editor is
/// writing it) to become valid before refusing; and how often it looks again meanwhile.
const SETTLE_WAIT: Duration = Duration::from_millis(300);
const SETTLE_STEP: Duration = Duration::from_millis(50);

/// An origin to add or remove.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change<'a> {
    Add(&'a str),
    Remove(&'a str),
}

/// Why an edit was refused: a code for the protocol and a sentence for the operator.
#[derive(Debug)]
pub(crate) struct EditError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

fn refuse(code: ErrorCode, message: impl Into<String>) -> EditError {
    EditError {
        code,
        message: message.into(),
    }
}

/// The points of an edit where tests change the file, to reproduce races with a hand edit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The file was read; the edit is being made and written to a temporary file.
    Read,
    /// The file was checked unchanged, just before it is replaced.
    Checked,
}

/// Applies `change` to the policy file at `path` and to `store`. Returns the origin as
/// stored and whether anything changed.
pub(crate) async fn change_origins(
    store: &PolicyStore,
    path: &Path,
    change: Change<'_>,
) -> Result<(String, bool), EditError> {
    change_origins_with(store, path, change, |_| {}).await
}

/// [`change_origins`], calling `hook` at each [`Stage`].
pub(crate) async fn change_origins_with(
    store: &PolicyStore,
    path: &Path,
    change: Change<'_>,
    mut hook: impl FnMut(Stage),
) -> Result<(String, bool), EditError> {
    let raw = match change {
        Change::Add(o) | Change::Remove(o) => o,
    };
    let wanted = origin::parse_entry(raw)
        .map_err(|e| {
            let raw = origin::shown(raw);
            refuse(ErrorCode::InvalidOrigin, format!("{raw:?}: {e}"))
        })?
        .to_string();
    let meta = fs::symlink_metadata(path).map_err(|e| cannot("read", path, e))?;
    if meta.file_type().is_symlink() {
        return Err(refuse(
            ErrorCode::Conflict,
            format!(
                "{} is a symlink: the file is managed elsewhere (a Kubernetes ConfigMap, a \
                 configuration tool); change it at its source",
                path.display()
            ),
        ));
    }
    let mode = meta.permissions().mode();
    // Set when a hand edit was written into the file we had just replaced: (their
    // content, what the file holds now), to put their content back with ours on top.
    let mut recovering: Option<(Vec<u8>, Vec<u8>)> = None;
    for _ in 0..ATTEMPTS {
        let (base, expected) = match recovering.take() {
            Some(pair) => pair,
            None => {
                let bytes = read_valid(path).await?;
                (bytes.clone(), bytes)
            }
        };
        hook(Stage::Read);
        let restoring = base != expected;
        let content = match edit(&base, path, change, &wanted) {
            Ok(Some(edited)) => edited.into_bytes(),
            Ok(None) if !restoring => return Ok((wanted, false)),
            // Their content already has the change, or refuses it: it goes back as it is.
            Ok(None) | Err(_) => base.clone(),
        };
        match replace(store, path, &expected, &content, mode, &mut hook)? {
            Replaced::Changed => continue, // Edited meanwhile: start again from their version.
            Replaced::Done {
                theirs: Some(theirs),
                ..
            } => {
                tracing::warn!(
                    file = %path.display(),
                    "the file was written while being replaced; redoing the edit over that write"
                );
                recovering = Some((theirs, content));
            }
            Replaced::Done { theirs: None, .. } if content == base => {
                // Their edit is back; it already had this change, or refuses it.
                return edit(&base, path, change, &wanted).map(|_| (wanted, false));
            }
            Replaced::Done {
                theirs: None,
                applied,
            } => {
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

fn cannot(what: &str, path: &Path, e: std::io::Error) -> EditError {
    refuse(
        ErrorCode::Conflict,
        format!("cannot {what} {}: {e}", path.display()),
    )
}

/// The file's content once it parses. A file that does not may be being written (an
/// editor truncates, then writes): it is read again for up to [`SETTLE_WAIT`], then
/// refused. An edit is never built on, nor written over, a file that is invalid.
async fn read_valid(path: &Path) -> Result<Vec<u8>, EditError> {
    let start = Instant::now();
    loop {
        let bytes = fs::read(path).map_err(|e| cannot("read", path, e))?;
        match policy_file::parse(&bytes, path) {
            Ok(_) => return Ok(bytes),
            Err(_) if start.elapsed() < SETTLE_WAIT => tokio::time::sleep(SETTLE_STEP).await,
            Err(e) => {
                return Err(refuse(
                    ErrorCode::Conflict,
                    format!("the file is being changed or is invalid: {e}"),
                ));
            }
        }
    }
}

/// What [`replace`] did.
enum Replaced {
    /// The file no longer held what was expected: nothing was written.
    Changed,
    /// Written, and applied (or refused, for content being restored that a hand edit
    /// left invalid: the watcher deals with it like with any other write).
    Done {
        /// What another writer wrote into the replaced file between the check and the
        /// replacement: their edit, which must be put back.
        theirs: Option<Vec<u8>>,
        applied: Result<Applied, PolicyError>,
    },
}

/// Replaces the file with `content` (atomically, keeping `mode`) and applies it, unless
/// it no longer holds `expected`. The check, the replacement and the apply happen under
/// the store's appliers' lock, so the watcher cannot apply the file's previous content
/// after ours.
fn replace(
    store: &PolicyStore,
    path: &Path,
    expected: &[u8],
    content: &[u8],
    mode: u32,
    hook: &mut impl FnMut(Stage),
) -> Result<Replaced, EditError> {
    let temp = write_temp(path, content, mode)?;
    let remove_temp = |e: EditError| {
        let _ = fs::remove_file(&temp);
        e
    };
    let mut applying = store.applying();
    // Kept open: after the rename it still reads the replaced file.
    let mut old = fs::File::open(path).map_err(|e| remove_temp(cannot("re-read", path, e)))?;
    let current = read_all(&mut old).map_err(|e| remove_temp(cannot("re-read", path, e)))?;
    let same_file = match (old.metadata(), fs::symlink_metadata(path)) {
        (Ok(a), Ok(b)) => (a.dev(), a.ino()) == (b.dev(), b.ino()),
        _ => false,
    };
    if current != expected || !same_file {
        let _ = fs::remove_file(&temp);
        return Ok(Replaced::Changed);
    }
    hook(Stage::Checked);
    fs::rename(&temp, path).map_err(|e| remove_temp(cannot("replace", path, e)))?;
    // Read-your-writes: the reply waits for the new policy to serve. The watcher will
    // see the same bytes and do nothing.
    let applied = applying.apply_source(content);
    drop(applying);
    if let Ok(dir) = fs::File::open(path.parent().unwrap_or_else(|| Path::new("."))) {
        let _ = dir.sync_all();
    }
    let theirs = old
        .rewind()
        .and_then(|()| read_all(&mut old))
        .ok()
        .filter(|after| after != expected);
    Ok(Replaced::Done { theirs, applied })
}

fn read_all(file: &mut fs::File) -> std::io::Result<Vec<u8>> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(bytes)
}

/// The file's new text, or `None` when there is nothing to change.
fn edit(
    original: &[u8],
    path: &Path,
    change: Change<'_>,
    wanted: &str,
) -> Result<Option<String>, EditError> {
    let text = std::str::from_utf8(original).map_err(|_| {
        refuse(
            ErrorCode::Conflict,
            format!("{} is not UTF-8 text", path.display()),
        )
    })?;
    // Never build on a file that is broken right now (or empty, like the loader): the
    // operator must see that first.
    policy_file::parse(original, path).map_err(|e| {
        refuse(
            ErrorCode::Conflict,
            format!("{} is invalid; fix it first:\n{e}", path.display()),
        )
    })?;
    let mut doc: DocumentMut = text.parse().map_err(|e| {
        refuse(
            ErrorCode::Conflict,
            format!("{} does not parse: {e}", path.display()),
        )
    })?;
    let item = doc
        .entry("allowed_origins")
        .or_insert_with(|| Item::Value(Value::Array(Array::new())));
    let Some(list) = item.as_array_mut() else {
        return Err(refuse(
            ErrorCode::Conflict,
            "allowed_origins is not an array",
        ));
    };
    let same = |v: &Value| {
        v.as_str()
            .and_then(|s| origin::parse_entry(s).ok())
            .is_some_and(|e| e.to_string() == wanted)
    };
    match change {
        Change::Add(_) => {
            if list.iter().any(same) {
                return Ok(None);
            }
            push_like_the_others(list, wanted);
        }
        Change::Remove(_) => {
            let before = list.len();
            let doomed: Vec<usize> = (0..list.len())
                .filter(|&i| list.get(i).is_some_and(same))
                .collect();
            for i in doomed.into_iter().rev() {
                remove_keeping_layout(list, i);
            }
            if list.len() == before {
                return Err(refuse(
                    ErrorCode::NotFound,
                    format!("{wanted} is not in allowed_origins"),
                ));
            }
        }
    }
    let edited = doc.to_string();
    Policy::from_toml_str(&edited).map_err(|e| {
        refuse(
            ErrorCode::InvalidOrigin,
            format!("the policy would be invalid: {e}"),
        )
    })?;
    Ok(Some(edited))
}

/// Appends `origin` laid out like the list's last entry: on its own line with the same
/// indentation when the list is one entry per line, after a space otherwise. Only the
/// whitespace is copied: a comment before the last entry belongs to it, and so does a
/// comment after it on the same line (it stays on that line, before the new entry).
fn push_like_the_others(list: &mut Array, origin: &str) {
    let indent = list.iter().last().map(|last| {
        let before = last
            .decor()
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or(" ");
        before.rfind('\n').map(|i| before[i + 1..].to_owned())
    });
    let trailing = list.trailing().as_str().unwrap_or("").to_owned();
    let prefix = match (indent, trailing.rfind('\n')) {
        // One entry per line, with whatever followed the last entry's comma on its line.
        (Some(Some(indent)), Some(end)) => {
            list.set_trailing(format!("\n{}", &trailing[end + 1..]));
            format!("{}{indent}", &trailing[..=end])
        }
        (Some(Some(indent)), None) => format!("\n{indent}"),
        (Some(None), _) => " ".to_owned(),
        (None, _) => String::new(),
    };
    let mut value = Value::from(origin);
    value.decor_mut().set_prefix(prefix);
    value.decor_mut().set_suffix("");
    list.push_formatted(value);
}

/// The part of a decor up to and including its first newline: in a one-entry-per-line
/// array, the comment that ends the previous entry's line.
fn line_end(decor: &str) -> (&str, &str) {
    decor
        .find('\n')
        .map_or(("", decor), |i| decor.split_at(i + 1))
}

/// Removes entry `i`. The comment ending the previous entry's line lives in entry `i`'s
/// prefix; it is kept, replacing the comment ending entry `i`'s own line (which lives in
/// the next entry's prefix, or the array's trailing text).
fn remove_keeping_layout(list: &mut Array, i: usize) {
    let raw =
        |d: Option<&toml_edit::RawString>| d.and_then(|r| r.as_str()).unwrap_or("").to_owned();
    let prefix = raw(list.get(i).and_then(|v| v.decor().prefix()));
    list.remove(i);
    if i == 0 {
        // The new first entry takes the old first's place (`[` then its whitespace); the
        // comment ending the removed entry's line goes with it.
        if let Some(first) = list.get_mut(0) {
            first.decor_mut().set_prefix(prefix);
        }
        return;
    }
    let kept = line_end(&prefix).0.to_owned();
    match list.get_mut(i) {
        Some(next) => {
            let own = raw(next.decor().prefix());
            next.decor_mut()
                .set_prefix(format!("{kept}{}", line_end(&own).1));
        }
        None => {
            let own = list.trailing().as_str().unwrap_or("").to_owned();
            list.set_trailing(format!("{kept}{}", line_end(&own).1));
        }
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Writes `content` to a new temporary file next to `path` with `mode`, synced to disk.
fn write_temp(path: &Path, content: &[u8], mode: u32) -> Result<PathBuf, EditError> {
    let folder = path.parent().unwrap_or_else(|| Path::new("."));
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let temp = folder.join(format!(
        ".{name}.mcp-cors.{}.{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let write = || -> std::io::Result<()> {
        let mut file = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&temp)?;
        file.set_permissions(fs::Permissions::from_mode(mode))?;
        file.write_all(content)?;
        file.sync_all()
    };
    if let Err(e) = write() {
        let _ = fs::remove_file(&temp);
        return Err(cannot("write a temporary file next to", path, e));
    }
    Ok(temp)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn added(source: &str, origin: &str) -> String {
        edit(
            source.as_bytes(),
            Path::new("cors.toml"),
            Change::Add(origin),
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
        hook: impl FnMut(Stage),
    ) -> Result<(String, bool), EditError> {
        run(change_origins_with(store, path, Change::Add(origin), hook))
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
            if stage == Stage::Checked && std::mem::take(&mut once) {
                fs::write(&path, HAND_EDIT).unwrap();
            }
        });
        assert_eq!(result.unwrap(), ("https://b.example".to_owned(), true));
        assert_both_changes_kept(&path, &store);
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
            source.as_bytes(),
            Path::new("c.toml"),
            Change::Remove("x"),
            "https://a.example",
        )
        .unwrap()
        .unwrap();
        assert_eq!(out, "allowed_origins = [\"https://b.example\"]\n");
        let source = "allowed_origins = [\n  \"https://a.example\",  # a\n  \"https://b.example\",  # b\n  \"https://c.example\",  # c\n]\n";
        let remove = |o: &str| {
            edit(source.as_bytes(), Path::new("c.toml"), Change::Remove(o), o)
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
            source.as_bytes(),
            Path::new("c.toml"),
            Change::Remove("x"),
            "https://z.example",
        );
        assert_eq!(missing.unwrap_err().code, ErrorCode::NotFound);
    }

    #[test]
    fn the_wildcard_credentials_mistake_cannot_be_made_through_the_socket() {
        let source = "allowed_origins = []\nallow_credentials = true\n";
        let err = edit(
            source.as_bytes(),
            Path::new("c.toml"),
            Change::Add("*"),
            "*",
        )
        .unwrap_err();
        assert!(
            err.message.contains("wildcard + credentials"),
            "{}",
            err.message
        );
    }
}
