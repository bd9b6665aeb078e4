//! One policy store (and so one watcher and one admin socket) per config file per process.
//!
//! actix runs the `HttpServer::new` factory once per worker, so `McpCors::watched(path)` is
//! called several times for the same file; every call after the first gets the store the
//! first one made. The registry holds only weak references: when the last middleware for a
//! file is dropped, its store, and with it its watcher, goes away.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, Weak};

use crate::error::{Error, PolicyError};
use crate::store::{self, PolicyStore};
use crate::{admin, watch};

static STORES: Mutex<Option<HashMap<PathBuf, Weak<PolicyStore>>>> = Mutex::new(None);

/// The absolute form of a config path: the registry key, and what the watcher watches.
pub(crate) fn absolute(path: &Path) -> Result<PathBuf, Error> {
    std::path::absolute(path).map_err(|e| Error::Watch {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// Reads and parses a policy file, keeping the bytes it came from.
pub(crate) fn read_policy(path: &Path) -> Result<(crate::Policy, Vec<u8>), PolicyError> {
    let bytes = std::fs::read(path).map_err(|source| PolicyError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    let policy = store::parse_source(&bytes, path)?;
    Ok((policy, bytes))
}

/// The store for `path`: the live one, or a new one (with its watcher) made from
/// `loaded`, which is only evaluated when there is none. `Err` from `loaded` is returned
/// as is when `fail_closed` is false; otherwise the store serves the deny-all policy.
pub(crate) fn get_or_create(
    path: &Path,
    loaded: impl FnOnce() -> Result<(crate::Policy, Vec<u8>), PolicyError>,
    fail_closed: bool,
) -> Result<Arc<PolicyStore>, Error> {
    let mut stores = STORES.lock().unwrap_or_else(|e| e.into_inner());
    let stores = stores.get_or_insert_with(HashMap::new);
    if let Some(store) = stores.get(path).and_then(Weak::upgrade) {
        return Ok(store);
    }
    let loaded = match loaded() {
        Ok(loaded) => Ok(loaded),
        Err(error) if fail_closed => {
            tracing::error!(
                file = %path.display(),
                error = %error,
                "cannot load the policy file: failing closed (every cross-origin request is \
                 refused) until it is fixed"
            );
            Err(error)
        }
        Err(error) => return Err(error.into()),
    };
    let store = Arc::new(PolicyStore::for_file(path, loaded));
    let handle =
        watch::spawn(path.to_path_buf(), Arc::downgrade(&store)).map_err(|e| Error::Watch {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
    store.set_watcher(handle);
    let admin = store.load().settings().admin.clone();
    if admin.enabled {
        let socket = admin::admin_socket_path(path, &admin);
        match admin::start(Arc::downgrade(&store), path.to_path_buf(), socket) {
            Ok(handle) => store.set_admin(handle),
            Err(error) if fail_closed => {
                tracing::error!(%error, "the admin socket is not served");
            }
            Err(error) => {
                return Err(Error::Admin {
                    reason: error.to_string(),
                });
            }
        }
    }
    stores.retain(|_, weak| weak.strong_count() > 0);
    stores.insert(path.to_path_buf(), Arc::downgrade(&store));
    Ok(store)
}
