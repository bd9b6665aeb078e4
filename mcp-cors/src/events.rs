//! Events and counters: what the guard decided, told to whoever listens.
//!
//! The request path must not pay for listeners it does not have and must never wait on a
//! slow one. So:
//! - counters (totals and per origin) are always kept; the per-origin table is bounded,
//!   because origins are chosen by whoever sends the request; so is the table of refused
//!   `Host` values, kept beside it (a refusal already takes locks, an allow never does);
//! - refusals and policy changes always go into a bounded ring, replayed to new
//!   subscribers; allows are only turned into events while someone listens (and can take
//!   them), and go to live listeners only;
//! - each listener has a queue bounded in bytes, and all listeners together share one cap
//!   ([`queue`]); when a listener's share is full the event is dropped for that listener
//!   and counted, and the listener is told how many decisions it missed;
//! - while someone listens, each worker folds its run of identical allows in a slot of
//!   its own ([`WorkerEvents`]) and queues the run as one item when it ends, so the
//!   request path pays an uncontended lock per allow, not a queued item.

use std::borrow::Cow;
use std::collections::VecDeque;

// Seeded per process, so origins chosen by clients cannot be made to collide on purpose.
use foldhash::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::time::{Duration, SystemTime};

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use arc_swap::ArcSwap;
use compact_str::CompactString;

use crate::decision::{Decision, DenyReason, Verdict};
use crate::protocol::{DecisionEvent, Event, HostStats, MAX_REPLAY, OriginStats, unix_millis};

mod queue;

use queue::{ALL_LISTENERS_BYTES, Budget, Queue};

/// How often a listener with nothing queued looks again. Listeners poll rather than being
/// woken, so that a request never pays for waking another thread (a system call).
pub(crate) const LISTENER_POLL: Duration = Duration::from_millis(10);
/// A worker's run of identical allows older than this is queued by the next request,
/// whether or not a listener has polled it (a listener that is not polling, one stuck
/// writing to its client, still gets runs, or has them counted as missed).
const RUN_MAX_AGE_MS: u64 = 10;
/// Distinct origins counted one by one; the rest are counted together as `(other)`.
pub(crate) const MAX_TRACKED_ORIGINS: usize = 1024;
/// The most origins a `stats` reply lists (the most refused first).
pub(crate) const MAX_REPORTED_ORIGINS: usize = 200;
const OTHER: &str = crate::protocol::UNTRACKED_ORIGIN;
/// Longest origin kept as a counter key or in an event. A browser's origin is at most
/// about 290 bytes (scheme, 253-byte host, port); anything longer is refused as malformed
/// and clipped here, so a hostile header cannot make events or counters large.
pub(crate) const MAX_ORIGIN_TEXT: usize = 300;
/// Distinct refused `Host` values counted one by one; the rest are counted together as
/// `(other)`. Fewer than origins: a host refusal is a misconfiguration or an attack, and
/// the operator acts on the few most frequent.
pub(crate) const MAX_TRACKED_HOSTS: usize = 256;
/// The most hosts a `stats` reply lists (the most refused first).
pub(crate) const MAX_REPORTED_HOSTS: usize = 100;
/// Longest `Host` kept as a counter key: a DNS name is at most 253 bytes, a port 6 more.
pub(crate) const MAX_HOST_TEXT: usize = 300;
/// Longest path (or reason) kept in an event.
pub(crate) const MAX_PATH_TEXT: usize = 1024;

/// One listener's queue: lock-free and bounded in bytes ([`Queue`]). Pushing is a few
/// atomic operations, with no waker to notify (the listener polls), so a request pays
/// next to nothing for it.
struct Listener {
    queue: Queue<Item>,
    dropped: AtomicU64,
}

/// What a listener's queue carries: a shared event (refusals, policy changes), or an
/// allowed decision kept raw until the listener's own thread turns it into an event.
/// Allows are the bulk of traffic; so a listener costs the request path no allocation
/// for a short path, nothing formatted, no text copied but the path.
enum Item {
    Event(Arc<Event>),
    /// A run of identical allows, and how many.
    Allowed(Allowed, u64),
}

/// An allowed decision, as the request path hands it to a listener.
#[derive(Clone)]
struct Allowed {
    at_ms: u64,
    /// Shared with the per-origin counters: a reference count, not a copy.
    origin: Arc<str>,
    method: Method,
    /// Inline (no allocation) up to 24 bytes, as MCP endpoints' paths are.
    path: CompactString,
    preflight: bool,
    /// The route that decided; shared with the compiled policy.
    route: Option<Arc<str>>,
}

/// What `event` costs a listener's share: its text, counted for each listener (shared
/// while queued, it is copied into each listener's batch on the way out). A policy change
/// may list many origins, and is rare: its text is measured as it will be sent.
fn event_cost(event: &Event) -> usize {
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
/// line so that the request path's code around [`EventBus::publish`] stays small.
#[cold]
#[inline(never)]
fn policy_event_text(event: &Event) -> usize {
    serde_json::to_vec(event).map_or(0, |line| line.len())
}

impl Allowed {
    /// What the allow costs a listener's share, as the event it becomes.
    fn cost(&self) -> usize {
        let route = self.route.as_ref().map_or(0, |r| r.len());
        queue::cost(self.origin.len() + self.method.as_str().len() + self.path.len() + route)
    }

    fn same_decision(&self, other: &Allowed) -> bool {
        self.is(&other.origin, &other.method, &other.path, other.preflight)
            && self.route == other.route
    }

    /// Whether this is the decision on a request from `origin` to `method path`. Origins
    /// listed in the policy share one `Arc`, so the usual comparison is a pointer's.
    fn is(&self, origin: &Arc<str>, method: &Method, path: &str, preflight: bool) -> bool {
        self.preflight == preflight
            && self.method == method
            && self.path == path
            && (Arc::ptr_eq(&self.origin, origin) || self.origin == *origin)
    }

    fn into_event(self, count: u64) -> Event {
        Event::Decision(DecisionEvent {
            at_ms: self.at_ms,
            verdict: Verdict::Allow,
            origin: Some(self.origin.to_string()),
            method: self.method.as_str().to_owned(),
            path: self.path.into_string(),
            preflight: self.preflight,
            reason: None,
            count,
            route: self.route.as_deref().map(str::to_owned),
        })
    }
}

/// A batch of events for one write to a listener, with runs of identical decisions
/// folded into one event with a count.
#[derive(Default)]
struct Batch {
    events: Vec<Event>,
    /// The run of identical allows being counted, not yet turned into an event.
    run: Option<(Allowed, u64)>,
}

impl Batch {
    fn push(&mut self, item: Item) {
        match item {
            Item::Allowed(allowed, n) => match &mut self.run {
                Some((first, count)) if first.same_decision(&allowed) => *count += n,
                _ => {
                    self.end_run();
                    self.run = Some((allowed, n));
                }
            },
            Item::Event(event) => {
                self.end_run();
                push_folded(&mut self.events, &event);
            }
        }
    }

    fn end_run(&mut self) {
        if let Some((allowed, count)) = self.run.take() {
            push_folded(&mut self.events, &allowed.into_event(count));
        }
    }

    fn finish(mut self) -> Vec<Event> {
        self.end_run();
        self.events
    }
}

/// A subscription: events arrive in batches from [`Subscription::next_batch`]; dropping
/// it unsubscribes.
pub(crate) struct Subscription {
    listener: Arc<Listener>,
    bus: Weak<EventBus>,
    /// Dropped events already reported to this subscriber.
    reported: u64,
    /// Bytes of the last batch taken, held against the listener's share until the next
    /// one is asked for: until then the batch is being written to the client, and a
    /// client that does not read keeps it in memory.
    in_flight: usize,
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
            bus.remove(&self.listener);
        }
    }
}

