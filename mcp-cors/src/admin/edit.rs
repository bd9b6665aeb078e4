//! Adding and removing origins in the policy file, the way an operator would: comments,
//! order and formatting kept (`toml_edit`), written atomically, and only replied to once
//! the new policy serves requests.

use std::fs;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use toml_edit::{Array, DocumentMut, Item, Value};

use crate::origin;
use crate::policy::Policy;
use crate::protocol::ErrorCode;
use crate::store::PolicyStore;

/// How many times an edit is retried when the file changes underneath it.
const ATTEMPTS: usize = 3;

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

/// Applies `change` to the policy file at `path` and to `store`. Returns the origin as
/// stored and whether anything changed.
pub(crate) fn change_origins(
    store: &PolicyStore,
    path: &Path,
    change: Change<'_>,
) -> Result<(String, bool), EditError> {
    let raw = match change {
        Change::Add(o) | Change::Remove(o) => o,
    };
    let wanted = origin::parse_entry(raw)
        .map_err(|e| refuse(ErrorCode::InvalidOrigin, format!("{raw:?}: {e}")))?
        .to_string();
    let meta = fs::symlink_metadata(path).map_err(|e| {
        refuse(
            ErrorCode::Conflict,
            format!("cannot read {}: {e}", path.display()),
        )
    })?;
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
    for _ in 0..ATTEMPTS {
        let original = fs::read(path).map_err(|e| {
            refuse(
                ErrorCode::Conflict,
                format!("cannot read {}: {e}", path.display()),
            )
        })?;
        let Some(edited) = edit(&original, path, change, &wanted)? else {
            return Ok((wanted, false));
        };
        if !replace_if_unchanged(
            path,
            &original,
            edited.as_bytes(),
            meta.permissions().mode(),
        )? {
            continue; // Edited by someone else meanwhile: start again from their version.
        }
        // Read-your-writes: the reply waits for the new policy to serve. The watcher will
        // see the same bytes and do nothing.
        store.apply_source(edited.as_bytes()).map_err(|e| {
            refuse(
                ErrorCode::Conflict,
                format!("the edited file was refused: {e}"),
            )
        })?;
        return Ok((wanted, true));
    }
    Err(refuse(
        ErrorCode::Conflict,
        format!(
            "{} kept changing while being edited; try again",
            path.display()
        ),
    ))
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
    // Never build on a file that is broken right now: the operator must see that first.
    Policy::from_toml_str(text).map_err(|e| {
        refuse(
            ErrorCode::Conflict,
            format!(
                "{} is invalid; fix it first:\n{}",
                path.display(),
                e.in_file(path)
            ),
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

/// Writes `content` over `path` atomically (temporary file in the same folder, fsync,
/// rename, fsync of the folder), keeping `mode`, unless the file no longer holds
/// `original`. Returns whether it was written.
fn replace_if_unchanged(
    path: &Path,
    original: &[u8],
    content: &[u8],
    mode: u32,
) -> Result<bool, EditError> {
    let io = |what: &str, e: std::io::Error| {
        refuse(
            ErrorCode::Conflict,
            format!("cannot {what} {}: {e}", path.display()),
        )
    };
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
        return Err(io("write a temporary file next to", e));
    }
    // The check and the rename are not one atomic step; the window is the few
    // microseconds between them, against an edit by hand that takes seconds.
    if fs::read(path).map_err(|e| io("re-read", e))? != original {
        let _ = fs::remove_file(&temp);
        return Ok(false);
    }
    if let Err(e) = fs::rename(&temp, path) {
        let _ = fs::remove_file(&temp);
        return Err(io("replace", e));
    }
    if let Ok(dir) = fs::File::open(folder) {
        let _ = dir.sync_all();
    }
    Ok(true)
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
