//! The responses the middleware writes itself (403 refusals, 204 preflights) and the CORS
//! headers it adds to the handler's responses.

use std::fmt;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderMap, HeaderName, HeaderValue};
use actix_web::{HttpResponse, ResponseError};

use crate::decision::DenyReason;
use crate::extras::AllowExtras;
use crate::policy::Policy;
use crate::set_header::set;
use crate::vary;

/// SPEC §4: the body of every origin refusal. The precise reason goes to events and logs,
/// not to the client: a refused page learns nothing about the policy.
pub(crate) const ORIGIN_FORBIDDEN_BODY: &str = r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Forbidden: origin not allowed"},"id":null}"#;

/// The body of a `Host` refusal (DNS-rebinding guard).
pub(crate) const HOST_FORBIDDEN_BODY: &str = r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Forbidden: host not allowed"},"id":null}"#;

const ACAPN: HeaderName = HeaderName::from_static("access-control-allow-private-network");
const TRUE: HeaderValue = HeaderValue::from_static("true");
const PREFLIGHT_VARY: HeaderValue = HeaderValue::from_static(
    "Origin, Access-Control-Request-Method, Access-Control-Request-Headers",
);

/// 403 with the JSON-RPC error body. No CORS headers: the browser must not expose it.
pub(crate) fn forbidden(reason: &DenyReason, preflight: bool) -> HttpResponse {
    let mut res = HttpResponse::build(StatusCode::FORBIDDEN);
    res.content_type("application/json");
    if reason.is_host() {
        return res.body(HOST_FORBIDDEN_BODY);
    }
    let body = match reason {
        // Said to the client too: while failing closed, the browser's developer console is
        // often where someone first looks, and there is no policy to give away.
        DenyReason::NoPolicyLoaded(_) => no_policy_body(reason),
        _ => ORIGIN_FORBIDDEN_BODY.to_owned(),
    };
    res.insert_header((
        header::VARY,
        if preflight {
            PREFLIGHT_VARY
        } else {
            HeaderValue::from_static("Origin")
        },
    ));
    res.body(body)
}

/// The JSON-RPC error body whose message is the refusal's reason.
fn no_policy_body(reason: &DenyReason) -> String {
    serde_json::json!({
        "jsonrpc": "2.0",
        "error": { "code": -32000, "message": reason.to_string() },
        "id": null,
    })
    .to_string()
}

/// 204 answer to an allowed preflight.
pub(crate) fn preflight(
    policy: &Policy,
    allow_origin: HeaderValue,
    allow_headers: Option<HeaderValue>,
    private_network: bool,
) -> HttpResponse {
    let compiled = policy.compiled();
    // Straight into the header map: the response builder re-checks each pair on insert.
    let mut res = HttpResponse::new(StatusCode::NO_CONTENT);
    let headers = res.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, allow_origin);
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        compiled.allow_methods.clone(),
    );
    headers.insert(header::ACCESS_CONTROL_MAX_AGE, compiled.max_age.clone());
    headers.insert(header::VARY, PREFLIGHT_VARY);
    if let Some(h) = allow_headers {
        headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, h);
    }
    if policy.settings().allow_credentials {
        headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
    }
    if private_network {
        headers.insert(ACAPN, TRUE);
    }
    res
}

/// The CORS headers for an allowed actual request, taken from the policy before the
/// handler runs, so the response is decorated under the same policy the request was
/// decided by, even if a reload happens in between.
#[derive(Debug, Clone)]
pub(crate) struct CorsHeaders {
    allow_origin: HeaderValue,
    /// The policy's own, by pointer: it travels with the handler's future, and every byte
    /// of this struct is moved on each request's way.
    extras: &'static AllowExtras,
}

impl CorsHeaders {
    #[inline]
    pub(crate) fn new(policy: &Policy, allow_origin: HeaderValue) -> Self {
        CorsHeaders {
            allow_origin,
            extras: policy.compiled().allow_extras,
        }
    }

    /// Adds the headers to a handler's response, whatever its status.
    pub(crate) fn apply(self, headers: &mut HeaderMap) {
        set(
            headers,
            header::ACCESS_CONTROL_ALLOW_ORIGIN,
            self.allow_origin,
        );
        if self.extras.credentials {
            set(headers, header::ACCESS_CONTROL_ALLOW_CREDENTIALS, TRUE);
        }
        if let Some(expose) = &self.extras.expose {
            set(
                headers,
                header::ACCESS_CONTROL_EXPOSE_HEADERS,
                expose.clone(),
            );
        }
        vary::add(headers, "Origin");
    }
}

/// Adds `cors` to a handler's response, or only `Vary: Origin` when the request carried
/// no allowed origin (the answer still depends on `Origin`).
pub(crate) fn decorate(headers: &mut HeaderMap, cors: Option<CorsHeaders>) {
    match cors {
        Some(cors) => cors.apply(headers),
        None => vary::add(headers, "Origin"),
    }
}

/// An error from the inner service, carrying the CORS headers its response must get.
///
/// The middleware cannot build the response itself: that needs the `HttpRequest`, which
/// the inner service owns (and must own alone: actix's router mutates it in place). So the
/// error travels out wrapped, and whoever renders it renders it decorated.
pub(crate) struct DecoratedError {
    error: actix_web::Error,
    cors: Option<CorsHeaders>,
}

impl DecoratedError {
    pub(crate) fn new(error: actix_web::Error, cors: Option<CorsHeaders>) -> Self {
        DecoratedError { error, cors }
    }
}

impl fmt::Debug for DecoratedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.error, f)
    }
}

impl fmt::Display for DecoratedError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.error, f)
    }
}

impl ResponseError for DecoratedError {
    fn status_code(&self) -> StatusCode {
        self.error.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = self.error.error_response();
        decorate(res.headers_mut(), self.cors.clone());
        res
    }
}
