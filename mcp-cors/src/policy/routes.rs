//! Routes: which `[routes.NAME]` policy a request path gets.
//!
//! The path looked up is the one actix-web's router matches resources against
//! (`HttpRequest::match_info().path()`): percent-escapes decoded except `%2F`, `%25` and
//! `%2B`, nothing else normalised (`..`, `//` and `;` stay as sent). Choosing on that very
//! string means a request can only get a route's policy when the router would also see it
//! under that route's paths, so no spelling of a path reaches a handler under a more
//! permissive route than the one its handler belongs to.

use std::sync::Arc;

use super::Policy;

/// One compiled route.
#[derive(Debug)]
pub(crate) struct Route {
    /// The route's name, as in `[routes.NAME]`; shared with the events it decides.
    pub(crate) name: Arc<str>,
    /// `false`: no checks at all, no CORS headers.
    pub(crate) guard: bool,
    /// The route's policy: the top level with the route's overrides.
    pub(crate) policy: Policy,
}

/// A path entry of a route, validated.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) enum PathPattern {
    /// Exactly this path.
    Exact(String),
    /// `/x/*`, stored as `/x`: `/x` itself and everything under `/x/`.
    Prefix(String),
}

impl PathPattern {
    /// Parses one entry of `paths`.
    ///
    /// Refused: a path that is not absolute, a `*` anywhere but a trailing `/*`, a query,
    /// fragment, whitespace or control character, and a percent-escape the router decodes
    /// (it matches `/%6dcp` as `/mcp`, so such an entry could never match as written).
    pub(crate) fn parse(raw: &str) -> Result<PathPattern, String> {
        if !raw.starts_with('/') {
            return Err("a route path must be absolute: start it with `/` (e.g. `/health`)".into());
        }
        let (body, prefix) = match raw.strip_suffix("/*") {
            Some(base) => (base, true),
            None => (raw, false),
        };
        if body.contains('*') {
            return Err(
                "`*` is only allowed as a trailing `/*` (`/x/*` matches `/x` and \
                 everything under `/x/`)"
                    .into(),
            );
        }
        if let Some(c) = body
            .chars()
            .find(|c| c.is_whitespace() || c.is_control() || *c == '?' || *c == '#')
        {
            return Err(format!(
                "a route path is a path only: {c:?} cannot appear in one (no query, fragment, \
                 whitespace or control character)"
            ));
        }
        if decoded_escape(body) {
            return Err(
                "the router decodes percent-escapes other than `%2F`, `%25` and \
                 `%2B` before matching, so this path could never match as written; write the \
                 character itself"
                    .into(),
            );
        }
        Ok(if prefix {
            PathPattern::Prefix(body.to_owned())
        } else {
            PathPattern::Exact(body.to_owned())
        })
    }
}

/// Whether `path` holds a `%XX` escape actix's router would decode (all but `%2F`, `%25`,
/// `%2B`), or a `%` that is not an escape at all.
fn decoded_escape(path: &str) -> bool {
    let bytes = path.as_bytes();
    bytes.iter().enumerate().any(|(i, b)| {
        *b == b'%'
            && !matches!(
                bytes
                    .get(i + 1..i + 3)
                    .map(|e| e.to_ascii_uppercase())
                    .as_deref(),
                Some(b"2F" | b"25" | b"2B")
            )
    })
}

/// Every route of a policy, indexed for the lookup each request does.
#[derive(Debug, Default)]
pub(crate) struct Routes {
    /// Exact paths, sorted, each with its route's index.
    exact: Vec<(Box<str>, usize)>,
    /// Prefix bases, longest first, each with its route's index.
    prefixes: Vec<(Box<str>, usize)>,
    routes: Vec<Route>,
}

impl Routes {
    /// Indexes compiled routes and their (validated, distinct) paths.
    pub(crate) fn new(entries: Vec<(Route, Vec<PathPattern>)>) -> Routes {
        let mut table = Routes::default();
        for (index, (route, paths)) in entries.into_iter().enumerate() {
            for path in paths {
                match path {
                    PathPattern::Exact(p) => table.exact.push((p.into(), index)),
                    PathPattern::Prefix(p) => table.prefixes.push((p.into(), index)),
                }
            }
            table.routes.push(route);
        }
        table.exact.sort();
        // Longest first, so the first prefix that matches is the most specific one.
        table
            .prefixes
            .sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        table
    }

