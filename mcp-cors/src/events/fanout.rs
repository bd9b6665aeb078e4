//! Fan-out and replay: every listener's bounded queue, and the ring of recent events a
//! new subscriber is sent first.
//!
//! Each listener has a queue bounded in bytes, and all listeners together share one cap
//! ([`queue`]); when a listener's share is full the item is dropped for that listener and
//! counted, and the listener is told how many decisions it missed. Publishing never waits.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, Weak};

use arc_swap::ArcSwap;

use super::queue::{self, Budget, Queue};
use super::runs::Batch;
use super::{EventBus, Item, LISTENER_POLL};
use crate::protocol::{Event, MAX_REPLAY};
use crate::sync::lock;

/// One listener's queue: lock-free and bounded in bytes ([`Queue`]). Pushing is a few
/// atomic operations, with no waker to notify (the listener polls), so a request pays
/// next to nothing for it.
pub(super) struct Listener {
    pub(super) queue: Queue<Item>,
    dropped: AtomicU64,
}

/// What `event` costs a listener's share: its text, counted for each listener (shared
/// while queued, it is copied into each listener's batch on the way out). A policy change
/// may list many origins, and is rare: its text is measured as it will be sent.
pub(super) fn event_cost(event: &Event) -> usize {
    let text = match event {
        Event::Decision(d) => {
            d.origin.as_ref().map_or(0, String::len)
                + d.method.len()
                + d.path.len()
                + d.reason.as_ref().map_or(0, String::len)
                + d.route.as_ref().map_or(0, String::len)
        }
        other => policy_event_text(other),
    };
    queue::cost(text)
}

/// The length of a policy change's line, measured by writing it: rare, and kept out of
/// line so that the request path's code around [`Fanout::publish`] stays small.
#[cold]
#[inline(never)]
fn policy_event_text(event: &Event) -> usize {
    serde_json::to_vec(event).map_or(0, |line| line.len())
}

/// The listeners, the replay ring, and what was dropped for them.
pub(super) struct Fanout {
    /// Read on every request; replaced whole on (un)subscribe.
    listeners: ArcSwap<Vec<Arc<Listener>>>,
    /// `listeners.len()`, read first so that a request with no one listening does not
    /// even load the list.
    listener_count: AtomicUsize,
    /// Recent refusals and policy changes (and allows while listened to).
    recent: Mutex<VecDeque<Arc<Event>>>,
    dropped: AtomicU64,
    /// The bytes all listeners' queues may hold together.
    pub(super) budget: Arc<Budget>,
}

impl Fanout {
    /// Listeners that may hold `cap` bytes together.
    pub(super) fn new(cap: usize) -> Fanout {
        Fanout {
            listeners: ArcSwap::from_pointee(Vec::new()),
            listener_count: AtomicUsize::new(0),
            recent: Mutex::new(VecDeque::with_capacity(MAX_REPLAY)),
            dropped: AtomicU64::new(0),
            budget: Budget::new(cap),
        }
    }

    /// Whether anyone listens: one load, so that nobody listening costs next to nothing.
    #[inline]
    pub(super) fn is_listened(&self) -> bool {
        self.listener_count.load(Ordering::Relaxed) != 0
    }

    pub(super) fn listener_count(&self) -> usize {
        self.listener_count.load(Ordering::Relaxed)
    }

    /// Events dropped for listeners without room, in all.
    pub(super) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Offers a run of `decisions` allows, as the item `make` builds, of `cost` bytes, to
    /// every live listener (allows are not kept for replay).
    pub(super) fn offer(&self, decisions: u64, cost: usize, make: impl Fn() -> Item) {
        self.fan_out(&self.listeners.load(), decisions, cost, make);
    }

    /// Publishes an event: kept for replay and sent to every listener without waiting.
    pub(super) fn publish(&self, event: Event) {
        let event = Arc::new(event);
        // The ring lock is held while fanning out, so a subscriber registered under the
        // same lock sees each kept event exactly once: in its replay or live.
        let mut recent = lock(&self.recent);
        if recent.len() == MAX_REPLAY {
            recent.pop_front();
        }
        recent.push_back(Arc::clone(&event));
        let listeners = self.listeners.load();
        if !listeners.is_empty() {
            let cost = event_cost(&event);
            self.fan_out(&listeners, 1, cost, || Item::Event(Arc::clone(&event)));
        }
        drop(recent);
    }

    /// Offers the item `make` builds, of `cost` bytes and standing for `decisions`
    /// decisions, to every listener, each up to its share of the listeners' budget (which
    /// shrinks as more listen); a listener without room has it dropped, and the decisions
    /// counted as missed. Never waits.
    fn fan_out(
        &self,
        listeners: &[Arc<Listener>],
        decisions: u64,
        cost: usize,
        make: impl Fn() -> Item,
    ) {
        let share = self.budget.share(listeners.len());
        for listener in listeners {
            if !listener.queue.offer(cost, share, &make) {
                listener.dropped.fetch_add(decisions, Ordering::Relaxed);
                self.dropped.fetch_add(decisions, Ordering::Relaxed);
                #[cfg(feature = "metrics")]
                crate::metrics::events_dropped(decisions);
            }
        }
    }

