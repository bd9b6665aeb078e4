//! Who is on the other end of an admin connection: the peer credentials the kernel gives
//! for a Unix socket (`SO_PEERCRED`), read once when the connection is accepted — the pid
//! may be reused by another process later — and the executable it ran then.

use std::path::PathBuf;

use tokio::net::UnixStream;

/// An admin connection's peer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Peer {
    /// Its user id; `None` when the kernel would not say (the connection is refused).
    pub(crate) uid: Option<u32>,
    /// Its process id, where the platform gives one.
    pub(crate) pid: Option<u32>,
    /// Its executable (`/proc/PID/exe`), when it can be read: not for a process of
    /// another user (root), nor on a platform without `/proc`.
    pub(crate) exe: Option<String>,
}

impl Peer {
    /// The credentials of `stream`'s peer, read now.
    pub(crate) fn of(stream: &UnixStream) -> Peer {
        let Ok(cred) = stream.peer_cred() else {
            return Peer::default();
        };
        let pid = cred.pid().and_then(|p| u32::try_from(p).ok());
        Peer {
            uid: Some(cred.uid()),
            pid,
            exe: pid.and_then(executable),
        }
    }
}

/// The executable of process `pid`, best-effort.
fn executable(pid: u32) -> Option<String> {
    let exe: PathBuf = std::fs::read_link(format!("/proc/{pid}/exe")).ok()?;
    Some(exe.to_string_lossy().into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_peer_in_this_process_is_this_process_and_its_executable() {
        let (a, _b) = UnixStream::pair().unwrap();
        let peer = Peer::of(&a);
        // SAFETY: geteuid has no preconditions.
        assert_eq!(peer.uid, Some(unsafe { libc::geteuid() }));
        assert_eq!(peer.pid, Some(std::process::id()));
        let me = std::env::current_exe().unwrap();
        assert_eq!(peer.exe.as_deref(), me.to_str());
    }

    #[test]
    fn a_process_that_is_gone_has_no_executable() {
        assert_eq!(executable(u32::MAX), None);
    }
}
