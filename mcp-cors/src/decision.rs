//! The decision for one request: SPEC §4, in order, the first row that applies decides.

use std::fmt;
use std::sync::Arc;

use actix_web::http::Method;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};

use crate::allow_headers::split_request_headers;
use crate::host::HostRefusal;
use crate::matcher::{Listed, OriginMatch};
use crate::memo;
use crate::origin::{self, MAX_ORIGIN_LEN};
use crate::policy::{Mode, Policy};
use crate::refusal::RefusalKind;

pub use crate::protocol::Verdict;

/// Why a request was (or would have been) refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DenyReason {
    /// No `Host` header (nor HTTP/2 `:authority`) while `allowed_hosts` is enforced.
    HostMissing,
    /// A `Host` that is not `host[:port]`, or more than one.
    HostMalformed,
    /// A `Host` that is not in `allowed_hosts`.
    HostNotAllowed(String),
    /// An `Origin` that is not a browser serialisation, or more than one `Origin`.
    OriginMalformed,
    /// `Origin: null` while `allow_null_origin` is off.
    NullOrigin,
    /// An `Origin` not in the policy.
    OriginNotAllowed,
    /// A preflight asking for a method not in `allowed_methods`.
    MethodNotAllowed(String),
    /// A preflight asking for a header not in `allowed_headers`.
    HeaderNotAllowed(String),
    /// A preflight asking for Private Network Access while `allow_private_network` is off.
    PrivateNetworkNotAllowed,
    /// No policy has ever loaded (a bad or missing file at start-up), so every origin is
    /// refused; the text says why, as `<file>:<line>: <error>`.
    NoPolicyLoaded(Arc<str>),
}

impl DenyReason {
    /// The kind of refusal, as metrics label it and logs name it.
    pub(crate) fn kind(&self) -> RefusalKind {
        match self {
            DenyReason::HostMissing | DenyReason::HostNotAllowed(_) => RefusalKind::Host,
            DenyReason::HostMalformed | DenyReason::OriginMalformed => RefusalKind::Malformed,
            DenyReason::NullOrigin | DenyReason::OriginNotAllowed => RefusalKind::Origin,
            DenyReason::MethodNotAllowed(_) => RefusalKind::Method,
            DenyReason::HeaderNotAllowed(_) => RefusalKind::Header,
            DenyReason::PrivateNetworkNotAllowed => RefusalKind::PrivateNetwork,
            DenyReason::NoPolicyLoaded(_) => RefusalKind::NoPolicy,
        }
    }

    /// Whether the refusal is about `Host` (DNS rebinding) rather than CORS.
    pub fn is_host(&self) -> bool {
        matches!(
            self,
            DenyReason::HostMissing | DenyReason::HostMalformed | DenyReason::HostNotAllowed(_)
        )
    }
}

impl fmt::Display for DenyReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DenyReason::HostMissing => f.write_str("host header missing"),
            DenyReason::HostMalformed => f.write_str("host header malformed"),
            DenyReason::HostNotAllowed(h) => write!(f, "host {h} not allowed"),
            DenyReason::OriginMalformed => f.write_str("origin malformed"),
            DenyReason::NullOrigin => f.write_str("null origin not allowed"),
            DenyReason::OriginNotAllowed => f.write_str("origin not allowed"),
            DenyReason::MethodNotAllowed(m) => write!(f, "method {m} not allowed"),
            DenyReason::HeaderNotAllowed(h) => write!(f, "header {h} not allowed"),
            DenyReason::PrivateNetworkNotAllowed => {
                f.write_str("private network access not allowed")
            }
            DenyReason::NoPolicyLoaded(why) => write!(f, "no policy loaded: {why}"),
        }
    }
}

