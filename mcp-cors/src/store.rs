//! The policy store every worker's middleware reads from.

use std::sync::Arc;

use arc_swap::{ArcSwap, Guard};

use crate::policy::Policy;

/// The live policy, shared by all clones of one [`McpCors`](crate::McpCors). Reads are
/// lock-free (`ArcSwap`); a swap replaces the whole policy at once, so a request that
/// loaded one policy keeps it to its end.
#[derive(Debug)]
pub(crate) struct PolicyStore {
    current: ArcSwap<Policy>,
}

impl PolicyStore {
    pub(crate) fn new(policy: Policy) -> Self {
        PolicyStore {
            current: ArcSwap::from_pointee(policy),
        }
    }

    /// The current policy, for the duration of one decision.
    pub(crate) fn load(&self) -> Guard<Arc<Policy>> {
        self.current.load()
    }

    /// The current policy, to keep.
    pub(crate) fn load_full(&self) -> Arc<Policy> {
        self.current.load_full()
    }

    /// Replaces the policy for every request that starts from now on.
    pub(crate) fn swap(&self, policy: Policy) -> Arc<Policy> {
        self.current.swap(Arc::new(policy))
    }
}
