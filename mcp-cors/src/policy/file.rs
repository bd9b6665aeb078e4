//! Reading a policy file: the one way every part of mcp-cors does it (the server at start,
//! the watcher, the admin edits, [`Policy::from_file`] and so `mcp-cors-tui check`), so
//! that all of them accept and refuse exactly the same files.
//!
//! Whatever sits at the path is opened without blocking and checked before a byte is
//! read: a FIFO would block `open()` forever, a device (`/dev/zero`) never ends, and a
//! huge file would be read into memory on every poll. Only a regular file (symlinks
//! followed, so Kubernetes ConfigMap links work) of at most [`MAX_FILE_SIZE`] is read.

use std::fs;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use super::Policy;
use crate::error::{Diagnostic, PolicyError};

/// The largest policy file read: 100 000 origins take about 4 MB, so 16 MiB is ample, and
/// small enough that a mistake (a log file, an image) is refused before it is parsed.
pub const MAX_FILE_SIZE: u64 = 16 << 20;

/// A policy file's validated policy and the exact bytes it came from.
#[derive(Debug)]
pub(crate) struct Loaded {
    pub(crate) policy: Policy,
    pub(crate) bytes: Vec<u8>,
}

/// Reads and validates the policy file at `path`.
pub(crate) fn load(path: &Path) -> Result<Loaded, PolicyError> {
    let bytes = read(path)?;
    let policy = parse(&bytes, path)?;
    Ok(Loaded { policy, bytes })
}

/// The bytes of the regular file at `path`, refusing anything else and anything larger
/// than [`MAX_FILE_SIZE`] before reading it.
pub(crate) fn read(path: &Path) -> Result<Vec<u8>, PolicyError> {
    let io = |source| PolicyError::Read {
        path: path.to_path_buf(),
        source,
    };
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer. It has no
    // effect on the regular files that are then read.
    let file = fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_NOCTTY)
        .open(path)
        .map_err(io)?;
    let meta = file.metadata().map_err(io)?;
    if let Some(kind) = not_regular(&meta.file_type()) {
        return Err(PolicyError::NotAFile {
            path: path.to_path_buf(),
            kind,
        });
    }
    let too_large = |size| PolicyError::TooLarge {
        path: path.to_path_buf(),
        size,
        limit: MAX_FILE_SIZE,
    };
    if meta.len() > MAX_FILE_SIZE {
        return Err(too_large(meta.len()));
    }
    // The file may grow while it is read: never read more than the cap and one byte.
    let mut bytes = Vec::with_capacity(meta.len() as usize);
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(io)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(too_large(bytes.len() as u64));
    }
    Ok(bytes)
}

/// What a file that is not a regular file is, in words.
fn not_regular(kind: &fs::FileType) -> Option<&'static str> {
    if kind.is_file() {
        None
    } else if kind.is_dir() {
        Some("a directory")
    } else if kind.is_fifo() {
        Some("a FIFO (named pipe)")
    } else if kind.is_char_device() {
        Some("a character device")
    } else if kind.is_block_device() {
        Some("a block device")
    } else if kind.is_socket() {
        Some("a socket")
    } else {
        Some("not a file")
    }
}

/// Validates a policy file's bytes. An empty file, or one with only comments, is refused:
/// it is almost always a file caught between truncation and writing (an editor writes the
/// header comments first), and serving it would silently refuse every origin.
/// (`allowed_origins = []` says "no origin" on purpose.)
pub(crate) fn parse(bytes: &[u8], path: &Path) -> Result<Policy, PolicyError> {
    let invalid = |message: String| {
        PolicyError::Invalid {
            diagnostics: vec![Diagnostic::message(message)],
        }
        .in_file(path)
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|e| invalid(format!("the file is not UTF-8 text: {e}")))?;
    let comment_only = text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#')
    });
    if comment_only {
        return Err(invalid(
            "the file is empty (no settings, at most comments); write `allowed_origins = []` \
             to allow no origin"
                .into(),
        ));
    }
    Policy::from_toml_str(text).map_err(|e| e.in_file(path))
}