/// What the middleware does with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// No `Origin`: the handler runs; the response only gains `Vary: Origin`.
    NoOrigin,
    /// An allowed origin on an actual request: the handler runs and the response gets
    /// CORS headers with this `Access-Control-Allow-Origin` value.
    Allow {
        /// The value for `Access-Control-Allow-Origin`: the request's origin, or `*`.
        allow_origin: HeaderValue,
    },
    /// An allowed preflight, answered 204 by the middleware itself.
    Preflight {
        /// The value for `Access-Control-Allow-Origin`.
        allow_origin: HeaderValue,
        /// The validated `Access-Control-Request-Headers`, echoed as `-Allow-Headers`.
        allow_headers: Option<HeaderValue>,
        /// Whether Private Network Access was asked for (and is allowed).
        private_network: bool,
    },
    /// Refused: 403 in enforce mode; in report-only mode the handler runs untouched.
    Refuse {
        /// Why.
        reason: DenyReason,
        /// Whether the request was a preflight.
        preflight: bool,
        /// `false` in report-only mode.
        enforced: bool,
    },
}

impl Decision {
    /// The verdict as events report it.
    pub fn verdict(&self) -> Verdict {
        match self {
            Decision::Refuse { enforced: true, .. } => Verdict::Deny,
            Decision::Refuse {
                enforced: false, ..
            } => Verdict::WouldDeny,
            _ => Verdict::Allow,
        }
    }

    /// Whether the request was a CORS preflight (answered, or refused as one).
    pub fn is_preflight(&self) -> bool {
        matches!(
            self,
            Decision::Preflight { .. }
                | Decision::Refuse {
                    preflight: true,
                    ..
                }
        )
    }

