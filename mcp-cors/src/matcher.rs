//! The origin matcher: decides whether a request's `Origin` is allowed.
//!
//! Its cost does not grow with the policy: exact origins are one hash lookup on the raw
//! header value; subdomain wildcards are one lookup per label of the request's host (each
//! shorter suffix of the host is a key); port wildcards are one lookup on the host; regexes
//! are one pass of a [`RegexSet`].

// foldhash: several times faster than SipHash on short keys, and seeded per process.
use foldhash::HashMap;

use regex::RegexSet;

use crate::origin::{self, OriginEntry, PortRule, RequestOrigin};
use crate::same_bytes::same_bytes;

/// A rule that applies to a host (or a domain suffix): which scheme and port it admits.
#[derive(Debug, Clone, PartialEq, Eq)]
struct HostRule {
    scheme: Box<str>,
    port: PortRule,
}

impl HostRule {
    fn admits(&self, origin: &RequestOrigin<'_>) -> bool {
        *self.scheme == *origin.scheme && self.port.matches(origin.port)
    }
}

/// What the matcher says about one `Origin` value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OriginMatch {
    Allowed,
    NotAllowed,
    /// `Origin: null`, refused because `allow_null_origin` is off.
    NullRefused,
    /// Not a browser serialisation of an origin.
    Malformed,
}

/// Which exact entry of a policy matched: its place in [`OriginMatcher::exact_origins`].
/// The caller keeps whatever it wants per entry (counters) in that order; the matcher
/// knows nothing of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Listed(u32);

impl Listed {
    /// The entry's place in [`OriginMatcher::exact_origins`].
    #[inline]
    pub(crate) fn index(self) -> usize {
        self.0 as usize
    }
}

/// Exact origins, keyed by bytes, so a request's header is looked up before (and, on a
/// hit, without) checking that it is text: every key is a valid ASCII origin.
///
/// A handful of entries, the usual policy, are compared one by one: a length check and a
/// short compare each, cheaper than hashing the request's origin. More go in a hash
/// table, so that 10 000 entries cost one lookup.
#[derive(Debug)]
enum ExactOrigins {
    /// Each entry's place is its [`Listed`] index.
    Few(Vec<Box<[u8]>>),
    Many(HashMap<Box<[u8]>, Listed>),
}

impl Default for ExactOrigins {
    fn default() -> Self {
        ExactOrigins::Few(Vec::new())
    }
}

impl ExactOrigins {
    /// Up to this many entries are compared one by one.
    const FEW: usize = 8;

    /// `entries`, distinct, in the order that gives their [`Listed`] indexes.
    fn new(entries: Vec<Box<[u8]>>) -> Self {
        if entries.len() <= Self::FEW {
            return ExactOrigins::Few(entries);
        }
        let indexed = entries.into_iter().zip(0u32..).map(|(k, i)| (k, Listed(i)));
        ExactOrigins::Many(indexed.collect())
    }

    /// Inlined into the request's path: out of line, its call costs a third of the
    /// compare it makes for a handful of entries.
    #[inline(always)]
    fn get(&self, value: &[u8]) -> Option<Listed> {
        match self {
            ExactOrigins::Few(entries) => entries
                .iter()
                .position(|key| same_bytes(key, value))
                .map(|i| Listed(i as u32)),
            ExactOrigins::Many(entries) => entries.get(value).copied(),
        }
    }

    /// The entries in [`Listed`] order.
    fn in_order(&self) -> Vec<&[u8]> {
        match self {
            ExactOrigins::Few(entries) => entries.iter().map(|k| &**k).collect(),
            ExactOrigins::Many(entries) => {
                let mut keys = vec![&[][..]; entries.len()];
                for (key, listed) in entries {
                    keys[listed.index()] = key;
                }
                keys
            }
        }
    }
}

