//! The Fetch standard's CORS rules, as a browser applies them to one answer: the CORS
//! check, the CORS-preflight fetch's checks, which request headers are CORS-safelisted and
//! which response headers a page may read. Failures are worded as Chromium's console words
//! them (the text after "has been blocked by CORS policy: ").
//!
//! References are to <https://fetch.spec.whatwg.org/>: `#cors-check`,
//! `#cors-preflight-fetch`, `#cors-safelisted-method`, `#cors-safelisted-request-header`,
//! `#cors-unsafe-request-header-names`, `#cors-safelisted-response-header-name`.

use std::fmt;

/// A header list as received: names lower-cased, values as sent (trimmed), in order,
/// repeated names kept.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Headers(pub Vec<(String, String)>);

impl Headers {
    /// Builds a list from `(name, value)` pairs; names are lower-cased.
    #[cfg(test)]
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Headers {
        Headers(
            pairs
                .into_iter()
                .map(|(n, v)| (n.to_ascii_lowercase(), v.trim().to_owned()))
                .collect(),
        )
    }

    /// Fetch's "get": every value of `name`, combined with ", " (as the network stack
    /// combines repeated headers); `None` when the header is absent.
    pub fn get(&self, name: &str) -> Option<String> {
        let mut values = self.0.iter().filter(|(n, _)| n == name).map(|(_, v)| v);
        let first = values.next()?.clone();
        Some(values.fold(first, |all, v| format!("{all}, {v}")))
    }

    /// Whether `name` is present at all.
    pub fn contains(&self, name: &str) -> bool {
        self.0.iter().any(|(n, _)| n == name)
    }
}

/// A browser's refusal, in Chromium's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsError {
    /// No `Access-Control-Allow-Origin` at all.
    MissingAllowOrigin,
    /// Several values (two headers, or a list in one).
    MultipleAllowOrigin(String),
    /// A value that is not an origin.
    InvalidAllowOrigin(String),
    /// An origin other than the page's (compared byte for byte).
    AllowOriginMismatch(String),
    /// `*` while the request carries credentials.
    WildcardOrigin,
    /// `Access-Control-Allow-Credentials` other than exactly `true`, with credentials.
    InvalidAllowCredentials(String),
    /// A preflight answered outside 200–299.
    PreflightStatus,
    /// A preflight answered with a redirect.
    PreflightRedirect,
    /// `Access-Control-Allow-Methods` is not a list of tokens.
    InvalidAllowMethods,
    /// `Access-Control-Allow-Headers` is not a list of tokens.
    InvalidAllowHeaders,
    /// The request's method is not allowed by the preflight answer.
    MethodNotAllowed(String),
    /// A request header is not allowed by the preflight answer.
    HeaderNotAllowed(String),
}

impl CorsError {
    /// Whether Chromium prefixes the message with "Response to preflight request doesn't
    /// pass access control check: " when this comes from a preflight.
    fn prefixed_on_preflight(&self) -> bool {
        !matches!(
            self,
            CorsError::MethodNotAllowed(_)
                | CorsError::HeaderNotAllowed(_)
                | CorsError::InvalidAllowMethods
                | CorsError::InvalidAllowHeaders
        )
    }

    /// The message Chromium's console shows for this failure on a preflight.
    pub fn on_preflight(&self) -> String {
        if self.prefixed_on_preflight() {
            format!("Response to preflight request doesn't pass access control check: {self}")
        } else {
            self.to_string()
        }
    }
}

impl fmt::Display for CorsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CorsError::MissingAllowOrigin => f.write_str(
                "No 'Access-Control-Allow-Origin' header is present on the requested resource.",
            ),
            CorsError::MultipleAllowOrigin(v) => write!(
                f,
                "The 'Access-Control-Allow-Origin' header contains multiple values '{v}', but only one is allowed."
            ),
            CorsError::InvalidAllowOrigin(v) => write!(
                f,
                "The 'Access-Control-Allow-Origin' header contains the invalid value '{v}'."
            ),
            CorsError::AllowOriginMismatch(v) => write!(
                f,
                "The 'Access-Control-Allow-Origin' header has a value '{v}' that is not equal to the supplied origin."
            ),
            CorsError::WildcardOrigin => f.write_str(
                "The value of the 'Access-Control-Allow-Origin' header in the response must not be the wildcard '*' when the request's credentials mode is 'include'.",
            ),
            CorsError::InvalidAllowCredentials(v) => write!(
                f,
                "The value of the 'Access-Control-Allow-Credentials' header in the response is '{v}' which must be 'true' when the request's credentials mode is 'include'."
            ),
            CorsError::PreflightStatus => f.write_str("It does not have HTTP ok status."),
            CorsError::PreflightRedirect => {
                f.write_str("Redirect is not allowed for a preflight request.")
            }
            CorsError::InvalidAllowMethods => f.write_str(
                "Cannot parse Access-Control-Allow-Methods response header field in preflight response.",
            ),
            CorsError::InvalidAllowHeaders => f.write_str(
                "Cannot parse Access-Control-Allow-Headers response header field in preflight response.",
            ),
            CorsError::MethodNotAllowed(m) => write!(
                f,
                "Method {m} is not allowed by Access-Control-Allow-Methods in preflight response."
            ),
            CorsError::HeaderNotAllowed(h) => write!(
                f,
                "Request header field {h} is not allowed by Access-Control-Allow-Headers in preflight response."
            ),
        }
    }
}

