//! Property tests of the matcher and of origin normalisation, through the public API.

use actix_web::http::Method;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use mcp_cors::{Decision, Policy, Verdict};
use proptest::prelude::*;

fn decide(policy: &Policy, origin: &str) -> Decision {
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("host"),
        HeaderValue::from_static("localhost"),
    );
    headers.insert(
        HeaderName::from_static("origin"),
        HeaderValue::from_str(origin).unwrap(),
    );
    policy.decide(&Method::POST, &headers, None)
}

/// A small alphabet of labels, so that lookalikes and real subdomains both come up often.
fn label() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a",
        "b",
        "app",
        "example",
        "evil-example",
        "com",
        "org",
        "x1",
    ])
    .prop_map(str::to_owned)
}

fn labels(range: std::ops::RangeInclusive<usize>) -> impl Strategy<Value = Vec<String>> {
    prop::collection::vec(label(), range)
}

fn scheme() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["http", "https"])
}

fn port() -> impl Strategy<Value = Option<u16>> {
    prop::sample::select(vec![None, Some(8080), Some(8443)])
}

/// An entry's port: the scheme's default, a number, or `*` (`PortEntry::Any`).
#[derive(Debug, Clone, Copy, PartialEq)]
enum PortEntry {
    Exact(Option<u16>),
    Any,
}

impl PortEntry {
    fn admits(self, port: Option<u16>) -> bool {
        self == PortEntry::Any || self == PortEntry::Exact(port)
    }

    fn write(self, base: String) -> String {
        match self {
            PortEntry::Any => format!("{base}:*"),
            PortEntry::Exact(p) => with_port(base, p),
        }
    }
}

fn entry_port() -> impl Strategy<Value = PortEntry> {
    prop_oneof![port().prop_map(PortEntry::Exact), Just(PortEntry::Any),]
}

fn with_port(base: String, port: Option<u16>) -> String {
    match port {
        Some(p) => format!("{base}:{p}"),
        None => base,
    }
}

/// Upper-cases the characters whose flag is set.
fn mixed_case(text: &str, flags: &[bool]) -> String {
    text.chars()
        .zip(flags.iter().chain(std::iter::repeat(&false)))
        .map(|(c, up)| if *up { c.to_ascii_uppercase() } else { c })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// `scheme://*.suffix[:port]` admits exactly the proper subdomains of `suffix` on the
    /// same scheme and port (any port for `:*`): never the suffix itself, never a
    /// lookalike, never another scheme.
    #[test]
    fn a_wildcard_admits_exactly_proper_subdomains_on_the_same_scheme_and_port(
        entry_scheme in scheme(),
        suffix in labels(2..=3),
        entry_port in entry_port(),
        req_scheme in scheme(),
        prefix in labels(0..=2),
        append_suffix in any::<bool>(),
        other in labels(1..=4),
        req_port in port(),
    ) {
        let suffix = suffix.join(".");
        let host = match (append_suffix, prefix.is_empty()) {
            (true, true) => suffix.clone(),
            (true, false) => format!("{}.{suffix}", prefix.join(".")),
            (false, _) => other.join("."),
        };
        let entry = entry_port.write(format!("{entry_scheme}://*.{suffix}"));
        let policy = Policy::from_toml_str(&format!("allowed_origins = [{entry:?}]")).unwrap();
        let origin = with_port(format!("{req_scheme}://{host}"), req_port);
        let expected = req_scheme == entry_scheme
            && entry_port.admits(req_port)
            && host.ends_with(&format!(".{suffix}"));
        let verdict = decide(&policy, &origin).verdict();
        prop_assert_eq!(verdict == Verdict::Allow, expected, "{} vs {}", entry, origin);
    }

    /// `scheme://host:*` admits that host on that scheme, on any port, and nothing else:
    /// no subdomain, no parent domain, no lookalike, no other scheme.
    #[test]
    fn a_port_wildcard_admits_exactly_its_host_and_scheme(
        entry_scheme in scheme(),
        entry_host in labels(1..=3),
        req_scheme in scheme(),
        req_host in labels(1..=3),
        req_port in port(),
    ) {
        let (entry_host, req_host) = (entry_host.join("."), req_host.join("."));
        let entry = format!("{entry_scheme}://{entry_host}:*");
        let policy = Policy::from_toml_str(&format!("allowed_origins = [{entry:?}]")).unwrap();
        let origin = with_port(format!("{req_scheme}://{req_host}"), req_port);
        let expected = req_scheme == entry_scheme && req_host == entry_host;
        let verdict = decide(&policy, &origin).verdict();
        prop_assert_eq!(verdict == Verdict::Allow, expected, "{} vs {}", entry, origin);
    }

    /// Normalising twice is normalising once; the result is the browser's serialisation
    /// (the WHATWG URL origin), and a request carrying it is allowed and echoed exactly.
    #[test]
    fn normalisation_is_idempotent_and_equals_the_browser_serialisation(
        scheme in scheme(),
        host in prop_oneof![
            labels(1..=3).prop_map(|l| l.join(".")),
            (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>()).prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}")),
            Just("[::1]".to_owned()),
            Just("[2001:DB8:0:0::1]".to_owned()),
            Just("münchen.example".to_owned()),
        ],
        port in prop::sample::select(vec![None, Some(80), Some(443), Some(8080), Some(65535)]),
        slash in any::<bool>(),
        case in prop::collection::vec(any::<bool>(), 48),
    ) {
        let raw = with_port(format!("{scheme}://{host}"), port) + if slash { "/" } else { "" };
        let written = mixed_case(&raw, &case);
        let load = |entry: &str| {
            Policy::from_toml_str(&format!("allowed_origins = [{entry:?}]")).unwrap()
        };
        let once = load(&written).settings().allowed_origins[0].clone();
        let twice = load(&once).settings().allowed_origins[0].clone();
        prop_assert_eq!(&once, &twice);

        let browser = url::Url::parse(&written).unwrap().origin().ascii_serialization();
        prop_assert_eq!(&once, &browser);
        // Printed to TOML (what the admin socket and `to_toml_string` write) and parsed
        // again, the entry is still exactly the browser's serialisation.
        let printed = load(&written).to_toml_string();
        let reparsed = Policy::from_toml_str(&printed).unwrap();
        prop_assert_eq!(&reparsed.settings().allowed_origins, &vec![browser.clone()]);

        match decide(&load(&written), &browser) {
            Decision::Allow { allow_origin } => prop_assert_eq!(allow_origin.to_str().unwrap(), browser.as_str()),
            other => prop_assert!(false, "{} refused: {:?}", browser, other),
        }
    }

    /// Whatever the bytes of `Origin`, a refusal never carries an allow-origin value and an
    /// allowance always echoes the request's own origin.
    #[test]
    fn arbitrary_origins_are_either_refused_or_echoed(origin in "[ -~]{0,40}") {
        let policy = Policy::from_toml_str(
            r#"allowed_origins = ["https://app.example.com", "https://*.example.org", "http://localhost:*"]"#,
        ).unwrap();
        match decide(&policy, &origin) {
            Decision::Allow { allow_origin } => prop_assert_eq!(allow_origin.to_str().unwrap(), origin.as_str()),
            Decision::Refuse { .. } => {}
            other => prop_assert!(false, "unexpected {:?}", other),
        }
    }
}
