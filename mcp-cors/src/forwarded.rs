//! The client's address, as events, logs and audit name it: the peer's IP, or, when the
//! peer is one of the `trusted_proxies`, the client its forwarding header names.
//!
//! Behind a trusted reverse proxy, each proxy appends the address it received the request
//! from, so the chain reads client, proxy, proxy, … from left to right, and the peer itself
//! is the last proxy. Everything left of what a trusted proxy appended was written by the
//! sender and may be forged. So the chain is walked from the right: trusted proxies are
//! skipped, and the first address that is not one is the client. Never is a header read
//! from a peer that is not trusted.
//!
//! Rules where the headers leave a choice:
//! - `X-Forwarded-For` wins when present, else `Forwarded` (RFC 7239) is read. Most
//!   proxies (nginx, HAProxy, cloud load balancers) append `X-Forwarded-For` and pass a
//!   `Forwarded` header through untouched, so preferring `Forwarded` would let a sender
//!   forge it behind them; a proxy that writes only `Forwarded` should drop an incoming
//!   `X-Forwarded-For`.
//! - Every line of the header counts, in order, each a comma-separated list.
//! - An entry that names no address (`unknown`, an obfuscated `_name`, a `Forwarded`
//!   element without `for=`, anything malformed) ends the walk: the client is then the
//!   last address read (the proxy that could not say who sent to it), never a guess
//!   further left.
//! - A chain of trusted proxies only: the client is its left-most address.
//! - IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`, what a dual-stack socket reports) are
//!   taken as the IPv4 address, so `10.0.0.0/8` covers them.

use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};

use crate::host::IpRange;

/// Compiled `trusted_proxies`: the reverse proxies whose forwarding headers are believed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct TrustedProxies {
    ranges: Vec<IpRange>,
}

impl TrustedProxies {
    pub(crate) fn new(ranges: Vec<IpRange>) -> Self {
        TrustedProxies { ranges }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.ranges.iter().any(|r| r.contains(ip))
    }

    /// The client of a request from `peer` whose forwarding header yields `hops`, read
    /// from right to left (`None`: an entry that names no address).
    fn walk(&self, peer: IpAddr, hops: impl Iterator<Item = Option<IpAddr>>) -> IpAddr {
        let mut last = peer;
        for hop in hops {
            match hop.map(|ip| ip.to_canonical()) {
                Some(ip) if self.trusts(ip) => last = ip,
                Some(ip) => return ip,
                None => break,
            }
        }
        last
    }
}

/// Parses one `trusted_proxies` entry: a range (`10.0.0.0/8`, `fd00::/8`) or a single
/// address (`10.0.0.7` = `10.0.0.7/32`, `fd00::7` = `fd00::7/128`).
pub(crate) fn parse_entry(raw: &str) -> Result<IpRange, String> {
    IpRange::parse_address_or_range(raw)
}

/// Where a request came from, kept as it is until an event or a log line needs the
/// client's address: resolving it reads headers, which the usual allowed request with no
/// listener never pays for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Peer<'a> {
    addr: Option<SocketAddr>,
    proxies: &'a TrustedProxies,
}

impl<'a> Peer<'a> {
    /// A request from `addr` (none over a Unix socket), judged with `proxies`.
    pub(crate) fn new(addr: Option<SocketAddr>, proxies: &'a TrustedProxies) -> Self {
        Peer { addr, proxies }
    }

    /// A request whose peer is not known: no client.
    #[cfg(test)]
    pub(crate) fn unknown() -> Peer<'static> {
        static NO_PROXIES: TrustedProxies = TrustedProxies { ranges: Vec::new() };
        Peer {
            addr: None,
            proxies: &NO_PROXIES,
        }
    }

    /// The client's address: the peer's, or behind a trusted proxy the forwarded one.
    #[cfg(feature = "server")]
    pub(crate) fn client(&self, headers: &actix_web::http::header::HeaderMap) -> Option<IpAddr> {
        use actix_web::http::header;
        let peer = self.addr?.ip().to_canonical();
        if self.proxies.ranges.is_empty() || !self.proxies.trusts(peer) {
            return Some(peer);
        }
        let lines = |name| {
            let lines: Vec<Option<&str>> = headers.get_all(name).map(|v| v.to_str().ok()).collect();
            lines
        };
        let xff = lines(header::X_FORWARDED_FOR);
        let client = if !xff.is_empty() {
            self.proxies
                .walk(peer, hops_right_to_left(&xff, x_forwarded_for))
        } else {
            let forwarded = lines(header::FORWARDED);
            self.proxies
                .walk(peer, hops_right_to_left(&forwarded, forwarded_for))
        };
        Some(client)
    }
}

