//! The `/` filter on the event tail: a case-insensitive substring of the origin, the path,
//! the client or the route, or the start of the verdict (so `deny` does not also show
//! `would-deny`); in a fleet, also of the replica's label (`web-1`, or its pid).

use mcp_cors::protocol::Event;

/// The filter text, and whether it is being edited.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filter {
    /// The text; empty matches everything.
    pub text: String,
    /// Whether keys go to the filter prompt.
    pub editing: bool,
}

impl Filter {
    /// Whether `event` passes. Reload events match `reload` (and `rejected` for refused
    /// files), so an operator can follow policy changes alone.
    pub fn matches(&self, event: &Event) -> bool {
        if self.text.is_empty() {
            return true;
        }
        let needle = self.text.to_lowercase();
        let has = |hay: &str| hay.to_lowercase().contains(&needle);
        match event {
            Event::Decision(d) => {
                d.origin.as_deref().is_some_and(has)
                    || has(&d.path)
                    || d.client.as_deref().is_some_and(has)
                    || d.route.as_deref().is_some_and(has)
                    || d.verdict.to_string().starts_with(&needle)
            }
            Event::Reloaded { .. } => has("reloaded"),
            Event::ReloadRejected(_) => has("reload rejected"),
            Event::Audit(r) => has("audit") || has(r.action.as_str()),
        }
    }

    /// Whether the filter names `label`, a fleet replica's (`HOST:PID`): an event from it
    /// passes whatever it holds.
    pub fn names(&self, label: Option<&str>) -> bool {
        let needle = self.text.to_lowercase();
        self.is_active() && label.is_some_and(|l| l.to_lowercase().contains(&needle))
    }

    /// Whether a filter is in force.
    pub fn is_active(&self) -> bool {
        !self.text.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mcp_cors::Verdict;
    use mcp_cors::protocol::DecisionEvent;

    fn decision(verdict: Verdict, origin: &str, path: &str) -> Event {
        Event::Decision(DecisionEvent {
            at_ms: 0,
            verdict,
            origin: Some(origin.into()),
            method: "POST".into(),
            path: path.into(),
            preflight: false,
            reason: None,
            count: 1,
            route: None,
            client: None,
        })
    }

    #[test]
    fn matches_origin_path_or_verdict_ignoring_case() {
        let f = |t: &str| Filter {
            text: t.into(),
            editing: false,
        };
        let e = decision(Verdict::WouldDeny, "https://Evil.example", "/mcp/x");
        assert!(f("").matches(&e));
        assert!(f("evil").matches(&e));
        assert!(f("/MCP").matches(&e));
        assert!(f("would-deny").matches(&e));
        assert!(!f("allow").matches(&e));
        assert!(!f("POST").matches(&e), "the method is not a filter field");
    }

    #[test]
    fn a_verdict_matches_from_its_start_only() {
        let f = |t: &str| Filter {
            text: t.into(),
            editing: false,
        };
        let deny = decision(Verdict::Deny, "https://a.example", "/mcp");
        let would = decision(Verdict::WouldDeny, "https://a.example", "/mcp");
        let allow = decision(Verdict::Allow, "https://a.example", "/mcp");
        assert!(f("deny").matches(&deny));
        assert!(f("DENY").matches(&deny));
        assert!(!f("deny").matches(&would), "deny is not would-deny");
        assert!(!f("deny").matches(&allow));
        assert!(f("would").matches(&would));
        assert!(!f("would").matches(&deny));
        assert!(f("all").matches(&allow), "a prefix while typing");
    }

    #[test]
    fn matches_the_client_and_the_route() {
        let f = |t: &str| Filter {
            text: t.into(),
            editing: false,
        };
        let mut e = decision(Verdict::Deny, "https://a.example", "/mcp");
        if let Event::Decision(d) = &mut e {
            d.client = Some("203.0.113.7".into());
            d.route = Some("Meta".into());
        }
        assert!(f("203.0.113").matches(&e));
        assert!(f("meta").matches(&e));
        assert!(!f("198.51").matches(&e));
    }
}
