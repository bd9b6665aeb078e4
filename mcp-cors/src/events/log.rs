//! Log lines that explain a 403: each refusal is a `warn` event with target
//! `mcp_cors::decision` carrying what an operator needs to find it (origin, host, method,
//! path, route, client, reason), so that `kubectl logs` tells why a browser was refused.
//!
//! Rate-limited per origin (per `Host` for a Host refusal), so that a flood cannot flood
//! the log: the first refusal is logged, then at most one line per [`INTERVAL`], which
//! says how many refusals it stands for. Refusals already take locks (counters, the replay
//! ring), so the limiter's lock costs them little; allows never come here.

use std::sync::Mutex;

use foldhash::HashMap;

use crate::counters::MAX_TRACKED_ORIGINS;
use crate::sync::lock;

/// At most one line per origin per this long.
pub(crate) const INTERVAL_MS: u64 = 10_000;

/// The key under which origins past [`MAX_TRACKED_ORIGINS`] share one window.
const OTHER: &str = "(other)";

/// One origin's window: when its last line was written, and the refusals since.
#[derive(Debug, Default, Clone, Copy)]
struct Window {
    logged_at_ms: u64,
    suppressed: u64,
}

/// The per-origin windows.
#[derive(Debug, Default)]
pub(crate) struct RefusalLog {
    windows: Mutex<HashMap<Box<str>, Window>>,
}

/// What one refused request says in its log line.
pub(crate) struct Refusal<'a> {
    pub(crate) origin: Option<&'a str>,
    pub(crate) host: Option<&'a str>,
    pub(crate) method: &'a str,
    pub(crate) path: &'a str,
    pub(crate) route: Option<&'a str>,
    /// The client's IP: the peer's, or the one a trusted proxy forwarded.
    pub(crate) client: Option<&'a str>,
    pub(crate) reason: &'a dyn std::fmt::Display,
    pub(crate) kind: &'static str,
    /// `deny`, or `would-deny` in report-only mode.
    pub(crate) verdict: &'static str,
}

impl RefusalLog {
    /// Logs `refusal` at `now_ms` unless its origin (or host) already had a line within
    /// [`INTERVAL_MS`]; then it is only counted, and the next line says so.
    pub(crate) fn refused(&self, refusal: &Refusal<'_>, now_ms: u64) {
        let key = refusal.origin.or(refusal.host).unwrap_or("");
        let Some(more) = self.admit(key, now_ms) else {
            return;
        };
        let Refusal {
            origin,
            host,
            method,
            path,
            route,
            client,
            reason,
            kind,
            verdict,
        } = refusal;
        let (origin, host, route, client) = (
            origin.unwrap_or("-"),
            host.unwrap_or("-"),
            route.unwrap_or("-"),
            client.unwrap_or("-"),
        );
        if more == 0 {
            tracing::warn!(target: "mcp_cors::decision", origin, host, method, path, route, client, %reason, kind, verdict, "request refused");
        } else {
            tracing::warn!(
                target: "mcp_cors::decision",
                origin, host, method, path, route, client, %reason, kind, verdict, suppressed = more,
                "request refused; refused {more} more times in the last {} s",
                INTERVAL_MS / 1000
            );
        }
    }

    /// `Some(refusals not logged since the last line)` when a line is due for `key` at
    /// `now_ms`, `None` while its window is open.
    fn admit(&self, key: &str, now_ms: u64) -> Option<u64> {
        let mut windows = lock(&self.windows);
        let key = if windows.len() >= MAX_TRACKED_ORIGINS && !windows.contains_key(key) {
            OTHER
        } else {
            key
        };
        let window = match windows.get_mut(key) {
            Some(window) => window,
            None => windows.entry(key.into()).or_default(),
        };
        let first = window.logged_at_ms == 0;
        if !first && now_ms < window.logged_at_ms.saturating_add(INTERVAL_MS) {
            window.suppressed += 1;
            return None;
        }
        let more = std::mem::take(&mut window.suppressed);
        window.logged_at_ms = now_ms.max(1);
        Some(more)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_refusal_is_logged_then_one_line_per_interval_with_the_count() {
        let log = RefusalLog::default();
        let t0 = 1_000_000;
        assert_eq!(log.admit("https://a.example", t0), Some(0));
        for i in 1..500 {
            assert_eq!(log.admit("https://a.example", t0 + i), None, "refusal {i}");
        }
        // Another origin has its own window.
        assert_eq!(log.admit("https://b.example", t0 + 1), Some(0));
        assert_eq!(log.admit("https://a.example", t0 + INTERVAL_MS), Some(499));
        assert_eq!(log.admit("https://a.example", t0 + INTERVAL_MS + 1), None);
        assert_eq!(
            log.admit("https://a.example", t0 + 3 * INTERVAL_MS),
            Some(1)
        );
    }

    #[test]
    fn origins_beyond_the_bound_share_one_window() {
        let log = RefusalLog::default();
        for i in 0..MAX_TRACKED_ORIGINS {
            assert_eq!(log.admit(&format!("https://o{i}.example"), 5), Some(0));
        }
        assert_eq!(log.admit("https://new1.example", 5), Some(0));
        assert_eq!(log.admit("https://new2.example", 6), None, "shares (other)");
        assert_eq!(lock(&log.windows).len(), MAX_TRACKED_ORIGINS + 1);
    }
}
