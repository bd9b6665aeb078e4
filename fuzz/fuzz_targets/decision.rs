//! The decision given arbitrary header bytes: whatever arrives, an allowed answer echoes
//! exactly the request's one `Origin`, that origin really is in the policy (checked by an
//! independent, simple oracle), and the Host guard held.
#![no_main]

use std::sync::OnceLock;

use actix_web::http::Method;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use mcp_cors::{Decision, Policy};

fn policy() -> &'static Policy {
    static POLICY: OnceLock<Policy> = OnceLock::new();
    POLICY.get_or_init(|| {
        Policy::from_toml_str(
            r#"
            allowed_origins = ["https://app.example.com", "https://*.example.org", "http://localhost:*"]
            allowed_hosts = ["localhost", "api.example.com:8443"]
            "#,
        )
        .expect("valid")
    })
}

/// What the policy above allows, written the simplest way.
fn oracle_allows(origin: &str) -> bool {
    if origin == "https://app.example.com" {
        return true;
    }
    if let Some(host) = origin.strip_prefix("https://") {
        return host.len() > ".example.org".len()
            && host.ends_with(".example.org")
            && !host.starts_with('.')
            && host.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
            && !host.contains("..");
    }
    if let Some(rest) = origin.strip_prefix("http://localhost") {
        return rest.is_empty()
            || rest.strip_prefix(':').is_some_and(|p| {
                !p.is_empty() && (p == "0" || !p.starts_with('0')) && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
                    && p.parse::<u32>().is_ok_and(|n| n <= 65535 && n != 80)
            });
    }
    false
}

fn host_ok(host: &[u8]) -> bool {
    let h = String::from_utf8_lossy(host).to_ascii_lowercase();
    let (name, port) = match h.rsplit_once(':') {
        Some((n, p)) => (n.to_owned(), Some(p.to_owned())),
        None => (h.clone(), None),
    };
    match (name.as_str(), port.as_deref()) {
        ("localhost", None) => true,
        ("localhost", Some(p)) | ("api.example.com", Some(p)) => {
            let canonical = !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'));
            canonical && p.parse::<u32>().is_ok_and(|n| n <= 65535) && (name == "localhost" || p == "8443")
        }
        _ => false,
    }
}

fuzz_target!(|input: (u8, Vec<u8>, Vec<Vec<u8>>, Vec<u8>, Vec<u8>)| {
    let (method, host, origins, acrm, acrh) = input;
    let method = match method % 4 {
        0 => Method::GET,
        1 => Method::POST,
        2 => Method::OPTIONS,
        _ => Method::DELETE,
    };
    let mut headers = HeaderMap::new();
    let Ok(host_value) = HeaderValue::from_bytes(&host) else { return };
    headers.insert(HeaderName::from_static("host"), host_value);
    for origin in origins.iter().take(3) {
        let Ok(v) = HeaderValue::from_bytes(origin) else { return };
        headers.append(HeaderName::from_static("origin"), v);
    }
    if !acrm.is_empty() {
        let Ok(v) = HeaderValue::from_bytes(&acrm) else { return };
        headers.insert(HeaderName::from_static("access-control-request-method"), v);
    }
    if !acrh.is_empty() {
        let Ok(v) = HeaderValue::from_bytes(&acrh) else { return };
        headers.insert(HeaderName::from_static("access-control-request-headers"), v);
    }
    let decision = policy().decide(&method, &headers, None);
    let allow_origin = match &decision {
        Decision::Allow { allow_origin } | Decision::Preflight { allow_origin, .. } => allow_origin,
        Decision::NoOrigin => {
            assert!(origins.is_empty());
            assert!(host_ok(&host), "Host {:?} let through", String::from_utf8_lossy(&host));
            return;
        }
        Decision::Refuse { .. } => return,
    };
    assert!(host_ok(&host), "Host {:?} let through", String::from_utf8_lossy(&host));
    assert_eq!(origins.len(), 1, "allowed with {} Origin headers", origins.len());
    assert_eq!(allow_origin.as_bytes(), origins[0].as_slice(), "the echo is the request's origin");
    let origin = std::str::from_utf8(&origins[0]).expect("allowed origins are text");
    assert!(oracle_allows(origin), "{origin:?} allowed but not in the policy");
});