/// One worker's run of identical allows, not yet queued for listeners.
///
/// Allows are the bulk of traffic, and mostly the same few decisions over and over. So
/// each worker (each copy of the middleware) counts its current run here, behind a lock
/// that only it takes per request (uncontended, its own cache line), and queues the run as
/// one item when a different decision ends it, when it is [`RUN_MAX_AGE_MS`] old, or when
/// a listener polls. A request extending a run costs a lock and a comparison.
///
/// It also remembers the counter of the last origin the policy does not list exactly
/// (one a wildcard or regex allowed, or a refused one) that this worker counted, so that
/// a browser app calling again and again from such an origin does not take the table's
/// lock, shared by every worker, on each request.
#[derive(Default)]
pub(crate) struct WorkerEvents {
    run: Mutex<Option<(Allowed, u64)>>,
    last_seen: Mutex<Option<Arc<OriginCounter>>>,
}

impl std::fmt::Debug for WorkerEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerEvents").finish_non_exhaustive()
    }
}

impl WorkerEvents {
    /// Takes the run, to be queued.
    fn take(&self) -> Option<(Allowed, u64)> {
        lock(&self.run).take()
    }
}

/// The counter of `origin` (not listed exactly), from a worker's memory of the last one
/// (`last`) or else from `bus`'s table, which it then remembers. Counters are never
/// removed from that table, so the one remembered stays the origin's counter.
fn remembered_counter<'a>(
    last: &'a mut Option<Arc<OriginCounter>>,
    bus: &EventBus,
    origin: &str,
) -> &'a OriginCounter {
    if last.as_ref().is_none_or(|c| *c.origin != *origin) {
        // Replaced even by `(other)`, which then stands for every untracked origin.
        *last = None;
    }
    last.get_or_insert_with(|| bus.seen_counter(origin))
}

/// The counters of one origin, updated without a lock.
///
/// An origin listed exactly in the policy has its counter bound into the compiled policy
/// (see [`EventBus::listed_counter`]), so counting an allowed request from it is a few
/// atomic adds: no lock, no lookup, no text.
#[derive(Debug)]
pub(crate) struct OriginCounter {
    /// The origin, shared with the allow events sent to listeners.
    origin: Arc<str>,
    allowed: AtomicU64,
    denied: AtomicU64,
    would_deny: AtomicU64,
    /// Unix ms; 0 = never.
    last_seen_ms: AtomicU64,
    /// Only refusals take this lock.
    last_reason: Mutex<Option<String>>,
}

impl OriginCounter {
    fn new(origin: Arc<str>) -> Arc<Self> {
        Arc::new(OriginCounter {
            origin,
            allowed: AtomicU64::new(0),
            denied: AtomicU64::new(0),
            would_deny: AtomicU64::new(0),
            last_seen_ms: AtomicU64::new(0),
            last_reason: Mutex::new(None),
        })
    }

    fn count(&self, decision: &Decision, at_ms: u64) {
        // A plain store, not a read-modify-write: two workers racing within a millisecond
        // may leave the earlier of their two times, which is fine for "last seen".
        self.last_seen_ms.store(at_ms, Ordering::Relaxed);
        match decision.verdict() {
            Verdict::Allow => &self.allowed,
            Verdict::Deny => &self.denied,
            Verdict::WouldDeny => &self.would_deny,
        }
        .fetch_add(1, Ordering::Relaxed);
        if let Some(reason) = decision.reason() {
            *lock(&self.last_reason) =
                Some(clip(Cow::Owned(reason.to_string()), MAX_PATH_TEXT).into_owned());
        }
    }

    /// Adds these counts to `stats` (an origin can have two counters: one bound while it
    /// was listed, one for the requests it made while it was not).
    fn add_to(&self, stats: &mut OriginStats) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        stats.allowed += get(&self.allowed);
        stats.denied += get(&self.denied);
        stats.would_deny += get(&self.would_deny);
        let seen = get(&self.last_seen_ms);
        let reason = lock(&self.last_reason).clone();
        if reason.is_some() && (seen >= stats.last_seen_ms || stats.last_reason.is_none()) {
            stats.last_reason = reason;
        }
        stats.last_seen_ms = stats.last_seen_ms.max(seen);
    }

    fn is_other(&self) -> bool {
        &*self.origin == OTHER
    }
}

