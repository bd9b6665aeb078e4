//! The policy store every worker's middleware reads from, and the one place a new policy
//! is applied (by a source's watcher, or by an admin edit). It is only the live policy and
//! the appliers' lock: what keeps it current lives in [`source`](crate::source).

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::SystemTime;

use arc_swap::{ArcSwap, Guard};

use crate::audit::AuditTrail;
use crate::error::PolicyError;
use crate::events::EventBus;
use crate::policy::file::{self, Loaded};
use crate::policy::{Policy, PolicyDiff, audit_log_path};
use crate::protocol::{AuditAction, AuditRecord, AuditSource, Event, unix_millis};
use crate::status::{ReloadError, ReloadStatus};

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
    /// The record of every change, and its writer.
    audit: AuditTrail,
    /// The path `[admin] audit_log` is relative to (the config file, or a remote source's
    /// stand-in for one), and what a reload's record names as its source; `None` for a
    /// policy built in code, whose changes are not audited.
    audited: Option<(PathBuf, AuditSource)>,
}

/// Why a policy is applied: from its source (audited as a `reload` when it changed), or
/// not to be audited as a reload (an admin edit of this server, audited by the edit itself
/// with who made it; a remote source's first read at start-up, which changes nothing).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cause {
    Source,
    Unaudited,
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
            None,
        )
    }

    /// A store for a policy file: `loaded` is the policy and the bytes it came from, or
    /// the error that makes the store fail closed.
    pub(crate) fn for_file(path: &Path, loaded: Result<Loaded, PolicyError>) -> Self {
        let mut status = ReloadStatus {
            source: Some(path.to_path_buf()),
            ..ReloadStatus::default()
        };
        let (policy, last_bytes) = match loaded {
            Ok(Loaded { policy, bytes }) => {
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
        let audited = Some((path.to_path_buf(), AuditSource::File));
        PolicyStore::with_state(policy, ReloadState { last_bytes, status }, audited)
    }

    /// A store for a remote source named `name` (`etcd://HOST:PORT/KEY`), failing closed
    /// until its follower applies a first value (or the cache). The name stands where a
    /// file's path would, in `status` and in every diagnostic; `stand_in` is the file path
    /// it stands at for `[admin]` paths (see `remote_config_stand_in`).
    pub(crate) fn for_source(name: &str, stand_in: PathBuf) -> Self {
        let status = ReloadStatus {
            source: Some(name.into()),
            ..ReloadStatus::default()
        };
        let policy = Policy::unloaded_because(format!("{name}: no policy read yet"));
        PolicyStore::with_state(
            policy,
            ReloadState {
                last_bytes: None,
                status,
            },
            Some((stand_in, AuditSource::Remote)),
        )
    }

    /// While no policy has ever loaded, says why in the deny-all policy's refusals (a
    /// remote source that cannot be reached names its endpoint there).
    pub(crate) fn still_unloaded(&self, reason: String) {
        let state = self.lock_state();
        if !state.status.loaded {
            self.current
                .store(Arc::new(Policy::unloaded_because(reason)));
        }
    }

    /// Records whether the policy serves from a remote source's cache file.
    pub(crate) fn set_cached(&self, cache: Option<std::path::PathBuf>) {
        self.lock_state().status.cached = cache;
    }

    fn with_state(
        policy: Policy,
        state: ReloadState,
        audited: Option<(PathBuf, AuditSource)>,
    ) -> Self {
        let events = EventBus::new();
        policy.bind_counters(events.counters());
        PolicyStore {
            current: ArcSwap::from_pointee(policy),
            state: Mutex::new(state),
            events,
            audit: AuditTrail::default(),
            audited,
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
        // Not audited: a store of a policy built in code has no trail (`audited` is None).
        self.swap_locked(&mut state, policy, Cause::Source)
    }

    /// Applies a policy file's content: parses it, and swaps it in when it differs from
    /// what serves. A refused file changes nothing; the caller decides whether the refusal
    /// is final ([`PolicyStore::record_rejection`]) or the file is still being written.
    /// A change is audited as a `reload`.
    pub(crate) fn apply_source(&self, bytes: &[u8]) -> Result<Applied, PolicyError> {
        self.applying().apply_source(bytes)
    }

    /// [`PolicyStore::apply_source`] without a `reload` record: for content an admin edit
    /// of this server wrote (the edit audits itself), or a remote source's first read.
    pub(crate) fn apply_unaudited(&self, bytes: &[u8]) -> Result<Applied, PolicyError> {
        self.applying().apply_unaudited(bytes)
    }

    /// Where the serving policy's audit records go (`[admin] audit_log`), if anywhere.
    pub(crate) fn audit_log(&self) -> Option<PathBuf> {
        let (base, _) = self.audited.as_ref()?;
        audit_log_path(base, &self.current.load().settings().admin)
    }

    /// Records an admin edit in the audit trail.
    pub(crate) fn audit_edit(&self, record: AuditRecord) {
        self.audit.record(record, self.audit_log(), &self.events);
    }

    /// The most recent audit records, oldest first.
    pub(crate) fn audit_trail(&self, limit: Option<usize>) -> Vec<AuditRecord> {
        self.audit.recent(limit)
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
        #[cfg(feature = "metrics")]
        crate::metrics::reload_rejected(unix_millis(SystemTime::now()) as f64 / 1000.0);
        self.events.publish(Event::ReloadRejected(rejection));
    }

    fn swap_locked(&self, state: &mut ReloadState, policy: Policy, cause: Cause) -> PolicyDiff {
        // A reload that drops `audit_log` is still written to the log it drops.
        let old_log = self.audit_log();
        policy.bind_counters(self.events.counters());
        let old = self.current.swap(Arc::new(policy));
        let diff = PolicyDiff::between(old.settings(), self.current.load().settings());
        state.status.loaded = true;
        state.status.reloads += 1;
        let now = SystemTime::now();
        state.status.last_reload = Some(now);
        #[cfg(feature = "metrics")]
        crate::metrics::reloaded(&self.current.load(), unix_millis(now) as f64 / 1000.0);
        self.events.publish(Event::Reloaded {
            at_ms: unix_millis(now),
            diff: diff.clone(),
        });
        if cause == Cause::Source && !diff.is_empty() {
            self.audit_reload(unix_millis(now), &diff, old_log);
        }
        diff
    }

    /// The `reload` record of a change that came from the source.
    fn audit_reload(&self, at_ms: u64, diff: &PolicyDiff, old_log: Option<PathBuf>) {
        let Some((_, source)) = &self.audited else {
            return;
        };
        let record = AuditRecord {
            diff: Some(diff.clone()),
            source: Some(*source),
            ..AuditRecord::new(at_ms, AuditAction::Reload)
        };
        self.audit
            .record(record, self.audit_log().or(old_log), &self.events);
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

    /// The policy serving requests.
    pub(crate) fn serving(&self) -> Arc<Policy> {
        self.store.load_full()
    }

    /// [`PolicyStore::apply_source`], under the lock already held.
    pub(crate) fn apply_source(&mut self, bytes: &[u8]) -> Result<Applied, PolicyError> {
        self.apply(bytes, Cause::Source)
    }

    /// [`PolicyStore::apply_unaudited`], under the lock already held.
    pub(crate) fn apply_unaudited(&mut self, bytes: &[u8]) -> Result<Applied, PolicyError> {
        self.apply(bytes, Cause::Unaudited)
    }

    fn apply(&mut self, bytes: &[u8], cause: Cause) -> Result<Applied, PolicyError> {
        let state = &mut *self.state;
        let settled = state.status.loaded && state.status.last_error.is_none();
        if settled && state.last_bytes.as_deref() == Some(bytes) {
            return Ok(Applied::Unchanged);
        }
        let path = state.status.source.clone().unwrap_or_default();
        let policy = file::parse(bytes, &path)?;
        state.last_bytes = Some(bytes.to_vec());
        state.status.last_error = None;
        if state.status.loaded && **self.store.current.load() == policy {
            return Ok(Applied::Unchanged);
        }
        Ok(Applied::Swapped(
            self.store.swap_locked(state, policy, cause),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::AuditAction;

    const FIRST: &str =
        "allowed_origins = [\"https://a.example\"]\n[admin]\naudit_log = \"audit.jsonl\"\n";

    fn store_in(dir: &Path) -> PolicyStore {
        let path = dir.join("cors.toml");
        std::fs::write(&path, FIRST).unwrap();
        PolicyStore::for_file(&path, file::load(&path))
    }

    fn actions(store: &PolicyStore) -> Vec<AuditAction> {
        store.audit_trail(None).iter().map(|r| r.action).collect()
    }

    #[test]
    fn a_change_from_the_source_is_audited_once_with_its_diff_and_nothing_else_is() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        assert_eq!(store.audit_log(), Some(dir.path().join("audit.jsonl")));
        // Comments only: the same policy, no record.
        let commented = format!("# reviewed\n{FIRST}");
        assert!(matches!(
            store.apply_source(commented.as_bytes()),
            Ok(Applied::Unchanged)
        ));
        // Refused: no record.
        assert!(store.apply_source(b"allowed_origins = [\"nope\"]").is_err());
        assert!(actions(&store).is_empty());
        let second = FIRST.replace("a.example", "b.example");
        assert!(matches!(
            store.apply_source(second.as_bytes()),
            Ok(Applied::Swapped(_))
        ));
        let trail = store.audit_trail(None);
        assert_eq!(actions(&store), [AuditAction::Reload]);
        let diff = trail[0].diff.as_ref().unwrap();
        assert_eq!(diff.origins_added, ["https://b.example"]);
        assert_eq!(diff.origins_removed, ["https://a.example"]);
        assert_eq!(trail[0].source, Some(AuditSource::File));
        assert_eq!((trail[0].uid, trail[0].pid), (None, None));
        // An admin edit's own content is audited by the edit, not as a reload.
        assert!(matches!(
            store.apply_unaudited(FIRST.as_bytes()),
            Ok(Applied::Swapped(_))
        ));
        assert_eq!(actions(&store), [AuditAction::Reload]);
        drop(store); // the writer writes what is queued
        let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1, "{text}");
        assert_eq!(lines[0]["action"], "reload");
        assert_eq!(lines[0]["source"], "file");
        assert_eq!(lines[0]["diff"]["origins_added"][0], "https://b.example");
    }

    #[test]
    fn a_reload_that_drops_the_audit_log_is_still_written_to_it() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_in(dir.path());
        let without = "allowed_origins = [\"https://a.example\"]\n";
        assert!(matches!(
            store.apply_source(without.as_bytes()),
            Ok(Applied::Swapped(_))
        ));
        assert_eq!(store.audit_log(), None);
        drop(store);
        let text = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
        assert!(text.contains("\"keys_changed\":[\"admin\"]"), "{text}");
    }
}
