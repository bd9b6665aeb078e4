//! The `Host` guard: the MCP specification's defence against DNS rebinding.
//!
//! A page on `attacker.example` whose DNS record is switched to `127.0.0.1` can make the
//! browser talk to a local MCP server *as the same origin*, so no `Origin` check fires; but
//! the browser still sends `Host: attacker.example`. Refusing hosts the server does not
//! answer for closes that door.

use foldhash::HashMap;
use std::borrow::Cow;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::origin::{parse_port, split_host_port};

/// Compiled `allowed_hosts`.
#[derive(Debug, Default)]
pub(crate) struct HostGuard {
    /// `["*"]`: the check is off.
    off: bool,
    /// Host → the ports it may be reached on; `None` in the list means any port.
    exact: HashMap<Box<str>, Vec<Option<u16>>>,
    /// Domain suffix of a `*.example.com` entry → ports, as above.
    subdomains: HashMap<Box<str>, Vec<Option<u16>>>,
    /// `10.0.0.0/8`, `fd00::/8`: IP-literal hosts in these ranges pass, on any port.
    ranges: Vec<IpRange>,
}

/// Why a `Host` header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostRefusal {
    Missing,
    Malformed,
    NotAllowed(String),
}

impl HostGuard {
    /// Builds the guard from entries already validated by [`parse_host_entry`].
    pub(crate) fn new(entries: &[HostEntry]) -> Self {
        let mut guard = HostGuard::default();
        for entry in entries {
            match entry {
                HostEntry::Any => guard.off = true,
                HostEntry::Exact { host, port } => guard
                    .exact
                    .entry(host.as_str().into())
                    .or_default()
                    .push(*port),
                HostEntry::Subdomains { suffix, port } => guard
                    .subdomains
                    .entry(suffix.as_str().into())
                    .or_default()
                    .push(*port),
                HostEntry::Range(range) => guard.ranges.push(*range),
            }
        }
        guard
    }

    /// Whether the guard is off (`allowed_hosts = ["*"]`).
    pub(crate) fn is_off(&self) -> bool {
        self.off
    }

    /// Checks a request's `Host` (or HTTP/2 `:authority`) value.
    pub(crate) fn check(&self, host_header: Option<&str>) -> Result<(), HostRefusal> {
        if self.off {
            return Ok(());
        }
        let value = host_header.ok_or(HostRefusal::Missing)?;
        let (host, port) = split_host_port(value).ok_or(HostRefusal::Malformed)?;
        let port = match port {
            Some(p) => Some(parse_port(p).ok_or(HostRefusal::Malformed)?),
            None => None,
        };
        // Host names are case-insensitive; allocate only for the rare upper-case request.
        let host: Cow<'_, str> = if host.bytes().any(|b| b.is_ascii_uppercase()) {
            Cow::Owned(host.to_ascii_lowercase())
        } else {
            Cow::Borrowed(host)
        };
        let port_ok = |ports: &Vec<Option<u16>>| ports.iter().any(|p| p.is_none() || *p == port);
        let allowed = self.exact.get(host.as_ref()).is_some_and(port_ok)
            || (!self.subdomains.is_empty()
                && host
                    .match_indices('.')
                    .any(|(dot, _)| self.subdomains.get(&host[dot + 1..]).is_some_and(port_ok)))
            || (!self.ranges.is_empty() && self.in_ranges(&host));
        if allowed {
            Ok(())
        } else {
            Err(HostRefusal::NotAllowed(value.to_owned()))
        }
    }
}

impl HostGuard {
    /// Whether `host` is an IP literal inside one of the ranges. Only the exact forms a
    /// client sends for an address count: dotted decimal without leading zeros for IPv4
    /// (`010.1.2.3` is not an address here), bracketed for IPv6. A name that merely starts
    /// with digits (`10.1.2.3.evil.com`) is a name, never an address.
    fn in_ranges(&self, host: &str) -> bool {
        let ip = match host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
            Some(v6) => v6.parse::<Ipv6Addr>().ok().map(IpAddr::V6),
            None => host.parse::<Ipv4Addr>().ok().map(IpAddr::V4),
        };
        ip.is_some_and(|ip| self.ranges.iter().any(|r| r.contains(ip)))
    }
}