/// Compiled `allowed_origins`, `allowed_origin_regexes` and `allow_null_origin`.
#[derive(Debug, Default)]
pub(crate) struct OriginMatcher {
    any: bool,
    allow_null: bool,
    /// Exact origins: the request's raw header value looked up as it is.
    exact: ExactOrigins,
    /// Keyed by host: `scheme://host:*` entries.
    any_port: HashMap<Box<str>, Vec<HostRule>>,
    /// Keyed by domain suffix: `scheme://*.suffix[:port]` entries.
    subdomains: HashMap<Box<str>, Vec<HostRule>>,
    regexes: Option<RegexSet>,
}

impl OriginMatcher {
    pub(crate) fn new(
        entries: &[OriginEntry],
        regexes: Option<RegexSet>,
        allow_null: bool,
    ) -> Self {
        let mut m = OriginMatcher {
            allow_null,
            regexes,
            ..Default::default()
        };
        let mut exact: Vec<Box<[u8]>> = Vec::new();
        let mut seen = foldhash::HashSet::default();
        for entry in entries {
            match entry {
                OriginEntry::Any => m.any = true,
                OriginEntry::Exact(o) => {
                    if seen.insert(o.as_str()) {
                        exact.push(o.as_str().as_bytes().into());
                    }
                }
                OriginEntry::AnyPort { scheme, host } => {
                    m.any_port
                        .entry(host.as_str().into())
                        .or_default()
                        .push(HostRule {
                            scheme: scheme.as_str().into(),
                            port: PortRule::Any,
                        });
                }
                OriginEntry::Subdomains {
                    scheme,
                    suffix,
                    port,
                } => {
                    m.subdomains
                        .entry(suffix.as_str().into())
                        .or_default()
                        .push(HostRule {
                            scheme: scheme.as_str().into(),
                            port: *port,
                        });
                }
            }
        }
        m.exact = ExactOrigins::new(exact);
        m
    }

    /// Whether `"*"` is in the list (answered with `Access-Control-Allow-Origin: *`).
    pub(crate) fn allows_any(&self) -> bool {
        self.any
    }

    /// Matches a request's `Origin` header value (the decision does the same in two
    /// steps, [`OriginMatcher::exact_hit`] then [`OriginMatcher::check_pattern`]).
    #[cfg(test)]
    pub(crate) fn check(&self, value: &str) -> OriginMatch {
        match self.exact_hit(value.as_bytes()) {
            Some(_) => OriginMatch::Allowed,
            None => self.check_pattern(value),
        }
    }

    /// The exact entry equal to the raw header value, if any. The common case, with no
    /// parsing and no text check at all.
    #[inline]
    pub(crate) fn exact_hit(&self, value: &[u8]) -> Option<Listed> {
        self.exact.get(value)
    }

    /// The exact entries, in [`Listed`] order.
    pub(crate) fn exact_origins(&self) -> Vec<&str> {
        // Keys were built from `&str`, so `from_utf8` never fails.
        let in_order = self.exact.in_order().into_iter();
        in_order
            .map(|key| std::str::from_utf8(key).unwrap_or_default())
            .collect()
    }

    /// Everything but the exact entries (the caller looked those up already).
    pub(crate) fn check_pattern(&self, value: &str) -> OriginMatch {
        if value == "null" {
            return if self.allow_null {
                OriginMatch::Allowed
            } else {
                OriginMatch::NullRefused
            };
        }
        let Some(origin) = origin::parse_request_origin(value) else {
            return OriginMatch::Malformed;
        };
        let allowed = self.any
            || self.matches_any_port(&origin)
            || self.matches_subdomain(&origin)
            || self.regexes.as_ref().is_some_and(|set| set.is_match(value));
        if allowed {
            OriginMatch::Allowed
        } else {
            OriginMatch::NotAllowed
        }
    }

    fn matches_any_port(&self, origin: &RequestOrigin<'_>) -> bool {
        self.any_port
            .get(origin.host)
            .is_some_and(|rules| rules.iter().any(|r| r.admits(origin)))
    }