    /// The reason of a refusal (or of a report-only would-be refusal).
    pub fn reason(&self) -> Option<&DenyReason> {
        match self {
            Decision::Refuse { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

/// What the rows of SPEC §4 up to the origin's found for a request ([`Policy::judge`]),
/// before it becomes a [`Decision`]: small, and borrowing the request's `Origin`.
#[derive(Debug)]
pub(crate) enum Judged<'h> {
    /// No `Origin`: not a browser's cross-origin request.
    NoOrigin,
    /// An actual request from an allowed `origin`, listed exactly as `listed` (or allowed
    /// by a pattern or as the server's own).
    Allow {
        origin: &'h HeaderValue,
        listed: Option<Listed>,
    },
    /// A preflight from an allowed `origin`, whose rows are still to check.
    Preflight {
        origin: &'h HeaderValue,
        listed: Option<Listed>,
    },
    /// Refused by a row (the mode says whether the refusal is enforced).
    Refuse { reason: DenyReason, preflight: bool },
}

const ACRPN: HeaderName = HeaderName::from_static("access-control-request-private-network");

/// The value of a header that must appear at most once. `Err` when repeated or not text.
#[inline(always)]
fn single<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Result<Option<&'a HeaderValue>, ()> {
    let mut values = headers.get_all(name);
    match (values.next(), values.next()) {
        (None, _) => Ok(None),
        (Some(v), None) => Ok(Some(v)),
        (Some(_), Some(_)) => Err(()),
    }
}

/// Whether `origin` is the server's own: the page was served by this server, so its
/// origin's host and port are the `Host` the request was sent to (a `Host` without a port
/// means the scheme's default one). Only called with a `Host` that passed the guard, so a
/// rebound name (`evil.example`) never gets here.
/// `bytes` as text if they are what a header value may hold as text (visible ASCII and
/// tab, as `HeaderValue::to_str` requires).
fn visible_text(bytes: &[u8]) -> Option<&str> {
    if bytes
        .iter()
        .all(|&b| b == b'\t' || (0x20..0x7f).contains(&b))
    {
        std::str::from_utf8(bytes).ok()
    } else {
        None
    }
}

fn same_origin(origin: &str, host: &str) -> bool {
    let (Some(origin), Some((host, port))) = (
        origin::parse_request_origin(origin),
        origin::split_host_port(host),
    ) else {
        return false;
    };
    let default = origin::default_port(origin.scheme);
    let host_port = match port {
        Some(p) => origin::parse_port(p),
        None => default,
    };
    host.eq_ignore_ascii_case(origin.host)
        && host_port.is_some()
        && host_port == origin.port.or(default)
}

impl Policy {
    /// Decides what to do with a request, given its method, headers and the request
    /// target's authority, if it has one: an absolute-form target (`POST http://host/mcp`)
    /// or HTTP/2's `:authority`. An authority is judged instead of `Host`, which is then
    /// ignored (RFC 9112 §3.2.2, RFC 9113 §8.3.1).
    ///
    /// ```
    /// use actix_web::http::{Method, header::{HeaderMap, HeaderName, HeaderValue}};
    /// use mcp_cors::{Decision, Policy, Verdict};
    ///
    /// let policy = Policy::from_toml_str(r#"allowed_origins = ["https://app.example.com"]"#)?;
    /// let mut headers = HeaderMap::new();
    /// headers.insert(HeaderName::from_static("host"), HeaderValue::from_static("localhost:8080"));
    /// headers.insert(HeaderName::from_static("origin"), HeaderValue::from_static("https://evil.example"));
    /// let decision = policy.decide(&Method::POST, &headers, None);
    /// assert_eq!(decision.verdict(), Verdict::Deny);
    /// # Ok::<(), mcp_cors::PolicyError>(())
    /// ```
    pub fn decide(
        &self,
        method: &Method,
        headers: &HeaderMap,
        authority: Option<&str>,
    ) -> Decision {
        self.decide_listed(method, headers, authority).0
    }

    /// [`Policy::decide`], and which exact entry of the policy the origin matched, if one
    /// did: the middleware counts with the counter bound to it, lock-free.
    pub(crate) fn decide_listed(
        &self,
        method: &Method,
        headers: &HeaderMap,
        authority: Option<&str>,
    ) -> (Decision, Option<Listed>) {
        let judged = self.judge(method, headers, authority);
        self.decision_of(judged, headers)
    }

    /// What [`Policy::judge`] found, as the [`Decision`] it makes (and the exact entry the
    /// origin matched): a preflight's rows are checked here.
    pub(crate) fn decision_of(
        &self,
        judged: Judged<'_>,
        headers: &HeaderMap,
    ) -> (Decision, Option<Listed>) {
        match judged {
            Judged::NoOrigin => (Decision::NoOrigin, None),
            Judged::Allow { origin, listed } => {
                let allow_origin = self.allow_origin(origin);
                (Decision::Allow { allow_origin }, listed)
            }
            Judged::Preflight { origin, listed } => {
                let allow_origin = self.allow_origin(origin);
                (self.decide_preflight(headers, allow_origin), listed)
            }
            Judged::Refuse { reason, preflight } => (self.refusal(reason, preflight), None),
        }
    }

    /// The `Access-Control-Allow-Origin` for an allowed `origin`: `*` when every origin is
    /// allowed (without credentials, which the policy then cannot have), else the origin.
    #[inline]
    pub(crate) fn allow_origin(&self, origin: &HeaderValue) -> HeaderValue {
        if self.compiled().origins.allows_any() {
            HeaderValue::from_static("*")
        } else {
            origin.clone()
        }
    }

    /// The rows of SPEC §4 up to the origin's, for a request: what they found, borrowed
    /// from the request's headers, so the usual request's path moves two words instead of
    /// a whole [`Decision`] (and builds one only when it goes on to events or a response).
    ///
    /// Inlined into the middleware, and kept to the usual request's steps: a `Host` this
    /// thread admitted last (or the guard off), an `Origin` listed exactly. Every other
    /// step is a function of its own, out of the way.
    #[inline(always)]
    pub(crate) fn judge<'h>(
        &self,
        method: &Method,
        headers: &'h HeaderMap,
        authority: Option<&str>,
    ) -> Judged<'h> {
        let c = self.compiled();
        let preflight = method == Method::OPTIONS
            && headers.contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);

