//! Origins: the policy's entries, normalised at load, and the request's `Origin`, parsed
//! strictly on the hot path.
//!
//! A browser serialises an origin as `scheme "://" host [ ":" port ]`: scheme and host in
//! lower case, hosts in punycode, IPv6 in brackets, the scheme's default port omitted, no
//! trailing slash. Policy entries are brought to exactly that form when the policy loads
//! (with the `url` crate, which implements the WHATWG URL standard browsers follow), so a
//! request's `Origin` can be compared byte for byte.

use std::borrow::Cow;
use std::fmt;

/// The longest origin a browser can send, in bytes: the cap on an `allowed_origins` entry
/// (at load and in admin edits) and on a request's `Origin` (longer is malformed, refused
/// without being compared).
///
/// A browser serialises an origin as `scheme "://" host [":" port]`:
/// - the scheme: the longest a browser puts in an origin is `safari-web-extension` (20
///   bytes); 32 leaves room for others (`isolated-app`, an embedder's own scheme);
/// - `://`: 3;
/// - the host: a DNS name is at most 253 octets in text (RFC 1035 §2.3.4: 255 on the wire,
///   less the first length octet and the root), 254 with a trailing dot; every other host
///   is shorter: an IPv6 literal in brackets is at most 41 (`[ffff:…:ffff]`, compressed), a
///   Chrome extension id 32, a Firefox or Safari extension UUID 36;
/// - the port: at most `:65535`, 6.
///
/// 32 + 3 + 254 + 6 = 295. Nothing longer can be resolved, so nothing longer can be a page
/// that sends requests; and the cap keeps every admin line about an origin far below
/// [`MAX_LINE`](crate::protocol::MAX_LINE).
pub(crate) const MAX_ORIGIN_LEN: usize = 32 + 3 + 254 + 6;

/// How much of an offending value a message quotes; the rest is summarised by its length.
const SHOWN_VALUE: usize = 100;

/// Schemes an allowed origin may use. Extension schemes are accepted as exact entries only.
const WEB_SCHEMES: [&str; 2] = ["http", "https"];
const EXTENSION_SCHEMES: [&str; 3] = ["chrome-extension", "moz-extension", "safari-web-extension"];

/// The port part of a policy entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum PortRule {
    /// Exactly this port; `None` is the scheme's default port (absent from the origin).
    Exact(Option<u16>),
    /// `:*`: any port, the default included.
    Any,
}

impl PortRule {
    pub(crate) fn matches(self, port: Option<u16>) -> bool {
        match self {
            PortRule::Any => true,
            PortRule::Exact(p) => p == port,
        }
    }
}

/// One entry of `allowed_origins`, validated and normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum OriginEntry {
    /// `"*"`: any origin.
    Any,
    /// A single origin in browser serialisation (`https://app.example.com`).
    Exact(String),
    /// `scheme://*.suffix[:port|:*]`: any proper subdomain of `suffix` (one or more labels).
    Subdomains {
        scheme: String,
        suffix: String,
        port: PortRule,
    },
    /// `scheme://host:*`: the host on any port.
    AnyPort { scheme: String, host: String },
}

impl fmt::Display for OriginEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let port = |f: &mut fmt::Formatter<'_>, port: PortRule| match port {
            PortRule::Any => f.write_str(":*"),
            PortRule::Exact(Some(p)) => write!(f, ":{p}"),
            PortRule::Exact(None) => Ok(()),
        };
        match self {
            OriginEntry::Any => f.write_str("*"),
            OriginEntry::Exact(origin) => f.write_str(origin),
            OriginEntry::Subdomains {
                scheme,
                suffix,
                port: p,
            } => {
                write!(f, "{scheme}://*.{suffix}")?;
                port(f, *p)
            }
            OriginEntry::AnyPort { scheme, host } => write!(f, "{scheme}://{host}:*"),
        }
    }
}

