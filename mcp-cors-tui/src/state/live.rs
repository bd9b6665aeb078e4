//! Counters kept in step with the events. The server's counters come once a second (a
//! poll), its events as they happen; between two polls the UI adds each decision it is
//! told of to the last counters, the way the server counts it, so the header and the
//! denied panels move with the tail instead of a second behind it. The next poll replaces
//! the sum with the server's own numbers.

use mcp_cors::protocol::{DecisionEvent, HostStats, OriginStats, Stats, Verdict};

/// Whether the server counted `d` after it read `stats`, so that `stats` do not hold it
/// yet and [`count`] must add it.
///
/// The server stamps its counters with the time it read them ([`Stats::at_ms`], on the
/// clock decisions are stamped with); a decision stamped later is not in them yet. One
/// stamped in the same millisecond may or may not be: it is left out, and the next poll
/// counts it. A server that does not stamp its counters gets the old behaviour: the
/// counters move at each poll only.
pub fn is_new(stats: &Stats, d: &DecisionEvent) -> bool {
    stats.at_ms.is_some_and(|read_at| d.at_ms > read_at)
}

/// Adds `d` to `stats`, with no check of when they were read: for a fleet's totals,
/// whose replicas each read their counters at their own time (each decision is checked
/// against its own replica's counters first).
pub fn count(stats: &mut Stats, d: &DecisionEvent) {
    let n = d.count;
    match d.verdict {
        Verdict::Allow => stats.allowed += n,
        Verdict::Deny => stats.denied += n,
        Verdict::WouldDeny => stats.would_deny += n,
    }
    if let Some(host) = refused_host(d) {
        add_host(&mut stats.hosts, host, d);
    }
    if let Some(origin) = &d.origin {
        add_origin(&mut stats.origins, origin, d);
    }
}

/// The `Host` a decision refused, as the server keys it (lower-cased).
fn refused_host(d: &DecisionEvent) -> Option<String> {
    super::host_refused_by(d).map(str::to_ascii_lowercase)
}

fn add_origin(origins: &mut Vec<OriginStats>, origin: &str, d: &DecisionEvent) {
    let entry = entry(
        origins,
        |o| o.origin == origin,
        || OriginStats {
            origin: origin.to_owned(),
            ..OriginStats::default()
        },
    );
    match d.verdict {
        Verdict::Allow => entry.allowed += d.count,
        Verdict::Deny => entry.denied += d.count,
        Verdict::WouldDeny => entry.would_deny += d.count,
    }
    entry.last_seen_ms = entry.last_seen_ms.max(d.at_ms);
    if d.reason.is_some() {
        entry.last_reason.clone_from(&d.reason);
    }
}

fn add_host(hosts: &mut Vec<HostStats>, host: String, d: &DecisionEvent) {
    let entry = entry(
        hosts,
        |h| h.host == host,
        || HostStats {
            host: host.clone(),
            ..HostStats::default()
        },
    );
    match d.verdict {
        Verdict::WouldDeny => entry.would_deny += d.count,
        _ => entry.denied += d.count,
    }
    entry.last_seen_ms = entry.last_seen_ms.max(d.at_ms);
}

/// The item of `items` that `is`, or a `new` one appended.
fn entry<T>(items: &mut Vec<T>, is: impl Fn(&T) -> bool, new: impl FnOnce() -> T) -> &mut T {
    let index = match items.iter().position(is) {
        Some(index) => index,
        None => {
            items.push(new());
            items.len() - 1
        }
    };
    &mut items[index]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn add_decision(stats: &mut Stats, d: &DecisionEvent) {
        if is_new(stats, d) {
            count(stats, d);
        }
    }

    fn decision(at_ms: u64, verdict: Verdict, origin: &str, reason: Option<&str>) -> DecisionEvent {
        DecisionEvent {
            at_ms,
            verdict,
            origin: Some(origin.to_owned()),
            method: "POST".into(),
            path: "/mcp".into(),
            preflight: false,
            reason: reason.map(str::to_owned),
            count: 1,
            route: None,
            client: None,
        }
    }

    fn read_at(at_ms: u64) -> Stats {
        Stats {
            allowed: 10,
            denied: 2,
            at_ms: Some(at_ms),
            ..Stats::default()
        }
    }

    #[test]
    fn a_decision_after_the_counters_were_read_is_added_to_them() {
        let mut stats = read_at(1000);
        let mut run = decision(1001, Verdict::Allow, "https://a.example", None);
        run.count = 5;
        add_decision(&mut stats, &run);
        add_decision(
            &mut stats,
            &decision(
                1002,
                Verdict::Deny,
                "https://e.example",
                Some("origin not allowed"),
            ),
        );
        assert_eq!((stats.allowed, stats.denied), (15, 3));
        let e = stats
            .origins
            .iter()
            .find(|o| o.origin == "https://e.example");
        let e = e.expect("the refused origin is counted");
        assert_eq!((e.denied, e.last_seen_ms), (1, 1002));
        assert_eq!(e.last_reason.as_deref(), Some("origin not allowed"));
    }

    #[test]
    fn a_decision_the_counters_already_hold_is_not_counted_twice() {
        let mut stats = read_at(1000);
        add_decision(
            &mut stats,
            &decision(999, Verdict::Allow, "https://a.example", None),
        );
        add_decision(
            &mut stats,
            &decision(1000, Verdict::Allow, "https://a.example", None),
        );
        assert_eq!(stats.allowed, 10);
        assert!(stats.origins.is_empty());
    }

    #[test]
    fn counters_from_a_server_that_does_not_stamp_them_move_at_polls_only() {
        let mut stats = Stats {
            at_ms: None,
            ..read_at(0)
        };
        add_decision(
            &mut stats,
            &decision(5, Verdict::Allow, "https://a.example", None),
        );
        assert_eq!(stats.allowed, 10);
    }

    #[test]
    fn a_host_refusal_counts_for_the_host_lower_cased() {
        let mut stats = read_at(0);
        let d = decision(
            7,
            Verdict::Deny,
            "https://a.example",
            Some("host Evil.Example:80 not allowed"),
        );
        add_decision(&mut stats, &d);
        add_decision(&mut stats, &d);
        assert_eq!(stats.hosts.len(), 1);
        assert_eq!(
            (stats.hosts[0].host.as_str(), stats.hosts[0].denied),
            ("evil.example:80", 2)
        );
    }
}
