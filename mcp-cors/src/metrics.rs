//! Metrics through the [`metrics`] facade, so the application picks the exporter
//! (`metrics-exporter-prometheus`, StatsD, …). Behind the `metrics` cargo feature: off,
//! nothing here costs a request anything.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | `mcp_cors_decisions_total` | counter | `verdict` (`allow`, `deny`, `would-deny`), `reason` (`none`, `origin`, `host`, `method`, `header`, `private-network`, `malformed`, `no-policy`), `route` (`""` for the top level) |
//! | `mcp_cors_preflights_total` | counter | |
//! | `mcp_cors_policy_reloads_total` | counter | `result` (`ok`, `rejected`) |
//! | `mcp_cors_policy_last_reload_success` | gauge | 1 or 0 |
//! | `mcp_cors_policy_last_reload_timestamp_seconds` | gauge | |
//! | `mcp_cors_policy_origins` | gauge | `route`: the entries of `allowed_origins` and `allowed_origin_regexes` |
//! | `mcp_cors_events_dropped_total` | counter | |
//! | `mcp_cors_listeners` | gauge | |
//!
//! Labels are closed sets (a route is named by the operator), never a raw origin, so the
//! number of series stays bounded whatever clients send. The request path holds
//! registered handles ([`DecisionMetrics`], bound with the policy), so counting a
//! decision is an index and an atomic add. The recorder must be installed before the
//! middleware is built: handles registered earlier count into nothing (until the next
//! reload registers them again).

use metrics::{Counter, Unit, counter, describe_counter, describe_gauge, gauge};

use crate::policy::Policy;
use crate::protocol::Verdict;
use crate::refusal::RefusalKind;

const KINDS: usize = RefusalKind::ALL.len();

/// One policy's handles for `mcp_cors_decisions_total` (one per verdict and reason that
/// can occur together) and `mcp_cors_preflights_total`.
#[derive(Debug)]
pub(crate) struct DecisionMetrics {
    /// `allow` first, then `deny` and `would-deny` by each [`RefusalKind`].
    decisions: [Counter; 1 + 2 * KINDS],
    preflights: Counter,
}

impl DecisionMetrics {
    /// Registers the handles of the policy of `route` (`None`: the top level, which also
    /// describes every metric to the recorder).
    pub(crate) fn new(route: Option<&str>) -> DecisionMetrics {
        if route.is_none() {
            describe();
        }
        let route = route.unwrap_or("").to_owned();
        let decision = |verdict: Verdict, reason: &'static str| {
            let labels = [
                ("verdict", verdict.to_string()),
                ("reason", reason.to_owned()),
                ("route", route.clone()),
            ];
            counter!("mcp_cors_decisions_total", &labels)
        };
        let refused = |verdict| RefusalKind::ALL.map(|kind| decision(verdict, kind.label()));
        let [deny, would_deny] = [Verdict::Deny, Verdict::WouldDeny].map(refused);
        let mut all = std::iter::once(decision(Verdict::Allow, "none"))
            .chain(deny)
            .chain(would_deny);
        DecisionMetrics {
            decisions: std::array::from_fn(|_| all.next().unwrap_or_else(Counter::noop)),
            preflights: counter!("mcp_cors_preflights_total"),
        }
    }

    /// Counts one decision: its verdict, the kind of refusal, and whether a preflight.
    #[inline]
    pub(crate) fn record(&self, verdict: Verdict, kind: Option<RefusalKind>, preflight: bool) {
        let refused = kind.map_or(0, |k| k.index());
        let slot = match verdict {
            Verdict::Allow => 0,
            Verdict::Deny => 1 + refused,
            Verdict::WouldDeny => 1 + KINDS + refused,
        };
        self.decisions[slot].increment(1);
        if preflight {
            self.preflights.increment(1);
        }
    }
}

/// Gives the recorder each metric's help text and unit (exporters such as Prometheus's
/// show them). Again at each policy bind: cheap, and a recorder installed late still
/// gets them.
fn describe() {
    describe_counter!(
        "mcp_cors_decisions_total",
        "Decisions on requests carrying Origin, and Host refusals, by verdict, kind of refusal and route"
    );
    describe_counter!(
        "mcp_cors_preflights_total",
        "CORS preflights answered or refused"
    );
    describe_counter!(
        "mcp_cors_policy_reloads_total",
        "Policy reloads, by result: ok (now serving) or rejected (the last good policy stays)"
    );
    describe_gauge!(
        "mcp_cors_policy_last_reload_success",
        "1 when the last reload took effect, 0 when it was rejected"
    );
    describe_gauge!(
        "mcp_cors_policy_last_reload_timestamp_seconds",
        Unit::Seconds,
        "When the last reload (or rejection) happened, in Unix seconds"
    );
    describe_gauge!(
        "mcp_cors_policy_origins",
        "Entries in allowed_origins and allowed_origin_regexes, by route"
    );
    describe_counter!(
        "mcp_cors_events_dropped_total",
        "Decisions not sent to a listener without room"
    );
    describe_gauge!("mcp_cors_listeners", "Subscribers to the event stream");
}

/// A reload that took effect: `policy` now serves.
pub(crate) fn reloaded(policy: &Policy, at_secs: f64) {
    counter!("mcp_cors_policy_reloads_total", "result" => "ok").increment(1);
    gauge!("mcp_cors_policy_last_reload_success").set(1.0);
    gauge!("mcp_cors_policy_last_reload_timestamp_seconds").set(at_secs);
    let entries = |p: &Policy| {
        (p.settings().allowed_origins.len() + p.settings().allowed_origin_regexes.len()) as f64
    };
    gauge!("mcp_cors_policy_origins", "route" => "").set(entries(policy));
    for name in policy.settings().routes.keys() {
        if let Some(route) = policy.route_policy(name) {
            gauge!("mcp_cors_policy_origins", "route" => name.clone()).set(entries(route));
        }
    }
}

/// A reload that was refused: the last good policy still serves.
pub(crate) fn reload_rejected(at_secs: f64) {
    counter!("mcp_cors_policy_reloads_total", "result" => "rejected").increment(1);
    gauge!("mcp_cors_policy_last_reload_success").set(0.0);
    gauge!("mcp_cors_policy_last_reload_timestamp_seconds").set(at_secs);
}

/// `n` decisions dropped for a listener without room.
pub(crate) fn events_dropped(n: u64) {
    counter!("mcp_cors_events_dropped_total").increment(n);
}

/// How many listeners are subscribed now.
pub(crate) fn listeners(n: usize) {
    gauge!("mcp_cors_listeners").set(n as f64);
}
