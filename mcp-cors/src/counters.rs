//! Allow/deny counters, kept whether or not anyone listens: per origin, per refused
//! `Host`, and totals.
//!
//! The request path pays a few atomic adds for an origin the policy lists exactly: its
//! counter is bound into the compiled policy when the policy is stored
//! ([`Counters::listed_counter`]), so counting needs no lookup and no lock. Every other
//! origin is chosen by whoever sends the request, so its table is bounded
//! ([`MAX_TRACKED_ORIGINS`], the rest counted together as `(other)`); so is the table of
//! refused `Host` values. A refusal already takes locks; an allow from a listed origin
//! never does.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use foldhash::HashMap;

use crate::protocol::{HostStats, OriginStats, Verdict};
use crate::sync::lock;
use crate::text::clip;

/// Distinct origins counted one by one; the rest are counted together as `(other)`.
pub(crate) const MAX_TRACKED_ORIGINS: usize = 1024;
/// The most origins a `stats` reply lists (the most refused first).
pub(crate) const MAX_REPORTED_ORIGINS: usize = 200;
pub(crate) const OTHER: &str = crate::protocol::UNTRACKED_ORIGIN;
/// Distinct refused `Host` values counted one by one; the rest are counted together as
/// `(other)`. Fewer than origins: a host refusal is a misconfiguration or an attack, and
/// the operator acts on the few most frequent.
pub(crate) const MAX_TRACKED_HOSTS: usize = 256;
/// The most refused hosts a `stats` reply lists.
pub(crate) const MAX_REPORTED_HOSTS: usize = 100;
/// Longest `Host` kept as a counter key: a DNS name is at most 253 bytes, a port 6 more.
pub(crate) const MAX_HOST_TEXT: usize = 300;
/// Longest reason kept with a counter.
const MAX_REASON_TEXT: usize = 1024;

/// The counters of one origin, updated without a lock.
#[derive(Debug)]
pub(crate) struct OriginCounter {
    /// The origin, shared with the allow events sent to listeners.
    pub(crate) origin: Arc<str>,
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

    /// Counts one decision at `at_ms`, with the reason of a refusal.
    #[inline]
    pub(crate) fn count(
        &self,
        verdict: Verdict,
        reason: Option<&dyn std::fmt::Display>,
        at_ms: u64,
    ) {
        // A plain store, not a read-modify-write: two workers racing within a millisecond
        // may leave the earlier of their two times, which is fine for "last seen".
        self.last_seen_ms.store(at_ms, Ordering::Relaxed);
        tally(&self.allowed, &self.denied, &self.would_deny, verdict);
        if let Some(reason) = reason {
            *lock(&self.last_reason) =
                Some(clip(reason.to_string().into(), MAX_REASON_TEXT).into_owned());
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

    /// Whether this is the counter of every untracked origin together.
    pub(crate) fn is_other(&self) -> bool {
        &*self.origin == OTHER
    }
}

/// Adds one to the counter of `verdict`.
fn tally(allowed: &AtomicU64, denied: &AtomicU64, would_deny: &AtomicU64, verdict: Verdict) {
    match verdict {
        Verdict::Allow => allowed,
        Verdict::Deny => denied,
        Verdict::WouldDeny => would_deny,
    }
    .fetch_add(1, Ordering::Relaxed);
}

/// Every counter of one store: per origin (listed and seen), per refused host, and the
/// decisions no origin counter holds.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    /// Decisions on requests without an origin (`Host` refusals); the rest are in the
    /// origin counters.
    allowed: AtomicU64,
    denied: AtomicU64,
    would_deny: AtomicU64,
    /// Requests to a `guard = false` route: counted, never evented one by one.
    unguarded: AtomicU64,
    /// Counters of origins listed exactly in a policy this store served: chosen by the
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

impl Counters {
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
    pub(crate) fn seen_counter(&self, origin: &str) -> Arc<OriginCounter> {
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

    /// Counts a decision on a request without an origin (a `Host` refusal).
    pub(crate) fn count_without_origin(&self, verdict: Verdict) {
        tally(&self.allowed, &self.denied, &self.would_deny, verdict);
    }

    /// Counts a request to a `guard = false` route (no decision was made).
    pub(crate) fn count_unguarded(&self) {
        self.unguarded.fetch_add(1, Ordering::Relaxed);
    }

    /// How many requests went to `guard = false` routes.
    pub(crate) fn unguarded(&self) -> u64 {
        self.unguarded.load(Ordering::Relaxed)
    }

    /// Counts a refusal of `host` (a `Host` not in `allowed_hosts`), by its lower-cased,
    /// clipped text, or under `(other)` once [`MAX_TRACKED_HOSTS`] are tracked.
    pub(crate) fn count_host(&self, host: &str, verdict: Verdict, at_ms: u64) {
        let key = clip(host.to_ascii_lowercase().into(), MAX_HOST_TEXT);
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

    /// Totals: (allowed, denied, would-deny). Every decision with an origin is in exactly
    /// one origin counter, so the totals are their sum (the request path then increments
    /// one counter, not two) plus the decisions without an origin.
    pub(crate) fn totals(&self) -> (u64, u64, u64) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let (mut allowed, mut denied, mut would_deny) =
            (get(&self.allowed), get(&self.denied), get(&self.would_deny));
        for counter in self.all() {
            allowed += get(&counter.allowed);
            denied += get(&counter.denied);
            would_deny += get(&counter.would_deny);
        }
        (allowed, denied, would_deny)
    }

    /// Every origin counter, listed and seen.
    fn all(&self) -> Vec<Arc<OriginCounter>> {
        let mut all: Vec<Arc<OriginCounter>> = lock(&self.listed).values().cloned().collect();
        all.extend(lock(&self.seen).values().cloned());
        all
    }

    /// Per-origin counters, most refused first, at most `limit` of them.
    pub(crate) fn origin_stats(&self, limit: usize) -> Vec<OriginStats> {
        // Take the counters under the locks (requests take them), read them outside.
        let counters = self.all();
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

    /// How many listed and seen counters are kept.
    #[cfg(test)]
    pub(crate) fn kept(&self) -> (usize, usize) {
        (lock(&self.listed).len(), lock(&self.seen).len())
    }
}