    /// Whether there is no route at all.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }

    /// The routes, in name order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Route> {
        self.routes.iter()
    }

    /// The route for `path` (the router's path, see the module's documentation): an exact
    /// entry first, then the longest prefix. No allocation.
    #[inline]
    pub(crate) fn select(&self, path: &str) -> Option<&Route> {
        // A policy without routes, the usual case, pays for this one test.
        if self.routes.is_empty() {
            return None;
        }
        self.search(path)
    }

    #[inline(never)]
    fn search(&self, path: &str) -> Option<&Route> {
        if let Ok(i) = self.exact.binary_search_by(|(p, _)| (**p).cmp(path)) {
            return self.routes.get(self.exact[i].1);
        }
        self.prefixes
            .iter()
            .find(|(base, _)| under(path, base))
            .and_then(|(_, i)| self.routes.get(*i))
    }
}

/// Whether `path` is `base` or below it: `/x` covers `/x` and `/x/…`, never `/xy`.
fn under(path: &str, base: &str) -> bool {
    match path.strip_prefix(base) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

/// Whether a route name is usable everywhere it appears (events, `--route NAME`, logs).
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err("a route name is 1 to 64 ASCII letters, digits, `-`, `_` or `.`".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(entries: &[(&str, &[&str])]) -> Routes {
        Routes::new(
            entries
                .iter()
                .map(|(name, paths)| {
                    let route = Route {
                        name: (*name).into(),
                        guard: true,
                        policy: Policy::default(),
                    };
                    let paths = paths
                        .iter()
                        .map(|p| PathPattern::parse(p).unwrap())
                        .collect();
                    (route, paths)
                })
                .collect(),
        )
    }

    fn chosen<'a>(routes: &'a Routes, path: &str) -> Option<&'a str> {
        routes.select(path).map(|r| &*r.name)
    }

    #[test]
    fn the_most_specific_path_wins_whatever_the_order() {
        let routes = table(&[
            ("short", &["/a/*"]),
            ("exact", &["/a/b/c"]),
            ("long", &["/a/b/*"]),
        ]);
        assert_eq!(chosen(&routes, "/a/b/c"), Some("exact"));
        assert_eq!(chosen(&routes, "/a/b/d"), Some("long"));
        assert_eq!(chosen(&routes, "/a/b"), Some("long"));
        assert_eq!(chosen(&routes, "/a/x"), Some("short"));
        assert_eq!(chosen(&routes, "/a"), Some("short"));
        assert_eq!(chosen(&routes, "/ab"), None);
        assert_eq!(chosen(&routes, "/a/bc"), Some("short"));
        assert_eq!(chosen(&routes, "/"), None);
    }

    #[test]
    fn a_root_prefix_covers_everything() {
        let routes = table(&[("all", &["/*"]), ("health", &["/health"])]);
        assert_eq!(chosen(&routes, "/health"), Some("health"));
        assert_eq!(chosen(&routes, "/mcp"), Some("all"));
        assert_eq!(chosen(&routes, "/"), Some("all"));
    }

    #[test]
    fn bad_paths_are_refused() {
        for bad in [
            "health", "", "*", "/a*", "/a/*/b", "/*/x", "/a b", "/a?x", "/a#x", "/%6dcp", "/a%",
            "/a%2",
        ] {
            assert!(PathPattern::parse(bad).is_err(), "{bad} accepted");
        }
        for good in ["/", "/*", "/a/*", "/a/", "/a%2Fb", "/a;b", "/.well-known/x"] {
            assert!(PathPattern::parse(good).is_ok(), "{good} refused");
        }
    }

    #[test]
    fn names_are_checked() {
        assert!(check_name("oauth-metadata").is_ok());
        assert!(check_name("").is_err());
        assert!(check_name("a b").is_err());
        assert!(check_name("a\u{1b}").is_err());
    }
}
