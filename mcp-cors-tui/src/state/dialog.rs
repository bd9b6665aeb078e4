//! Modal dialogs: a yes/no confirmation before changing the policy, and the add prompt
//! (an origin or a host, to the top level or to a route), validated as the operator types.

use mcp_cors::protocol::Request;
use mcp_cors::{Policy, PolicySettings, RouteSettings};

use crate::lists::{self, List};

/// A modal dialog; while one is open, keys go to it.
#[derive(Debug, Clone, PartialEq)]
pub enum Dialog {
    /// Asks before sending `request`.
    Confirm {
        /// The question, naming the origin and the effect.
        question: String,
        /// What `y` sends.
        request: Request,
        /// Whether only `y` answers yes (Enter does not): for what opens the server to
        /// every site, so that it is never a keystroke away.
        explicit: bool,
    },
    /// The add prompt.
    Add(AddEntry),
}

/// The add prompt: which list, the text typed, the route it goes to, and the verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddEntry {
    /// `allowed_origins` or `allowed_hosts`.
    pub list: List,
    /// What was typed.
    pub input: String,
    /// The routes it can go to, besides the top level: those of the serving policy that
    /// check requests (a `guard = false` route checks nothing), in name order.
    pub routes: Vec<String>,
    /// The chosen route (an entry of `routes`); `None`: the top level.
    pub route: Option<String>,
    /// The verdict on `input` for that list and route, recomputed on every change.
    pub check: Validation,
}

/// Whether a candidate entry would be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    /// Nothing typed yet.
    Empty,
    /// Valid; `normalised` is how it will be stored.
    Valid {
        /// The stored form (lower-case, default port dropped, …).
        normalised: String,
        /// Whether the chosen list already holds it (its own or the inherited one).
        present: bool,
    },
    /// Refused, with the library's diagnostic.
    Invalid(String),
}

impl AddEntry {
    /// A prompt for `list` holding `input`, going to `route` when the policy has such a
    /// route that can be edited (the top level otherwise), validated against `base`.
    pub fn new(
        list: List,
        input: &str,
        route: Option<&str>,
        base: Option<&PolicySettings>,
    ) -> AddEntry {
        let routes = base.map(lists::editable_routes).unwrap_or_default();
        let route = route
            .filter(|r| routes.iter().any(|known| known == r))
            .map(str::to_owned);
        let mut prompt = AddEntry {
            list,
            input: input.to_owned(),
            routes,
            route,
            check: Validation::Empty,
        };
        prompt.revalidate(base);
        prompt
    }

    /// The list's key as the policy file names it: `allowed_origins`, or
    /// `routes.NAME.allowed_origins`.
    pub fn place(&self) -> String {
        match &self.route {
            Some(route) => format!("routes.{route}.{}", self.list.key()),
            None => self.list.key().to_owned(),
        }
    }

    /// Moves the route choice `step` places on (±1), through the top level and each
    /// route, wrapping around.
    pub fn cycle_route(&mut self, step: isize, base: Option<&PolicySettings>) {
        // Position 0 is the top level, 1.. the routes.
        let count = self.routes.len() as isize + 1;
        let now = self
            .route
            .as_ref()
            .and_then(|r| self.routes.iter().position(|known| known == r))
            .map_or(0, |i| i as isize + 1);
        let next = (now + step).rem_euclid(count);
        self.route = usize::try_from(next - 1)
            .ok()
            .and_then(|i| self.routes.get(i).cloned());
        self.revalidate(base);
    }

    /// Revalidates after an edit or a new policy, against the serving policy's other
    /// keys (so that, for example, `*` is refused where credentials are allowed). A
    /// route the new policy no longer has falls back to the top level.
    pub fn revalidate(&mut self, base: Option<&PolicySettings>) {
        if let Some(base) = base {
            self.routes = lists::editable_routes(base);
        }
        if self
            .route
            .as_ref()
            .is_some_and(|r| !self.routes.contains(r))
        {
            self.route = None;
        }
        self.check = validate(self.list, &self.input, base, self.route.as_deref());
    }

    /// The request that adds the (valid) entry, forced or not.
    pub fn request(&self, normalised: &str, force: bool) -> Request {
        self.list.add(normalised, force, self.route.as_deref())
    }
}

/// Validates `candidate` for `list` (of `route`, or the top level) exactly as the server
/// will: by building a policy that holds it there.
pub fn validate(
    list: List,
    candidate: &str,
    base: Option<&PolicySettings>,
    route: Option<&str>,
) -> Validation {
    let candidate = candidate.trim();
    if candidate.is_empty() {
        return Validation::Empty;
    }
    let base = base.cloned().unwrap_or_default();
    let present_already = list
        .serving(&base, route)
        .map(<[String]>::to_vec)
        .unwrap_or_default();
    let settings = with_only(list, candidate, base, route);
    let stored = Policy::from_settings(settings).map(|policy| {
        let settings = policy.settings();
        let entries = match route.and_then(|r| settings.routes.get(r)) {
            Some(table) => route_list(list, table),
            None => Some(list.top(settings)),
        };
        entries.and_then(|e| e.first().cloned())
    });
    match stored {
        Ok(normalised) => {
            let normalised = normalised.unwrap_or_else(|| candidate.to_owned());
            Validation::Valid {
                present: present_already.contains(&normalised),
                normalised,
            }
        }
        Err(e) => Validation::Invalid(e.to_string()),
    }
}

