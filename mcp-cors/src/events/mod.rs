//! Events: what the guard decided, told to whoever listens.
//!
//! The request path must not pay for listeners it does not have and must never wait on a
//! slow one. So:
//! - counters are always kept, and live apart ([`crate::counters`]);
//! - refusals and policy changes always go into a bounded ring, replayed to new
//!   subscribers; allows are only turned into events while someone listens (and can take
//!   them), and go to live listeners only ([`fanout`]);
//! - each listener has a queue bounded in bytes, and all listeners together share one cap
//!   ([`queue`]);
//! - while someone listens, each worker folds its run of identical allows in a slot of
//!   its own and queues the run as one item when it ends ([`runs`]), so the request path
//!   pays an uncontended lock per allow, not a queued item;
//! - the time is the kernel's coarse clock ([`clock`]).

use std::borrow::Cow;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderValue};

use crate::counters::{Counters, OriginCounter};
use crate::decision::{Decision, DenyReason, Verdict};
use crate::protocol::{DecisionEvent, Event, HostStats, OriginStats};
use crate::text::clip;

mod clock;
mod fanout;
mod queue;
mod runs;

pub(crate) use crate::counters::{MAX_REPORTED_HOSTS, MAX_REPORTED_ORIGINS};
pub(crate) use fanout::Subscription;
pub(crate) use runs::WorkerEvents;

use fanout::Fanout;
use queue::ALL_LISTENERS_BYTES;
use runs::{Allowed, Run};

/// How often a listener with nothing queued looks again. Listeners poll rather than being
/// woken, so that a request never pays for waking another thread (a system call).
pub(crate) const LISTENER_POLL: Duration = Duration::from_millis(10);
/// Longest origin kept as a counter key or in an event. A browser's origin is at most
/// about 290 bytes (scheme, 253-byte host, port); anything longer is refused as malformed
/// and clipped here, so a hostile header cannot make events or counters large.
pub(crate) const MAX_ORIGIN_TEXT: usize = 300;
/// Longest path (or reason) kept in an event.
pub(crate) const MAX_PATH_TEXT: usize = 1024;

/// What a listener's queue carries: a shared event (refusals, policy changes), or an
/// allowed decision kept raw until the listener's own thread turns it into an event.
/// Allows are the bulk of traffic; so a listener costs the request path no allocation
/// for a short path, nothing formatted, no text copied but the path.
enum Item {
    Event(Arc<Event>),
    /// A run of identical allows, and how many.
    Allowed(Allowed, u64),
}

/// The fan-out of events to listeners, the workers' runs of allows, and the counters.
pub(crate) struct EventBus {
    fanout: Fanout,
    /// Every worker's slot for its run of allows (see [`WorkerEvents`]).
    workers: Mutex<Vec<Arc<WorkerEvents>>>,
    counters: Counters,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("listeners", &self.fanout.listener_count())
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
            fanout: Fanout::new(cap),
            workers: Mutex::new(Vec::new()),
            counters: Counters::default(),
        })
    }

    /// The counters this bus's decisions are counted in.
    pub(crate) fn counters(&self) -> &Counters {
        &self.counters
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
    fn queue_run(&self, (allowed, count): Run) {
        // Cloned only for a listener with room.
        self.fanout.offer(count, allowed.cost(), || {
            Item::Allowed(allowed.clone(), count)
        });
    }

    /// The counter of an origin listed exactly in a policy, to bind into that policy.
    #[cfg(test)]
    pub(crate) fn listed_counter(&self, origin: &str) -> Arc<OriginCounter> {
        self.counters.listed_counter(origin)
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
        self.counters.count_unguarded();
    }

    /// How many requests went to `guard = false` routes.
    pub(crate) fn unguarded(&self) -> u64 {
        self.counters.unguarded()
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
        let at_ms = clock::now_ms();
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
                let last = last_seen.insert(worker.last_seen());
                runs::remembered_counter(last, &self.counters, t)
            }),
        };
        let reason = decision.reason();
        match counter {
            Some(counter) => {
                counter.count(verdict, reason.map(|r| r as &dyn std::fmt::Display), at_ms)
            }
            // No origin (a `Host` refusal): counted in the totals alone.
            None => self.counters.count_without_origin(verdict),
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
            if !self.fanout.is_listened() {
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
            if let Some(ended) = worker.extend(origin, method, path, preflight, at_ms, route) {
                self.queue_run(ended);
            }
            return;
        }
        if let Decision::Refuse {
            reason: DenyReason::HostNotAllowed(host),
            ..
        } = decision
        {
            self.counters.count_host(host, verdict, at_ms);
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
            reason: reason.map(|r| clip(Cow::Owned(r.to_string()), MAX_PATH_TEXT).into_owned()),
            count: 1,
            route: route.map(|r| r.to_string()),
        }));
    }

    /// Refusals per `Host`, most refused first, at most `limit` of them.
    pub(crate) fn host_stats(&self, limit: usize) -> Vec<HostStats> {
        self.counters.host_stats(limit)
    }

    /// Publishes an event: kept for replay and sent to every listener without waiting.
    pub(crate) fn publish(&self, event: Event) {
        self.fanout.publish(event);
    }

    /// Subscribes, returning up to `replay` recent events and the live subscription.
    pub(crate) fn subscribe(self: &Arc<Self>, replay: usize) -> (Vec<Arc<Event>>, Subscription) {
        fanout::subscribe(self, replay)
    }

    pub(crate) fn listener_count(&self) -> usize {
        self.fanout.listener_count()
    }

    /// Totals: (allowed, denied, would-deny, dropped events).
    pub(crate) fn totals(&self) -> (u64, u64, u64, u64) {
        let (allowed, denied, would_deny) = self.counters.totals();
        (allowed, denied, would_deny, self.fanout.dropped())
    }

    /// Per-origin counters, most refused first, at most `limit` of them.
    pub(crate) fn origin_stats(&self, limit: usize) -> Vec<OriginStats> {
        self.counters.origin_stats(limit)
    }
}