    /// Adds a listener, returning up to `replay` recent events and the listener.
    fn subscribe(&self, replay: usize) -> (Vec<Arc<Event>>, Arc<Listener>) {
        let listener = Arc::new(Listener {
            queue: Queue::new(Arc::clone(&self.budget)),
            dropped: AtomicU64::new(0),
        });
        let recent = lock(&self.recent);
        let skip = recent.len().saturating_sub(replay.min(MAX_REPLAY));
        let replayed = recent.iter().skip(skip).cloned().collect();
        self.listeners.rcu(|current| {
            let mut next = Vec::clone(current);
            next.push(Arc::clone(&listener));
            next
        });
        let _count = self.listener_count.fetch_add(1, Ordering::Relaxed) + 1;
        #[cfg(feature = "metrics")]
        crate::metrics::listeners(_count);
        drop(recent);
        (replayed, listener)
    }

    /// Removes `listener`, keeping `listener_count` exact.
    fn remove(&self, listener: &Arc<Listener>) {
        let mut removed = 0;
        self.listeners.rcu(|current| {
            let next: Vec<_> = current
                .iter()
                .filter(|l| !Arc::ptr_eq(l, listener))
                .cloned()
                .collect();
            removed = current.len() - next.len();
            next
        });
        let _count = self.listener_count.fetch_sub(removed, Ordering::Relaxed) - removed;
        #[cfg(feature = "metrics")]
        crate::metrics::listeners(_count);
    }
}

/// A subscription: events arrive in batches from [`Subscription::next_batch`]; dropping
/// it unsubscribes.
pub(crate) struct Subscription {
    pub(super) listener: Arc<Listener>,
    bus: Weak<EventBus>,
    /// Dropped events already reported to this subscriber.
    reported: u64,
    /// Bytes of the last batch taken, held against the listener's share until the next
    /// one is asked for: until then the batch is being written to the client, and a
    /// client that does not read keeps it in memory.
    in_flight: usize,
}

/// Subscribes to `bus`, returning up to `replay` recent events and the live subscription.
pub(super) fn subscribe(bus: &Arc<EventBus>, replay: usize) -> (Vec<Arc<Event>>, Subscription) {
    let (replayed, listener) = bus.fanout.subscribe(replay);
    let subscription = Subscription {
        listener,
        bus: Arc::downgrade(bus),
        reported: 0,
        in_flight: 0,
    };
    (replayed, subscription)
}

impl Subscription {
    /// Waits for at least one event and returns up to `max` queued ones, runs of identical
    /// decisions folded; `None` once the bus is gone.
    ///
    /// Polls every [`LISTENER_POLL`] instead of being woken: a waker would make every
    /// request that queues an event wake this thread, a system call on the request path.
    /// Polling costs a listener at most `LISTENER_POLL` of latency and the request path
    /// nothing.
    pub(crate) async fn next_batch(&mut self, max: usize) -> Option<Vec<Event>> {
        self.release_in_flight();
        loop {
            // Hand the workers' runs of allows to the queues first, then read.
            self.bus.upgrade()?.queue_worker_runs();
            if let Some(first) = self.listener.queue.pop() {
                return Some(self.batch_after(first, max));
            }
            tokio::time::sleep(LISTENER_POLL).await;
        }
    }

    /// Up to `max` events already queued (none if nothing is), folded like
    /// [`Subscription::next_batch`].
    #[cfg(test)]
    pub(crate) fn queued(&mut self, max: usize) -> Vec<Event> {
        self.release_in_flight();
        if let Some(bus) = self.bus.upgrade() {
            bus.queue_worker_runs();
        }
        match self.listener.queue.pop() {
            Some(first) => self.batch_after(first, max),
            None => Vec::new(),
        }
    }

    fn batch_after(&mut self, (first, bytes): (Item, usize), max: usize) -> Vec<Event> {
        let mut batch = Batch::default();
        batch.push(first);
        self.in_flight = bytes;
        for _ in 1..max {
            match self.listener.queue.pop() {
                Some((item, bytes)) => {
                    batch.push(item);
                    self.in_flight += bytes;
                }
                None => break,
            }
        }
        batch.finish()
    }

    /// Gives back the last batch's bytes: it has been written (or the write failed).
    fn release_in_flight(&mut self) {
        self.listener
            .queue
            .release(std::mem::take(&mut self.in_flight));
    }

    /// Events dropped for this subscriber since the last call, and in all.
    pub(crate) fn take_dropped(&mut self) -> Option<(u64, u64)> {
        let total = self.listener.dropped.load(Ordering::Relaxed);
        let new = total - self.reported;
        self.reported = total;
        (new > 0).then_some((new, total))
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(bus) = self.bus.upgrade() {
            bus.fanout.remove(&self.listener);
        }
    }
}