    /// Tries each proper suffix of the host that starts after a dot: `a.b.example.com`
    /// looks up `b.example.com`, `example.com`, `com`. The host itself is never a key, so
    /// `*.example.com` cannot match `example.com`, and a suffix always begins at a label
    /// boundary, so it cannot match `evil-example.com`.
    fn matches_subdomain(&self, origin: &RequestOrigin<'_>) -> bool {
        if self.subdomains.is_empty() || origin.host.starts_with('[') {
            return false;
        }
        let host = origin.host;
        host.match_indices('.').any(|(dot, _)| {
            self.subdomains
                .get(&host[dot + 1..])
                .is_some_and(|rules| rules.iter().any(|r| r.admits(origin)))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::origin::parse_entry;

    fn matcher(entries: &[&str], regexes: &[&str]) -> OriginMatcher {
        let entries: Vec<_> = entries.iter().map(|e| parse_entry(e).unwrap()).collect();
        let set = (!regexes.is_empty())
            .then(|| RegexSet::new(regexes.iter().map(|r| format!("^(?:{r})$"))).unwrap());
        OriginMatcher::new(&entries, set, false)
    }

    #[test]
    fn exact_origins_match_and_bind_the_same_whether_few_or_many() {
        for n in [1, ExactOrigins::FEW, ExactOrigins::FEW + 1, 200] {
            let origins: Vec<String> = (0..n).map(|i| format!("https://o{i}.example")).collect();
            let m = matcher(&origins.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
            assert_eq!(
                matches!(m.exact, ExactOrigins::Many(_)),
                n > ExactOrigins::FEW,
                "{n} entries"
            );
            let listed = m.exact_origins();
            for origin in &origins {
                let hit = m.exact_hit(origin.as_bytes());
                assert!(
                    hit.is_some_and(|l| listed[l.index()] == origin),
                    "{origin} of {n}"
                );
            }
            // A prefix, an extension, another case: no hit.
            for miss in [
                "https://o0.exampl",
                "https://o0.example.x",
                "HTTPS://o0.example",
            ] {
                assert!(m.exact_hit(miss.as_bytes()).is_none(), "{miss} of {n}");
            }
        }
    }

    #[test]
    fn subdomain_wildcards_need_a_proper_subdomain_on_the_same_scheme_and_port() {
        let m = matcher(&["https://*.example.com"], &[]);
        assert_eq!(m.check("https://a.example.com"), OriginMatch::Allowed);
        assert_eq!(m.check("https://a.b.example.com"), OriginMatch::Allowed);
        assert_eq!(m.check("https://example.com"), OriginMatch::NotAllowed);
        assert_eq!(m.check("https://evil-example.com"), OriginMatch::NotAllowed);
        assert_eq!(
            m.check("https://example.com.evil.com"),
            OriginMatch::NotAllowed
        );
        assert_eq!(m.check("http://a.example.com"), OriginMatch::NotAllowed);
        assert_eq!(
            m.check("https://a.example.com:8443"),
            OriginMatch::NotAllowed
        );
    }

    #[test]
    fn port_wildcards() {
        let m = matcher(&["http://localhost:*"], &[]);
        assert_eq!(m.check("http://localhost:5173"), OriginMatch::Allowed);
        assert_eq!(m.check("http://localhost"), OriginMatch::Allowed);
        assert_eq!(m.check("https://localhost:5173"), OriginMatch::NotAllowed);
        assert_eq!(
            m.check("http://localhost.evil.com:5173"),
            OriginMatch::NotAllowed
        );
    }

    #[test]
    fn regexes_match_the_whole_origin() {
        let m = matcher(&[], &[r"https://.*\.example\.org"]);
        assert_eq!(m.check("https://x.example.org"), OriginMatch::Allowed);
        assert_eq!(
            m.check("https://x.example.org.evil.com"),
            OriginMatch::NotAllowed
        );
    }

    #[test]
    fn null_and_malformed() {
        let m = matcher(&["*"], &[]);
        assert_eq!(m.check("null"), OriginMatch::NullRefused);
        assert_eq!(m.check("not an origin"), OriginMatch::Malformed);
        assert_eq!(m.check("https://anything.example"), OriginMatch::Allowed);
        let m = OriginMatcher::new(&[], None, true);
        assert_eq!(m.check("null"), OriginMatch::Allowed);
    }
}