/// Parses and normalises one `allowed_origins` entry. The error is a sentence for the
/// operator; the caller adds key, value and line.
pub(crate) fn parse_entry(raw: &str) -> Result<OriginEntry, String> {
    let text = raw.trim();
    // Refuse huge input before parsing it. Normalising can grow a host (punycode), so the
    // final check is on the stored form; this one only bounds the work.
    if text.len() > 4 * MAX_ORIGIN_LEN {
        return Err(too_long(text.len()));
    }
    let entry = parse_bounded(text)?;
    let stored = entry.to_string().len();
    if stored > MAX_ORIGIN_LEN {
        return Err(too_long(stored));
    }
    Ok(entry)
}

fn too_long(len: usize) -> String {
    format!(
        "the origin is {len} bytes long; a browser sends at most {MAX_ORIGIN_LEN} (scheme, \
         `://`, a host name of at most 253 bytes, port), so it could never match: check \
         that this is the origin you meant"
    )
}

/// A value for a message: as is when short, else its first characters and its length, so
/// a 64 KB mistake does not fill the terminal or the admin line.
pub(crate) fn shown(value: &str) -> Cow<'_, str> {
    if value.len() <= SHOWN_VALUE {
        return Cow::Borrowed(value);
    }
    let mut end = SHOWN_VALUE;
    while !value.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}… ({} bytes)", &value[..end], value.len()))
}

fn parse_bounded(text: &str) -> Result<OriginEntry, String> {
    if text == "*" {
        return Ok(OriginEntry::Any);
    }
    if text.eq_ignore_ascii_case("null") {
        return Err(
            "`null` is not an origin entry; set `allow_null_origin = true` to let \
                    sandboxed and file:// pages in"
                .into(),
        );
    }
    let Some((scheme, rest)) = text.split_once("://") else {
        return Err(
            "not an origin: expected scheme://host[:port], e.g. https://app.example.com".into(),
        );
    };
    let scheme = scheme.to_ascii_lowercase();
    let extension = EXTENSION_SCHEMES.contains(&scheme.as_str());
    if !WEB_SCHEMES.contains(&scheme.as_str()) && !extension {
        return Err(format!(
            "unknown scheme `{scheme}`: an allowed origin is http or https (or a browser \
             extension scheme: {})",
            EXTENSION_SCHEMES.join(", ")
        ));
    }
    let authority = rest.strip_suffix('/').unwrap_or(rest);
    check_authority_only(authority)?;

    let (authority, any_port) = match authority.strip_suffix(":*") {
        Some(a) => (a, true),
        None => (authority, false),
    };
    let (authority, subdomains) = match authority.strip_prefix("*.") {
        Some(a) => (a, true),
        None => (authority, false),
    };
    if authority.contains('*') {
        return Err(
            "a wildcard may only be a whole leading label (`https://*.example.com`) or the \
             whole port (`http://localhost:*`), not part of a label"
                .into(),
        );
    }
    if extension && (any_port || subdomains) {
        return Err("wildcards are not supported for browser extension origins".into());
    }

    let (host, port) = normalise_host_port(&scheme, authority)?;
    if subdomains {
        check_wildcard_suffix(&host)?;
        let port = if any_port {
            PortRule::Any
        } else {
            PortRule::Exact(port)
        };
        return Ok(OriginEntry::Subdomains {
            scheme,
            suffix: host,
            port,
        });
    }
    if any_port {
        if port.is_some() {
            return Err("give either a port or `:*`, not both".into());
        }
        return Ok(OriginEntry::AnyPort { scheme, host });
    }
    Ok(OriginEntry::Exact(serialise(&scheme, &host, port)))
}

