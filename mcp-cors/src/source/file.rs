//! A policy file: its watcher and its admin socket, around the store they keep current.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, Weak};

use super::Lifecycle;
use super::watch::{self, WatchHandle};
use crate::admin::{self, AdminError, AdminHandle};
use crate::error::Error;
use crate::policy::AdminSettings;
use crate::store::PolicyStore;

/// A watched policy file. Dropping it stops the watcher, then closes the admin socket.
#[derive(Debug)]
pub(crate) struct FileSource {
    admin: Arc<AdminSlot>,
    watch: Option<WatchHandle>,
}

impl FileSource {
    /// Starts watching `path` (absolute) for `store`, and serves the admin socket when the
    /// policy asks for it. With `fail_closed`, an admin socket that cannot be served is
    /// logged and the file is still watched; otherwise it is the caller's error.
    pub(crate) fn start(
        path: &Path,
        store: &Arc<PolicyStore>,
        fail_closed: bool,
    ) -> Result<FileSource, Error> {
        let admin = Arc::new(AdminSlot::new(path, store));
        match admin.serve(&store.load().settings().admin) {
            Ok(()) => {}
            Err(error) if fail_closed => {
                tracing::error!(%error, "the admin socket is not served");
            }
            Err(error) => return Err(error.into()),
        }
        let watch = watch::spawn(path.to_path_buf(), Arc::clone(store), Arc::clone(&admin))
            .map_err(|source| Error::Watch {
                path: path.to_path_buf(),
                source: source.into(),
            })?;
        Ok(FileSource {
            admin,
            watch: Some(watch),
        })
    }
}

impl Drop for FileSource {
    fn drop(&mut self) {
        // The watcher first: it may be about to serve the admin socket again.
        drop(self.watch.take());
        self.admin.close();
    }
}

impl Lifecycle for FileSource {
    fn admin_socket(&self) -> Option<PathBuf> {
        self.admin.path()
    }
}

/// The admin socket of a policy file: served at start, and served again by the watcher
/// when its file went away (the config folder deleted and recreated).
#[derive(Debug)]
pub(crate) struct AdminSlot {
    config: PathBuf,
    store: Weak<PolicyStore>,
    state: Mutex<SlotState>,
}

#[derive(Debug, Default)]
struct SlotState {
    /// Where the socket should be; `None` when the policy turns it off.
    wanted: Option<PathBuf>,
    handle: Option<AdminHandle>,
    /// Serving it again failed, and that was logged: not logged again until it works.
    failing: bool,
}

impl AdminSlot {
    pub(super) fn new(config: &Path, store: &Arc<PolicyStore>) -> Self {
        AdminSlot {
            config: config.to_path_buf(),
            store: Arc::downgrade(store),
            state: Mutex::new(SlotState::default()),
        }
    }

    fn lock(&self) -> MutexGuard<'_, SlotState> {
        // Every write replaces whole fields: a panic cannot leave them inconsistent.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Serves the socket `settings` ask for (none when disabled).
    fn serve(&self, settings: &AdminSettings) -> Result<(), AdminError> {
        if !settings.enabled {
            return Ok(());
        }
        let socket = admin::admin_socket_path(&self.config, settings);
        let mut state = self.lock();
        state.wanted = Some(socket.clone());
        state.handle = Some(admin::start(
            self.store.clone(),
            self.config.clone(),
            socket,
        )?);
        Ok(())
    }

    /// Serves the socket again if its file is gone or is no longer ours (its folder was
    /// deleted and recreated, or someone removed it). Cheap when all is well: one `lstat`.
    pub(crate) fn restore(&self) {
        let mut state = self.lock();
        let Some(path) = state.wanted.clone() else {
            return;
        };
        if state.handle.as_ref().is_some_and(AdminHandle::is_in_place) {
            return;
        }
        // The old thread stops; it removes nothing, since its file is gone.
        state.handle = None;
        match admin::start(self.store.clone(), self.config.clone(), path.clone()) {
            Ok(handle) => {
                tracing::warn!(socket = %path.display(), "the admin socket file was gone (its folder deleted?); serving it again");
                state.handle = Some(handle);
                state.failing = false;
            }
            Err(error) if !state.failing => {
                tracing::error!(socket = %path.display(), %error, "the admin socket file is gone and cannot be served again; retrying");
                state.failing = true;
            }
            Err(_) => {}
        }
    }

    fn path(&self) -> Option<PathBuf> {
        let state = self.lock();
        state.handle.as_ref().map(|h| h.path().to_path_buf())
    }

    fn close(&self) {
        let handle = self.lock().handle.take();
        drop(handle);
    }
}
