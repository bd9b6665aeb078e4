//! A remote source's lifecycle (etcd, or a custom [`PolicyBackend`]): its follower thread
//! and its admin socket, around the store the follower keeps current. The admin socket's
//! edits go to the backend by compare-and-swap, and are answered once this replica serves
//! them.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc;
use std::time::Duration;

use tokio::sync::watch;

use super::Lifecycle;
use super::backend::{BackendError, PolicyBackend};
use super::cas;
use super::follow::{FirstRead, Follower};
use super::own::{Noting, OwnWrites};
use super::socket::remote_config_stand_in;
use crate::admin::{self, AdminHandle};
use crate::change::{Edit, EditError, refuse};
use crate::error::Error;
use crate::protocol::ErrorCode;
use crate::store::PolicyStore;

/// How long start-up waits for the first read (connecting has its own, shorter timeout).
const FIRST_READ: Duration = Duration::from_secs(8);
/// How long an admin edit waits for this replica to serve what it wrote.
const SERVED_WITHIN: Duration = Duration::from_secs(5);

/// A followed remote source. Dropping it closes the admin socket, then stops the
/// follower.
#[derive(Debug)]
pub(crate) struct RemoteSource {
    admin: Option<AdminHandle>,
    follower: Option<Follower>,
}

impl Drop for RemoteSource {
    fn drop(&mut self) {
        drop(self.admin.take());
        drop(self.follower.take());
    }
}

impl Lifecycle for RemoteSource {
    fn admin_socket(&self) -> Option<PathBuf> {
        self.admin.as_ref().map(|a| a.path().to_path_buf())
    }
}

/// Where the admin socket's edits go for a remote source: the backend, and the revision
/// this replica has taken in, to answer only once it serves the edit.
#[derive(Debug)]
pub(crate) struct RemoteEditor {
    backend: Arc<dyn PolicyBackend>,
    seen: watch::Receiver<u64>,
}

impl RemoteEditor {
    /// The edit, made by compare-and-swap; the entry and whether it changed anything.
    pub(crate) async fn change_list(&self, edit: Edit<'_>) -> Result<(String, bool), EditError> {
        let done = cas::edit_list(&*self.backend, edit).await?;
        if let Some(revision) = done.revision {
            let mut seen = self.seen.clone();
            let served = tokio::time::timeout(SERVED_WITHIN, seen.wait_for(|r| *r >= revision));
            if !matches!(served.await, Ok(Ok(_))) {
                return Err(refuse(
                    ErrorCode::Conflict,
                    format!(
                        "written to {} at revision {revision}, but this replica did not serve it \
                         within {}s (is the source reachable from here?)",
                        self.backend.name(),
                        SERVED_WITHIN.as_secs()
                    ),
                ));
            }
        }
        Ok((done.entry, done.changed))
    }
}

/// Starts following `backend` into a new store: waits for the first read, then serves the
/// admin socket the policy asks for. With `fail_closed`, a source that cannot be read (and
/// no cache) or an invalid value leaves the store refusing every cross-origin request
/// until a good value arrives; otherwise either is the caller's error.
pub(crate) fn start(
    backend: Arc<dyn PolicyBackend>,
    cache: Option<PathBuf>,
    fail_closed: bool,
) -> Result<(Arc<RemoteSource>, Arc<PolicyStore>), Error> {
    let name = backend.name();
    let stand_in = remote_config_stand_in(name_key(&name));
    let store = Arc::new(PolicyStore::for_source(&name, stand_in));
    let (first_tx, first) = mpsc::channel();
    let own = OwnWrites::default();
    let follower = Follower::spawn(
        Arc::clone(&backend),
        Arc::clone(&store),
        cache,
        own.clone(),
        first_tx,
    )
    .map_err(|e| Error::Unreachable {
        name: name.clone(),
        source: BackendError::new("cannot start the source's thread", e),
    })?;
    let outcome = first.recv_timeout(FIRST_READ).unwrap_or_else(|_| {
        FirstRead::Unreachable(
            BackendError::message(format!("no answer within {}s", FIRST_READ.as_secs())),
            None,
        )
    });
    match outcome {
        FirstRead::Applied => {}
        FirstRead::Unreachable(_, Some(cache)) => {
            tracing::warn!(source = %name, cache = %cache.display(), "started from the cached policy; switching to the source once it answers");
        }
        FirstRead::Unreachable(error, None) if !fail_closed => {
            return Err(Error::Unreachable {
                name,
                source: error,
            });
        }
        FirstRead::Invalid(error) if !fail_closed => return Err(error.into()),
        FirstRead::Unreachable(error, None) => {
            tracing::error!(source = %name, error = %error.chain(), "no policy loaded: failing closed (every cross-origin request is refused) until the source answers with a valid policy");
        }
        FirstRead::Invalid(error) => {
            tracing::error!(source = %name, %error, "no policy loaded: failing closed (every cross-origin request is refused) until the value is fixed");
        }
    }
    // The editor's writes are noted, so that the follower does not audit them again.
    let editor = RemoteEditor {
        backend: Arc::new(Noting {
            inner: backend,
            own,
        }),
        seen: follower.seen(),
    };
    let admin = serve_admin(&store, &name, editor, fail_closed)?;
    let source = RemoteSource {
        admin,
        follower: Some(follower),
    };
    Ok((Arc::new(source), store))
}

/// The admin socket, where the policy says (by default under the runtime folder, named
/// after the key); its folder is created, private to this user, when missing.
fn serve_admin(
    store: &Arc<PolicyStore>,
    name: &str,
    editor: RemoteEditor,
    fail_closed: bool,
) -> Result<Option<AdminHandle>, Error> {
    let settings = store.load().settings().admin.clone();
    if !settings.enabled {
        return Ok(None);
    }
    let stand_in = remote_config_stand_in(name_key(name));
    let socket = admin::admin_socket_path(&stand_in, &settings);
    let started = make_private_folder(&socket).and_then(|()| {
        admin::start(
            Arc::downgrade(store),
            super::EditTarget::Remote(editor),
            socket.clone(),
        )
    });
    match started {
        Ok(handle) => Ok(Some(handle)),
        Err(error) if fail_closed => {
            tracing::error!(%error, "the admin socket is not served");
            Ok(None)
        }
        Err(error) => Err(error.into()),
    }
}

/// The key part of `etcd://HOST:PORT/KEY` or `etcds://…` (the whole name for another
/// backend), as the socket's name is made of.
fn name_key(name: &str) -> &str {
    name.strip_prefix("etcd://")
        .or_else(|| name.strip_prefix("etcds://"))
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or(name)
}

fn make_private_folder(socket: &std::path::Path) -> Result<(), admin::AdminError> {
    use std::os::unix::fs::DirBuilderExt;
    let Some(folder) = socket.parent() else {
        return Ok(());
    };
    if folder.exists() {
        return Ok(());
    }
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(folder)
        .map_err(|e| admin::AdminError::Io(socket.to_path_buf(), e))
}