/// Refuses anything past the authority: paths, queries, fragments, userinfo.
fn check_authority_only(authority: &str) -> Result<(), String> {
    if authority.is_empty() {
        return Err("the origin has no host".into());
    }
    if authority.contains('/') {
        return Err("an origin has no path: use scheme://host[:port] only".into());
    }
    if authority.contains('?') {
        return Err("an origin has no query string: use scheme://host[:port] only".into());
    }
    if authority.contains('#') {
        return Err("an origin has no fragment: use scheme://host[:port] only".into());
    }
    if authority.contains('@') {
        return Err("an origin has no user name or password: use scheme://host[:port] only".into());
    }
    if authority
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err("an origin contains no spaces or control characters".into());
    }
    Ok(())
}

/// Normalises `host[:port]` as a browser would: lower case, punycode, canonical IP forms,
/// the default port dropped. Returns the host as serialised and the explicit port.
fn normalise_host_port(scheme: &str, authority: &str) -> Result<(String, Option<u16>), String> {
    let url = url::Url::parse(&format!("{scheme}://{authority}"))
        .map_err(|e| format!("not a valid origin: {e}"))?;
    let host = url
        .host_str()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| "the origin has no host".to_string())?;
    // Non-special (extension) schemes keep the host as written; browsers send it lower-cased.
    let host = host.to_ascii_lowercase();
    // The URL parser decodes percent-escapes and lets through characters no browser puts in
    // an origin (`+`, `` ` ``, a decoded `*`). Such an entry could never match a request,
    // and would not load again in its normal form: refuse it.
    if !valid_request_host(&host) {
        return Err(format!(
            "`{host}` is not a host name a browser sends (letters, digits, `-`, `.`, or an IP address)"
        ));
    }
    Ok((host, url.port()))
}

/// `*.com` would admit every site under a top-level domain; demand at least two labels
/// (or `localhost`, for `http://*.localhost` development setups).
fn check_wildcard_suffix(suffix: &str) -> Result<(), String> {
    if suffix.starts_with('[') || suffix.parse::<std::net::Ipv4Addr>().is_ok() {
        return Err("a subdomain wildcard needs a domain name, not an IP address".into());
    }
    if !suffix.contains('.') && suffix != "localhost" {
        return Err(format!(
            "`*.{suffix}` would allow every site under a top-level domain; name a registrable \
             domain such as `*.example.com`"
        ));
    }
    Ok(())
}

/// The browser serialisation of an origin from its normalised parts.
pub(crate) fn serialise(scheme: &str, host: &str, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{scheme}://{host}:{p}"),
        None => format!("{scheme}://{host}"),
    }
}

/// A request's `Origin`, split into borrowed parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RequestOrigin<'a> {
    pub scheme: &'a str,
    pub host: &'a str,
    pub port: Option<u16>,
}

/// Parses a request's `Origin` value, accepting only what a browser sends: the exact
/// serialisation (lower case, default port omitted, no trailing slash, no path). Anything
/// else is malformed, and a malformed origin is refused: accepting alternative spellings
/// would only widen the ways two parsers could disagree.
pub(crate) fn parse_request_origin(value: &str) -> Option<RequestOrigin<'_>> {
    if value.len() > MAX_ORIGIN_LEN {
        return None;
    }
    let (scheme, authority) = value.split_once("://")?;
    if scheme.is_empty()
        || !scheme.as_bytes()[0].is_ascii_lowercase()
        || !scheme
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"+-.".contains(&b))
    {
        return None;
    }
    let (host, port) = split_host_port(authority)?;
    if !valid_request_host(host) {
        return None;
    }
    let port = match port {
        None => None,
        Some(p) => {
            let port = parse_port(p)?;
            if default_port(scheme) == Some(port) {
                return None;
            }
            Some(port)
        }
    };
    Some(RequestOrigin { scheme, host, port })
}