/// An address range of `allowed_hosts`, such as `10.0.0.0/8` or `fd00::/8`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct IpRange {
    network: IpAddr,
    prefix: u8,
}

impl IpRange {
    pub(crate) fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u32::from(ip).into(), self.prefix, 32) == u32::from(net).into()
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(ip), self.prefix, 128) == u128::from(net)
            }
            _ => false,
        }
    }

    /// Parses `ADDRESS/PREFIX`, or a bare `ADDRESS` (one address: `/32` for IPv4, `/128`
    /// for IPv6), as `trusted_proxies` lists them.
    pub(crate) fn parse_address_or_range(text: &str) -> Result<IpRange, String> {
        let text = text.trim();
        if text.contains('/') {
            return IpRange::parse(text);
        }
        let address = text
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(text);
        let network: IpAddr = address.parse().map_err(|_| {
            format!(
                "`{text}` is not an IP address or a range (`10.0.0.1`, `10.0.0.0/8`, `fd00::/8`)"
            )
        })?;
        let prefix = if network.is_ipv4() { 32 } else { 128 };
        Ok(IpRange { network, prefix })
    }

    /// Parses `ADDRESS/PREFIX`; the address may be bracketed for IPv6 (`[fd00::]/8`).
    fn parse(text: &str) -> Result<IpRange, String> {
        let (address, prefix) = text.split_once('/').ok_or("not a range")?;
        let address = address
            .strip_prefix('[')
            .and_then(|a| a.strip_suffix(']'))
            .unwrap_or(address);
        let network: IpAddr = address.parse().map_err(|_| {
            format!(
                "`{address}` is not an IP address (a range is `10.0.0.0/8` or `fd00::/8`, \
                 with the address in canonical form)"
            )
        })?;
        let bits = if network.is_ipv4() { 32 } else { 128 };
        let prefix: u8 = prefix.parse().ok().filter(|p| *p <= bits).ok_or_else(|| {
            format!(
                "prefix length {prefix} is not a number from 0 to {bits} for an {} range",
                if bits == 32 { "IPv4" } else { "IPv6" }
            )
        })?;
        let value = match network {
            IpAddr::V4(a) => u128::from(u32::from(a)),
            IpAddr::V6(a) => u128::from(a),
        };
        let base = masked(value, prefix, bits);
        if base != value {
            let base = match network {
                IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::from(base as u32)),
                IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::from(base)),
            };
            return Err(format!(
                "the range has bits set past its prefix; did you mean `{base}/{prefix}`?"
            ));
        }
        Ok(IpRange { network, prefix })
    }
}

/// `value` (of `bits` bits) with everything past the first `prefix` bits cleared.
fn masked(value: u128, prefix: u8, bits: u8) -> u128 {
    let keep = u32::from(prefix);
    let clear = u32::from(bits) - keep;
    if clear >= 128 {
        0
    } else {
        (value >> clear) << clear
    }
}

impl std::fmt::Display for IpRange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.network, self.prefix)
    }
}

/// One validated `allowed_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum HostEntry {
    Any,
    Exact { host: String, port: Option<u16> },
    Subdomains { suffix: String, port: Option<u16> },
    Range(IpRange),
}

impl std::fmt::Display for HostEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (prefix, host, port) = match self {
            HostEntry::Any => return f.write_str("*"),
            HostEntry::Range(range) => return range.fmt(f),
            HostEntry::Exact { host, port } => ("", host, port),
            HostEntry::Subdomains { suffix, port } => ("*.", suffix, port),
        };
        match port {
            Some(p) => write!(f, "{prefix}{host}:{p}"),
            None => write!(f, "{prefix}{host}"),
        }
    }
}

