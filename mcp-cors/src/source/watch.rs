//! The file watcher: reloads the policy whenever its file changes, however it was saved.
//!
//! It watches the file's *folder*, not the file's inode, so every way of saving is seen:
//! writing in place, truncate-then-write, rename-over (vim, VS Code), delete-then-recreate,
//! and Kubernetes ConfigMap updates (where `cors.toml` is a symlink through `..data`, and
//! `..data` is swapped to a new timestamped folder). Events are debounced: a reload happens
//! once the folder has been quiet for [`QUIET`], or [`MAX_WAIT`] after the first event of a
//! burst, whichever is first, so a file written continuously is still picked up.
//!
//! A file that fails to parse may be half-written. Its failure is only reported once the
//! file has stayed the same for [`CONFIRM`]; until then, and after, the last good policy
//! keeps serving. An empty file (or one with only comments) is always treated as
//! half-written: it is never applied.
//!
//! The debouncer is written here rather than taken from `notify-debouncer-full` because
//! that one restarts its timer on every event, so a file rewritten faster than the timeout
//! would never be reloaded; this one has a maximum wait.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use super::file::AdminSlot;
use crate::error::PolicyError;
use crate::policy::file;
use crate::store::{Applied, PolicyStore};

/// A reload happens once the folder has been quiet this long…
pub(crate) const QUIET: Duration = Duration::from_millis(40);
/// …or this long after the first event of a burst, whichever comes first.
pub(crate) const MAX_WAIT: Duration = Duration::from_millis(150);
/// A file that fails to parse is reported only if it stays unchanged this long.
pub(crate) const CONFIRM: Duration = Duration::from_millis(300);
/// The file is also re-read this often, in case an event was missed (event queue
/// overflow, network file systems) or the folder could not be watched.
pub(crate) const POLL: Duration = Duration::from_secs(1);

/// Notifications queued for the watcher thread, at most. When the queue is full a
/// notification is dropped and a flag set instead: the thread then rereads the file, which
/// is all any notification would have made it do.
const QUEUE: usize = 256;

enum Msg {
    Fs(notify::Result<Event>),
    Stop,
}

/// Set by the notification callback and by [`WatchHandle`], read by the watcher thread.
#[derive(Debug, Default)]
struct Flags {
    /// The thread must stop (its `Stop` message may not fit in a full queue).
    stop: AtomicBool,
    /// A notification was dropped because the queue was full.
    overflowed: AtomicBool,
}

/// Owns the watcher thread; dropping it stops the thread.
#[derive(Debug)]
pub(crate) struct WatchHandle {
    wake: SyncSender<Msg>,
    flags: Arc<Flags>,
    thread: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for Msg {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Msg::Fs(_) => "Fs",
            Msg::Stop => "Stop",
        })
    }
}

impl Drop for WatchHandle {
    fn drop(&mut self) {
        self.flags.stop.store(true, Ordering::SeqCst);
        // Never blocks: when the queue is full the thread is awake anyway and sees the flag.
        let _ = self.wake.try_send(Msg::Stop);
        if let Some(thread) = self.thread.take() {
            // The watcher thread holds the store and the admin slot, never the source
            // that owns this handle, so it is never the one dropping it.
            let _ = thread.join();
        }
    }
}

/// Starts watching `path` (absolute) for `store`; `admin` is served again whenever its
/// socket file is found gone.
pub(crate) fn spawn(
    path: PathBuf,
    store: Arc<PolicyStore>,
    admin: Arc<AdminSlot>,
) -> std::io::Result<WatchHandle> {
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let flags = Arc::new(Flags::default());
    // The folder watch is registered before this returns, so no save made after
    // `McpCors::watched` returns can be missed.
    let mut watcher = FileWatcher::new(path, store, admin, tx.clone(), Arc::clone(&flags));
    let thread = thread::Builder::new()
        .name("mcp-cors-watch".into())
        .spawn(move || watcher.run(&rx))?;
    Ok(WatchHandle {
        wake: tx,
        flags,
        thread: Some(thread),
    })
}