/// `GET`, `HEAD` and `POST` need no permission from a preflight.
pub fn is_safelisted_method(method: &str) -> bool {
    matches!(method, "GET" | "HEAD" | "POST")
}

/// A byte that makes a safelisted header's value unsafe.
fn is_cors_unsafe_byte(b: u8) -> bool {
    (b < 0x20 && b != b'\t') || b"\"():<>?@[\\]{}\x7f".contains(&b)
}

/// Whether `(name, value)` may be sent cross-origin without a preflight.
pub fn is_safelisted_request_header(name: &str, value: &str) -> bool {
    if value.len() > 128 {
        return false;
    }
    match name.to_ascii_lowercase().as_str() {
        "accept" => !value.bytes().any(is_cors_unsafe_byte),
        "accept-language" | "content-language" => value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b" *,-.;=".contains(&b)),
        "content-type" => {
            if value.bytes().any(is_cors_unsafe_byte) {
                return false;
            }
            let essence = value.split(';').next().unwrap_or("").trim();
            let essence = essence.to_ascii_lowercase();
            matches!(
                essence.as_str(),
                "application/x-www-form-urlencoded" | "multipart/form-data" | "text/plain"
            )
        }
        // `range` is safelisted for one simple form only; the probe never sends it, and a
        // user-given one is treated as unsafe (the cautious answer).
        _ => false,
    }
}

/// The request header names a preflight must ask for (`Access-Control-Request-Headers`):
/// lower-cased, sorted, without duplicates.
pub fn cors_unsafe_names(request: &[(String, String)]) -> Vec<String> {
    let mut unsafe_names = Vec::new();
    let mut potentially_unsafe = Vec::new();
    let mut safelist_size = 0;
    for (name, value) in request {
        if is_safelisted_request_header(name, value) {
            potentially_unsafe.push(name.to_ascii_lowercase());
            safelist_size += value.len();
        } else {
            unsafe_names.push(name.to_ascii_lowercase());
        }
    }
    // Safelisted values may add up to 1 024 bytes; beyond that they all need permission.
    if safelist_size > 1024 {
        unsafe_names.extend(potentially_unsafe);
    }
    unsafe_names.sort();
    unsafe_names.dedup();
    unsafe_names
}

/// Fetch's CORS check of one answer, as Chromium orders its messages.
pub fn cors_check(response: &Headers, origin: &str, include: bool) -> Result<(), CorsError> {
    let allow_origin = response
        .get("access-control-allow-origin")
        .ok_or(CorsError::MissingAllowOrigin)?;
    if allow_origin == "*" {
        if include {
            return Err(CorsError::WildcardOrigin);
        }
        return Ok(());
    }
    if allow_origin != origin {
        if allow_origin.contains([' ', ',']) {
            return Err(CorsError::MultipleAllowOrigin(allow_origin));
        }
        if allow_origin != "null" && url::Url::parse(&allow_origin).is_err() {
            return Err(CorsError::InvalidAllowOrigin(allow_origin));
        }
        return Err(CorsError::AllowOriginMismatch(allow_origin));
    }
    if include {
        let allow_credentials = response.get("access-control-allow-credentials");
        if allow_credentials.as_deref() != Some("true") {
            return Err(CorsError::InvalidAllowCredentials(
                allow_credentials.unwrap_or_default(),
            ));
        }
    }
    Ok(())
}

