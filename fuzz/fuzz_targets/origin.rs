//! Origin parsing and normalisation: normalising is idempotent, and an exact entry's
//! normal form is exactly what a request must carry to be allowed (and is echoed as is).
#![no_main]

use actix_web::http::Method;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use mcp_cors::{Decision, Policy, PolicySettings};

fn load(origin: &str) -> Option<Policy> {
    let settings = PolicySettings {
        allowed_origins: vec![origin.to_owned()],
        ..PolicySettings::default()
    };
    Policy::from_settings(settings).ok()
}

fuzz_target!(|text: &str| {
    let Some(policy) = load(text) else { return };
    let once = policy.settings().allowed_origins[0].clone();
    let again = load(&once).expect("a normalised entry loads again");
    assert_eq!(again.settings().allowed_origins[0], once, "normalisation is idempotent");
    if once.contains('*') {
        return; // a wildcard entry, not an origin
    }
    let mut headers = HeaderMap::new();
    headers.insert(HeaderName::from_static("host"), HeaderValue::from_static("localhost"));
    headers.insert(HeaderName::from_static("origin"), HeaderValue::from_str(&once).expect("ASCII"));
    match policy.decide(&Method::POST, &headers, None) {
        Decision::Allow { allow_origin } => assert_eq!(allow_origin, once.as_str()),
        other => panic!("{once:?} (from {text:?}) not allowed by its own policy: {other:?}"),
    }
});
