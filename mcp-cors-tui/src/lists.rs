//! The two lists an operator edits, `allowed_origins` and `allowed_hosts`, at the top
//! level or in a `[routes.NAME]` table: the requests that edit them, and the entries a
//! route actually serves (its own list, or the top level's it inherits).

use mcp_cors::PolicySettings;
use mcp_cors::protocol::Request;

/// Which list of the policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum List {
    /// `allowed_origins`.
    Origins,
    /// `allowed_hosts`.
    Hosts,
}

impl List {
    /// The key in the policy file.
    pub fn key(self) -> &'static str {
        match self {
            List::Origins => "allowed_origins",
            List::Hosts => "allowed_hosts",
        }
    }

    /// The request adding `entry` to this list (of `route`, or the top level's).
    pub fn add(self, entry: &str, force: bool, route: Option<&str>) -> Request {
        let (entry, route) = (entry.to_owned(), route.map(str::to_owned));
        match self {
            List::Origins => Request::AddOrigin {
                origin: entry,
                force,
                route,
            },
            List::Hosts => Request::AddHost {
                host: entry,
                force,
                route,
            },
        }
    }

    /// The request removing `entry` from this list (of `route`, or the top level's).
    pub fn remove(self, entry: &str, route: Option<&str>) -> Request {
        let (entry, route) = (entry.to_owned(), route.map(str::to_owned));
        match self {
            List::Origins => Request::RemoveOrigin {
                origin: entry,
                route,
            },
            List::Hosts => Request::RemoveHost { host: entry, route },
        }
    }

    /// The top level's list.
    pub fn top(self, settings: &PolicySettings) -> &[String] {
        match self {
            List::Origins => &settings.allowed_origins,
            List::Hosts => &settings.allowed_hosts,
        }
    }

    /// The entries requests get under `route` (`None`: the top level): the route's own
    /// list, or the top level's when the route does not set it.
    pub fn serving<'a>(
        self,
        settings: &'a PolicySettings,
        route: Option<&str>,
    ) -> Result<&'a [String], RouteError> {
        let Some(name) = route else {
            return Ok(self.top(settings));
        };
        let Some(table) = settings.routes.get(name) else {
            return Err(RouteError::Unknown {
                route: name.to_owned(),
                known: settings.routes.keys().cloned().collect(),
            });
        };
        if !table.guard {
            return Err(RouteError::Unguarded(name.to_owned()));
        }
        let own = match self {
            List::Origins => table.allowed_origins.as_deref(),
            List::Hosts => table.allowed_hosts.as_deref(),
        };
        Ok(own.unwrap_or_else(|| self.top(settings)))
    }
}

/// The routes whose lists can be edited: those that check requests (`guard = false`
/// routes check nothing), in name order.
pub fn editable_routes(settings: &PolicySettings) -> Vec<String> {
    settings
        .routes
        .iter()
        .filter(|(_, route)| route.guard)
        .map(|(name, _)| name.clone())
        .collect()
}

/// Why a route's list cannot be shown.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    /// The serving policy has no such route.
    #[error("there is no route {route:?} in the serving policy; {}", known_routes(.known))]
    Unknown {
        /// The name asked for.
        route: String,
        /// The routes there are.
        known: Vec<String>,
    },
    /// The route checks nothing, so its lists mean nothing.
    #[error(
        "route {0:?} has guard = false: its requests are not checked at all (no Host or \
         Origin check, no CORS headers), so it has no list in force"
    )]
    Unguarded(String),
}

fn known_routes(known: &[String]) -> String {
    if known.is_empty() {
        "it has no [routes.NAME] table".to_owned()
    } else {
        format!("its routes are: {}", known.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings() -> PolicySettings {
        let toml = "allowed_origins = [\"https://a.example\"]\n\
                    [routes.own]\npaths = [\"/own\"]\nallowed_origins = [\"https://b.example\"]\n\
                    [routes.inherits]\npaths = [\"/inh\"]\n\
                    [routes.health]\npaths = [\"/health\"]\nguard = false\n";
        mcp_cors::Policy::from_toml_str(toml)
            .unwrap()
            .settings()
            .clone()
    }

    #[test]
    fn a_route_serves_its_own_list_or_the_top_levels() {
        let s = settings();
        assert_eq!(
            List::Origins.serving(&s, None).unwrap(),
            ["https://a.example"]
        );
        assert_eq!(
            List::Origins.serving(&s, Some("own")).unwrap(),
            ["https://b.example"]
        );
        assert_eq!(
            List::Origins.serving(&s, Some("inherits")).unwrap(),
            ["https://a.example"]
        );
        assert_eq!(
            List::Hosts.serving(&s, Some("own")).unwrap(),
            ["localhost", "127.0.0.1", "[::1]"]
        );
    }

    #[test]
    fn an_unknown_or_unguarded_route_is_an_error_that_says_what_there_is() {
        let s = settings();
        let err = List::Origins.serving(&s, Some("nope")).unwrap_err();
        assert_eq!(
            err.to_string(),
            "there is no route \"nope\" in the serving policy; its routes are: health, inherits, own"
        );
        let err = List::Hosts.serving(&s, Some("health")).unwrap_err();
        assert!(err.to_string().contains("guard = false"), "{err}");
        assert_eq!(editable_routes(&s), ["inherits", "own"]);
    }
}
