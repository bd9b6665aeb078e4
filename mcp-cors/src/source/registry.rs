//! One file source (and so one watcher and one admin socket) per config file per process.
//!
//! actix runs the `HttpServer::new` factory once per worker, so `McpCors::watched(path)` is
//! called several times for the same file; every call after the first gets the source the
//! first one made. The registry holds only weak references: when the last middleware for a
//! file is dropped, its source goes away, and with it its watcher and admin socket.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use super::FileSource;
use crate::error::{Error, PolicyError};
use crate::policy::file;
use crate::store::PolicyStore;

/// A live source and the store it keeps current.
type Entry = (Weak<FileSource>, Weak<PolicyStore>);

static SOURCES: Mutex<Option<HashMap<PathBuf, Entry>>> = Mutex::new(None);

/// The absolute form of a config path: the registry key, and what the watcher watches.
pub(crate) fn absolute(path: &Path) -> Result<PathBuf, Error> {
    std::path::absolute(path).map_err(|source| Error::Watch {
        path: path.to_path_buf(),
        source: source.into(),
    })
}

/// The source for `path` (absolute) and its store: the live ones, or new ones made from
/// the file. A file that cannot be loaded is returned as the error when `fail_closed` is
/// false; otherwise the store serves the deny-all policy until the file is fixed.
pub(crate) fn watched(
    path: &Path,
    fail_closed: bool,
) -> Result<(Arc<FileSource>, Arc<PolicyStore>), Error> {
    let mut sources = SOURCES.lock().unwrap_or_else(|e| e.into_inner());
    let sources = sources.get_or_insert_with(HashMap::new);
    if let Some((source, store)) = sources.get(path) {
        if let (Some(source), Some(store)) = (source.upgrade(), store.upgrade()) {
            return Ok((source, store));
        }
    }
    let loaded = match file::load(path) {
        Ok(loaded) => Ok(loaded),
        Err(error) if fail_closed => {
            log_failing_closed(path, &error);
            Err(error)
        }
        Err(error) => return Err(error.into()),
    };
    let store = Arc::new(PolicyStore::for_file(path, loaded));
    let source = Arc::new(FileSource::start(path, &store, fail_closed)?);
    sources.retain(|_, (source, _)| source.strong_count() > 0);
    sources.insert(
        path.to_path_buf(),
        (Arc::downgrade(&source), Arc::downgrade(&store)),
    );
    Ok((source, store))
}

fn log_failing_closed(path: &Path, error: &PolicyError) {
    tracing::error!(
        file = %path.display(),
        error = %error,
        "no policy loaded: failing closed (every cross-origin request is refused) until the \
         file is fixed"
    );
}