/// The hops of a header's `lines` (in the order received; `None`: not text), from the
/// right-most, each line split into its entries by `entries` (left to right).
fn hops_right_to_left<'l>(
    lines: &'l [Option<&'l str>],
    entries: fn(&str) -> Vec<Option<IpAddr>>,
) -> impl Iterator<Item = Option<IpAddr>> + 'l {
    lines.iter().rev().flat_map(move |line| match line {
        Some(line) => entries(line).into_iter().rev(),
        None => vec![None].into_iter().rev(),
    })
}

/// The addresses of one `X-Forwarded-For` line, left to right.
fn x_forwarded_for(line: &str) -> Vec<Option<IpAddr>> {
    line.split(',').map(|entry| node(entry.trim())).collect()
}

/// The `for=` address of each element of one `Forwarded` line, left to right; `None` for
/// an element without one, or one that cannot be read.
fn forwarded_for(line: &str) -> Vec<Option<IpAddr>> {
    split_unquoted(line, b',')
        .into_iter()
        .map(|element| {
            let element = element?;
            let value = split_unquoted(element, b';').into_iter().find_map(|pair| {
                let (name, value) = pair?.split_once('=')?;
                name.trim()
                    .eq_ignore_ascii_case("for")
                    .then(|| value.trim())
            })?;
            node(&unquoted(value)?)
        })
        .collect()
}

