//! What works today but will bite: things a browser tolerates, or that only some
//! browsers enforce. They never fail the probe.

use std::net::{IpAddr, ToSocketAddrs};

use url::{Host, Url};

use super::fetch::{self, Headers};
use super::http::Response;
use super::plan::Page;
use super::report::Report;

/// Chrome's cap on `Access-Control-Max-Age`, in seconds.
const CHROME_MAX_AGE: u64 = 7200;

/// Checks of any answer that went through the CORS check.
pub fn response(report: &mut Report, call: &str, res: &Response, include: bool) {
    vary(report, &res.headers);
    if res.status == 401
        && res.headers.contains("www-authenticate")
        && !fetch::is_exposed(&res.headers, "www-authenticate", include)
    {
        report.warn(format!(
            "{call}: the 401 carries WWW-Authenticate, but Access-Control-Expose-Headers does not list it: a browser client cannot read it to start authorization"
        ));
    }
}

/// Checks of a preflight answer.
pub fn preflight(report: &mut Report, res: &Response, page: &Page) {
    vary(report, &res.headers);
    if let Some(age) = res.headers.get("access-control-max-age") {
        if age.parse::<u64>().is_ok_and(|s| s > CHROME_MAX_AGE) {
            report.warn(format!(
                "Access-Control-Max-Age is {age} s; Chrome caches a preflight for at most {CHROME_MAX_AGE} s"
            ));
        }
    }
    if page.private_network
        && res
            .headers
            .get("access-control-allow-private-network")
            .as_deref()
            != Some("true")
    {
        report.warn(
            "the preflight does not answer Access-Control-Allow-Private-Network: true, which Chrome's Private Network Access requires where it is enforced",
        );
    }
}

/// An answer naming one origin must say it varies by Origin, or a shared cache may hand
/// it to another origin.
fn vary(report: &mut Report, headers: &Headers) {
    let Some(allow_origin) = headers.get("access-control-allow-origin") else {
        return;
    };
    if allow_origin == "*" {
        return;
    }
    let vary = headers.get("vary").unwrap_or_default();
    let varies = vary
        .split(',')
        .map(str::trim)
        .any(|v| v == "*" || v.eq_ignore_ascii_case("origin"));
    if !varies {
        report.warn(
            "Access-Control-Allow-Origin names the origin but Vary does not list Origin: a shared cache may serve one origin's answer to another",
        );
    }
}

/// An address space, from most to least public (Private Network Access's order).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Space {
    /// Loopback: this machine.
    Local,
    /// RFC 1918, link-local, unique-local.
    Private,
    /// Everything else.
    Public,
}

fn space_of_ip(ip: IpAddr) -> Space {
    match ip {
        IpAddr::V4(v4) if v4.is_loopback() => Space::Local,
        IpAddr::V4(v4) if v4.is_private() || v4.is_link_local() => Space::Private,
        IpAddr::V6(v6) if v6.is_loopback() => Space::Local,
        IpAddr::V6(v6) if (v6.segments()[0] & 0xfe00) == 0xfc00 => Space::Private,
        IpAddr::V6(v6) if (v6.segments()[0] & 0xffc0) == 0xfe80 => Space::Private,
        _ => Space::Public,
    }
}

/// The address space of a page origin's host: named hosts are taken as public (where the
/// page's server lives is not known here), `localhost` as local.
pub fn space_of_origin(origin: &Url) -> Space {
    match origin.host() {
        Some(Host::Ipv4(ip)) => space_of_ip(ip.into()),
        Some(Host::Ipv6(ip)) => space_of_ip(ip.into()),
        Some(Host::Domain(d)) if d == "localhost" || d.ends_with(".localhost") => Space::Local,
        _ => Space::Public,
    }
}

/// The address space of the endpoint, resolving its name as the browser would.
pub fn space_of_target(url: &Url) -> Space {
    let port = url.port_or_known_default().unwrap_or(80);
    let resolved = match url.host() {
        Some(Host::Ipv4(ip)) => vec![IpAddr::V4(ip)],
        Some(Host::Ipv6(ip)) => vec![IpAddr::V6(ip)],
        Some(Host::Domain(d)) => (d, port)
            .to_socket_addrs()
            .map(|addrs| addrs.map(|a| a.ip()).collect())
            .unwrap_or_default(),
        None => Vec::new(),
    };
    resolved
        .into_iter()
        .map(space_of_ip)
        .min()
        .unwrap_or(Space::Public)
}

impl Space {
    fn name(self) -> &'static str {
        match self {
            Space::Local => "local",
            Space::Private => "private",
            Space::Public => "public",
        }
    }
}

/// The warning for a page calling into a less public address space, if it does.
pub fn private_network(origin: Space, target: Space) -> Option<String> {
    (target < origin).then(|| {
        format!(
            "a page in the {} address space calls a {} one: Chrome's Local Network Access asks the user's permission first, and Private Network Access (where enforced) needs the preflight to answer Access-Control-Allow-Private-Network: true",
            origin.name(),
            target.name()
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_spaces_are_ordered_as_private_network_access_orders_them() {
        let origin = |s: &str| space_of_origin(&Url::parse(s).unwrap());
        assert_eq!(origin("https://app.example.com"), Space::Public);
        assert_eq!(origin("http://localhost:5173"), Space::Local);
        assert_eq!(origin("http://192.168.1.4"), Space::Private);
        assert_eq!(origin("http://[::1]:3000"), Space::Local);
        assert_eq!(
            space_of_target(&Url::parse("http://127.0.0.1:8080/mcp").unwrap()),
            Space::Local
        );
        assert!(private_network(Space::Public, Space::Local).is_some());
        assert!(private_network(Space::Public, Space::Private).is_some());
        assert!(private_network(Space::Local, Space::Local).is_none());
        assert!(private_network(Space::Private, Space::Public).is_none());
    }

    #[test]
    fn the_private_network_warning_names_both_spaces() {
        let w = private_network(Space::Public, Space::Local).unwrap();
        assert!(
            w.starts_with("a page in the public address space calls a local one"),
            "{w}"
        );
        assert!(
            w.contains("Access-Control-Allow-Private-Network: true"),
            "{w}"
        );
    }
}