/// What one reload attempt found.
enum Outcome {
    /// Applied, refused for good, or nothing to do.
    Settled,
    /// The file is missing, empty or invalid, perhaps because it is being written.
    Unsettled,
}

/// A watched folder: its path, the names in it that concern the config file, and the
/// identity (device, inode) it had when its watch was registered.
struct Folder {
    path: PathBuf,
    names: Vec<OsString>,
    id: Option<(u64, u64)>,
}

struct FileWatcher {
    path: PathBuf,
    folders: Vec<Folder>,
    store: Arc<PolicyStore>,
    admin: Arc<AdminSlot>,
    events: SyncSender<Msg>,
    flags: Arc<Flags>,
    notify: Option<RecommendedWatcher>,
    /// The last refusal reported, so that a file refused for good (missing, not a regular
    /// file, too large) is reported once, not at every poll.
    reported: Option<String>,
    /// Whether a failure to watch the folder was logged, so it is logged once.
    warned_unwatched: bool,
}

impl FileWatcher {
    fn new(
        path: PathBuf,
        store: Arc<PolicyStore>,
        admin: Arc<AdminSlot>,
        events: SyncSender<Msg>,
        flags: Arc<Flags>,
    ) -> Self {
        let mut watcher = FileWatcher {
            folders: folders_to_watch(&path),
            path,
            store,
            admin,
            events,
            flags,
            notify: None,
            reported: None,
            warned_unwatched: false,
        };
        watcher.start_notify();
        watcher
    }

    /// Registers the folder watches; on failure the poll keeps the policy fresh and the
    /// registration is tried again at each poll.
    fn start_notify(&mut self) {
        self.notify = None;
        let events = self.events.clone();
        let flags = Arc::clone(&self.flags);
        let result = notify::recommended_watcher(move |event| {
            // notify's own thread must never block on us; a full queue is a flag instead.
            if let Err(TrySendError::Full(_)) = events.try_send(Msg::Fs(event)) {
                flags.overflowed.store(true, Ordering::SeqCst);
            }
        })
        .and_then(|mut watcher| {
            for folder in &mut self.folders {
                folder.id = folder_id(&folder.path);
                watcher.watch(&folder.path, RecursiveMode::NonRecursive)?;
            }
            Ok(watcher)
        });
        match result {
            Ok(watcher) => {
                self.notify = Some(watcher);
                self.warned_unwatched = false;
            }
            Err(e) if !self.warned_unwatched => {
                self.warned_unwatched = true;
                tracing::warn!(
                    file = %self.path.display(),
                    error = %e,
                    "cannot watch the policy file's folder; polling it every {}s instead",
                    POLL.as_secs()
                );
            }
            Err(_) => {}
        }
    }

    /// A folder deleted and recreated is a new inode that the old watch does not see:
    /// watch it again once it is back.
    fn rearm_if_replaced(&mut self) {
        let replaced = self.folders.iter().any(|f| folder_id(&f.path) != f.id);
        if !replaced && self.notify.is_some() {
            return;
        }
        let back = self.folders.iter().all(|f| folder_id(&f.path).is_some());
        if !back {
            return;
        }
        let was_watching = self.notify.is_some();
        self.folders = folders_to_watch(&self.path);
        self.start_notify();
        if self.notify.is_some() && replaced {
            tracing::warn!(
                file = %self.path.display(),
                "the policy file's folder was replaced; watching the new one (was watching: {was_watching})"
            );
        }
    }

