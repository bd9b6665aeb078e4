//! The values this replica's admin edits wrote to a remote source, so that the follower,
//! when it applies one, does not audit it as a `reload` from elsewhere: the edit has its
//! own record, with who made it. A value is noted before it is written (the follower may
//! see it before the write's answer arrives) and forgotten when the write fails.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use super::backend::{BackendError, BoxFuture, ChangeStream, PolicyBackend, Snapshot};
use crate::sync::lock;

/// Writes that may be pending at once, at most; older ones are forgotten (the follower
/// then audits them as reloads: more records, never fewer).
const PENDING: usize = 16;

/// The values written by this replica's edits that the follower has not applied yet.
#[derive(Debug, Clone, Default)]
pub(crate) struct OwnWrites(Arc<Mutex<VecDeque<Vec<u8>>>>);

impl OwnWrites {
    fn note(&self, value: &[u8]) {
        let mut pending = lock(&self.0);
        if pending.len() == PENDING {
            pending.pop_front();
        }
        pending.push_back(value.to_vec());
    }

    fn forget(&self, value: &[u8]) {
        let mut pending = lock(&self.0);
        if let Some(i) = pending.iter().position(|v| v == value) {
            pending.remove(i);
        }
    }

    /// Whether `value` is one this replica wrote (and it is no longer pending).
    pub(crate) fn take(&self, value: &[u8]) -> bool {
        let mut pending = lock(&self.0);
        match pending.iter().position(|v| v == value) {
            Some(i) => {
                pending.remove(i);
                true
            }
            None => false,
        }
    }
}

/// A backend whose successful compare-and-swaps are noted in [`OwnWrites`].
#[derive(Debug)]
pub(crate) struct Noting {
    pub(crate) inner: Arc<dyn PolicyBackend>,
    pub(crate) own: OwnWrites,
}

impl PolicyBackend for Noting {
    fn name(&self) -> String {
        self.inner.name()
    }

    fn read(&self) -> BoxFuture<'_, Result<Snapshot, BackendError>> {
        self.inner.read()
    }

    fn watch(&self, from: u64) -> BoxFuture<'_, Result<ChangeStream, BackendError>> {
        self.inner.watch(from)
    }

    fn compare_and_swap(
        &self,
        value: Vec<u8>,
        expected: u64,
    ) -> BoxFuture<'_, Result<Option<u64>, BackendError>> {
        self.own.note(&value);
        Box::pin(async move {
            let copy = value.clone();
            let written = self.inner.compare_and_swap(value, expected).await;
            if !matches!(written, Ok(Some(_))) {
                self.own.forget(&copy);
            }
            written
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_value_is_taken_once_and_only_when_noted() {
        let own = OwnWrites::default();
        own.note(b"a");
        assert!(!own.take(b"b"));
        assert!(own.take(b"a"));
        assert!(!own.take(b"a"), "taken once");
        own.note(b"c");
        own.forget(b"c");
        assert!(!own.take(b"c"), "a failed write is forgotten");
    }
}