        // With the guard off (`allowed_hosts = ["*"]`) `Host` is not looked at at all.
        let mut checked_host: Option<&[u8]> = None;
        if !c.hosts.is_off() {
            let host = match authority {
                // Userinfo in a target is an error (RFC 9110 §4.2.4), not part of a host.
                Some(a) if a.contains('@') => Err(()),
                Some(a) => Ok(Some(a.as_bytes())),
                None => single(headers, &header::HOST).map(|v| v.map(HeaderValue::as_bytes)),
            };
            // The same bytes as this thread's last admitted Host, for this policy: they
            // passed the text check and the guard then, so they pass now.
            let admitted_before = matches!(host, Ok(Some(h)) if memo::host_admitted(c.id, h));
            if !admitted_before {
                if let Err(reason) = self.admit_host(host) {
                    return Judged::Refuse { reason, preflight };
                }
            }
            checked_host = host.ok().flatten();
        }

        let origin = match single(headers, &header::ORIGIN) {
            Ok(None) => return Judged::NoOrigin,
            Ok(Some(v)) => v,
            Err(()) => return self.origin_refusal(DenyReason::OriginMalformed, preflight),
        };
        // Longer than any browser sends: malformed, and not even hashed for the lookup.
        if origin.len() > MAX_ORIGIN_LEN {
            return self.origin_refusal(DenyReason::OriginMalformed, preflight);
        }
        // An exact entry first, on the raw bytes: every entry is a valid origin, so a hit
        // needs no text check; anything else is checked as text, then against patterns.
        let listed = match c.origins.exact_hit(origin.as_bytes()) {
            Some(listed) => Some(listed),
            // What a pattern allowed last on this thread, for this policy: allowed again,
            // without parsing the origin again.
            None if memo::origin_allowed(c.id, origin.as_bytes()) => None,
            None => {
                if let Err(reason) = self.admit_unlisted(origin, checked_host) {
                    return self.origin_refusal(reason, preflight);
                }
                None
            }
        };
        match preflight {
            false => Judged::Allow { origin, listed },
            true => Judged::Preflight { origin, listed },
        }
    }

    /// The `Host` guard's full check, for a `Host` this thread did not admit last under
    /// this policy: `host` is the request target's authority or the `Host` header (`Err`:
    /// malformed; `Ok(None)`: none sent). Admitted, it is remembered.
    #[inline(never)]
    fn admit_host(&self, host: Result<Option<&[u8]>, ()>) -> Result<(), DenyReason> {
        let c = self.compiled();
        let text = match host {
            Err(()) => return Err(DenyReason::HostMalformed),
            Ok(host) => match host.map(visible_text) {
                Some(Some(text)) => Some(text),
                Some(None) => return Err(DenyReason::HostMalformed),
                None => None,
            },
        };
        if let Err(refusal) = c.hosts.check(text) {
            return Err(match refusal {
                HostRefusal::Missing => DenyReason::HostMissing,
                HostRefusal::Malformed => DenyReason::HostMalformed,
                HostRefusal::NotAllowed(h) => DenyReason::HostNotAllowed(h),
            });
        }
        if let Ok(Some(h)) = host {
            memo::remember_host(c.id, h);
        }
        Ok(())
    }

    /// Whether an origin that no exact entry lists, nor this thread's memo, is allowed: by
    /// a pattern, or as the server's own (`allow_same_origin`,
    /// with the `checked_host` the guard admitted).
    #[inline(never)]
    fn admit_unlisted(
        &self,
        origin: &HeaderValue,
        checked_host: Option<&[u8]>,
    ) -> Result<(), DenyReason> {
        let c = self.compiled();
        let Ok(origin_text) = origin.to_str() else {
            return Err(DenyReason::OriginMalformed);
        };
        match c.origins.check_pattern(origin_text) {
            OriginMatch::Allowed => {
                memo::remember_origin(c.id, origin.as_bytes());
                Ok(())
            }
            OriginMatch::NotAllowed
                if self.settings().allow_same_origin
                    && checked_host
                        .and_then(visible_text)
                        .is_some_and(|h| same_origin(origin_text, h)) =>
            {
                Ok(())
            }
            OriginMatch::NotAllowed => Err(DenyReason::OriginNotAllowed),
            OriginMatch::NullRefused => Err(DenyReason::NullOrigin),
            OriginMatch::Malformed => Err(DenyReason::OriginMalformed),
        }
    }

    /// An allowed origin's preflight, answered or refused by its rows.
    #[inline(never)]
    fn decide_preflight(&self, headers: &HeaderMap, allow_origin: HeaderValue) -> Decision {
        match self.check_preflight(headers) {
            Ok((allow_headers, private_network)) => Decision::Preflight {
                allow_origin,
                allow_headers,
                private_network,
            },
            Err(reason) => self.refusal(reason, true),
        }
    }

    /// A refusal for `reason`, enforced or reported by the mode.
    #[cold]
    fn refusal(&self, reason: DenyReason, preflight: bool) -> Decision {
        Decision::Refuse {
            reason,
            preflight,
            enforced: self.settings().mode == Mode::Enforce,
        }
    }

    /// An origin refusal; while no policy has loaded, every one says so instead.
    #[cold]
    fn origin_refusal<'h>(&self, reason: DenyReason, preflight: bool) -> Judged<'h> {
        let reason = match self.unloaded_reason() {
            Some(why) => DenyReason::NoPolicyLoaded(Arc::clone(why)),
            None => reason,
        };
        Judged::Refuse { reason, preflight }
    }

    /// The preflight rows: method, each requested header, Private Network Access.
    fn check_preflight(
        &self,
        headers: &HeaderMap,
    ) -> Result<(Option<HeaderValue>, bool), DenyReason> {
        let lossy = |v: &[u8]| String::from_utf8_lossy(v).into_owned();
        let method = single(headers, &header::ACCESS_CONTROL_REQUEST_METHOD)
            .ok()
            .flatten()
            .ok_or_else(|| DenyReason::MethodNotAllowed("(repeated)".into()))?;
        // Allowed methods are tokens, so comparing raw bytes needs no UTF-8 pass.
        let allowed_method =
            (self.settings().allowed_methods.iter()).any(|a| a.as_bytes() == method.as_bytes());
        if !allowed_method {
            return Err(DenyReason::MethodNotAllowed(lossy(method.as_bytes())));
        }

        let mut requested = headers
            .get_all(header::ACCESS_CONTROL_REQUEST_HEADERS)
            .peekable();
        let allow_headers = match (requested.next(), requested.peek()) {
            (None, _) => None,
            (Some(value), None) => {
                // One pass over the raw bytes: every element must be a token (which also
                // rules out anything but ASCII) that the policy allows.
                let mut any = false;
                for name in split_request_headers(value.as_bytes()) {
                    match name {
                        Ok(n) if self.compiled().headers.allows(n) => any = true,
                        Ok(n) | Err(n) => return Err(DenyReason::HeaderNotAllowed(lossy(n))),
                    }
                }
                // Echo the request's own list: it covers prefix entries (`Mcp-Param-*`),
                // which `Access-Control-Allow-Headers` cannot express.
                any.then(|| value.clone())
            }
            (Some(_), Some(_)) => {
                return Err(DenyReason::HeaderNotAllowed(
                    "(repeated request header list)".into(),
                ));
            }
        };

        let private_network = headers
            .get(ACRPN)
            .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"true"));
        if private_network && !self.settings().allow_private_network {
            return Err(DenyReason::PrivateNetworkNotAllowed);
        }
        Ok((allow_headers, private_network))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Policy;

    fn request(origin: &str, host: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_str(origin).expect("origin"),
        );
        headers.insert(header::HOST, HeaderValue::from_str(host).expect("host"));
        headers
    }

    fn verdict(policy: &Policy, origin: &str, host: &str) -> Verdict {
        policy
            .decide(&Method::POST, &request(origin, host), None)
            .verdict()
    }

    fn policy(text: &str) -> Policy {
        Policy::from_toml_str(text).expect("a valid policy")
    }

    #[test]
    fn what_one_policy_admitted_is_never_admitted_by_another_on_the_same_thread() {
        let wide =
            policy("allowed_origins = [\"https://*.example.com\"]\nallowed_hosts = [\"a.test\"]");
        let narrow =
            policy("allowed_origins = [\"https://other.example\"]\nallowed_hosts = [\"b.test\"]");
        let origin = "https://app.example.com";
        // Twice each: the second is answered from what the thread remembers.
        for _ in 0..2 {
            assert_eq!(verdict(&wide, origin, "a.test"), Verdict::Allow);
            assert_eq!(verdict(&narrow, origin, "b.test"), Verdict::Deny, "origin");
            assert_eq!(
                verdict(&narrow, "https://other.example", "a.test"),
                Verdict::Deny,
                "host"
            );
        }
        // A reload of the very same text is a new policy: decided afresh, the same way.
        let reloaded =
            policy("allowed_origins = [\"https://other.example\"]\nallowed_hosts = [\"b.test\"]");
        assert_eq!(verdict(&reloaded, origin, "b.test"), Verdict::Deny);
    }

    #[test]
    fn a_remembered_origin_or_host_is_decided_as_without_it() {
        let p = policy(
            "allowed_origins = [\"https://*.example.com\"]\n\
             allowed_origin_regexes = [\"https://[a-z]+\\\\.regex\\\\.test\"]\n\
             allowed_hosts = [\"*.svc.test\", \"10.0.0.0/8\"]",
        );
        let cases = [
            ("https://app.example.com", "api.svc.test", Verdict::Allow),
            ("https://app.example.com", "api.svc.test", Verdict::Allow),
            (
                "https://app.example.com:8443",
                "api.svc.test",
                Verdict::Deny,
            ),
            ("https://a.regex.test", "10.1.2.3:8080", Verdict::Allow),
            ("https://a.regex.test", "10.1.2.3:8080", Verdict::Allow),
            ("https://a.regex.test", "11.1.2.3:8080", Verdict::Deny),
            ("https://example.com", "10.1.2.3", Verdict::Deny),
            ("https://app.example.com", "svc.test", Verdict::Deny),
            ("https://app.example.com", "api.svc.test", Verdict::Allow),
        ];
        for (origin, host, expected) in cases {
            assert_eq!(verdict(&p, origin, host), expected, "{origin} on {host}");
        }
    }

    #[test]
    fn a_host_that_is_not_visible_text_is_refused_as_malformed_every_time() {
        let p = policy("allowed_origins = [\"https://app.example.com\"]");
        let origin = HeaderValue::from_static("https://app.example.com");
        for bad in [&b"localh\xc3\xb6st"[..], &b"local\xffhost"[..]] {
            for _ in 0..2 {
                let mut headers = HeaderMap::new();
                headers.insert(header::ORIGIN, origin.clone());
                headers.insert(
                    header::HOST,
                    HeaderValue::from_bytes(bad).expect("a header value"),
                );
                let decision = p.decide(&Method::POST, &headers, None);
                assert!(
                    matches!(decision.reason(), Some(DenyReason::HostMalformed)),
                    "{bad:?}: {decision:?}"
                );
            }
        }
        // The same request with a good Host passes, before and after it is remembered.
        for _ in 0..2 {
            assert_eq!(
                verdict(&p, "https://app.example.com", "localhost:8080"),
                Verdict::Allow
            );
        }
    }
}