/// Fetch's "extracting header list values" for a comma-separated list of tokens; `None`
/// when an item is not a token (the browser's "Cannot parse").
fn token_list(response: &Headers, name: &str) -> Option<Vec<String>> {
    let Some(value) = response.get(name) else {
        return Some(Vec::new());
    };
    value
        .split(',')
        .map(|item| item.trim_matches([' ', '\t']))
        .filter(|item| !item.is_empty())
        .map(|item| is_token(item).then(|| item.to_owned()))
        .collect()
}

/// RFC 9110 `token`.
fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// What a preflight asks for: the actual request's method and header list.
#[derive(Debug, Clone)]
pub struct PreflightFor<'a> {
    /// The actual request's method.
    pub method: &'a str,
    /// The actual request's headers, as the page sets them.
    pub headers: &'a [(String, String)],
}

/// The checks of the CORS-preflight fetch on its answer (steps 7.1–7.7), as Chromium
/// applies them.
pub fn preflight_check(
    status: u16,
    response: &Headers,
    request: &PreflightFor<'_>,
    origin: &str,
    include: bool,
) -> Result<PreflightOk, CorsError> {
    if matches!(status, 301 | 302 | 303 | 307 | 308) && response.contains("location") {
        return Err(CorsError::PreflightRedirect);
    }
    cors_check(response, origin, include)?;
    if !(200..=299).contains(&status) {
        return Err(CorsError::PreflightStatus);
    }
    let methods = token_list(response, "access-control-allow-methods")
        .ok_or(CorsError::InvalidAllowMethods)?;
    let allowed_headers: Vec<String> = token_list(response, "access-control-allow-headers")
        .ok_or(CorsError::InvalidAllowHeaders)?
        .into_iter()
        .map(|h| h.to_ascii_lowercase())
        .collect();
    let wildcard = |list: &[String]| !include && list.iter().any(|m| m == "*");
    // Methods compare case-sensitively: the request's method is already normalized.
    if !methods.iter().any(|m| m == request.method)
        && !is_safelisted_method(request.method)
        && !wildcard(&methods)
    {
        return Err(CorsError::MethodNotAllowed(request.method.to_owned()));
    }
    // The standard never lets `*` cover `Authorization`; Chromium still does (with a
    // deprecation notice), and the probe's verdicts are Chromium's: the caller warns.
    let authorization_by_wildcard = request
        .headers
        .iter()
        .any(|(n, _)| n.eq_ignore_ascii_case("authorization"))
        && !allowed_headers.iter().any(|h| h == "authorization");
    for name in cors_unsafe_names(request.headers) {
        if !allowed_headers.contains(&name) && !wildcard(&allowed_headers) {
            return Err(CorsError::HeaderNotAllowed(name));
        }
    }
    Ok(PreflightOk {
        authorization_by_wildcard,
    })
}

/// A preflight answer the browser accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PreflightOk {
    /// `Authorization` was allowed only by `*`, which Firefox, Safari and the standard
    /// refuse.
    pub authorization_by_wildcard: bool,
}

/// Response headers every page may read.
const SAFELISTED_RESPONSE: [&str; 7] = [
    "cache-control",
    "content-language",
    "content-length",
    "content-type",
    "expires",
    "last-modified",
    "pragma",
];

