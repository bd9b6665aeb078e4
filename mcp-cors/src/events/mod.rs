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
//! - each refusal is also a rate-limited `warn` log line ([`log`]);
//! - the time is the kernel's coarse clock ([`clock`]).

use std::borrow::Cow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderValue};

use crate::counters::{Counters, OriginCounter};
use crate::decision::{Decision, DenyReason, Verdict};
use crate::forwarded::Peer;
use crate::protocol::{DecisionEvent, Event, HostStats, OriginStats};
use crate::sync::lock;
use crate::text::clip;

mod clock;
mod fanout;
mod log;
mod queue;
mod runs;

pub(crate) use crate::counters::{MAX_REPORTED_HOSTS, MAX_REPORTED_ORIGINS};
pub(crate) use clock::now_ms;
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
    /// The rate limiter of the log lines that explain refusals.
    log: log::RefusalLog,
}

impl std::fmt::Debug for EventBus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventBus")
            .field("listeners", &self.fanout.listener_count())
            .finish_non_exhaustive()
    }
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
            log: log::RefusalLog::default(),
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

    /// A decision by the top-level policy, recorded as the middleware records it:
    /// [`EventBus::counted_quietly`], else [`EventBus::record_routed`].
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
        if self.counted_quietly(worker, decision, bound) {
            return;
        }
        self.record_routed(
            worker,
            decision,
            bound,
            headers,
            method,
            path,
            None,
            Peer::unknown(),
        );
    }

    /// Counts a request to a `guard = false` route (no decision was made, so no event).
    pub(crate) fn count_unguarded(&self) {
        self.counters.count_unguarded();
    }

    /// How many requests went to `guard = false` routes.
    pub(crate) fn unguarded(&self) -> u64 {
        self.counters.unguarded()
    }

    /// Counts the usual request, in the caller, and says whether it did: allowed, with
    /// nobody listening, from an origin the policy lists (`bound`, its counter at hand) or
    /// the one a pattern allowed last on this worker. Anything else (`false`) goes to
    /// [`EventBus::record_routed`].
    #[cfg(test)]
    pub(crate) fn counted_quietly(
        &self,
        worker: &WorkerEvents,
        decision: &Decision,
        bound: Option<&OriginCounter>,
    ) -> bool {
        match decision {
            Decision::Allow { allow_origin } => self.allowed_quietly(worker, allow_origin, bound),
            _ => false,
        }
    }

    /// [`EventBus::counted_quietly`] for an allowed actual request from `origin` (as
    /// sent), before its [`Decision`] is built: the middleware's usual request.
    #[inline]
    pub(crate) fn allowed_quietly(
        &self,
        worker: &WorkerEvents,
        origin: &HeaderValue,
        bound: Option<&OriginCounter>,
    ) -> bool {
        if self.fanout.is_listened() {
            return false;
        }
        if let Some(counter) = bound {
            counter.count(Verdict::Allow, None, clock::now_ms());
            return true;
        }
        // The last unlisted origin's counter is compared on the raw bytes: no lookup of
        // `Origin` and no UTF-8 pass, which finding it by its text would cost.
        let last = worker.last_seen();
        match last
            .as_deref()
            .filter(|c| c.origin.as_bytes() == origin.as_bytes())
        {
            Some(counter) => {
                counter.count(Verdict::Allow, None, clock::now_ms());
                true
            }
            None => false,
        }
    }

    /// Records a decision on a request (called by the middleware for every request that
    /// carried `Origin` and [`EventBus::counted_quietly`] did not count, and every `Host`
    /// refusal), made on the worker that owns `worker`
    /// by `route`'s policy (`None`: the top level). `bound` is the origin's counter when
    /// the policy lists it exactly. `peer` gives the client's address, resolved only for
    /// an event or a log line.
    // One argument per part of the request the event reports; a struct would only be
    // built to be taken apart again on the request path.
    #[allow(clippy::too_many_arguments)]
    #[inline(never)]
    pub(crate) fn record_routed(
        &self,
        worker: &WorkerEvents,
        decision: &Decision,
        bound: Option<&OriginCounter>,
        headers: &HeaderMap,
        method: &Method,
        path: &str,
        route: Option<&Arc<str>>,
        peer: Peer<'_>,
    ) {
        // The `Origin` header is looked up again only when its text is needed: not for an
        // allowed request from a listed origin (the usual case), whose counter has it.
        // An allowed origin is the one the decision echoes (unless that is `*`): no second
        // lookup of the header.
        let origin = || match decision {
            Decision::Allow { allow_origin } | Decision::Preflight { allow_origin, .. }
                if allow_origin.as_bytes() != b"*" =>
            {
                Some(allow_origin)
            }
            _ => headers.get(header::ORIGIN),
        };
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
        let preflight = decision.is_preflight();
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
            let client = peer.client(headers);
            let request = runs::Request {
                origin,
                method,
                path,
                preflight,
                route,
                client,
            };
            if let Some(ended) = worker.extend(&request, at_ms) {
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
        let origin = match bound {
            Some(_) => text(),
            None => unlisted,
        };
        let path = clip(Cow::Borrowed(path), MAX_PATH_TEXT);
        let client = peer.client(headers).map(|ip| ip.to_string());
        if let Some(reason) = reason {
            let host = headers
                .get(header::HOST)
                .map(|h| clip(header_text(h), MAX_ORIGIN_TEXT));
            let refusal = log::Refusal {
                origin: origin.as_deref(),
                host: host.as_deref(),
                method: method.as_str(),
                path: &path,
                route: route.map(|r| &**r),
                client: client.as_deref(),
                reason,
                kind: reason.kind().label(),
                verdict: if verdict == Verdict::Deny {
                    "deny"
                } else {
                    "would-deny"
                },
            };
            self.log.refused(&refusal, at_ms);
        }
        self.publish(Event::Decision(DecisionEvent {
            at_ms,
            verdict,
            origin: origin.map(Cow::into_owned),
            method: method.as_str().to_owned(),
            path: path.into_owned(),
            preflight,
            reason: reason.map(|r| clip(Cow::Owned(r.to_string()), MAX_PATH_TEXT).into_owned()),
            count: 1,
            route: route.map(|r| r.to_string()),
            client,
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
mod tests;
