//! Where a policy comes from, and everything that keeps it current: the lifecycle around
//! a [`PolicyStore`](crate::store::PolicyStore).
//!
//! The store is only the live policy (an `ArcSwap`) and the appliers' lock. A source owns
//! what feeds it: for a file ([`FileSource`]), the folder watcher and the admin socket
//! whose edits write the file. The threads hold the store, never the source, so dropping
//! the last middleware drops the source, which stops and joins them.

mod file;
mod registry;
mod watch;

pub(crate) use file::FileSource;
pub(crate) use registry::{absolute, watched};

/// A running source, kept alive by every middleware that serves its policy.
pub(crate) trait Lifecycle: std::fmt::Debug + Send + Sync {
    /// The admin socket this source serves, if any.
    fn admin_socket(&self) -> Option<std::path::PathBuf>;
}
