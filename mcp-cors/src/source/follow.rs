//! Following a [`PolicyBackend`] into the store: a thread of its own with a
//! single-threaded tokio runtime (like the admin socket), so the request path, which only
//! reads the store's `ArcSwap`, never waits on the network.
//!
//! It reads the value and its revision, applies it, then watches from the revision after.
//! Every valid value is applied whole (the store swaps one policy for another); an invalid
//! one is refused and published, and the last good policy keeps serving. When the
//! connection is lost it watches again, with backoff, from the revision after the last one
//! seen, so nothing is missed; when that revision was compacted, it reads the value again.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc as std_mpsc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{oneshot, watch};

use super::backend::{BackendError, Change, PolicyBackend};
use super::cache;
use super::own::OwnWrites;
use crate::error::{Diagnostic, PolicyError};
use crate::store::PolicyStore;

/// The first wait after a failure; doubled each time, up to [`BACKOFF_MAX`].
const BACKOFF_MIN: Duration = Duration::from_millis(100);
/// The longest wait between two attempts: a source that comes back is followed again
/// within about this long.
const BACKOFF_MAX: Duration = Duration::from_secs(1);

/// How the first read went, told to whoever started the follower.
#[derive(Debug)]
pub(crate) enum FirstRead {
    /// The value was read and applied.
    Applied,
    /// The value was read and refused; the store fails closed (nothing good yet).
    Invalid(PolicyError),
    /// The source could not be read; the cache serves (`Some(path)`) or nothing does.
    Unreachable(BackendError, Option<PathBuf>),
}

/// Owns the follower thread; dropping it stops and joins the thread.
#[derive(Debug)]
pub(crate) struct Follower {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    seen: watch::Receiver<u64>,
}

impl Follower {
    /// Starts following `backend` into `store`; the first read's outcome is sent on
    /// `first`. Valid values are also written to `cache`. Values in `own` were written by
    /// this replica's admin edits, which audit themselves.
    pub(crate) fn spawn(
        backend: Arc<dyn PolicyBackend>,
        store: Arc<PolicyStore>,
        cache: Option<PathBuf>,
        own: OwnWrites,
        first: std_mpsc::Sender<FirstRead>,
    ) -> std::io::Result<Follower> {
        let (stop, stopped) = oneshot::channel();
        let (seen_tx, seen) = watch::channel(0);
        let mut run = Run {
            name: backend.name(),
            backend,
            store,
            cache,
            own,
            seen: seen_tx,
            first: Some(first),
            reported: None,
        };
        let thread = thread::Builder::new()
            .name("mcp-cors-source".into())
            .spawn(move || {
                let runtime = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(error) => {
                        tracing::error!(%error, "cannot start the source's runtime; the policy is not followed");
                        return;
                    }
                };
                runtime.block_on(async move {
                    tokio::select! {
                        () = run.follow() => {}
                        _ = stopped => {}
                    }
                });
            })?;
        Ok(Follower {
            stop: Some(stop),
            thread: Some(thread),
            seen,
        })
    }

    /// The last revision the store has taken in (applied or refused).
    pub(crate) fn seen(&self) -> watch::Receiver<u64> {
        self.seen.clone()
    }
}

impl Drop for Follower {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            // The thread holds the store, never the source that owns this follower.
            let _ = thread.join();
        }
    }
}

struct Run {
    name: String,
    backend: Arc<dyn PolicyBackend>,
    store: Arc<PolicyStore>,
    cache: Option<PathBuf>,
    own: OwnWrites,
    seen: watch::Sender<u64>,
    first: Option<std_mpsc::Sender<FirstRead>>,
    /// The last connection failure logged, so that an outage is logged once, not at
    /// every retry.
    reported: Option<String>,
}

impl Run {
    async fn follow(&mut self) {
        let mut backoff = BACKOFF_MIN;
        // The revision to watch from; `None`: read the value first.
        let mut next: Option<u64> = None;
        loop {
            let from = match next {
                Some(from) => from,
                None => match self.read().await {
                    Ok(revision) => revision + 1,
                    Err(error) => {
                        self.unreachable(&error);
                        backoff = wait(backoff).await;
                        continue;
                    }
                },
            };
            next = Some(from);
            let mut changes = match self.backend.watch(from).await {
                Ok(changes) => changes,
                Err(error) => {
                    self.unreachable(&error);
                    backoff = wait(backoff).await;
                    continue;
                }
            };
            self.reachable();
            backoff = BACKOFF_MIN;
            while let Some(change) = changes.next().await {
                match change {
                    Ok(Change::Put { value, revision }) => {
                        self.apply(&value, revision);
                        next = Some(revision + 1);
                    }
                    Ok(Change::Deleted { revision }) => {
                        self.deleted(revision);
                        next = Some(revision + 1);
                    }
                    Ok(Change::Compacted) => {
                        tracing::warn!(source = %self.name, from, "the revision to watch from was compacted; reading the value again");
                        next = None;
                        break;
                    }
                    Err(error) => {
                        self.unreachable(&error);
                        break;
                    }
                }
            }
            backoff = wait(backoff).await;
        }
    }