/// Splits `host[:port]`, with IPv6 hosts in brackets. Returns `None` for an empty host.
pub(crate) fn split_host_port(authority: &str) -> Option<(&str, Option<&str>)> {
    let (host, port) = if authority.starts_with('[') {
        let end = authority.find(']')?;
        let (host, rest) = authority.split_at(end + 1);
        match rest {
            "" => (host, None),
            _ => (host, Some(rest.strip_prefix(':')?)),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    (!host.is_empty()).then_some((host, port))
}

/// A port as browsers print it: decimal, no sign, no leading zero, at most 65535.
pub(crate) fn parse_port(text: &str) -> Option<u16> {
    let canonical = !text.is_empty()
        && text.len() <= 5
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

fn valid_request_host(host: &str) -> bool {
    if let Some(inner) = host.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return false;
        };
        // Browsers print IPv6 compressed and in lower case; compare against that exactly.
        return inner
            .parse::<std::net::Ipv6Addr>()
            .is_ok_and(|ip| ip.to_string() == inner);
    }
    !host.starts_with('.')
        && !host.contains("..")
        && host
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
}

pub(crate) fn default_port(scheme: &str) -> Option<u16> {
    match scheme {
        "http" | "ws" => Some(80),
        "https" | "wss" => Some(443),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(s: &str) -> String {
        match parse_entry(s).unwrap() {
            OriginEntry::Exact(o) => o,
            other => panic!("expected exact, got {other:?}"),
        }
    }

    #[test]
    fn entries_are_normalised_to_browser_form() {
        assert_eq!(
            exact("https://App.Example.com:443"),
            "https://app.example.com"
        );
        assert_eq!(exact("HTTP://localhost:80/"), "http://localhost");
        assert_eq!(exact("http://localhost:5173"), "http://localhost:5173");
        assert_eq!(exact("http://[0:0::1]:8080"), "http://[::1]:8080");
        assert_eq!(exact("https://münchen.de"), "https://xn--mnchen-3ya.de");
        assert_eq!(
            exact("chrome-extension://ABCDEF"),
            "chrome-extension://abcdef"
        );
    }

    #[test]
    fn entries_with_more_than_an_origin_are_refused() {
        for bad in [
            "https://a.com/path",
            "https://a.com/?q=1",
            "https://a.com#frag",
            "https://user:pw@a.com",
            "ftp://a.com",
            "a.com",
            "https://",
            "https://a*b.com",
            "https://a%2Ab.com",
            "https://a+b.com",
            // Found by fuzzing (fuzz target `origin`): a percent-encoded `*` decoded into the
            // host made normalisation not idempotent.
            " https://+OOOOKOOOOOOOOOOdxtenOO+3+++%2A-+++++++`:*\r\r",
            "https://*.com",
            "https://*.1.2.3.4",
            "null",
        ] {
            assert!(parse_entry(bad).is_err(), "{bad} should be refused");
        }
    }

    #[test]
    fn wildcard_entries() {
        assert_eq!(
            parse_entry("https://*.Example.com").unwrap(),
            OriginEntry::Subdomains {
                scheme: "https".into(),
                suffix: "example.com".into(),
                port: PortRule::Exact(None)
            }
        );
        assert_eq!(
            parse_entry("http://localhost:*").unwrap(),
            OriginEntry::AnyPort {
                scheme: "http".into(),
                host: "localhost".into()
            }
        );
        assert_eq!(
            parse_entry("https://*.example.com:*").unwrap().to_string(),
            "https://*.example.com:*"
        );
    }

    #[test]
    fn request_origins_must_be_browser_serialisations() {
        assert!(parse_request_origin("https://app.example.com").is_some());
        assert!(parse_request_origin("http://[::1]:8080").is_some());
        for bad in [
            "https://App.example.com",
            "https://app.example.com:443",
            "https://app.example.com/",
            "https://app.example.com:0080",
            "https://",
            "app.example.com",
            "HTTPS://app.example.com",
            "http://[0:0::1]",
            "https://a..b",
        ] {
            assert!(
                parse_request_origin(bad).is_none(),
                "{bad} should be malformed"
            );
        }
    }
}