/// Parses one `allowed_hosts` entry: `host`, `host:port`, `[v6]`, `[v6]:port`,
/// `*.domain[:port]`, or `*`.
pub(crate) fn parse_host_entry(raw: &str) -> Result<HostEntry, String> {
    let text = raw.trim();
    if text == "*" {
        return Ok(HostEntry::Any);
    }
    if !text.contains("://") && text.contains('/') {
        return IpRange::parse(text).map(HostEntry::Range);
    }
    if text.contains("://") {
        return Err(
            "a host entry is a host name with an optional port (`api.example.com`, \
                    `localhost:8080`), not a URL"
                .into(),
        );
    }
    let (text, subdomains) = match text.strip_prefix("*.") {
        Some(rest) => (rest, true),
        None => (text, false),
    };
    if text.contains('*') {
        return Err("a wildcard may only be a whole leading label (`*.example.com`)".into());
    }
    let (host, port) = split_host_port(text).ok_or("the entry has no host")?;
    let port = match port {
        Some(p) => Some(parse_port(p).ok_or_else(|| format!("`{p}` is not a port number"))?),
        None => None,
    };
    let parsed = url::Host::parse(host).map_err(|e| format!("not a valid host name: {e}"))?;
    let host = parsed.to_string();
    if subdomains {
        if !matches!(parsed, url::Host::Domain(_)) || !host.contains('.') {
            return Err("a host wildcard needs a domain of two or more labels \
                        (`*.example.com`)"
                .into());
        }
        return Ok(HostEntry::Subdomains { suffix: host, port });
    }
    Ok(HostEntry::Exact { host, port })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn guard(entries: &[&str]) -> HostGuard {
        let entries: Vec<_> = entries
            .iter()
            .map(|e| parse_host_entry(e).unwrap())
            .collect();
        HostGuard::new(&entries)
    }

    #[test]
    fn entry_without_port_matches_any_port() {
        let g = guard(&["localhost", "127.0.0.1", "[::1]"]);
        assert!(g.check(Some("localhost")).is_ok());
        assert!(g.check(Some("localhost:8080")).is_ok());
        assert!(g.check(Some("LocalHost:8080")).is_ok());
        assert!(g.check(Some("127.0.0.1:9")).is_ok());
        assert!(g.check(Some("[::1]:8080")).is_ok());
        assert_eq!(
            g.check(Some("evil.example:8080")),
            Err(HostRefusal::NotAllowed("evil.example:8080".into()))
        );
        assert_eq!(g.check(None), Err(HostRefusal::Missing));
        assert_eq!(
            g.check(Some("localhost:99999")),
            Err(HostRefusal::Malformed)
        );
    }

    #[test]
    fn entry_with_port_matches_only_that_port() {
        let g = guard(&["api.example.com:8443", "*.tenants.example.com"]);
        assert!(g.check(Some("api.example.com:8443")).is_ok());
        assert!(g.check(Some("api.example.com")).is_err());
        assert!(g.check(Some("a.tenants.example.com")).is_ok());
        assert!(g.check(Some("tenants.example.com")).is_err());
        assert!(guard(&["*"]).check(None).is_ok());
    }

    #[test]
    fn ranges_match_ip_literal_hosts_only() {
        let g = guard(&["10.0.0.0/8", "fd00::/8", "192.168.1.0/24"]);
        for ok in [
            "10.1.2.3",
            "10.1.2.3:8080",
            "10.255.255.255:1",
            "[fd00::1]",
            "[fd12:3456::1]:8080",
            "192.168.1.200:80",
        ] {
            assert!(g.check(Some(ok)).is_ok(), "{ok} should pass");
        }
        for refused in [
            "11.0.0.1",
            "10.1.2.3.evil.com",
            "10.1.2.3.evil.com:8080",
            "010.1.2.3",
            "0x0a.1.2.3",
            "10.1.2",
            "167837955",
            "[fe80::1]",
            "fd00::1",
            "[::ffff:10.1.2.3]",
            "192.168.2.1",
            "evil.example",
        ] {
            assert!(
                g.check(Some(refused)).is_err(),
                "{refused} should be refused"
            );
        }
        assert!(guard(&["0.0.0.0/0"]).check(Some("8.8.8.8")).is_ok());
        assert!(guard(&["::/0"]).check(Some("[2001:db8::1]:443")).is_ok());
        assert!(guard(&["10.0.0.7/32"]).check(Some("10.0.0.8")).is_err());
    }

    #[test]
    fn bad_entries() {
        for bad in [
            "https://a.com",
            "a.com/x",
            "10.0.0.0/33",
            "10.0.0.1/8",
            "a.com:http",
            "*.com",
            "a*.com",
            "",
        ] {
            assert!(parse_host_entry(bad).is_err(), "{bad} should be refused");
        }
    }
}