/// The fan-out of events to listeners, the replay ring and the counters.
pub(crate) struct EventBus {
    /// Read on every request; replaced whole on (un)subscribe.
    listeners: ArcSwap<Vec<Arc<Listener>>>,
    /// `listeners.len()`, read first so that a request with no one listening does not
    /// even load the list.
    listener_count: AtomicUsize,
    /// Every worker's slot for its run of allows (see [`WorkerEvents`]).
    workers: Mutex<Vec<Arc<WorkerEvents>>>,
    /// Recent refusals and policy changes (and allows while listened to).
    recent: Mutex<VecDeque<Arc<Event>>>,
    /// Decisions on requests without an origin (`Host` refusals); the rest are in the
    /// origin counters.
    allowed: AtomicU64,
    denied: AtomicU64,
    would_deny: AtomicU64,
    dropped: AtomicU64,
    /// Requests to a `guard = false` route: counted, never evented one by one.
    unguarded: AtomicU64,
    /// The bytes all listeners' queues may hold together.
    budget: Arc<Budget>,
    /// Counters of origins listed exactly in a policy this bus served: chosen by the
    /// operator, so not capped.
    listed: Mutex<HashMap<Arc<str>, Arc<OriginCounter>>>,
    /// Counters of every other origin seen: chosen by whoever sends requests, so capped
    /// at [`MAX_TRACKED_ORIGINS`], the rest counted together as `(other)`.
    seen: Mutex<HashMap<Arc<str>, Arc<OriginCounter>>>,
    /// Refusals per `Host` not in `allowed_hosts`, keyed by the lower-cased, clipped
    /// value: chosen by whoever sends requests, so capped at [`MAX_TRACKED_HOSTS`], the
    /// rest counted together as `(other)`.
    hosts: Mutex<HashMap<Box<str>, HostStats>>,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("listeners", &self.listeners.load().len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every update below is a whole-value write; a panic elsewhere cannot tear it.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl EventBus {
    pub(crate) fn new() -> Arc<Self> {
        Self::with_budget(ALL_LISTENERS_BYTES)
    }

    /// A bus whose listeners may hold `cap` bytes together.
    fn with_budget(cap: usize) -> Arc<Self> {
        Arc::new(EventBus {
            listeners: ArcSwap::from_pointee(Vec::new()),
            listener_count: AtomicUsize::new(0),
            workers: Mutex::new(Vec::new()),
            recent: Mutex::new(VecDeque::with_capacity(MAX_REPLAY)),
            allowed: AtomicU64::new(0),
            denied: AtomicU64::new(0),
            would_deny: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            unguarded: AtomicU64::new(0),
            budget: Budget::new(cap),
            listed: Mutex::new(HashMap::default()),
            seen: Mutex::new(HashMap::default()),
            hosts: Mutex::new(HashMap::default()),
        })
    }

    /// A slot for one worker's runs of allows, passed back to [`EventBus::record`] with
    /// each of its requests.
    pub(crate) fn worker(&self) -> Arc<WorkerEvents> {
        let worker = Arc::new(WorkerEvents::default());
        let mut workers = lock(&self.workers);
        self.retire_workers(&mut workers);
        workers.push(Arc::clone(&worker));
        worker
    }

    /// Queues every worker's run of allows for the listeners (called as they poll).
    pub(crate) fn queue_worker_runs(&self) {
        let mut workers = lock(&self.workers);
        for worker in workers.iter() {
            if let Some(run) = worker.take() {
                self.queue_run(run);
            }
        }
        self.retire_workers(&mut workers);
    }

    /// Drops the slots of workers that are gone, queuing their last runs.
    fn retire_workers(&self, workers: &mut Vec<Arc<WorkerEvents>>) {
        workers.retain(|worker| {
            let gone = Arc::strong_count(worker) == 1;
            if gone && let Some(run) = worker.take() {
                self.queue_run(run);
            }
            !gone
        });
    }

    /// Offers a run of allows to every listener; one without room misses all of it.
    fn queue_run(&self, (allowed, count): (Allowed, u64)) {
        // Cloned only for a listener with room.
        self.fan_out(&self.listeners.load(), count, allowed.cost(), || {
            Item::Allowed(allowed.clone(), count)
        });
    }

    /// The counter of an origin listed exactly in a policy, to bind into that policy.
    pub(crate) fn listed_counter(&self, origin: &str) -> Arc<OriginCounter> {
        let mut listed = lock(&self.listed);
        if let Some(counter) = listed.get(origin) {
            return Arc::clone(counter);
        }
        let origin: Arc<str> = origin.into();
        let counter = OriginCounter::new(Arc::clone(&origin));
        listed.insert(origin, Arc::clone(&counter));
        counter
    }

    /// Forgets listed counters that no policy holds any more: those never used at once,
    /// and beyond [`MAX_TRACKED_ORIGINS`] of them the longest unseen. Called after a new
    /// policy is bound, so a file whose origins keep changing does not grow the table
    /// without end; a policy still serving (a worker's copy) keeps its counters alive, so
    /// no count is lost.
    pub(crate) fn forget_unlisted(&self) {
        let mut listed = lock(&self.listed);
        let retired = |c: &Arc<OriginCounter>| Arc::strong_count(c) == 1;
        listed.retain(|_, c| !retired(c) || c.last_seen_ms.load(Ordering::Relaxed) > 0);
        let mut kept: Vec<(u64, Arc<str>)> = listed
            .iter()
            .filter(|(_, c)| retired(c))
            .map(|(k, c)| (c.last_seen_ms.load(Ordering::Relaxed), Arc::clone(k)))
            .collect();
        if kept.len() > MAX_TRACKED_ORIGINS {
            kept.sort_unstable();
            for (_, origin) in &kept[..kept.len() - MAX_TRACKED_ORIGINS] {
                listed.remove(origin);
            }
        }
    }

    /// The counter of an origin not bound into the policy (or `(other)` once full).
    fn seen_counter(&self, origin: &str) -> Arc<OriginCounter> {
        let mut seen = lock(&self.seen);
        if let Some(counter) = seen.get(origin) {
            return Arc::clone(counter);
        }
        let key: Arc<str> = if seen.len() >= MAX_TRACKED_ORIGINS {
            OTHER.into()
        } else {
            origin.into()
        };
        Arc::clone(
            seen.entry(Arc::clone(&key))
                .or_insert_with(|| OriginCounter::new(key)),
        )
    }

    /// [`EventBus::record_routed`] for a decision by the top-level policy.
    #[cfg(test)]
    pub(crate) fn record(
        &self,
        worker: &WorkerEvents,
        decision: &Decision,
        bound: Option<&OriginCounter>,
        headers: &HeaderMap,
        method: &Method,
        path: &str,
    ) {
        self.record_routed(worker, decision, bound, headers, method, path, None);
    }

    /// Counts a request to a `guard = false` route (no decision was made, so no event).
    pub(crate) fn count_unguarded(&self) {
        self.unguarded.fetch_add(1, Ordering::Relaxed);
    }

    /// How many requests went to `guard = false` routes.
    pub(crate) fn unguarded(&self) -> u64 {
        self.unguarded.load(Ordering::Relaxed)
    }

    /// Records a decision on a request (called by the middleware for every request that
    /// carried `Origin`, and every `Host` refusal), made on the worker that owns `worker`
    /// by `route`'s policy (`None`: the top level). `bound` is the origin's counter when
    /// the policy lists it exactly.
    // One argument per part of the request the event reports; a struct would only be
    // built to be taken apart again on the request path.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_routed(
        &self,
        worker: &WorkerEvents,
        decision: &Decision,
        bound: Option<&OriginCounter>,
        headers: &HeaderMap,
        method: &Method,
        path: &str,
        route: Option<&Arc<str>>,
    ) {
        // The `Origin` header is looked up again only when its text is needed: not for an
        // allowed request from a listed origin (the usual case), whose counter has it.
        let origin = || headers.get(header::ORIGIN);
        let verdict = decision.verdict();
        let at_ms = now_ms();
        let text = || origin().map(|o| clip(header_text(o), MAX_ORIGIN_TEXT));
        // Without a bound counter the text is needed at once (to find the counter), and
        // kept for the event below rather than looked up twice.
        let unlisted = if bound.is_none() { text() } else { None };
        // The worker's own lock, taken only for an origin not listed exactly and held to
        // the end, so its counter is used where it is, with no clone.
        let mut last_seen = None;
        let counter = match bound {
            Some(counter) => Some(counter),
            None => unlisted.as_deref().map(|t| {
                let last = last_seen.insert(lock(&worker.last_seen));
                remembered_counter(last, self, t)
            }),
        };
        match counter {
            Some(counter) => counter.count(decision, at_ms),
            // No origin (a `Host` refusal): counted in the totals alone.
            None => {
                match verdict {
                    Verdict::Allow => &self.allowed,
                    Verdict::Deny => &self.denied,
                    Verdict::WouldDeny => &self.would_deny,
                }
                .fetch_add(1, Ordering::Relaxed);
            }
        }
        let preflight = matches!(
            decision,
            Decision::Preflight { .. }
                | Decision::Refuse {
                    preflight: true,
                    ..
                }
        );
        if verdict == Verdict::Allow {
            // Allows go to live listeners only: no replay ring, no text built.
            if self.listener_count.load(Ordering::Relaxed) == 0 {
                return; // Nobody listens, and allows are not kept for replay.
            }
            let Some(counter) = counter else { return };
            // Borrowed, not cloned: the usual request extends a run and needs no copy
            // (a clone would be an atomic add on a count every worker shares).
            let other;
            let origin = if counter.is_other() {
                // `(other)` is never bound, so the text was looked up above.
                other = unlisted.map_or_else(|| Arc::clone(&counter.origin), |t| Arc::from(&*t));
                &other
            } else {
                &counter.origin
            };
            self.extend_run(worker, origin, method, path, preflight, at_ms, route);
            return;
        }
        if let Decision::Refuse {
            reason: DenyReason::HostNotAllowed(host),
            ..
        } = decision
        {
            self.count_host(host, verdict, at_ms);
        }
        // This worker's run of allows came first: queue it first.
        if let Some(run) = worker.take() {
            self.queue_run(run);
        }
        self.publish(Event::Decision(DecisionEvent {
            at_ms,
            verdict,
            origin: match bound {
                Some(_) => text(),
                None => unlisted,
            }
            .map(Cow::into_owned),
            method: method.as_str().to_owned(),
            path: clip(Cow::Borrowed(path), MAX_PATH_TEXT).into_owned(),
            preflight,
            reason: decision
                .reason()
                .map(|r| clip(Cow::Owned(r.to_string()), MAX_PATH_TEXT).into_owned()),
            count: 1,
            route: route.map(|r| r.to_string()),
        }));
    }

    /// Counts a refusal of `host` (a `Host` not in `allowed_hosts`), by its lower-cased,
    /// clipped text, or under `(other)` once [`MAX_TRACKED_HOSTS`] are tracked.
    fn count_host(&self, host: &str, verdict: Verdict, at_ms: u64) {
        let key = clip(Cow::Owned(host.to_ascii_lowercase()), MAX_HOST_TEXT);
        let mut hosts = lock(&self.hosts);
        let key: Box<str> = if hosts.len() >= MAX_TRACKED_HOSTS && !hosts.contains_key(&*key) {
            crate::protocol::UNTRACKED_HOST.into()
        } else {
            key.into()
        };
        let stats = hosts.entry(key).or_insert_with_key(|k| HostStats {
            host: k.to_string(),
            ..HostStats::default()
        });
        match verdict {
            Verdict::WouldDeny => stats.would_deny += 1,
            _ => stats.denied += 1,
        }
        stats.last_seen_ms = stats.last_seen_ms.max(at_ms);
    }

    /// Refusals per `Host`, most refused first, at most `limit` of them.
    pub(crate) fn host_stats(&self, limit: usize) -> Vec<HostStats> {
        let mut stats: Vec<HostStats> = lock(&self.hosts).values().cloned().collect();
        stats.sort_by(|a, b| {
            (b.denied + b.would_deny, b.last_seen_ms, &a.host).cmp(&(
                a.denied + a.would_deny,
                a.last_seen_ms,
                &b.host,
            ))
        });
        stats.truncate(limit);
        stats
    }

    /// Counts an allow into `worker`'s run, or ends the run (queuing it) and starts one.
    #[allow(clippy::too_many_arguments)] // as `record_routed`
    fn extend_run(
        &self,
        worker: &WorkerEvents,
        origin: &Arc<str>,
        method: &Method,
        path: &str,
        preflight: bool,
        at_ms: u64,
        route: Option<&Arc<str>>,
    ) {
        let path = clip(Cow::Borrowed(path), MAX_PATH_TEXT);
        let mut run = lock(&worker.run);
        if let Some((first, count)) = run.as_mut()
            && first.is(origin, method, &path, preflight)
            && first.route.as_ref().map(Arc::as_ptr) == route.map(Arc::as_ptr)
            && at_ms < first.at_ms.saturating_add(RUN_MAX_AGE_MS)
        {
            *count += 1;
            return;
        }
        let allowed = Allowed {
            at_ms,
            origin: Arc::clone(origin),
            method: method.clone(),
            path: CompactString::from(&*path),
            preflight,
            route: route.cloned(),
        };
        let ended = run.replace((allowed, 1));
        drop(run); // Queue outside the worker's lock.
        if let Some(ended) = ended {
            self.queue_run(ended);
        }
    }

    /// Publishes an event: kept for replay and sent to every listener without waiting.
    pub(crate) fn publish(&self, event: Event) {
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
            }
        }
    }

    /// Subscribes, returning up to `replay` recent events and the live subscription.
    pub(crate) fn subscribe(self: &Arc<Self>, replay: usize) -> (Vec<Arc<Event>>, Subscription) {
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
        self.listener_count.fetch_add(1, Ordering::Relaxed);
        drop(recent);
        let subscription = Subscription {
            listener,
            bus: Arc::downgrade(self),
            reported: 0,
            in_flight: 0,
        };
        (replayed, subscription)
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
        self.listener_count.fetch_sub(removed, Ordering::Relaxed);
    }

    pub(crate) fn listener_count(&self) -> usize {
        self.listener_count.load(Ordering::Relaxed)
    }

    /// Totals: (allowed, denied, would-deny, dropped events). Every decision with an
    /// origin is in exactly one origin counter, so the totals are their sum (the request
    /// path then increments one counter, not two) plus the decisions without an origin.
    pub(crate) fn totals(&self) -> (u64, u64, u64, u64) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (mut allowed, mut denied, mut would_deny) =
            (get(&self.allowed), get(&self.denied), get(&self.would_deny));
        for counter in self.counters() {
            allowed += get(&counter.allowed);
            denied += get(&counter.denied);
            would_deny += get(&counter.would_deny);
        }
        (allowed, denied, would_deny, get(&self.dropped))
    }

    /// Every origin counter, listed and seen.
    fn counters(&self) -> Vec<Arc<OriginCounter>> {
        let mut all: Vec<Arc<OriginCounter>> = lock(&self.listed).values().cloned().collect();
        all.extend(lock(&self.seen).values().cloned());
        all
    }

    /// Per-origin counters, most refused first, at most `limit` of them.
    pub(crate) fn origin_stats(&self, limit: usize) -> Vec<OriginStats> {
        // Take the counters under the locks (requests take them), read them outside.
        let counters = self.counters();
        let mut by_origin: HashMap<&str, OriginStats> = HashMap::default();
        for counter in &counters {
            let stats = by_origin
                .entry(&counter.origin)
                .or_insert_with(|| OriginStats {
                    origin: counter.origin.to_string(),
                    ..OriginStats::default()
                });
            counter.add_to(stats);
        }
        // A listed origin no request came from is not news.
        let mut stats: Vec<OriginStats> = by_origin
            .into_values()
            .filter(|s| s.last_seen_ms > 0)
            .collect();
        stats.sort_by(|a, b| {
            (b.denied + b.would_deny, b.allowed, &a.origin).cmp(&(
                a.denied + a.would_deny,
                a.allowed,
                &b.origin,
            ))
        });
        stats.truncate(limit);
        stats
    }
}