/// `text` split at each `separator` outside a quoted string; `None` for a part with an
/// unterminated quote.
fn split_unquoted(text: &str, separator: u8) -> Vec<Option<&str>> {
    let (mut parts, mut start, mut quoted, mut escaped) = (Vec::new(), 0, false, false);
    for (i, b) in text.bytes().enumerate() {
        match b {
            _ if escaped => escaped = false,
            b'\\' if quoted => escaped = true,
            b'"' => quoted = !quoted,
            // The separators are ASCII, so `i` is a character boundary.
            _ if b == separator && !quoted => {
                parts.push(Some(&text[start..i]));
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push((!quoted).then(|| &text[start..]));
    parts
}

/// A `Forwarded` value: a token, or a quoted string with its escapes (`\"`) undone.
fn unquoted(value: &str) -> Option<Cow<'_, str>> {
    let Some(inner) = value.strip_prefix('"') else {
        return (!value.contains(['"', '\\'])).then_some(Cow::Borrowed(value));
    };
    let inner = inner.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        out.push(if c == '\\' { chars.next()? } else { c });
    }
    Some(Cow::Owned(out))
}

/// The address of a node as forwarding headers write it: `192.0.2.1`, `2001:db8::1`,
/// `[2001:db8::1]`, with an optional port (`192.0.2.1:4711`, `[2001:db8::1]:4711`, or an
/// obfuscated `:_port`). `None` for `unknown`, an obfuscated `_name`, or anything else.
fn node(text: &str) -> Option<IpAddr> {
    if let Ok(ip) = text.parse::<IpAddr>() {
        return Some(ip);
    }
    let (address, port) = match text.strip_prefix('[') {
        Some(rest) => {
            let (v6, after) = rest.split_once(']')?;
            let ip = v6.parse::<std::net::Ipv6Addr>().ok()?;
            (IpAddr::V6(ip), after)
        }
        None => {
            let v4 = text.split_once(':')?.0;
            (IpAddr::V4(v4.parse().ok()?), &text[v4.len()..])
        }
    };
    match port.strip_prefix(':') {
        None if port.is_empty() => Some(address),
        Some(port) if is_port(port) => Some(address),
        _ => None,
    }
}

/// A port as RFC 7239 allows it: a number, or an obfuscated `_token`.
fn is_port(port: &str) -> bool {
    let obfuscated = port.strip_prefix('_').is_some_and(|rest| {
        !rest.is_empty()
            && rest
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')
    });
    obfuscated || port.parse::<u16>().is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proxies(entries: &[&str]) -> TrustedProxies {
        TrustedProxies::new(entries.iter().map(|e| parse_entry(e).unwrap()).collect())
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn entries_are_ranges_or_single_addresses() {
        let trusted = proxies(&["10.0.0.0/8", "192.168.1.7", "fd00::/8", "2001:db8::7"]);
        for yes in ["10.200.0.1", "192.168.1.7", "fd12::1", "2001:db8::7"] {
            assert!(trusted.trusts(ip(yes)), "{yes} is trusted");
        }
        for no in ["11.0.0.1", "192.168.1.8", "fe80::1", "2001:db8::8"] {
            assert!(!trusted.trusts(ip(no)), "{no} is not trusted");
        }
        for bad in [
            "10.0.0.0/33",
            "10.0.0.1/8",
            "proxy.internal",
            "10.0.0",
            "",
            "fd00::/129",
        ] {
            assert!(parse_entry(bad).is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn nodes_are_read_with_or_without_brackets_and_ports() {
        for (text, want) in [
            ("192.0.2.43", Some("192.0.2.43")),
            ("192.0.2.43:47011", Some("192.0.2.43")),
            ("2001:db8:cafe::17", Some("2001:db8:cafe::17")),
            ("[2001:db8:cafe::17]", Some("2001:db8:cafe::17")),
            ("[2001:db8:cafe::17]:4711", Some("2001:db8:cafe::17")),
            ("192.0.2.43:_hidden", Some("192.0.2.43")),
            ("unknown", None),
            ("_hidden", None),
            ("", None),
            ("192.0.2.43:99999", None),
            ("192.0.2.43:", None),
            ("[2001:db8::1", None),
            ("[2001:db8::1]x", None),
            ("[192.0.2.43]", None),
            ("evil.example", None),
            ("010.0.0.1", None),
        ] {
            assert_eq!(node(text), want.map(ip), "{text:?}");
        }
    }

    #[test]
    fn forwarded_elements_are_split_outside_quotes() {
        let line = r#"for=192.0.2.60;proto=http;by=203.0.113.43, For="[2001:db8:cafe::17]:4711", for=unknown, proto=https, for="198.51.100.1,x""#;
        assert_eq!(
            forwarded_for(line),
            [
                Some(ip("192.0.2.60")),
                Some(ip("2001:db8:cafe::17")),
                None, // unknown
                None, // no for=
                None, // a quoted comma is not a separator, and no address
            ]
        );
        assert_eq!(
            forwarded_for(r#"for="198.51.100.\1""#),
            [Some(ip("198.51.100.1"))]
        );
        assert_eq!(
            forwarded_for(r#"for="198.51.100.1"#),
            [None],
            "unterminated"
        );
        assert_eq!(forwarded_for("for=\"a\\"), [None]);
    }

    /// `walk` over `lines` of `X-Forwarded-For` from `peer`.
    fn via_xff(trusted: &TrustedProxies, peer: &str, lines: &[&str]) -> IpAddr {
        let lines: Vec<Option<&str>> = lines.iter().map(|l| Some(*l)).collect();
        trusted.walk(ip(peer), hops_right_to_left(&lines, x_forwarded_for))
    }

    fn via_forwarded(trusted: &TrustedProxies, peer: &str, lines: &[&str]) -> IpAddr {
        let lines: Vec<Option<&str>> = lines.iter().map(|l| Some(*l)).collect();
        trusted.walk(ip(peer), hops_right_to_left(&lines, forwarded_for))
    }

    #[test]
    fn the_right_most_untrusted_address_is_the_client() {
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            via_xff(&trusted, "10.0.0.1", &["203.0.113.7"]),
            ip("203.0.113.7")
        );
        // Proxies in a chain, over several header lines.
        assert_eq!(
            via_xff(&trusted, "10.0.0.1", &["203.0.113.7, 10.1.1.1", "10.2.2.2"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            via_forwarded(
                &trusted,
                "10.0.0.1",
                &["for=203.0.113.7;proto=https", "for=10.1.1.1;by=10.0.0.1"]
            ),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn spoofed_entries_left_of_the_client_are_ignored() {
        let trusted = proxies(&["10.0.0.0/8"]);
        // The sender wrote `1.2.3.4, 10.9.9.9` itself; the proxy appended what it saw.
        assert_eq!(
            via_xff(&trusted, "10.0.0.1", &["1.2.3.4, 10.9.9.9, 198.51.100.9"]),
            ip("198.51.100.9")
        );
        assert_eq!(
            via_forwarded(&trusted, "10.0.0.1", &["for=1.2.3.4, for=198.51.100.9"]),
            ip("198.51.100.9")
        );
    }

    #[test]
    fn ipv6_clients_and_proxies() {
        let trusted = proxies(&["fd00::/8"]);
        assert_eq!(
            via_xff(&trusted, "fd00::1", &["2001:db8::5, fd00::2"]),
            ip("2001:db8::5")
        );
        assert_eq!(
            via_forwarded(
                &trusted,
                "fd00::1",
                &[r#"for="[2001:db8::5]:1234", for="[fd00::2]""#]
            ),
            ip("2001:db8::5")
        );
        // A dual-stack socket reports an IPv4 peer as IPv4-mapped: still an IPv4 range.
        let v4 = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            via_xff(&v4, "10.0.0.1", &["203.0.113.7, ::ffff:10.3.3.3"]),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn an_all_trusted_chain_gives_its_left_most_address() {
        let trusted = proxies(&["10.0.0.0/8"]);
        assert_eq!(
            via_xff(&trusted, "10.0.0.1", &["10.5.5.5, 10.6.6.6"]),
            ip("10.5.5.5")
        );
    }

    #[test]
    fn a_malformed_entry_stops_at_the_last_address_read() {
        let trusted = proxies(&["10.0.0.0/8"]);
        for (lines, want) in [
            (&["1.2.3.4, garbage, 10.6.6.6"][..], "10.6.6.6"),
            (&["1.2.3.4, unknown"][..], "10.0.0.1"),
            (&["1.2.3.4,"][..], "10.0.0.1"),
            (&[""][..], "10.0.0.1"),
            (&["1.2.3.4", "evil.example, 10.7.7.7"][..], "10.7.7.7"),
        ] {
            assert_eq!(via_xff(&trusted, "10.0.0.1", lines), ip(want), "{lines:?}");
        }
        assert_eq!(
            via_forwarded(
                &trusted,
                "10.0.0.1",
                &["for=1.2.3.4, for=_hidden, for=10.6.6.6"]
            ),
            ip("10.6.6.6")
        );
        assert_eq!(
            via_forwarded(&trusted, "10.0.0.1", &["for=1.2.3.4, proto=https"]),
            ip("10.0.0.1"),
            "an element without for= names no one"
        );
        // A line that is not text stops the walk too.
        let lines = [Some("1.2.3.4"), None];
        assert_eq!(
            trusted.walk(ip("10.0.0.1"), hops_right_to_left(&lines, x_forwarded_for)),
            ip("10.0.0.1")
        );
    }

    #[cfg(feature = "server")]
    mod headers {
        use super::*;
        use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

        fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
            let mut map = HeaderMap::new();
            for (name, value) in pairs {
                map.append(
                    HeaderName::from_static(name),
                    HeaderValue::from_str(value).unwrap(),
                );
            }
            map
        }

        fn client(trusted: &TrustedProxies, peer: &str, pairs: &[(&'static str, &str)]) -> IpAddr {
            let peer = SocketAddr::new(ip(peer), 40_000);
            Peer::new(Some(peer), trusted)
                .client(&headers(pairs))
                .unwrap()
        }

        #[test]
        fn an_untrusted_peer_is_the_client_whatever_it_sends() {
            let trusted = proxies(&["10.0.0.0/8"]);
            let forged = [
                ("x-forwarded-for", "10.0.0.5"),
                ("forwarded", "for=203.0.113.7"),
            ];
            assert_eq!(
                client(&trusted, "198.51.100.9", &forged),
                ip("198.51.100.9")
            );
            assert_eq!(
                client(&TrustedProxies::default(), "10.0.0.1", &forged),
                ip("10.0.0.1"),
                "no trusted proxy: no header is read"
            );
        }

        #[test]
        fn x_forwarded_for_wins_over_forwarded_and_every_line_counts() {
            let trusted = proxies(&["10.0.0.0/8"]);
            let both = [
                ("forwarded", "for=192.0.2.1"),
                ("x-forwarded-for", "203.0.113.7"),
                ("x-forwarded-for", "10.1.1.1"),
            ];
            assert_eq!(client(&trusted, "10.0.0.1", &both), ip("203.0.113.7"));
            let forwarded = [
                ("forwarded", "for=192.0.2.1"),
                ("forwarded", "for=10.1.1.1"),
            ];
            assert_eq!(client(&trusted, "10.0.0.1", &forwarded), ip("192.0.2.1"));
            assert_eq!(
                client(&trusted, "10.0.0.1", &[]),
                ip("10.0.0.1"),
                "no header"
            );
        }

        #[test]
        fn no_peer_no_client() {
            let trusted = proxies(&["10.0.0.0/8"]);
            assert_eq!(Peer::new(None, &trusted).client(&HeaderMap::new()), None);
            assert_eq!(Peer::unknown().client(&HeaderMap::new()), None);
            let mapped = SocketAddr::new(ip("::ffff:192.0.2.9"), 1);
            assert_eq!(
                Peer::new(Some(mapped), &trusted).client(&HeaderMap::new()),
                Some(ip("192.0.2.9"))
            );
        }
    }
}