/// `base` with `candidate` as the only entry of the list edited, so that the check costs
/// one entry, not the whole policy: the entries already in force were validated by the
/// server. Editing a route keeps only that route (the top level's list emptied), so that
/// the route's other keys (credentials, say) and the inherited ones apply to it.
fn with_only(
    list: List,
    candidate: &str,
    mut base: PolicySettings,
    route: Option<&str>,
) -> PolicySettings {
    let only = vec![candidate.to_owned()];
    match route.and_then(|r| base.routes.remove(r).map(|t| (r, t))) {
        Some((name, mut table)) => {
            set_route_list(list, &mut table, only);
            base.routes.clear();
            base.routes.insert(name.to_owned(), table);
            // The top level's entries are the server's, already valid.
            *top_list(list, &mut base) = Vec::new();
            base
        }
        None => {
            base.routes.clear();
            *top_list(list, &mut base) = only;
            base
        }
    }
}

fn top_list(list: List, settings: &mut PolicySettings) -> &mut Vec<String> {
    match list {
        List::Origins => &mut settings.allowed_origins,
        List::Hosts => &mut settings.allowed_hosts,
    }
}

fn route_list(list: List, route: &RouteSettings) -> Option<&[String]> {
    match list {
        List::Origins => route.allowed_origins.as_deref(),
        List::Hosts => route.allowed_hosts.as_deref(),
    }
}

fn set_route_list(list: List, route: &mut RouteSettings, entries: Vec<String>) {
    match list {
        List::Origins => route.allowed_origins = Some(entries),
        List::Hosts => route.allowed_hosts = Some(entries),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(candidate: &str, base: Option<&PolicySettings>) -> Validation {
        validate(List::Origins, candidate, base, None)
    }

    #[test]
    fn validates_like_the_server() {
        assert_eq!(origin("  ", None), Validation::Empty);
        assert_eq!(
            origin("https://App.Example.com:443", None),
            Validation::Valid {
                normalised: "https://app.example.com".into(),
                present: false
            }
        );
        match origin("https://app.example.com/path", None) {
            Validation::Invalid(msg) => assert!(msg.contains("path"), "{msg}"),
            other => panic!("expected invalid, got {other:?}"),
        }
        assert_eq!(
            validate(List::Hosts, "API.example.com:443", None, None),
            Validation::Valid {
                normalised: "api.example.com:443".into(),
                present: false
            }
        );
        assert!(matches!(
            validate(List::Hosts, "10.0.0.0/33", None, None),
            Validation::Invalid(_)
        ));
    }

    #[test]
    fn uses_the_serving_policy_for_other_keys() {
        let base = PolicySettings {
            allow_credentials: true,
            allowed_origins: vec!["https://a.example".into()],
            ..PolicySettings::default()
        };
        assert!(matches!(origin("*", Some(&base)), Validation::Invalid(_)));
        assert_eq!(
            origin("https://A.example", Some(&base)),
            Validation::Valid {
                normalised: "https://a.example".into(),
                present: true
            }
        );
    }

    fn routed() -> PolicySettings {
        let toml = "allowed_origins = [\"https://a.example\"]\n\
                    [routes.creds]\npaths = [\"/c\"]\nallow_credentials = true\n\
                    [routes.meta]\npaths = [\"/m\"]\nallowed_origins = [\"https://docs.example\"]\n\
                    [routes.health]\npaths = [\"/health\"]\nguard = false\n";
        Policy::from_toml_str(toml).unwrap().settings().clone()
    }

    #[test]
    fn a_route_is_validated_with_its_own_keys_and_its_own_list() {
        let base = routed();
        let on = |candidate: &str, route: &str| {
            validate(List::Origins, candidate, Some(&base), Some(route))
        };
        // `*` is fine at the top level, not in the route that allows credentials.
        assert!(matches!(origin("*", Some(&base)), Validation::Valid { .. }));
        match on("*", "creds") {
            Validation::Invalid(m) => assert!(m.contains("routes.creds.allowed_origins"), "{m}"),
            other => panic!("{other:?}"),
        }
        // Present: in the list the route serves, its own or the inherited one.
        assert_eq!(
            on("https://DOCS.example", "meta"),
            Validation::Valid {
                normalised: "https://docs.example".into(),
                present: true
            }
        );
        assert_eq!(
            on("https://a.example", "creds"),
            Validation::Valid {
                normalised: "https://a.example".into(),
                present: true
            }
        );
        assert_eq!(
            on("https://a.example", "meta"),
            Validation::Valid {
                normalised: "https://a.example".into(),
                present: false
            }
        );
    }

    #[test]
    fn the_route_choice_cycles_over_the_top_level_and_the_guarded_routes() {
        let base = routed();
        let mut prompt = AddEntry::new(List::Origins, "*", Some("health"), Some(&base));
        assert_eq!(
            prompt.routes,
            ["creds", "meta"],
            "guard = false is not offered"
        );
        assert_eq!(
            prompt.route, None,
            "an unknown or unguarded route is the top level"
        );
        assert!(matches!(prompt.check, Validation::Valid { .. }));
        prompt.cycle_route(1, Some(&base));
        assert_eq!(prompt.route.as_deref(), Some("creds"));
        assert!(
            matches!(prompt.check, Validation::Invalid(_)),
            "revalidated"
        );
        assert_eq!(prompt.place(), "routes.creds.allowed_origins");
        prompt.cycle_route(1, Some(&base));
        prompt.cycle_route(1, Some(&base));
        assert_eq!(prompt.route, None, "wraps to the top level");
        prompt.cycle_route(-1, Some(&base));
        assert_eq!(prompt.route.as_deref(), Some("meta"));
        // A policy without the route any more: back to the top level.
        prompt.revalidate(Some(&PolicySettings::default()));
        assert_eq!((prompt.route.as_deref(), prompt.routes.len()), (None, 0));
    }
}