/// A header's text: borrowed when it is UTF-8 (the usual case, checked without copying),
/// lossy otherwise.
fn header_text(value: &HeaderValue) -> Cow<'_, str> {
    match std::str::from_utf8(value.as_bytes()) {
        Ok(text) => Cow::Borrowed(text),
        Err(_) => String::from_utf8_lossy(value.as_bytes()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::{MAX_HOST_TEXT, MAX_TRACKED_HOSTS, MAX_TRACKED_ORIGINS, OTHER};
    use crate::decision::DenyReason;
    use crate::protocol::MAX_REPLAY;
    use fanout::event_cost;
    use runs::{RUN_MAX_AGE_MS, push_folded};
    use std::sync::atomic::Ordering;

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
        bus.counters.forget_unlisted();
        assert_eq!(bus.counters.kept().0, 2);
        // No policy holds them any more: the unused one goes, the used one's counts stay.
        drop((used, unused));
        bus.counters.forget_unlisted();
        assert_eq!(bus.counters.kept().0, 1);
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
        bus.counters.forget_unlisted();
        assert_eq!(bus.counters.kept().0, MAX_TRACKED_ORIGINS);
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
        let remembered = |w: &WorkerEvents| w.last_seen().as_ref().map(|c| c.origin.clone());
        assert_eq!(remembered(&one).as_deref(), Some("https://b.example"));
        assert_eq!(remembered(&two).as_deref(), Some("https://a.example"));
        // Both workers count into the one counter of each origin.
        let stats = bus.origin_stats(usize::MAX);
        let allowed = |o: &str| stats.iter().find(|s| s.origin == o).map(|s| s.allowed);
        assert_eq!(
            (allowed("https://a.example"), allowed("https://b.example")),
            (Some(7), Some(1))
        );
        assert_eq!(bus.counters.kept().1, 2);
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
            assert!(held(subs) <= CAP && bus.fanout.budget.used() == held(subs));
        };
        flood(&subs, 0);
        // Each took its share of the cap: together they hold nearly all of it.
        let share = bus.fanout.budget.share(8);
        assert_eq!(share, CAP / 8);
        for sub in &subs {
            let held = sub.listener.queue.held();
            assert!(held <= share && held > share - 1024, "{held} of {share}");
        }
        // More attach: each one's share shrinks, and all of them still share one cap.
        subs.extend((0..24).map(|_| bus.subscribe(0).1));
        assert_eq!(bus.fanout.budget.share(32), CAP / 32);
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
        assert_eq!(bus.fanout.budget.used(), 0);
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