    /// Reads the value and applies it; its revision, to watch from the one after.
    async fn read(&mut self) -> Result<u64, BackendError> {
        let snapshot = self.backend.read().await?;
        self.reachable();
        match snapshot.value {
            Some(value) => self.apply(&value, snapshot.revision),
            None => self.deleted(snapshot.revision),
        }
        Ok(snapshot.revision)
    }

    fn apply(&mut self, value: &[u8], revision: u64) {
        // A put from elsewhere is audited as a reload; this replica's own edit is not (it
        // has its record), nor the read at start-up (the first policy, not a change).
        let own = self.own.take(value);
        let outcome = if own || self.first.is_some() {
            self.store.apply_unaudited(value)
        } else {
            self.store.apply_source(value)
        };
        match outcome {
            Ok(applied) => {
                self.store.set_cached(None);
                tracing::info!(source = %self.name, revision, changed = matches!(applied, crate::store::Applied::Swapped(_)), "policy read from the source");
                if let Some(cache) = &self.cache {
                    if let Err(error) = cache::write(cache, value) {
                        tracing::warn!(cache = %cache.display(), %error, "cannot write the policy cache; the policy still serves");
                    }
                }
                self.tell(|| FirstRead::Applied);
            }
            Err(error) => {
                tracing::warn!(source = %self.name, revision, %error, "policy refused; the last good policy keeps serving");
                // While nothing good has loaded, refusals say why (no effect after).
                self.store.still_unloaded(first_reason(&error));
                self.store.record_rejection(Some(value), &error);
                self.tell(|| FirstRead::Invalid(error));
            }
        }
        self.seen.send_replace(revision);
    }

    fn deleted(&mut self, revision: u64) {
        let error = PolicyError::Invalid {
            diagnostics: vec![Diagnostic::message(format!(
                "{}: the key has no value (deleted, or never written); the last good policy \
                 keeps serving: put the policy's TOML text there",
                self.name
            ))],
        };
        tracing::error!(source = %self.name, revision, %error, "policy key has no value");
        self.store.record_rejection(None, &error);
        self.seen.send_replace(revision);
        self.tell(|| FirstRead::Invalid(error));
    }

    /// Logs an outage once; on the first read, serves the cache and says so.
    fn unreachable(&mut self, error: &BackendError) {
        let text = error.chain();
        if self.reported.as_deref() != Some(text.as_str()) {
            tracing::warn!(source = %self.name, error = %text, "the policy source cannot be reached; the policy in memory keeps serving; retrying");
            self.reported = Some(text);
        }
        if self.first.is_some() {
            let cached = self.serve_cache(error);
            if cached.is_none() {
                let why = format!("{} cannot be reached: {}", self.name, error.chain());
                self.store.still_unloaded(why.clone());
                let why = PolicyError::Invalid {
                    diagnostics: vec![Diagnostic::message(why)],
                };
                self.store.record_rejection(None, &why);
            }
            let error = BackendError::message(error.chain());
            self.tell(move || FirstRead::Unreachable(error, cached));
        }
    }

    fn reachable(&mut self) {
        if self.reported.take().is_some() {
            tracing::info!(source = %self.name, "the policy source answers again");
        }
    }

    /// Serves the cache file, when there is one and it is valid; its path then.
    fn serve_cache(&mut self, error: &BackendError) -> Option<PathBuf> {
        let path = self.cache.clone()?;
        let loaded = match crate::policy::file::load(&path) {
            Ok(loaded) => loaded,
            Err(cache_error) => {
                tracing::error!(cache = %path.display(), error = %cache_error, "the policy cache cannot be served either");
                return None;
            }
        };
        // Only at start-up: the first policy served, not a change to audit.
        let _ = self.store.apply_unaudited(&loaded.bytes);
        self.store.set_cached(Some(path.clone()));
        let why = PolicyError::Invalid {
            diagnostics: vec![Diagnostic::message(format!(
                "{} cannot be reached ({}); serving the cached policy from {} until it answers",
                self.name,
                error.chain(),
                path.display()
            ))],
        };
        tracing::warn!(source = %self.name, cache = %path.display(), "serving the cached policy until the source answers");
        // Published like a refused reload, so `status`, events and the TUI show it.
        self.store.record_rejection(None, &why);
        Some(path)
    }

    fn tell(&mut self, outcome: impl FnOnce() -> FirstRead) {
        if let Some(first) = self.first.take() {
            let _ = first.send(outcome());
        }
    }
}

/// The first problem of a refused value, as a refusal while failing closed says it.
fn first_reason(error: &PolicyError) -> String {
    match error.diagnostics().first() {
        Some(first) => first.to_string(),
        None => error.to_string(),
    }
}

/// Sleeps `backoff`; the next one.
async fn wait(backoff: Duration) -> Duration {
    tokio::time::sleep(backoff).await;
    (backoff * 2).min(BACKOFF_MAX)
}
