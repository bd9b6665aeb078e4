//! [`PolicyBackend`]: the small interface a remote store of policy text implements (etcd
//! does; a team can plug in its own, such as a database). The server follows it on a
//! thread of its own; admin edits and `mcp-cors-tui --source` edit it by compare-and-swap.

use std::fmt;
use std::future::Future;
use std::pin::Pin;

use futures_util::Stream;

/// A boxed future, as the [`PolicyBackend`] methods return.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;
/// A boxed stream of changes, as [`PolicyBackend::watch`] yields.
pub type ChangeStream = Pin<Box<dyn Stream<Item = Result<Change, BackendError>> + Send>>;

/// The value at one moment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    /// The policy's TOML text; `None` when there is no value at all.
    pub value: Option<Vec<u8>>,
    /// The revision the value was last written at (0 when there is none): what
    /// [`PolicyBackend::compare_and_swap`] compares against.
    pub mod_revision: u64,
    /// The store's revision when it was read: [`PolicyBackend::watch`] from one past it
    /// misses nothing.
    pub revision: u64,
}

/// One change seen by [`PolicyBackend::watch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new value, written at `revision`.
    Put {
        /// The policy's TOML text.
        value: Vec<u8>,
        /// Its revision.
        revision: u64,
    },
    /// The value was deleted at `revision`; the last good policy keeps serving.
    Deleted {
        /// The deletion's revision.
        revision: u64,
    },
    /// The revision asked for is no longer kept (compacted): read the value again.
    Compacted,
}

/// Why a backend could not be read, watched or written: a message naming what was tried,
/// and the client's own error beneath.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct BackendError {
    message: String,
    #[source]
    source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

impl BackendError {
    /// An error with a message and the client error that caused it.
    pub fn new(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> BackendError {
        BackendError {
            message: message.into(),
            source: Some(source.into()),
        }
    }

    /// An error with only a message.
    pub fn message(message: impl Into<String>) -> BackendError {
        BackendError {
            message: message.into(),
            source: None,
        }
    }

    /// The message followed by each cause, `: `-separated, as logged.
    pub fn chain(&self) -> String {
        let mut text = self.message.clone();
        let mut cause = std::error::Error::source(self);
        while let Some(e) = cause {
            text.push_str(": ");
            text.push_str(&e.to_string());
            cause = e.source();
        }
        text
    }
}

/// A remote store of one policy's TOML text with revisions: read it, watch it from a
/// revision on, and replace it only if it is still at the revision read.
///
/// The policy is the same TOML text as `cors.toml`, so validation, comments and admin
/// edits work unchanged. Revisions increase with every write. The server calls these
/// methods on a thread of its own (a single-threaded tokio runtime), never on the request
/// path; admin edits call [`PolicyBackend::read`] and
/// [`PolicyBackend::compare_and_swap`] from the admin socket's thread.
///
/// A backend serving from memory, the way a test (or a database table) would:
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use futures_util::StreamExt;
/// use mcp_cors::{BackendError, BoxFuture, Change, ChangeStream, PolicyBackend, Snapshot};
///
/// #[derive(Debug)]
/// struct Memory {
///     state: Mutex<(Vec<u8>, u64)>,
///     changes: tokio::sync::broadcast::Sender<(Vec<u8>, u64)>,
/// }
///
/// impl PolicyBackend for Memory {
///     fn name(&self) -> String {
///         "memory://policy".into()
///     }
///     fn read(&self) -> BoxFuture<'_, Result<Snapshot, BackendError>> {
///         let (value, revision) = self.state.lock().unwrap().clone();
///         Box::pin(async move {
///             Ok(Snapshot { value: Some(value), mod_revision: revision, revision })
///         })
///     }
///     fn watch(&self, from: u64) -> BoxFuture<'_, Result<ChangeStream, BackendError>> {
///         let changes = self.changes.subscribe();
///         let missed = self.state.lock().unwrap().clone();
///         Box::pin(async move {
///             let missed = (missed.1 >= from).then_some(Ok(missed));
///             let later = tokio_stream_like(changes);
///             let stream = futures_util::stream::iter(missed).chain(later).map(|r| {
///                 r.map(|(value, revision)| Change::Put { value, revision })
///             });
///             Ok(Box::pin(stream) as ChangeStream)
///         })
///     }
///     fn compare_and_swap(&self, value: Vec<u8>, expected: u64)
///         -> BoxFuture<'_, Result<Option<u64>, BackendError>> {
///         let mut state = self.state.lock().unwrap();
///         let result = (state.1 == expected).then(|| {
///             *state = (value, state.1 + 1);
///             let _ = self.changes.send(state.clone());
///             state.1
///         });
///         Box::pin(async move { Ok(result) })
///     }
/// }
///
/// fn tokio_stream_like(
///     rx: tokio::sync::broadcast::Receiver<(Vec<u8>, u64)>,
/// ) -> impl futures_util::Stream<Item = Result<(Vec<u8>, u64), BackendError>> {
///     futures_util::stream::unfold(rx, |mut rx| async move {
///         let next = rx.recv().await.map_err(|e| BackendError::new("lagged", e));
///         Some((next, rx))
///     })
/// }
///
/// let backend = Memory {
///     state: Mutex::new((b"allowed_origins = [\"https://a.example\"]".to_vec(), 1)),
///     changes: tokio::sync::broadcast::channel(16).0,
/// };
/// let cors = mcp_cors::McpCors::from_source(Arc::new(backend))?;
/// assert_eq!(cors.policy().settings().allowed_origins, ["https://a.example"]);
/// # Ok::<(), mcp_cors::Error>(())
/// ```
pub trait PolicyBackend: fmt::Debug + Send + Sync + 'static {
    /// How the source is named in logs, events and `status` (never with a secret), and
    /// what makes two backends the same source: one watch per name per process.
    fn name(&self) -> String;

    /// The value now, its `mod_revision` and the store's revision.
    fn read(&self) -> BoxFuture<'_, Result<Snapshot, BackendError>>;

    /// Every change from revision `from` on (inclusive), in order. The stream ends or
    /// fails when the connection is lost; the server then watches again from the
    /// revision after the last one it saw, or reads again after [`Change::Compacted`].
    fn watch(&self, from: u64) -> BoxFuture<'_, Result<ChangeStream, BackendError>>;

    /// Writes `value` if the value is still at `expected` (its `mod_revision`; 0 when
    /// there is no value). `Some(revision written)` on success, `None` when another write
    /// came first (the caller reads again and retries).
    fn compare_and_swap(
        &self,
        value: Vec<u8>,
        expected: u64,
    ) -> BoxFuture<'_, Result<Option<u64>, BackendError>>;
}
