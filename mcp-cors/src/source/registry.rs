//! One source (and so one watcher or follower, and one admin socket) per source per
//! process.
//!
//! actix runs the `HttpServer::new` factory once per worker, so `McpCors::watched(source)`
//! is called several times for the same source; every call after the first gets the
//! source the first one made. A file is keyed by its absolute path, a remote source by its
//! name (`etcd://HOST:PORT/KEY`). The registry holds only weak references: when the last
//! middleware for a source is dropped, it goes away, and with it its threads and socket.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use super::backend::PolicyBackend;
use super::{FileSource, Lifecycle, remote};
use crate::error::{Error, PolicyError};
use crate::policy::file;
use crate::store::PolicyStore;

/// A live source and the store it keeps current.
type Entry = (Weak<dyn Lifecycle>, Weak<PolicyStore>);

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum Key {
    File(PathBuf),
    Remote(String),
}

static SOURCES: Mutex<Option<HashMap<Key, Entry>>> = Mutex::new(None);

/// The absolute form of a config path: the registry key, and what the watcher watches.
pub(crate) fn absolute(path: &Path) -> Result<PathBuf, Error> {
    std::path::absolute(path).map_err(|source| Error::Watch {
        path: path.to_path_buf(),
        source: source.into(),
    })
}

type Started = (Arc<dyn Lifecycle>, Arc<PolicyStore>);

/// The live source for `key`, or a new one from `start`, registered.
fn get_or_start(
    key: Key,
    start: impl FnOnce() -> Result<Started, Error>,
) -> Result<Started, Error> {
    let mut sources = SOURCES.lock().unwrap_or_else(|e| e.into_inner());
    let sources = sources.get_or_insert_with(HashMap::new);
    if let Some((source, store)) = sources.get(&key) {
        if let (Some(source), Some(store)) = (source.upgrade(), store.upgrade()) {
            return Ok((source, store));
        }
    }
    let (source, store) = start()?;
    sources.retain(|_, (source, _)| source.strong_count() > 0);
    sources.insert(key, (Arc::downgrade(&source), Arc::downgrade(&store)));
    Ok((source, store))
}

/// The source for `path` (absolute) and its store: the live ones, or new ones made from
/// the file. A file that cannot be loaded is returned as the error when `fail_closed` is
/// false; otherwise the store serves the deny-all policy until the file is fixed.
pub(crate) fn watched(path: &Path, fail_closed: bool) -> Result<Started, Error> {
    get_or_start(Key::File(path.to_path_buf()), || {
        let loaded = match file::load(path) {
            Ok(loaded) => Ok(loaded),
            Err(error) if fail_closed => {
                log_failing_closed(path, &error);
                Err(error)
            }
            Err(error) => return Err(error.into()),
        };
        let store = Arc::new(PolicyStore::for_file(path, loaded));
        let source: Arc<dyn Lifecycle> = Arc::new(FileSource::start(path, &store, fail_closed)?);
        Ok((source, store))
    })
}

/// The source following `backend` and its store: the live ones for its name, or new
/// ones (see [`remote::start`]).
pub(crate) fn watched_remote(
    backend: Arc<dyn PolicyBackend>,
    cache: Option<PathBuf>,
    fail_closed: bool,
) -> Result<Started, Error> {
    get_or_start(Key::Remote(backend.name()), || {
        let (source, store) = remote::start(backend, cache, fail_closed)?;
        let source: Arc<dyn Lifecycle> = source;
        Ok((source, store))
    })
}

fn log_failing_closed(path: &Path, error: &PolicyError) {
    tracing::error!(
        file = %path.display(),
        error = %error,
        "no policy loaded: failing closed (every cross-origin request is refused) until the \
         file is fixed"
    );
}