    fn run(&mut self, rx: &Receiver<Msg>) {
        // (first event, last event) of the burst being debounced.
        let mut burst: Option<(Instant, Instant)> = None;
        let mut confirm_at: Option<Instant> = None;
        let mut next_poll = Instant::now() + POLL;
        loop {
            let reload_at = burst.map(|(first, last)| (last + QUIET).min(first + MAX_WAIT));
            let wake = [reload_at, confirm_at, Some(next_poll)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(next_poll);
            let concerns_us = match rx.recv_timeout(wake.saturating_duration_since(Instant::now()))
            {
                Ok(Msg::Stop) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Msg::Fs(event)) => self.concerns_us(&event),
                Err(RecvTimeoutError::Timeout) => false,
            };
            if self.flags.stop.load(Ordering::SeqCst) {
                return;
            }
            // A dropped notification may have been ours: count it as one.
            if concerns_us || self.flags.overflowed.swap(false, Ordering::SeqCst) {
                let now = Instant::now();
                burst = Some((burst.map_or(now, |(first, _)| first), now));
                confirm_at = None;
            }
            // Deadlines are checked after every wake-up, not only on time-outs: a steady
            // stream of events must not starve the maximum wait.
            let now = Instant::now();
            let reload_due =
                burst.is_some_and(|(first, last)| now >= (last + QUIET).min(first + MAX_WAIT));
            let outcome = if reload_due {
                burst = None;
                self.reload(false)
            } else if confirm_at.is_some_and(|t| now >= t) {
                confirm_at = None;
                self.reload(true)
            } else if now >= next_poll {
                next_poll = now + POLL;
                self.rearm_if_replaced();
                self.admin.restore();
                if burst.is_some() || confirm_at.is_some() {
                    continue;
                }
                self.reload(false)
            } else {
                continue;
            };
            match outcome {
                Outcome::Settled => {}
                Outcome::Unsettled if confirm_at.is_none() && burst.is_none() => {
                    confirm_at = Some(Instant::now() + CONFIRM);
                }
                Outcome::Unsettled => {}
            }
        }
    }

    /// Whether an event may have changed what the config path resolves to. Reading the
    /// file ourselves produces access events, which are ignored (else each read would
    /// trigger the next).
    fn concerns_us(&self, event: &notify::Result<Event>) -> bool {
        let event = match event {
            Ok(event) => event,
            // An error (such as a queue overflow) may hide a change: look again.
            Err(_) => return true,
        };
        if let EventKind::Access(kind) = event.kind {
            if kind != AccessKind::Close(AccessMode::Write) {
                return false;
            }
        }
        event.paths.iter().any(|p| {
            let (Some(folder), Some(name)) = (p.parent(), p.file_name()) else {
                return false;
            };
            self.folders.iter().any(|f| {
                folder == f.path
                    && (f.names.iter().any(|n| n == name)
                        // Kubernetes swaps `..data` (via `..data_tmp`) to a new folder.
                        || name.to_string_lossy().starts_with(".."))
            })
        })
    }

    /// Reads the file and applies it. With `confirm`, a failure is final and reported;
    /// without, it may be a file being written and is only noted.
    fn reload(&mut self, confirm: bool) -> Outcome {
        // Read and apply under the appliers' lock, as one step: an admin edit (which
        // replaces the file and applies it under the same lock) cannot land between our
        // read and our apply and then be undone by our stale bytes. The read cannot block
        // or run long while holding it: the reader opens without blocking and reads only a
        // regular file of bounded size.
        let mut applying = self.store.applying();
        let bytes = match file::read(&self.path) {
            Ok(bytes) => bytes,
            Err(error) => {
                drop(applying);
                return self.unreadable(confirm, error);
            }
        };
        if applying.is_current_source(&bytes) {
            self.reported = None;
            return Outcome::Settled;
        }
        let applied = applying.apply_source(&bytes);
        drop(applying);
        match applied {
            Ok(Applied::Swapped(diff)) => {
                self.reported = None;
                tracing::info!(file = %self.path.display(), change = %diff, "policy reloaded");
                Outcome::Settled
            }
            Ok(Applied::Unchanged) => {
                self.reported = None;
                tracing::debug!(file = %self.path.display(), "policy file rewritten without a change");
                Outcome::Settled
            }
            Err(_) if !confirm => Outcome::Unsettled,
            Err(error) => {
                tracing::warn!(
                    file = %self.path.display(),
                    error = %error,
                    "{}", self.keeps_serving("policy file refused")
                );
                self.store.record_rejection(Some(&bytes), &error);
                Outcome::Settled
            }
        }
    }

