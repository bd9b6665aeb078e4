//! Listener queues bounded in bytes, all of them together.
//!
//! A subscriber is a local process, and one that connects and never reads must cost a
//! bounded amount however many of them there are. So what a listener holds (queued for it,
//! and taken but not yet written to its client) is counted in bytes, an event with a long
//! origin or path costing more than a short one, against one cap for all listeners
//! together ([`Budget`]); each listener may hold at most its share of that cap, which
//! shrinks as more listeners attach. An item that does not fit is refused, and the caller
//! drops and counts it as before.
//!
//! The queues allocate as they fill and free as they drain (a `SegQueue`, in blocks of a
//! few dozen items), where a pre-allocated ring cost every listener its full capacity
//! (about 440 KB) from the moment it subscribed, read or not.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_queue::SegQueue;

/// What all listeners together may hold, in bytes (as [`cost`] counts them).
pub(crate) const ALL_LISTENERS_BYTES: usize = 16 << 20;
/// What one listener may hold at most, however few listen: a whole
/// [`LISTENER_POLL`](super::LISTENER_POLL) of several thousand distinct decisions.
pub(crate) const LISTENER_BYTES: usize = 1 << 20;
/// What an item costs besides its text: its slot in the queue, the event it becomes when
/// taken, and the keys of its JSON line on the way out.
pub(crate) const ITEM_BYTES: usize = 256;

/// The cost of an item carrying `text` bytes of origin, path and reason.
pub(crate) fn cost(text: usize) -> usize {
    ITEM_BYTES.saturating_add(text)
}

/// The cap shared by all listeners, and what they hold now.
#[derive(Debug)]
pub(crate) struct Budget {
    cap: usize,
    used: AtomicUsize,
}

impl Budget {
    pub(crate) fn new(cap: usize) -> Arc<Budget> {
        Arc::new(Budget {
            cap,
            used: AtomicUsize::new(0),
        })
    }

    /// What each of `listeners` listeners may hold.
    pub(crate) fn share(&self, listeners: usize) -> usize {
        (self.cap / listeners.max(1)).min(LISTENER_BYTES)
    }

    /// Bytes all listeners hold now.
    #[cfg(test)]
    pub(crate) fn used(&self) -> usize {
        self.used.load(Ordering::Relaxed)
    }

    /// Takes `bytes` from the cap if they fit.
    fn reserve(&self, bytes: usize) -> bool {
        // Added first and taken back if over: concurrent reservations can then never
        // together pass the cap (one near it may be refused needlessly, which is fine).
        let before = self.used.fetch_add(bytes, Ordering::Relaxed);
        if before.saturating_add(bytes) <= self.cap {
            return true;
        }
        self.used.fetch_sub(bytes, Ordering::Relaxed);
        false
    }

    fn release(&self, bytes: usize) {
        self.used.fetch_sub(bytes, Ordering::Relaxed);
    }
}

/// One listener's queue: lock-free, unbounded in items, bounded in bytes by its share of
/// the [`Budget`].
pub(crate) struct Queue<T> {
    items: SegQueue<(T, usize)>,
    /// Bytes queued plus bytes taken and not yet released.
    held: AtomicUsize,
    budget: Arc<Budget>,
}

impl<T> Queue<T> {
    pub(crate) fn new(budget: Arc<Budget>) -> Queue<T> {
        Queue {
            items: SegQueue::new(),
            held: AtomicUsize::new(0),
            budget,
        }
    }

    /// Queues the item `make` builds, of `cost` bytes, if this listener holds less than
    /// `share` with it and the budget has room; `make` is not called otherwise. Never
    /// waits.
    pub(crate) fn offer(&self, cost: usize, share: usize, make: impl FnOnce() -> T) -> bool {
        // Two workers racing past this check may each add one item beyond the share; the
        // budget below is exact.
        if self.held.load(Ordering::Relaxed).saturating_add(cost) > share
            || !self.budget.reserve(cost)
        {
            return false;
        }
        self.held.fetch_add(cost, Ordering::Relaxed);
        self.items.push((make(), cost));
        true
    }

    /// The oldest item and its cost, which stays held until [`Queue::release`]d.
    pub(crate) fn pop(&self) -> Option<(T, usize)> {
        self.items.pop()
    }

    /// Gives back `bytes` taken with [`Queue::pop`] and now written or dropped.
    pub(crate) fn release(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::Relaxed);
        self.budget.release(bytes);
    }

    /// Bytes this listener holds.
    #[cfg(test)]
    pub(crate) fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }
}

impl<T> Drop for Queue<T> {
    fn drop(&mut self) {
        // Everything still held goes back: queued items are freed with the queue, and
        // items taken but not released belonged to a subscription that is gone.
        self.budget.release(*self.held.get_mut());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_share_shrinks_as_listeners_attach_and_never_passes_one_listeners_most() {
        let budget = Budget::new(ALL_LISTENERS_BYTES);
        assert_eq!(budget.share(0), LISTENER_BYTES);
        assert_eq!(budget.share(1), LISTENER_BYTES);
        assert_eq!(budget.share(500), ALL_LISTENERS_BYTES / 500);
        assert!(budget.share(100_000) < ITEM_BYTES, "none fits: all dropped");
    }

    #[test]
    fn a_queue_holds_its_share_and_gives_it_back_when_released_or_dropped() {
        let budget = Budget::new(10_000);
        let queue = Queue::new(Arc::clone(&budget));
        let mut taken = 0;
        while queue.offer(1_000, 4_500, || taken) {
            taken += 1;
        }
        assert_eq!((taken, queue.held(), budget.used()), (4, 4_000, 4_000));
        let (first, bytes) = queue.pop().expect("queued");
        assert_eq!((first, bytes), (0, 1_000));
        // Taken but not released: still held, so still full.
        assert!(!queue.offer(1_000, 4_500, || 99));
        queue.release(bytes);
        assert!(queue.offer(1_000, 4_500, || 4));
        drop(queue);
        assert_eq!(budget.used(), 0);
    }
}