/// Appends `event` to a batch about to be sent, folding it into the batch's last event
/// when both are the same decision (verdict, origin, method, path, preflight, reason): a
/// run of identical decisions travels as one event with a count, like `uniq -c`.
fn push_folded(batch: &mut Vec<Event>, event: &Event) {
    if let (Some(Event::Decision(last)), Event::Decision(next)) = (batch.last_mut(), event) {
        if same_decision(last, next) {
            last.count += next.count;
            return;
        }
    }
    batch.push(event.clone());
}

fn same_decision(a: &DecisionEvent, b: &DecisionEvent) -> bool {
    a.verdict == b.verdict
        && a.preflight == b.preflight
        && a.path == b.path
        && a.origin == b.origin
        && a.method == b.method
        && a.reason == b.reason
}

/// The time for events and counters, in Unix milliseconds, from the kernel's coarse clock
/// (a few ms of resolution): reading it is a few nanoseconds, where the precise clock costs
/// tens on every request, about a tenth of what the whole middleware costs.
#[cfg(target_os = "linux")]
fn now_ms() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_REALTIME_COARSE exists on every
    // Linux this crate supports (2.6.32 and later).
    if unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } != 0 {
        return unix_millis(SystemTime::now());
    }
    let secs = u64::try_from(ts.tv_sec).unwrap_or(0);
    let millis = u64::try_from(ts.tv_nsec).unwrap_or(0) / 1_000_000;
    secs.saturating_mul(1000).saturating_add(millis)
}