    /// A file that cannot be read, or is not one to read (not a regular file, too large):
    /// reported once. A missing file may be mid-save (delete, then recreate), so it is
    /// reported only when confirmed; what is there but refused is reported at once.
    fn unreadable(&mut self, confirm: bool, error: PolicyError) -> Outcome {
        let refused_by_kind = !matches!(error, PolicyError::Read { .. });
        if !confirm && !refused_by_kind {
            return if self.reported.is_some() {
                Outcome::Settled
            } else {
                Outcome::Unsettled
            };
        }
        let message = error.to_string();
        if self.reported.as_deref() != Some(message.as_str()) {
            tracing::warn!(
                file = %self.path.display(),
                error = %message,
                "{}", self.keeps_serving("cannot read the policy file")
            );
            self.store.record_rejection(None, &error);
            self.reported = Some(message);
        }
        Outcome::Settled
    }

    /// What a refusal leaves serving, in words: never claims a good policy when none
    /// has loaded yet.
    fn keeps_serving(&self, what: &str) -> String {
        if self.store.status().loaded {
            format!("{what}; the last good policy keeps serving")
        } else {
            format!("{what}; no policy loaded yet, every cross-origin request is refused")
        }
    }
}

fn folder_id(path: &Path) -> Option<(u64, u64)> {
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

/// The config file's folder, plus, when the file is a symlink into another folder that
/// is not below it (not the ConfigMap layout), that folder too.
fn folders_to_watch(path: &Path) -> Vec<Folder> {
    let folder = |path: PathBuf, name: OsString| Folder {
        id: folder_id(&path),
        path,
        names: vec![name],
    };
    let parent = path
        .parent()
        .map_or_else(|| PathBuf::from("/"), Path::to_path_buf);
    let name = path.file_name().map(OsString::from).unwrap_or_default();
    let mut folders = vec![folder(parent.clone(), name)];
    if let Ok(target) = std::fs::canonicalize(path) {
        let canonical_parent = std::fs::canonicalize(&parent).unwrap_or(parent);
        if let (Some(dir), Some(name)) = (target.parent(), target.file_name()) {
            if !dir.starts_with(&canonical_parent) {
                folders.push(folder(dir.to_path_buf(), name.to_os_string()));
            }
        }
    }
    folders
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Barrier};

    const OLD: &str = "allowed_origins = [\"https://a.example\"]\n";
    const NEW: &str = "allowed_origins = [\"https://a.example\", \"https://b.example\"]\n";

    /// An admin edit replaces the file and applies it under the appliers' lock; a reload
    /// that starts meanwhile must read the file only once the edit is done. (Reading first
    /// and applying after the edit put the old policy back.)
    #[test]
    fn a_reload_cannot_undo_an_edit_applied_while_it_ran() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cors.toml");
        std::fs::write(&path, OLD).unwrap();
        let store = Arc::new(PolicyStore::for_file(&path, file::load(&path)));
        let (tx, _rx) = mpsc::sync_channel(QUEUE);
        let admin = Arc::new(AdminSlot::new(&path, &store));
        let mut watcher = FileWatcher::new(
            path.clone(),
            Arc::clone(&store),
            admin,
            tx,
            Arc::new(Flags::default()),
        );
        let locked = Arc::new(Barrier::new(2));
        let admin = thread::spawn({
            let (store, path, locked) = (Arc::clone(&store), path.clone(), Arc::clone(&locked));
            move || {
                let mut applying = store.applying();
                locked.wait();
                // Give the reload time to start (and, if it did not wait, read OLD).
                thread::sleep(Duration::from_millis(100));
                let temp = path.with_extension("tmp");
                std::fs::write(&temp, NEW).unwrap();
                std::fs::rename(&temp, &path).unwrap();
                applying.apply_source(NEW.as_bytes()).unwrap();
            }
        });
        locked.wait();
        assert!(matches!(watcher.reload(false), Outcome::Settled));
        admin.join().unwrap();
        let origins = store.load_full().settings().allowed_origins.clone();
        assert_eq!(origins, ["https://a.example", "https://b.example"]);
        assert_eq!(store.status().reloads, 1, "the edit, and nothing after it");
    }
}
