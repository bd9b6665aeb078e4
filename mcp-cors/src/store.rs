//! The policy store every worker's middleware reads from, and the one place a new policy
//! is applied (by the file watcher, or by the admin socket).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use arc_swap::{ArcSwap, Guard};

use crate::admin::AdminHandle;
use crate::error::{Diagnostic, PolicyError};
use crate::events::EventBus;
use crate::policy::{Policy, PolicyDiff};
use crate::protocol::{Event, unix_millis};
use crate::watch::WatchHandle;

/// A policy file that was refused; the policy before it kept serving.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReloadError {
    /// When it was refused.
    pub at: SystemTime,
    /// The whole error, as logged.
    pub message: String,
    /// Each problem, with file, line and column where known.
    pub diagnostics: Vec<Diagnostic>,
}

impl ReloadError {
    pub(crate) fn new(error: &PolicyError) -> Self {
        ReloadError {
            at: SystemTime::now(),
            message: error.to_string(),
            diagnostics: error.diagnostics().to_vec(),
        }
    }
}

/// Where the serving policy came from and how its reloads went.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReloadStatus {
    /// The policy file, for a watched policy.
    pub source: Option<PathBuf>,
    /// `false` while failing closed: no good policy has been read from the file yet, so
    /// every cross-origin request is refused.
    pub loaded: bool,
    /// How many times a new policy replaced the serving one.
    pub reloads: u64,
    /// When the serving policy was put in place.
    pub last_reload: Option<SystemTime>,
    /// The last refused file, kept until a good one is applied.
    pub last_error: Option<ReloadError>,
}

/// What applying a file's content did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Applied {
    /// The new policy now serves.
    Swapped(PolicyDiff),
    /// Same bytes, or a change that leaves the policy equal (comments, formatting).
    Unchanged,
}

#[derive(Debug, Default)]
struct ReloadState {
    /// The bytes of the file that was last applied (or found equal), to skip rereads.
    last_bytes: Option<Vec<u8>>,
    status: ReloadStatus,
}

/// The live policy, shared by every clone of one [`McpCors`](crate::McpCors) and by every
/// middleware service built from them. Reads are lock-free (`ArcSwap`); a swap replaces
/// the whole policy at once, so a request that loaded one policy keeps it to its end.
#[derive(Debug)]
pub(crate) struct PolicyStore {
    current: ArcSwap<Policy>,
    /// Serialises appliers (watcher, admin) and holds what they compare against.
    state: Mutex<ReloadState>,
    /// Decisions and policy changes, for listeners; counters.
    events: Arc<EventBus>,
    /// The file watcher; stopped when the store is dropped.
    watcher: Mutex<Option<WatchHandle>>,
    /// The admin socket; closed and removed when the store is dropped.
    admin: Mutex<Option<AdminHandle>>,
}

impl PolicyStore {
    /// A store serving a fixed policy.
    pub(crate) fn new(policy: Policy) -> Self {
        let status = ReloadStatus {
            loaded: true,
            last_reload: Some(SystemTime::now()),
            ..ReloadStatus::default()
        };
        PolicyStore::with_state(
            policy,
            ReloadState {
                last_bytes: None,
                status,
            },
        )
    }

    /// A store for a policy file: `loaded` is the policy and the bytes it came from, or
    /// the error that makes the store fail closed.
    pub(crate) fn for_file(path: &Path, loaded: Result<(Policy, Vec<u8>), PolicyError>) -> Self {
        let mut status = ReloadStatus {
            source: Some(path.to_path_buf()),
            ..ReloadStatus::default()
        };
        let (policy, last_bytes) = match loaded {
            Ok((policy, bytes)) => {
                status.loaded = true;
                status.last_reload = Some(SystemTime::now());
                (policy, Some(bytes))
            }
            Err(error) => {
                status.last_error = Some(ReloadError::new(&error));
                let policy = Policy::unloaded(&error);
                say_without_subscriber(&policy);
                (policy, None)
            }
        };
        PolicyStore::with_state(policy, ReloadState { last_bytes, status })
    }

    fn with_state(policy: Policy, state: ReloadState) -> Self {
        let events = EventBus::new();
        policy.bind_counters(&events);
        PolicyStore {
            current: ArcSwap::from_pointee(policy),
            state: Mutex::new(state),
            events,
            watcher: Mutex::new(None),
            admin: Mutex::new(None),
        }
    }

    /// The current policy, for the duration of one decision.
    pub(crate) fn load(&self) -> Guard<Arc<Policy>> {
        self.current.load()
    }

    /// The swappable current policy itself, for per-worker caches of it.
    pub(crate) fn current(&self) -> &ArcSwap<Policy> {
        &self.current
    }

    /// The current policy, to keep.
    pub(crate) fn load_full(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    pub(crate) fn events(&self) -> &Arc<EventBus> {
        &self.events
    }

    pub(crate) fn status(&self) -> ReloadStatus {
        self.lock_state().status.clone()
    }

    /// Replaces the policy outright (a policy built in code).
    pub(crate) fn replace(&self, policy: Policy) -> PolicyDiff {
        let mut state = self.lock_state();
        self.swap_locked(&mut state, policy)
    }

    /// Applies a policy file's content: parses it, and swaps it in when it differs from
    /// what serves. A refused file changes nothing; the caller decides whether the refusal
    /// is final ([`PolicyStore::record_rejection`]) or the file is still being written.
    pub(crate) fn apply_source(&self, bytes: &[u8]) -> Result<Applied, PolicyError> {
        self.applying().apply_source(bytes)
    }

    /// Takes the appliers' lock. Whoever reads the file (or writes it) and applies what it
    /// read must do both while holding this: otherwise the watcher could read the file
    /// just before an admin edit replaces it, apply those old bytes just after the edit
    /// was applied, and make the policy flap back to before the edit.
    pub(crate) fn applying(&self) -> Applying<'_> {
        Applying {
            store: self,
            state: self.lock_state(),
        }
    }