/// Whether a page can read response header `name` (lower-case) of a CORS answer.
pub fn is_exposed(response: &Headers, name: &str, include: bool) -> bool {
    if SAFELISTED_RESPONSE.contains(&name) {
        return true;
    }
    if matches!(name, "set-cookie" | "set-cookie2") {
        return false;
    }
    let exposed = token_list(response, "access-control-expose-headers").unwrap_or_default();
    exposed
        .iter()
        .any(|h| h.eq_ignore_ascii_case(name) || (h == "*" && !include))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: &str = "http://127.0.0.1:5173";

    fn h(pairs: &[(&str, &str)]) -> Headers {
        Headers::from_pairs(pairs.iter().copied())
    }

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn json_content_type_is_unsafe_and_the_sdk_accept_is_safelisted() {
        let sdk = owned(&[
            ("Content-Type", "application/json"),
            ("Accept", "application/json, text/event-stream"),
            ("MCP-Protocol-Version", "2025-06-18"),
            ("mcp-session-id", "abc"),
        ]);
        assert_eq!(
            cors_unsafe_names(&sdk),
            ["content-type", "mcp-protocol-version", "mcp-session-id"]
        );
        assert!(is_safelisted_request_header(
            "content-type",
            "text/plain;charset=UTF-8"
        ));
        assert!(!is_safelisted_request_header("accept", "a(b)"));
        assert!(!is_safelisted_request_header("accept", &"a".repeat(129)));
        assert!(is_safelisted_request_header("accept", &"a".repeat(128)));
    }

    #[test]
    fn safelisted_values_over_1024_bytes_all_need_permission() {
        let big = owned(&[
            ("accept", &"a".repeat(128)),
            ("accept-language", &"b".repeat(128)),
            ("content-language", &"c".repeat(128)),
        ]);
        assert!(cors_unsafe_names(&big).is_empty());
        let many: Vec<(String, String)> = (0..9)
            .map(|_| ("accept".to_owned(), "a".repeat(120)))
            .collect();
        assert_eq!(cors_unsafe_names(&many), ["accept"]);
    }

    #[test]
    fn the_cors_check_names_each_mistake_as_chromium_does() {
        let check = |pairs: &[(&str, &str)], include| cors_check(&h(pairs), ORIGIN, include);
        assert_eq!(check(&[], false), Err(CorsError::MissingAllowOrigin));
        assert_eq!(
            check(&[("Access-Control-Allow-Origin", ORIGIN)], false),
            Ok(())
        );
        assert_eq!(
            check(
                &[
                    ("access-control-allow-origin", ORIGIN),
                    ("access-control-allow-origin", ORIGIN)
                ],
                false
            ),
            Err(CorsError::MultipleAllowOrigin(format!(
                "{ORIGIN}, {ORIGIN}"
            )))
        );
        let list = format!("{ORIGIN} http://localhost:5173");
        assert_eq!(
            check(&[("access-control-allow-origin", &list)], false),
            Err(CorsError::MultipleAllowOrigin(list.clone()))
        );
        let slash = format!("{ORIGIN}/");
        assert_eq!(
            check(&[("access-control-allow-origin", &slash)], false),
            Err(CorsError::AllowOriginMismatch(slash.clone()))
        );
        assert_eq!(
            check(
                &[("access-control-allow-origin", "HTTP://127.0.0.1:5173")],
                false
            ),
            Err(CorsError::AllowOriginMismatch(
                "HTTP://127.0.0.1:5173".into()
            ))
        );
        assert_eq!(
            check(&[("access-control-allow-origin", "nope")], false),
            Err(CorsError::InvalidAllowOrigin("nope".into()))
        );
        assert_eq!(
            check(&[("access-control-allow-origin", "*")], false),
            Ok(())
        );
        assert_eq!(
            check(&[("access-control-allow-origin", "*")], true),
            Err(CorsError::WildcardOrigin)
        );
        assert_eq!(
            check(&[("access-control-allow-origin", ORIGIN)], true),
            Err(CorsError::InvalidAllowCredentials(String::new()))
        );
        assert_eq!(
            check(
                &[
                    ("access-control-allow-origin", ORIGIN),
                    ("access-control-allow-credentials", "True")
                ],
                true
            ),
            Err(CorsError::InvalidAllowCredentials("True".into()))
        );
        assert_eq!(
            check(
                &[
                    ("access-control-allow-origin", ORIGIN),
                    ("access-control-allow-credentials", "true")
                ],
                true
            ),
            Ok(())
        );
    }

    #[test]
    fn messages_use_chromiums_words() {
        assert_eq!(
            CorsError::MissingAllowOrigin.on_preflight(),
            "Response to preflight request doesn't pass access control check: No 'Access-Control-Allow-Origin' header is present on the requested resource."
        );
        assert_eq!(
            CorsError::PreflightStatus.on_preflight(),
            "Response to preflight request doesn't pass access control check: It does not have HTTP ok status."
        );
        assert_eq!(
            CorsError::HeaderNotAllowed("mcp-protocol-version".into()).on_preflight(),
            "Request header field mcp-protocol-version is not allowed by Access-Control-Allow-Headers in preflight response."
        );
        assert_eq!(
            CorsError::InvalidAllowCredentials(String::new()).to_string(),
            "The value of the 'Access-Control-Allow-Credentials' header in the response is '' which must be 'true' when the request's credentials mode is 'include'."
        );
    }

    fn preflight(
        status: u16,
        pairs: &[(&str, &str)],
        method: &str,
        include: bool,
    ) -> Result<(), CorsError> {
        let headers = owned(&[
            ("content-type", "application/json"),
            ("mcp-protocol-version", "2025-06-18"),
        ]);
        let asked = PreflightFor {
            method,
            headers: &headers,
        };
        preflight_check(status, &h(pairs), &asked, ORIGIN, include).map(|_| ())
    }

    #[test]
    fn a_preflight_needs_the_origin_first_then_an_ok_status() {
        assert_eq!(
            preflight(405, &[], "POST", false),
            Err(CorsError::MissingAllowOrigin)
        );
        let acao = ("access-control-allow-origin", ORIGIN);
        assert_eq!(
            preflight(401, &[acao], "POST", false),
            Err(CorsError::PreflightStatus)
        );
        assert_eq!(
            preflight(302, &[acao, ("location", "/login")], "POST", false),
            Err(CorsError::PreflightRedirect)
        );
        let all = (
            "access-control-allow-headers",
            "Content-Type, MCP-Protocol-Version",
        );
        assert_eq!(preflight(200, &[acao, all], "POST", false), Ok(()));
        assert_eq!(preflight(204, &[acao, all], "POST", false), Ok(()));
    }

    #[test]
    fn allow_headers_must_name_each_unsafe_header_and_star_is_literal_with_credentials() {
        let acao = ("access-control-allow-origin", ORIGIN);
        let acac = ("access-control-allow-credentials", "true");
        assert_eq!(
            preflight(
                204,
                &[acao, ("access-control-allow-headers", "content-type")],
                "POST",
                false
            ),
            Err(CorsError::HeaderNotAllowed("mcp-protocol-version".into()))
        );
        let star = ("access-control-allow-headers", "*");
        assert_eq!(preflight(204, &[acao, star], "POST", false), Ok(()));
        assert_eq!(
            preflight(204, &[acao, acac, star], "POST", true),
            Err(CorsError::HeaderNotAllowed("content-type".into()))
        );
        assert_eq!(
            preflight(
                204,
                &[acao, ("access-control-allow-headers", "content-type;x")],
                "POST",
                false
            ),
            Err(CorsError::InvalidAllowHeaders)
        );
        let auth = owned(&[("authorization", "Bearer x")]);
        let asked = PreflightFor {
            method: "POST",
            headers: &auth,
        };
        assert_eq!(
            preflight_check(204, &h(&[acao, star]), &asked, ORIGIN, false),
            Ok(PreflightOk {
                authorization_by_wildcard: true
            }),
            "Chromium lets `*` cover Authorization (the standard does not: a warning)"
        );
        let named = ("access-control-allow-headers", "Authorization");
        assert_eq!(
            preflight_check(204, &h(&[acao, named]), &asked, ORIGIN, false),
            Ok(PreflightOk {
                authorization_by_wildcard: false
            })
        );
    }

    #[test]
    fn allow_methods_are_case_sensitive_and_post_needs_none() {
        let acao = ("access-control-allow-origin", ORIGIN);
        let acah = ("access-control-allow-headers", "*");
        let acac = ("access-control-allow-credentials", "true");
        assert_eq!(
            preflight(
                204,
                &[acao, acah, ("access-control-allow-methods", "GET")],
                "POST",
                false
            ),
            Ok(())
        );
        assert_eq!(
            preflight(
                204,
                &[acao, acah, ("access-control-allow-methods", "delete")],
                "DELETE",
                false
            ),
            Err(CorsError::MethodNotAllowed("DELETE".into()))
        );
        assert_eq!(
            preflight(
                204,
                &[acao, acah, ("access-control-allow-methods", "*")],
                "DELETE",
                false
            ),
            Ok(())
        );
        let named = (
            "access-control-allow-headers",
            "content-type, mcp-protocol-version",
        );
        assert_eq!(
            preflight(
                204,
                &[acao, acac, named, ("access-control-allow-methods", "*")],
                "DELETE",
                true
            ),
            Err(CorsError::MethodNotAllowed("DELETE".into()))
        );
        assert_eq!(
            preflight(
                204,
                &[acao, acah, ("access-control-allow-methods", "GET, DE LETE")],
                "DELETE",
                false
            ),
            Err(CorsError::InvalidAllowMethods)
        );
    }

    #[test]
    fn a_page_reads_only_exposed_headers() {
        let none = h(&[("mcp-session-id", "s")]);
        assert!(!is_exposed(&none, "mcp-session-id", false));
        assert!(is_exposed(&none, "content-type", false));
        let listed = h(&[("access-control-expose-headers", "Mcp-Session-Id, X")]);
        assert!(is_exposed(&listed, "mcp-session-id", true));
        let star = h(&[("access-control-expose-headers", "*")]);
        assert!(is_exposed(&star, "mcp-session-id", false));
        assert!(!is_exposed(&star, "mcp-session-id", true));
        assert!(!is_exposed(&star, "set-cookie", false));
    }
}
