//! Folding runs of identical decisions: per worker on the request path, and per batch on
//! the way out to a listener.
//!
//! Allows are the bulk of traffic, and mostly the same few decisions over and over. So
//! each worker (each copy of the middleware) counts its current run in a slot of its own
//! ([`WorkerEvents`]) and hands the run on as one item when a different decision ends it,
//! when it is [`RUN_MAX_AGE_MS`] old, or when a listener polls; a batch written to a
//! listener folds what is left, like `uniq -c`.

use std::borrow::Cow;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use actix_web::http::Method;
use compact_str::CompactString;

use super::queue;
use super::{Item, MAX_PATH_TEXT};
use crate::counters::{Counters, OriginCounter};
use crate::protocol::{DecisionEvent, Event, Verdict};
use crate::sync::lock;
use crate::text::clip;

/// A worker's run of identical allows older than this is handed on by the next request,
/// whether or not a listener has polled it (a listener that is not polling, one stuck
/// writing to its client, still gets runs, or has them counted as missed).
pub(super) const RUN_MAX_AGE_MS: u64 = 10;

/// An allowed decision, as the request path hands it to a listener.
#[derive(Clone)]
pub(super) struct Allowed {
    pub(super) at_ms: u64,
    /// Shared with the per-origin counters: a reference count, not a copy.
    pub(super) origin: Arc<str>,
    pub(super) method: Method,
    /// Inline (no allocation) up to 24 bytes, as MCP endpoints' paths are.
    pub(super) path: CompactString,
    pub(super) preflight: bool,
    /// The route that decided; shared with the compiled policy.
    pub(super) route: Option<Arc<str>>,
    /// The client's address (see [`crate::forwarded`]); kept as an address, not text, so
    /// comparing and copying it costs nothing.
    pub(super) client: Option<IpAddr>,
}

/// An allowed request, as it extends a worker's run: the parts of its decision that an
/// event reports.
pub(super) struct Request<'r> {
    pub(super) origin: &'r Arc<str>,
    pub(super) method: &'r Method,
    pub(super) path: &'r str,
    pub(super) preflight: bool,
    pub(super) route: Option<&'r Arc<str>>,
    pub(super) client: Option<IpAddr>,
}

/// The longest text of an IP address (`ffff:ffff:…`), for what an event will cost.
const MAX_CLIENT_TEXT: usize = 39;

impl Allowed {
    /// What the allow costs a listener's share, as the event it becomes.
    pub(super) fn cost(&self) -> usize {
        let route = self.route.as_ref().map_or(0, |r| r.len());
        let client = self.client.map_or(0, |_| MAX_CLIENT_TEXT);
        queue::cost(
            self.origin.len() + self.method.as_str().len() + self.path.len() + route + client,
        )
    }

    fn same_decision(&self, other: &Allowed) -> bool {
        self.is(
            &other.origin,
            &other.method,
            &other.path,
            other.preflight,
            other.client,
        ) && self.route == other.route
    }

    /// Whether this is the decision on a request from `client` and `origin` to `method
    /// path`. Origins listed in the policy share one `Arc`, so the usual comparison is a
    /// pointer's.
    fn is(
        &self,
        origin: &Arc<str>,
        method: &Method,
        path: &str,
        preflight: bool,
        client: Option<IpAddr>,
    ) -> bool {
        self.preflight == preflight
            && self.client == client
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
            client: self.client.map(|ip| ip.to_string()),
        })
    }
}

/// A run of identical allows, and how many.
pub(super) type Run = (Allowed, u64);

/// A batch of events for one write to a listener, with runs of identical decisions
/// folded into one event with a count.
#[derive(Default)]
pub(super) struct Batch {
    events: Vec<Event>,
    /// The run of identical allows being counted, not yet turned into an event.
    run: Option<Run>,
}

impl Batch {
    pub(super) fn push(&mut self, item: Item) {
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

    pub(super) fn finish(mut self) -> Vec<Event> {
        self.end_run();
        self.events
    }
}

/// One worker's run of identical allows, not yet queued for listeners.
///
/// Behind a lock that only its worker takes per request (uncontended, its own cache line):
/// a request extending a run costs a lock and a comparison.
///
/// It also remembers the counter of the last origin the policy does not list exactly
/// (one a wildcard or regex allowed, or a refused one) that this worker counted, so that
/// a browser app calling again and again from such an origin does not take the table's
/// lock, shared by every worker, on each request.
#[derive(Default)]
pub(crate) struct WorkerEvents {
    run: Mutex<Option<Run>>,
    last_seen: Mutex<Option<Arc<OriginCounter>>>,
}

impl std::fmt::Debug for WorkerEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WorkerEvents").finish_non_exhaustive()
    }
}

impl WorkerEvents {
    /// Takes the run, to be queued.
    pub(super) fn take(&self) -> Option<Run> {
        lock(&self.run).take()
    }

    /// The worker's memory of the last unlisted origin's counter, locked: held while the
    /// counter is used, so it is used where it is, with no clone.
    pub(super) fn last_seen(&self) -> MutexGuard<'_, Option<Arc<OriginCounter>>> {
        lock(&self.last_seen)
    }

    /// Counts an allow (`request`, at `at_ms`) into the run; returns the run it ended, if
    /// any, to be queued.
    pub(super) fn extend(&self, request: &Request<'_>, at_ms: u64) -> Option<Run> {
        let Request {
            origin,
            method,
            path,
            preflight,
            route,
            client,
        } = *request;
        let path = clip(Cow::Borrowed(path), MAX_PATH_TEXT);
        let mut run = lock(&self.run);
        if let Some((first, count)) = run.as_mut()
            && first.is(origin, method, &path, preflight, client)
            && first.route.as_ref().map(Arc::as_ptr) == route.map(Arc::as_ptr)
            && at_ms < first.at_ms.saturating_add(RUN_MAX_AGE_MS)
        {
            *count += 1;
            return None;
        }
        let allowed = Allowed {
            at_ms,
            origin: Arc::clone(origin),
            method: method.clone(),
            path: CompactString::from(&*path),
            preflight,
            route: route.cloned(),
            client,
        };
        run.replace((allowed, 1))
    }
}

/// The counter of `origin` (not listed exactly), from a worker's memory of the last one
/// (`last`) or else from the table, which it then remembers. Counters are never removed
/// from that table, so the one remembered stays the origin's counter.
pub(super) fn remembered_counter<'a>(
    last: &'a mut Option<Arc<OriginCounter>>,
    counters: &Counters,
    origin: &str,
) -> &'a OriginCounter {
    if last.as_ref().is_none_or(|c| *c.origin != *origin) {
        // Replaced even by `(other)`, which then stands for every untracked origin.
        *last = None;
    }
    last.get_or_insert_with(|| counters.seen_counter(origin))
}

/// Appends `event` to a batch about to be sent, folding it into the batch's last event
/// when both are the same decision (verdict, origin, method, path, preflight, reason,
/// client): a
/// run of identical decisions travels as one event with a count, like `uniq -c`.
pub(super) fn push_folded(batch: &mut Vec<Event>, event: &Event) {
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
        && a.client == b.client
}
