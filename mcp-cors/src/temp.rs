//! Temporary files next to the policy file and the admin socket: names nobody can guess
//! (so another user of a shared folder cannot create them first and make edits fail or
//! switch the socket off), and the clean-up of what a crashed run left behind.
//!
//! A name is `.{file name}.mcp-cors.{pid}.{16 random hex digits}.tmp`. The PID says whose
//! it is, so a leftover is removed only once its process is gone; the random part makes
//! the name unpredictable; the file is created exclusively (`O_EXCL`, or `bind` on a
//! socket), and a name that exists already is never reused: another one is drawn.

use std::fs;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Path, PathBuf};

/// What marks our temporary files, between the file's name and the PID.
const MARK: &str = "mcp-cors";
/// Names drawn before giving up, when each one exists already (which, with 64 random
/// bits, only a broken random source explains).
const TRIES: usize = 16;

/// A fresh temporary name next to `path`.
fn draw(path: &Path) -> io::Result<PathBuf> {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    let suffix = random_u64()?;
    Ok(path.with_file_name(format!(
        ".{name}.{MARK}.{}.{suffix:016x}.tmp",
        std::process::id()
    )))
}

/// Creates a temporary file (or socket) next to `path` with `create`, drawing a new name
/// whenever the one drawn exists already. `create` must fail when the name exists (open
/// with `O_EXCL`, or `bind`).
pub(crate) fn create<T>(
    path: &Path,
    mut create: impl FnMut(&Path) -> io::Result<T>,
) -> io::Result<(PathBuf, T)> {
    for _ in 0..TRIES {
        let temp = draw(path)?;
        match create(&temp) {
            Ok(made) => return Ok((temp, made)),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::AlreadyExists | io::ErrorKind::AddrInUse
                ) => {}
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!(
            "every temporary name tried next to {} exists already",
            path.display()
        ),
    ))
}

/// 64 bits from the kernel's random source.
#[cfg(target_os = "linux")]
fn random_u64() -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    let mut filled = 0;
    while filled < bytes.len() {
        // SAFETY: the pointer and length describe the unfilled part of `bytes`.
        let n = unsafe {
            libc::getrandom(bytes[filled..].as_mut_ptr().cast(), bytes.len() - filled, 0)
        };
        if n < 0 {
            let e = io::Error::last_os_error();
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        filled += n as usize;
    }
    Ok(u64::from_ne_bytes(bytes))
}

#[cfg(not(target_os = "linux"))]
fn random_u64() -> io::Result<u64> {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    fs::File::open("/dev/urandom")?.read_exact(&mut bytes)?;
    Ok(u64::from_ne_bytes(bytes))
}

/// Removes what crashed runs left next to `path`: temporary files and sockets of our name
/// pattern for that file, owned by this process's effective user, whose PID no longer
/// runs. Anything else (another user's file, a live process's edit in progress, other
/// names) is left alone. Failures are logged, never fatal: a leftover only takes space.
pub(crate) fn remove_stale(path: &Path) {
    let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
        return;
    };
    let folder = path.parent().unwrap_or_else(|| Path::new("."));
    let Ok(entries) = fs::read_dir(folder) else {
        return;
    };
    let prefix = format!(".{name}.{MARK}.");
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(pid) = file_name.to_str().and_then(|n| leftover_pid(n, &prefix)) else {
            continue;
        };
        let Ok(meta) = fs::symlink_metadata(entry.path()) else {
            continue;
        };
        let ours = meta.uid() == me && (meta.is_file() || meta.file_type().is_socket());
        if !ours || alive(pid) {
            continue;
        }
        match fs::remove_file(entry.path()) {
            Ok(()) => tracing::info!(
                file = %entry.path().display(),
                pid,
                "removed a temporary file left by a process that is gone"
            ),
            Err(error) => tracing::warn!(
                file = %entry.path().display(),
                %error,
                "cannot remove a temporary file left by a process that is gone"
            ),
        }
    }
}

/// The PID in `name` when it is `{prefix}{pid}.{alphanumeric}.tmp`.
fn leftover_pid(name: &str, prefix: &str) -> Option<u32> {
    let rest = name.strip_prefix(prefix)?.strip_suffix(".tmp")?;
    let (pid, token) = rest.split_once('.')?;
    let token_ok = !token.is_empty() && token.bytes().all(|b| b.is_ascii_alphanumeric());
    let pid_ok = !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit());
    (token_ok && pid_ok).then(|| pid.parse().ok()).flatten()
}

/// Whether a process with this PID exists (ours always does). One we may not signal
/// exists too.
fn alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return true; // Not a process: leave it alone rather than guess.
    }
    // SAFETY: signal 0 only checks that the process exists; nothing is sent.
    let found = unsafe { libc::kill(pid, 0) } == 0;
    found || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_fresh_each_time_and_leftovers_are_recognised() {
        let path = Path::new("/srv/cors.toml");
        let (a, b) = (draw(path).unwrap(), draw(path).unwrap());
        assert_ne!(a, b);
        let name = a.file_name().unwrap().to_str().unwrap();
        assert_eq!(
            leftover_pid(name, ".cors.toml.mcp-cors."),
            Some(std::process::id())
        );
        assert_eq!(
            leftover_pid(".cors.toml.mcp-cors.12.3.tmp", ".cors.toml.mcp-cors."),
            Some(12)
        );
        for other in [
            ".cors.toml.mcp-cors.12.tmp",
            ".cors.toml.mcp-cors..ab.tmp",
            ".cors.toml.mcp-cors.x1.ab.tmp",
            ".cors.toml.mcp-cors.1.a/b.tmp",
            ".cors.toml.mcp-cors.1.ab.swp",
        ] {
            assert_eq!(leftover_pid(other, ".cors.toml.mcp-cors."), None, "{other}");
        }
    }

    #[test]
    fn a_name_that_exists_is_never_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cors.toml");
        let mut calls = 0;
        let (temp, ()) = create(&path, |candidate| {
            calls += 1;
            if calls < 3 {
                return Err(io::ErrorKind::AlreadyExists.into());
            }
            fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(candidate)
                .map(drop)
        })
        .unwrap();
        assert_eq!(calls, 3);
        assert!(temp.exists());
    }
}