/// The time for events and counters, in Unix milliseconds.
#[cfg(not(target_os = "linux"))]
fn now_ms() -> u64 {
    unix_millis(SystemTime::now())
}

/// A header's text: borrowed when it is UTF-8 (the usual case, checked without copying),
/// lossy otherwise.
fn header_text(value: &HeaderValue) -> Cow<'_, str> {
    match std::str::from_utf8(value.as_bytes()) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(value.as_bytes()),
    }
}

/// `text`, cut to at most `max` bytes (on a character boundary) with `…` appended when cut.
fn clip(text: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &text[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decision::DenyReason;

    fn origin_headers(origin: &HeaderValue) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(header::ORIGIN, origin.clone());
        headers
    }

    fn refuse() -> Decision {
        Decision::Refuse {
            reason: DenyReason::OriginNotAllowed,
            preflight: false,
            enforced: true,
        }
    }

    #[test]
    fn origins_beyond_the_bound_are_counted_together() {
        let bus = EventBus::new();
        let w = bus.worker();
        for i in 0..MAX_TRACKED_ORIGINS + 10 {
            let origin = HeaderValue::from_str(&format!("https://o{i}.example")).unwrap();
            record_refusal(&bus, &w, &origin, "/mcp");
        }
        let stats = bus.origin_stats(usize::MAX);
        assert_eq!(stats.len(), MAX_TRACKED_ORIGINS + 1);
        assert_eq!(
            bus.origin_stats(MAX_REPORTED_ORIGINS).len(),
            MAX_REPORTED_ORIGINS
        );
        let other = stats.iter().find(|s| s.origin == OTHER).unwrap();
        assert_eq!(other.denied, 10);
        assert_eq!(bus.totals().1, (MAX_TRACKED_ORIGINS + 10) as u64);
    }

    fn refuse_host(bus: &EventBus, w: &WorkerEvents, host: &str, enforced: bool) {
        let decision = Decision::Refuse {
            reason: DenyReason::HostNotAllowed(host.to_owned()),
            preflight: false,
            enforced,
        };
        bus.record(w, &decision, None, &HeaderMap::new(), &Method::POST, "/mcp");
    }

    #[test]
    fn host_refusals_are_counted_per_host_case_folded_and_bounded() {
        let bus = EventBus::new();
        let w = bus.worker();
        refuse_host(&bus, &w, "Evil.example:8080", true);
        refuse_host(&bus, &w, "evil.example:8080", true);
        refuse_host(&bus, &w, "evil.example:8080", false);
        refuse_host(&bus, &w, "10.1.2.3:8080", true);
        // A missing or malformed Host names no host: totals only.
        let missing = Decision::Refuse {
            reason: DenyReason::HostMissing,
            preflight: false,
            enforced: true,
        };
        bus.record(&w, &missing, None, &HeaderMap::new(), &Method::GET, "/");
        let stats = bus.host_stats(usize::MAX);
        assert_eq!(stats.len(), 2, "{stats:?}");
        assert_eq!(
            (stats[0].host.as_str(), stats[0].denied, stats[0].would_deny),
            ("evil.example:8080", 2, 1)
        );
        assert!(stats[0].last_seen_ms > 0);
        assert_eq!(
            (stats[1].host.as_str(), stats[1].denied),
            ("10.1.2.3:8080", 1)
        );
        assert_eq!(bus.totals().1, 4, "host refusals stay in the totals");
        assert!(
            bus.origin_stats(usize::MAX).is_empty(),
            "no origin was sent"
        );

        let huge = "h".repeat(10_000);
        refuse_host(&bus, &w, &huge, true);
        let clipped = bus.host_stats(usize::MAX);
        assert!(
            clipped
                .iter()
                .all(|s| s.host.len() <= MAX_HOST_TEXT + '…'.len_utf8())
        );

        for i in 0..MAX_TRACKED_HOSTS + 10 {
            refuse_host(&bus, &w, &format!("h{i}.example"), true);
        }
        let stats = bus.host_stats(usize::MAX);
        assert_eq!(stats.len(), MAX_TRACKED_HOSTS + 1, "the rest in one bucket");
        let other = stats
            .iter()
            .find(|s| s.host == crate::protocol::UNTRACKED_HOST)
            .unwrap();
        assert_eq!(other.denied, 10 + 3, "beyond the bound, counted together");
        assert_eq!(bus.host_stats(MAX_REPORTED_HOSTS).len(), MAX_REPORTED_HOSTS);
        // A tracked host keeps its own counter once the table is full.
        refuse_host(&bus, &w, "evil.example:8080", true);
        let evil = bus.host_stats(usize::MAX);
        assert_eq!(
            evil.iter()
                .find(|s| s.host == "evil.example:8080")
                .unwrap()
                .denied,
            3
        );
    }

    fn decision(origin: &str, path: &str) -> Event {
        Event::Decision(DecisionEvent {
            at_ms: 1,
            verdict: Verdict::Allow,
            origin: Some(origin.into()),
            method: "POST".into(),
            path: path.into(),
            preflight: false,
            reason: None,
            count: 1,
            route: None,
        })
    }

    #[test]
    fn the_coarse_clock_agrees_with_the_precise_one() {
        let before = unix_millis(SystemTime::now());
        let coarse = now_ms();
        let after = unix_millis(SystemTime::now());
        // The coarse clock lags by at most its resolution (a tick, a few ms).
        assert!(
            coarse <= after && coarse + 50 >= before,
            "{before} {coarse} {after}"
        );
    }

    #[test]
    fn runs_of_identical_decisions_are_folded_with_a_count() {
        let mut batch = Vec::new();
        for event in [
            decision("https://a.example", "/mcp"),
            decision("https://a.example", "/mcp"),
            decision("https://a.example", "/mcp"),
            decision("https://b.example", "/mcp"),
            decision("https://a.example", "/mcp"),
            decision("https://a.example", "/health"),
        ] {
            push_folded(&mut batch, &event);
        }
        let counts: Vec<(String, String, u64)> = batch
            .iter()
            .map(|e| match e {
                Event::Decision(d) => (d.origin.clone().unwrap(), d.path.clone(), d.count),
                other => panic!("not a decision: {other:?}"),
            })
            .collect();
        assert_eq!(
            counts,
            [
                ("https://a.example".into(), "/mcp".into(), 3),
                ("https://b.example".into(), "/mcp".into(), 1),
                ("https://a.example".into(), "/mcp".into(), 1),
                ("https://a.example".into(), "/health".into(), 1),
            ]
        );
    }

    fn allow(origin: &'static str) -> (Decision, HeaderValue) {
        let value = HeaderValue::from_static(origin);
        (
            Decision::Allow {
                allow_origin: value.clone(),
            },
            value,
        )
    }

    /// Records an allowed request from `origin` (not bound to a listed counter).
    fn record_allow(
        bus: &EventBus,
        w: &WorkerEvents,
        origin: &HeaderValue,
        method: Method,
        path: &str,
    ) {
        let decision = Decision::Allow {
            allow_origin: origin.clone(),
        };
        bus.record(w, &decision, None, &origin_headers(origin), &method, path);
    }

    /// Records a refused POST from `origin`.
    fn record_refusal(bus: &EventBus, w: &WorkerEvents, origin: &HeaderValue, path: &str) {
        bus.record(
            w,
            &refuse(),
            None,
            &origin_headers(origin),
            &Method::POST,
            path,
        );
    }

    #[test]
    fn allows_reach_listeners_raw_and_leave_as_folded_events() {
        let bus = EventBus::new();
        let w = bus.worker();
        let (_, mut sub) = bus.subscribe(0);
        let app = HeaderValue::from_static("https://app.example");
        for _ in 0..100 {
            record_allow(&bus, &w, &app, Method::POST, "/mcp");
        }
        record_refusal(
            &bus,
            &w,
            &HeaderValue::from_static("https://evil.example"),
            "/mcp",
        );
        record_allow(&bus, &w, &app, Method::GET, "/mcp");
        record_allow(&bus, &w, &app, Method::GET, "/mcp");
        let batch = sub.queued(usize::MAX);
        let summary: Vec<(Verdict, Option<&str>, &str, &str, u64)> = batch
            .iter()
            .map(|e| match e {
                Event::Decision(d) => (
                    d.verdict,
                    d.origin.as_deref(),
                    d.method.as_str(),
                    d.path.as_str(),
                    d.count,
                ),
                other => panic!("not a decision: {other:?}"),
            })
            .collect();
        assert_eq!(
            summary,
            [
                (
                    Verdict::Allow,
                    Some("https://app.example"),
                    "POST",
                    "/mcp",
                    100
                ),
                (
                    Verdict::Deny,
                    Some("https://evil.example"),
                    "POST",
                    "/mcp",
                    1
                ),
                (
                    Verdict::Allow,
                    Some("https://app.example"),
                    "GET",
                    "/mcp",
                    2
                ),
            ]
        );
        // Allows are counted per origin whether or not anyone listens.
        drop(sub);
        record_allow(&bus, &w, &app, Method::POST, "/mcp");
        let stats = bus.origin_stats(usize::MAX);
        let app_stats = stats
            .iter()
            .find(|s| s.origin == "https://app.example")
            .unwrap();
        assert_eq!(app_stats.allowed, 103);
        assert_eq!(bus.totals(), (103, 1, 0, 0));
    }

    #[test]
    fn counters_of_origins_no_policy_lists_are_forgotten_unless_used() {
        let bus = EventBus::new();
        let w = bus.worker();
        let used = bus.listed_counter("https://used.example");
        let unused = bus.listed_counter("https://unused.example");
        let (allowed, origin) = allow("https://used.example");
        bus.record(
            &w,
            &allowed,
            Some(&used),
            &origin_headers(&origin),
            &Method::POST,
            "/",
        );
        // Still bound (held by a policy): kept, used or not.
        bus.forget_unlisted();
        assert_eq!(lock(&bus.listed).len(), 2);
        // No policy holds them any more: the unused one goes, the used one's counts stay.
        drop((used, unused));
        bus.forget_unlisted();
        assert_eq!(lock(&bus.listed).len(), 1);
        let stats = bus.origin_stats(usize::MAX);
        assert_eq!(
            (stats[0].origin.as_str(), stats[0].allowed),
            ("https://used.example", 1)
        );
        // Used but retired counters are bounded too.
        for i in 0..MAX_TRACKED_ORIGINS + 10 {
            let counter = bus.listed_counter(&format!("https://o{i}.example"));
            bus.record(
                &w,
                &allowed,
                Some(&counter),
                &origin_headers(&origin),
                &Method::POST,
                "/",
            );
        }
        bus.forget_unlisted();
        assert_eq!(lock(&bus.listed).len(), MAX_TRACKED_ORIGINS);
    }

    /// What an allowed POST from `origin` to `path` costs a listener's share.
    fn allow_cost(origin: &str, path: &str) -> usize {
        Allowed {
            at_ms: 0,
            origin: origin.into(),
            method: Method::POST,
            path: path.into(),
            preflight: false,
            route: None,
        }
        .cost()
    }

    #[test]
    fn a_full_listener_misses_whole_runs_and_counts_their_decisions() {
        let bus = EventBus::new();
        let w = bus.worker();
        let (_, mut sub) = bus.subscribe(0);
        let (allowed, app) = allow("https://app.example");
        let headers = origin_headers(&app);
        // As many allows as one listener's share holds, the paths all the same length.
        let fits = queue::LISTENER_BYTES / allow_cost("https://app.example", "/a");
        // Alternating paths: every allow ends the run before it.
        for i in 0..fits {
            let path = if i % 2 == 0 { "/a" } else { "/b" };
            bus.record(&w, &allowed, None, &headers, &Method::POST, path);
        }
        // This run queues the last one, which fills the queue, and is pending itself.
        for _ in 0..5 {
            bus.record(&w, &allowed, None, &headers, &Method::POST, "/c");
        }
        assert_eq!(sub.take_dropped(), None);
        // A refusal queues the run before it: no room for either.
        record_refusal(&bus, &w, &app, "/c");
        assert_eq!(sub.take_dropped(), Some((6, 6)));
        let batch = sub.queued(usize::MAX);
        assert_eq!(batch.len(), fits);
        assert!(
            batch
                .iter()
                .all(|e| matches!(e, Event::Decision(d) if d.count == 1))
        );
    }

    #[test]
    fn each_workers_run_reaches_listeners_and_none_is_lost_when_a_worker_goes() {
        let bus = EventBus::new();
        let (one, two) = (bus.worker(), bus.worker());
        let (_, mut sub) = bus.subscribe(0);
        let (allowed, app) = allow("https://app.example");
        let headers = origin_headers(&app);
        for _ in 0..300 {
            bus.record(&one, &allowed, None, &headers, &Method::POST, "/mcp");
            bus.record(&two, &allowed, None, &headers, &Method::POST, "/mcp");
        }
        // Worker two goes away with its run pending.
        drop(two);
        let _three = bus.worker();
        assert_eq!(
            lock(&bus.workers).len(),
            2,
            "the slot of a worker gone is dropped"
        );
        let total: u64 = sub
            .queued(usize::MAX)
            .iter()
            .map(|e| match e {
                Event::Decision(d) => d.count,
                other => panic!("not a decision: {other:?}"),
            })
            .sum();
        assert_eq!(total, 600);
    }

    #[test]
    fn a_worker_remembers_the_counter_of_the_last_unlisted_origin_and_counts_stay_exact() {
        let bus = EventBus::new();
        let (one, two) = (bus.worker(), bus.worker());
        let a = HeaderValue::from_static("https://a.example");
        let b = HeaderValue::from_static("https://b.example");
        for _ in 0..3 {
            record_allow(&bus, &one, &a, Method::POST, "/mcp");
            record_allow(&bus, &two, &a, Method::POST, "/mcp");
        }
        record_allow(&bus, &one, &b, Method::POST, "/mcp");
        record_allow(&bus, &two, &a, Method::POST, "/mcp");
        let remembered = |w: &WorkerEvents| lock(&w.last_seen).as_ref().map(|c| c.origin.clone());
        assert_eq!(remembered(&one).as_deref(), Some("https://b.example"));
        assert_eq!(remembered(&two).as_deref(), Some("https://a.example"));
        // Both workers count into the one counter of each origin.
        let stats = bus.origin_stats(usize::MAX);
        let allowed = |o: &str| stats.iter().find(|s| s.origin == o).map(|s| s.allowed);
        assert_eq!(
            (allowed("https://a.example"), allowed("https://b.example")),
            (Some(7), Some(1))
        );
        assert_eq!(lock(&bus.seen).len(), 2);
    }

    #[test]
    fn an_old_run_is_queued_by_the_next_request_without_a_poll() {
        let bus = EventBus::new();
        let w = bus.worker();
        let (_, sub) = bus.subscribe(0);
        let (allowed, app) = allow("https://app.example");
        let headers = origin_headers(&app);
        bus.record(&w, &allowed, None, &headers, &Method::POST, "/mcp");
        bus.record(&w, &allowed, None, &headers, &Method::POST, "/mcp");
        assert_eq!(sub.listener.queue.len(), 0, "a young run is still folding");
        std::thread::sleep(Duration::from_millis(RUN_MAX_AGE_MS * 3));
        bus.record(&w, &allowed, None, &headers, &Method::POST, "/mcp");
        assert_eq!(
            sub.listener.queue.len(),
            1,
            "the old run is queued, the new one folds"
        );
        let Some((Item::Allowed(_, count), _)) = sub.listener.queue.pop() else {
            panic!("a run of allows expected")
        };
        assert_eq!(count, 2);
    }

    #[test]
    fn huge_origins_and_paths_are_clipped_in_events_and_counters() {
        let bus = EventBus::new();
        let w = bus.worker();
        let (_, mut sub) = bus.subscribe(0);
        let origin =
            HeaderValue::from_str(&format!("https://{}.example", "a".repeat(100_000))).unwrap();
        let path = format!("/{}", "p".repeat(100_000));
        record_refusal(&bus, &w, &origin, &path);
        let batch = sub.queued(10);
        let [event] = batch.as_slice() else {
            panic!("one event expected: {batch:?}")
        };
        let Event::Decision(d) = event else {
            panic!("not a decision")
        };
        let origin = d.origin.as_deref().unwrap();
        assert!(origin.len() <= MAX_ORIGIN_TEXT + '…'.len_utf8() && origin.ends_with('…'));
        assert!(d.path.len() <= MAX_PATH_TEXT + '…'.len_utf8() && d.path.ends_with('…'));
        let stats = bus.origin_stats(usize::MAX);
        assert!(stats[0].origin.len() <= MAX_ORIGIN_TEXT + '…'.len_utf8());
        // A whole event line stays far below the protocol's line limit.
        let line =
            serde_json::to_string(&crate::protocol::ServerLine::Event(event.clone())).unwrap();
        assert!(
            line.len() < crate::protocol::MAX_LINE / 16,
            "{} bytes",
            line.len()
        );
    }

    #[test]
    fn a_full_listener_drops_and_counts_and_the_ring_is_bounded() {
        let bus = EventBus::new();
        let w = bus.worker();
        let (_, mut sub) = bus.subscribe(0);
        let event = Event::Decision(DecisionEvent {
            at_ms: 0,
            verdict: Verdict::Deny,
            origin: None,
            method: "GET".into(),
            path: "/".into(),
            preflight: false,
            reason: refuse().reason().map(|r| r.to_string()),
            count: 1,
            route: None,
        });
        let fits = queue::LISTENER_BYTES / event_cost(&event);
        for _ in 0..fits + 5 {
            bus.record(&w, &refuse(), None, &HeaderMap::new(), &Method::GET, "/");
        }
        assert_eq!(sub.take_dropped(), Some((5, 5)));
        assert_eq!(sub.take_dropped(), None);
        // Refusals without an origin (Host refusals) are in the totals all the same.
        assert_eq!(bus.totals(), (0, fits as u64 + 5, 0, 5));
        let (replay, _second) = bus.subscribe(10_000);
        assert_eq!(replay.len(), MAX_REPLAY);
        drop(sub);
        assert_eq!(bus.listener_count(), 1);
    }

    /// A refused request from a different long origin each time, to a long path.
    fn record_long_refusal(bus: &EventBus, w: &WorkerEvents, n: usize) {
        let origin =
            HeaderValue::from_str(&format!("https://{}{n}.evil.example", "x".repeat(200))).unwrap();
        record_refusal(bus, w, &origin, &format!("/mcp/{}", "p".repeat(300)));
    }

    /// An allowed request from a different origin each time, so that each ends the run
    /// before it.
    fn record_distinct_allow(bus: &EventBus, w: &WorkerEvents, n: usize) {
        let origin = HeaderValue::from_str(&format!("https://app{n}.example")).unwrap();
        record_allow(bus, w, &origin, Method::POST, "/mcp");
    }

    #[test]
    fn listeners_together_never_hold_more_than_the_cap_however_many_attach() {
        const CAP: usize = 64 * 1024;
        let bus = EventBus::with_budget(CAP);
        let held =
            |subs: &[Subscription]| -> usize { subs.iter().map(|s| s.listener.queue.held()).sum() };
        let mut subs: Vec<Subscription> = (0..8).map(|_| bus.subscribe(0).1).collect();
        // Two workers on two threads flood never-reading listeners with large events
        // while a third thread checks what the listeners hold.
        let flood = |subs: &[Subscription], from: usize| {
            let done = std::sync::atomic::AtomicBool::new(false);
            std::thread::scope(|scope| {
                for t in 0..2 {
                    let (bus, done) = (&bus, &done);
                    scope.spawn(move || {
                        let w = bus.worker();
                        for i in 0..2_000 {
                            let n = from + t * 10_000 + i;
                            record_long_refusal(bus, &w, n);
                            record_distinct_allow(bus, &w, n);
                        }
                        bus.queue_worker_runs();
                        done.store(true, Ordering::Relaxed);
                    });
                }
                while !done.load(Ordering::Relaxed) {
                    assert!(held(subs) <= CAP, "{} bytes held", held(subs));
                    std::thread::yield_now();
                }
            });
            assert!(held(subs) <= CAP && bus.budget.used() == held(subs));
        };
        flood(&subs, 0);
        // Each took its share of the cap: together they hold nearly all of it.
        let share = bus.budget.share(8);
        assert_eq!(share, CAP / 8);
        for sub in &subs {
            let held = sub.listener.queue.held();
            assert!(held <= share && held > share - 1024, "{held} of {share}");
        }
        // More attach: each one's share shrinks, and all of them still share one cap.
        subs.extend((0..24).map(|_| bus.subscribe(0).1));
        assert_eq!(bus.budget.share(32), CAP / 32);
        flood(&subs, 100_000);
        // One reads: what it held goes back, and its share of new events fits again.
        let before = held(&subs);
        let mut batch = subs[0].queued(usize::MAX);
        while !batch.is_empty() {
            batch = subs[0].queued(usize::MAX);
        }
        assert_eq!(subs[0].listener.queue.held(), 0);
        assert!(held(&subs) < before);
        let w = bus.worker();
        record_long_refusal(&bus, &w, 999_999);
        assert_eq!(subs[0].queued(10).len(), 1);
        // All gone: nothing is held any more, queued or in flight.
        drop(subs);
        assert_eq!(bus.budget.used(), 0);
    }

    #[test]
    fn a_slow_listener_is_told_how_many_decisions_it_missed_and_a_reading_one_misses_none() {
        let bus = EventBus::with_budget(32 * 1024);
        let w = bus.worker();
        let (_, mut slow) = bus.subscribe(0);
        let (_, mut reading) = bus.subscribe(0);
        let decisions = |batch: &[Event]| -> u64 {
            batch
                .iter()
                .map(|e| match e {
                    Event::Decision(d) => d.count,
                    other => panic!("not a decision: {other:?}"),
                })
                .sum()
        };
        let app = HeaderValue::from_static("https://app.example");
        let (mut sent, mut read) = (0u64, 0u64);
        for round in 0..200 {
            // A run of allows, then a refusal that ends it.
            for _ in 0..round % 7 + 1 {
                record_allow(&bus, &w, &app, Method::POST, "/mcp");
                sent += 1;
            }
            record_long_refusal(&bus, &w, round);
            sent += 1;
            let batch = reading.queued(usize::MAX);
            // Taken but not yet written: still held against the share.
            assert!(reading.listener.queue.held() > 0);
            read += decisions(&batch);
        }
        bus.queue_worker_runs();
        read += decisions(&reading.queued(usize::MAX));
        assert_eq!((read, reading.take_dropped()), (sent, None));
        let (missed, total) = slow.take_dropped().expect("the slow listener missed some");
        assert_eq!(missed, total);
        let mut kept = 0;
        loop {
            let batch = slow.queued(usize::MAX);
            if batch.is_empty() {
                break;
            }
            kept += decisions(&batch);
        }
        assert!(kept > 0, "it kept what fitted");
        // Every decision reached the slow listener or was counted as missed.
        assert_eq!(kept + missed, sent);
        assert_eq!(bus.totals().3, missed);
    }
}