    /// Records a refusal as final: the file (`bytes`, or unreadable when `None`) is
    /// refused and the serving policy stays. The same bytes are not tried again.
    pub(crate) fn record_rejection(&self, bytes: Option<&[u8]>, error: &PolicyError) {
        let rejection = ReloadError::new(error);
        let mut state = self.lock_state();
        state.last_bytes = bytes.map(<[u8]>::to_vec);
        state.status.last_error = Some(rejection.clone());
        drop(state);
        self.events.publish(Event::ReloadRejected {
            at_ms: unix_millis(rejection.at),
            error: rejection,
        });
    }

    fn swap_locked(&self, state: &mut ReloadState, policy: Policy) -> PolicyDiff {
        policy.bind_counters(&self.events);
        let old = self.current.swap(Arc::new(policy));
        let diff = PolicyDiff::between(old.settings(), self.current.load().settings());
        state.status.loaded = true;
        state.status.reloads += 1;
        let now = SystemTime::now();
        state.status.last_reload = Some(now);
        self.events.publish(Event::Reloaded {
            at_ms: unix_millis(now),
            diff: diff.clone(),
        });
        diff
    }

    pub(crate) fn set_watcher(&self, handle: WatchHandle) {
        *self.watcher.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
    }

    pub(crate) fn set_admin(&self, handle: AdminHandle) {
        *self.admin.lock().unwrap_or_else(|e| e.into_inner()) = Some(handle);
    }

    pub(crate) fn admin_path(&self) -> Option<PathBuf> {
        let admin = self.admin.lock().unwrap_or_else(|e| e.into_inner());
        admin.as_ref().map(|a| a.path().to_path_buf())
    }

    fn lock_state(&self) -> MutexGuard<'_, ReloadState> {
        // A panic while holding the lock cannot leave the state half-written in a way that
        // matters (every field is replaced whole), so recover rather than propagate.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A store failing closed from the start is said on stderr when no `tracing` subscriber
/// is installed, which would otherwise drop the error: a server that refuses every browser
/// in silence is the worst way to find a typo. Once per store, so once per file.
fn say_without_subscriber(policy: &Policy) {
    if tracing::dispatcher::has_been_set() {
        return;
    }
    if let Some(why) = policy.unloaded_reason() {
        eprintln!(
            "mcp-cors: no policy loaded: {why}; every cross-origin request is refused until \
             the file is fixed"
        );
    }
}

/// The appliers' lock, held: the file can be read (or replaced) and applied as one step.
pub(crate) struct Applying<'a> {
    store: &'a PolicyStore,
    state: MutexGuard<'a, ReloadState>,
}

impl Applying<'_> {
    /// Whether these bytes are the ones last applied or refused (nothing to do).
    pub(crate) fn is_current_source(&self, bytes: &[u8]) -> bool {
        self.state.last_bytes.as_deref() == Some(bytes)
    }

    /// [`PolicyStore::apply_source`], under the lock already held.
    pub(crate) fn apply_source(&mut self, bytes: &[u8]) -> Result<Applied, PolicyError> {
        let state = &mut *self.state;
        let settled = state.status.loaded && state.status.last_error.is_none();
        if settled && state.last_bytes.as_deref() == Some(bytes) {
            return Ok(Applied::Unchanged);
        }
        let path = state.status.source.clone().unwrap_or_default();
        let policy = parse_source(bytes, &path)?;
        state.last_bytes = Some(bytes.to_vec());
        state.status.last_error = None;
        if state.status.loaded && **self.store.current.load() == policy {
            return Ok(Applied::Unchanged);
        }
        Ok(Applied::Swapped(self.store.swap_locked(state, policy)))
    }
}

/// Parses a policy file's bytes. An empty file, or one with only comments, is refused: it
/// is almost always a file caught between truncation and writing (an editor writes the
/// header comments first), and serving it would silently refuse every origin.
/// (`allowed_origins = []` says "no origin" on purpose.)
pub(crate) fn parse_source(bytes: &[u8], path: &Path) -> Result<Policy, PolicyError> {
    let invalid = |message: String| PolicyError::Invalid {
        diagnostics: vec![Diagnostic::message(message)],
    };
    let empty = || {
        invalid(
            "the file is empty (no settings, at most comments); write `allowed_origins = []` to \
             allow no origin"
                .into(),
        )
        .in_file(path)
    };
    let text = std::str::from_utf8(bytes)
        .map_err(|e| invalid(format!("the file is not UTF-8 text: {e}")).in_file(path))?;
    let comment_only = text.lines().all(|line| {
        let line = line.trim();
        line.is_empty() || line.starts_with('#')
    });
    if comment_only {
        return Err(empty());
    }
    Policy::from_toml_str(text).map_err(|e| e.in_file(path))
}
