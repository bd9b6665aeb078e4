//! Where a policy comes from, and everything that keeps it current: the lifecycle around
//! a [`PolicyStore`](crate::store::PolicyStore).
//!
//! [`Source`] names it: a file, or a key in etcd. The store is only the live policy (an
//! `ArcSwap`) and the appliers' lock. A source owns what feeds it: for a file
//! ([`FileSource`]), the folder watcher and the admin socket whose edits write the file;
//! for a remote source ([`remote`]: etcd, or any [`PolicyBackend`]), the follower thread
//! and the admin socket whose edits go to the backend by compare-and-swap. The threads
//! hold the store, never the source, so dropping the last middleware drops the source,
//! which stops and joins them.

#[cfg(any(feature = "server", feature = "etcd"))]
mod backend;
#[cfg(feature = "server")]
mod cache;
#[cfg(any(feature = "server", feature = "etcd"))]
mod cas;
#[cfg(feature = "etcd")]
mod etcd;
#[cfg(feature = "server")]
mod file;
#[cfg(feature = "server")]
mod follow;
#[cfg(feature = "server")]
mod own;
#[cfg(feature = "server")]
mod registry;
#[cfg(feature = "server")]
pub(crate) mod remote;
mod socket;
mod spec;
mod tls;
#[cfg(feature = "server")]
mod watch;

#[cfg(any(feature = "server", feature = "etcd"))]
pub use backend::{BackendError, BoxFuture, Change, ChangeStream, PolicyBackend, Snapshot};
#[cfg(any(feature = "server", feature = "etcd"))]
pub use cas::edit_remote;
#[cfg(feature = "etcd")]
pub use etcd::EtcdBackend;
pub use socket::{remote_socket_folder, remote_socket_path};
pub use spec::{ETCD_DEFAULT_PORT, EtcdSource, Source};
pub use tls::EtcdTls;

#[cfg(feature = "server")]
pub(crate) use file::FileSource;
#[cfg(feature = "server")]
pub(crate) use registry::{absolute, watched, watched_remote};

/// A running source, kept alive by every middleware that serves its policy.
#[cfg(feature = "server")]
pub(crate) trait Lifecycle: std::fmt::Debug + Send + Sync {
    /// The admin socket this source serves, if any.
    fn admin_socket(&self) -> Option<std::path::PathBuf>;
}

/// Where the admin socket's edits go: the policy file, or the remote source.
#[cfg(feature = "server")]
#[derive(Debug)]
pub(crate) enum EditTarget {
    /// The policy file, edited in place.
    File(std::path::PathBuf),
    /// A remote source, edited by compare-and-swap.
    Remote(remote::RemoteEditor),
}

#[cfg(feature = "server")]
impl From<std::path::PathBuf> for EditTarget {
    fn from(config: std::path::PathBuf) -> EditTarget {
        EditTarget::File(config)
    }
}
