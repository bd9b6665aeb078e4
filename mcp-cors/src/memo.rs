//! What a thread's last requests were admitted for, so that the next one from the same
//! page skips the work: the last origin a pattern (a wildcard entry or a regex) allowed,
//! and the last `Host` the guard admitted, each with the policy that admitted it.
//!
//! A browser page sends many requests with the same `Origin` and `Host`; matching a
//! pattern parses the origin and validates its host, and the Host guard splits and
//! parses the authority, every time. Remembering the last value per worker thread turns
//! the repeat into one comparison of bytes. Only admissions are remembered, and only
//! for the policy that made them: each compiled policy has an id never used again
//! ([`PolicyId::next`]), so a reload (or a route's own policy) starts afresh, and a
//! refusal is always decided in full.

use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::same_bytes::same_bytes;

/// The identity of one compiled policy, unique for the life of the process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PolicyId(u64);

impl PolicyId {
    /// A new id: a 64-bit counter never wraps in practice (a reload a nanosecond would
    /// take 584 years).
    pub(crate) fn next() -> PolicyId {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        PolicyId(NEXT.fetch_add(1, Ordering::Relaxed))
    }

    /// Remembered by nothing.
    const NONE: PolicyId = PolicyId(0);
}

/// One remembered admission: which policy admitted which bytes.
struct Admitted {
    policy: PolicyId,
    value: Vec<u8>,
}

impl Admitted {
    const fn empty() -> Admitted {
        Admitted {
            policy: PolicyId::NONE,
            value: Vec::new(),
        }
    }

    fn is(&self, policy: PolicyId, value: &[u8]) -> bool {
        self.policy == policy && same_bytes(&self.value, value)
    }

    /// Keeps `value`, reusing the buffer: no allocation once it is as long as the
    /// longest value seen.
    fn set(&mut self, policy: PolicyId, value: &[u8]) {
        self.policy = policy;
        self.value.clear();
        self.value.extend_from_slice(value);
    }
}

/// The longest value remembered: longer ones are rare and decided in full each time.
const MAX_VALUE: usize = 256;

thread_local! {
    static ORIGIN: RefCell<Admitted> = const { RefCell::new(Admitted::empty()) };
    static HOST: RefCell<Admitted> = const { RefCell::new(Admitted::empty()) };
}

/// Whether `policy`'s patterns allowed `origin` (the raw header value) last on this
/// thread.
#[inline]
pub(crate) fn origin_allowed(policy: PolicyId, origin: &[u8]) -> bool {
    ORIGIN.with(|last| last.try_borrow().is_ok_and(|last| last.is(policy, origin)))
}

/// Remembers that `policy`'s patterns allowed `origin`.
pub(crate) fn remember_origin(policy: PolicyId, origin: &[u8]) {
    remember(&ORIGIN, policy, origin);
}

/// Whether `policy`'s Host guard admitted `host` (the value it checked) last on this
/// thread.
#[inline]
pub(crate) fn host_admitted(policy: PolicyId, host: &[u8]) -> bool {
    HOST.with(|last| last.try_borrow().is_ok_and(|last| last.is(policy, host)))
}

/// Remembers that `policy`'s Host guard admitted `host`.
pub(crate) fn remember_host(policy: PolicyId, host: &[u8]) {
    remember(&HOST, policy, host);
}

fn remember(
    slot: &'static std::thread::LocalKey<RefCell<Admitted>>,
    policy: PolicyId,
    value: &[u8],
) {
    if value.len() > MAX_VALUE {
        return;
    }
    // `try_with`: a thread being torn down has no slot any more; nothing to remember.
    let _ = slot.try_with(|last| {
        if let Ok(mut last) = last.try_borrow_mut() {
            last.set(policy, value);
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_admission_is_remembered_for_its_policy_and_value_only() {
        let (a, b) = (PolicyId::next(), PolicyId::next());
        assert_ne!(a, b);
        assert!(!origin_allowed(a, b"https://x.example.com"));
        remember_origin(a, b"https://x.example.com");
        assert!(origin_allowed(a, b"https://x.example.com"));
        assert!(
            !origin_allowed(b, b"https://x.example.com"),
            "another policy"
        );
        assert!(
            !origin_allowed(a, b"https://y.example.com"),
            "another origin"
        );
        assert!(!origin_allowed(a, b"https://x.example.co"), "a prefix");
        assert!(!host_admitted(a, b"https://x.example.com"), "hosts apart");
        remember_host(a, b"localhost:8080");
        assert!(host_admitted(a, b"localhost:8080"));
        // The next admission replaces the last.
        remember_origin(b, b"https://z.example.com");
        assert!(!origin_allowed(a, b"https://x.example.com"));
        assert!(origin_allowed(b, b"https://z.example.com"));
    }

    #[test]
    fn each_thread_remembers_its_own() {
        let policy = PolicyId::next();
        remember_host(policy, b"localhost");
        let other = std::thread::spawn(move || host_admitted(policy, b"localhost"));
        assert!(!other.join().expect("the thread ran"));
        assert!(host_admitted(policy, b"localhost"));
    }

    #[test]
    fn a_value_too_long_is_not_remembered() {
        let policy = PolicyId::next();
        let long = vec![b'a'; MAX_VALUE + 1];
        remember_origin(policy, &long);
        assert!(!origin_allowed(policy, &long));
    }
}
