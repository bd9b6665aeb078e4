//! The browser's side of an MCP Streamable HTTP session, step by step, as a page at the
//! origin runs the official TypeScript SDK's client (`StreamableHTTPClientTransport`):
//!
//! 1. `initialize` (POST, `content-type: application/json` so preflighted, no
//!    `mcp-protocol-version` yet);
//! 2. `notifications/initialized`, then `tools/list`, with `mcp-protocol-version` and
//!    `mcp-session-id` — the latter only when the page could read it (it must be in
//!    `Access-Control-Expose-Headers`), since the SDK reads it with `headers.get`;
//! 3. the GET stream (405: no stream, not a failure);
//! 4. DELETE of the session, when the page knows one (405: fine).
//!
//! Each answer goes through the Fetch checks ([`super::fetch`]); the flow stops at the
//! first step the browser would fail, as the SDK's `connect` does. Every non-simple
//! request is preflighted (a browser may serve a later one from its preflight cache; for
//! a server that answers alike each time the verdict is the same).

use serde_json::{Value, json};
use url::Url;

use super::fetch::{self, PreflightFor};
use super::http::{BodyRead, HttpError, Request, Response, Transport};
use super::report::Report;
use super::sse;
use super::warnings;

/// The protocol version the probe asks for; the server may answer with another.
pub const REQUESTED_VERSION: &str = "2025-11-25";
/// Versions the probe (like the SDK) accepts from the server.
pub const SUPPORTED_VERSIONS: [&str; 4] = ["2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"];

/// The page and the endpoint.
#[derive(Debug, Clone)]
pub struct Page {
    /// The endpoint.
    pub url: Url,
    /// The `Host` a browser sends for it.
    pub host: String,
    /// The page's origin, serialized as a browser does.
    pub origin: String,
    /// `credentials: "include"` (else the SDK's default, `same-origin`).
    pub include: bool,
    /// Extra headers the page sets on every MCP request (`--header`).
    pub extra: Vec<(String, String)>,
    /// Whether the browser would send Private Network Access preflight headers.
    pub private_network: bool,
}

/// The probe could not reach the endpoint at all.
#[derive(Debug, thiserror::Error)]
#[error("cannot reach {url}: {source}")]
pub struct Unreachable {
    /// The endpoint.
    pub url: String,
    /// What failed.
    #[source]
    pub source: HttpError,
}

/// What the page knows of its session.
#[derive(Debug, Default)]
struct Session {
    protocol: Option<String>,
    /// The session id as the page can read it.
    id: Option<String>,
    /// The server sent one the page could not read.
    hidden_id: bool,
}

/// One fetch of the page: method, the headers the page sets, body, how much to read.
struct Fetch<'a> {
    call: &'a str,
    method: &'static str,
    headers: Vec<(String, String)>,
    body: Option<String>,
    read: BodyRead,
}

/// Runs the browser steps; `Err` only when nothing answered the first exchange.
pub fn run(t: &mut dyn Transport, page: &Page, report: &mut Report) -> Result<(), Unreachable> {
    let mut browser = Browser {
        t,
        page,
        report,
        reached: false,
    };
    browser.session()
}

struct Browser<'a> {
    t: &'a mut dyn Transport,
    page: &'a Page,
    report: &'a mut Report,
    /// Some exchange got an answer (so a later network error is a step failure).
    reached: bool,
}

impl Browser<'_> {
    fn session(&mut self) -> Result<(), Unreachable> {
        let mut session = Session::default();
        if !self.initialize(&mut session)? {
            return Ok(());
        }
        let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
        if !self.notify(&session, &initialized)? {
            return Ok(());
        }
        if !self.tools_list(&session)? {
            return Ok(());
        }
        if !self.stream(&session)? {
            return Ok(());
        }
        self.delete(&session)?;
        Ok(())
    }

    /// Headers of every request after `initialize` (the SDK's `_commonHeaders`).
    fn common_headers(&self, session: &Session) -> Vec<(String, String)> {
        let mut headers = self.page.extra.clone();
        if let Some(id) = &session.id {
            headers.push(("mcp-session-id".into(), id.clone()));
        }
        if let Some(version) = &session.protocol {
            headers.push(("mcp-protocol-version".into(), version.clone()));
        }
        headers
    }

    fn post_headers(&self, session: &Session) -> Vec<(String, String)> {
        let mut headers = self.common_headers(session);
        headers.push(("content-type".into(), "application/json".into()));
        headers.push((
            "accept".into(),
            "application/json, text/event-stream".into(),
        ));
        headers
    }

    fn initialize(&mut self, session: &mut Session) -> Result<bool, Unreachable> {
        let body = json!({
            "jsonrpc": "2.0", "id": 1, "method": "initialize",
            "params": {
                "protocolVersion": REQUESTED_VERSION,
                "capabilities": {},
                "clientInfo": {"name": "mcp-cors-tui-probe", "version": env!("CARGO_PKG_VERSION")},
            },
        });
        let request = Fetch {
            call: "initialize",
            method: "POST",
            headers: self.post_headers(session),
            body: Some(body.to_string()),
            read: BodyRead::UntilResponse(1),
        };
        let Some(res) = self.fetch(request)? else {
            return Ok(false);
        };
        let Some(result) = self.rpc_result("initialize", &res, 1) else {
            return Ok(false);
        };
        let version = result
            .get("protocolVersion")
            .and_then(Value::as_str)
            .unwrap_or("");
        if !SUPPORTED_VERSIONS.contains(&version) {
            self.report.step(
                "initialize",
                false,
                format!(
                    "the server's protocol version '{version}' is not one the SDK supports ({})",
                    SUPPORTED_VERSIONS.join(", ")
                ),
            );
            return Ok(false);
        }
        session.protocol = Some(version.to_owned());
        let sent = res.headers.get("mcp-session-id");
        let readable = fetch::is_exposed(&res.headers, "mcp-session-id", self.page.include);
        let detail = match (&sent, readable) {
            (None, _) => format!("{}, protocol {version}, no session", res.status),
            (Some(_), true) => format!(
                "{}, protocol {version}, Mcp-Session-Id readable",
                res.status
            ),
            (Some(_), false) => {
                session.hidden_id = true;
                self.report.warn(
                    "the server sends Mcp-Session-Id but Access-Control-Expose-Headers does not list it: a page cannot read it, so its next requests go without a session",
                );
                format!(
                    "{}, protocol {version}, Mcp-Session-Id NOT readable by the page (not in Access-Control-Expose-Headers)",
                    res.status
                )
            }
        };
        session.id = sent.filter(|_| readable);
        self.report.step("initialize", true, detail);
        Ok(true)
    }

    fn notify(&mut self, session: &Session, message: &Value) -> Result<bool, Unreachable> {
        let call = "notifications/initialized";
        let request = Fetch {
            call,
            method: "POST",
            headers: self.post_headers(session),
            body: Some(message.to_string()),
            read: BodyRead::Whole,
        };
        let Some(res) = self.fetch(request)? else {
            return Ok(false);
        };
        if !(200..=299).contains(&res.status) {
            self.http_failure(call, &res, session);
            return Ok(false);
        }
        self.report.step(call, true, res.status.to_string());
        Ok(true)
    }

    fn tools_list(&mut self, session: &Session) -> Result<bool, Unreachable> {
        let call = "tools/list";
        let body = json!({"jsonrpc": "2.0", "id": 2, "method": "tools/list", "params": {}});
        let request = Fetch {
            call,
            method: "POST",
            headers: self.post_headers(session),
            body: Some(body.to_string()),
            read: BodyRead::UntilResponse(2),
        };
        let Some(res) = self.fetch(request)? else {
            return Ok(false);
        };
        if !(200..=299).contains(&res.status) {
            self.http_failure(call, &res, session);
            return Ok(false);
        }
        let Some(result) = self.rpc_result(call, &res, 2) else {
            return Ok(false);
        };
        let tools = result
            .get("tools")
            .and_then(Value::as_array)
            .map_or(0, Vec::len);
        self.report
            .step(call, true, format!("{}, {tools} tools", res.status));
        Ok(true)
    }

    fn stream(&mut self, session: &Session) -> Result<bool, Unreachable> {
        let call = "GET stream";
        let mut headers = self.common_headers(session);
        headers.push(("accept".into(), "text/event-stream".into()));
        let request = Fetch {
            call,
            method: "GET",
            headers,
            body: None,
            read: BodyRead::HeadOnly,
        };
        let Some(res) = self.fetch(request)? else {
            return Ok(false);
        };
        if res.status == 405 {
            self.report
                .step(call, true, "405: the server offers no stream (fine)");
            return Ok(true);
        }
        if !(200..=299).contains(&res.status) {
            self.http_failure(call, &res, session);
            return Ok(false);
        }
        let content_type = res.headers.get("content-type").unwrap_or_default();
        if !content_type
            .to_ascii_lowercase()
            .starts_with("text/event-stream")
        {
            self.report.step(
                call,
                false,
                format!(
                    "{}: content type '{content_type}', not text/event-stream",
                    res.status
                ),
            );
            return Ok(false);
        }
        self.report
            .step(call, true, format!("{}, text/event-stream", res.status));
        Ok(true)
    }

    fn delete(&mut self, session: &Session) -> Result<bool, Unreachable> {
        let call = "DELETE";
        if session.id.is_none() {
            return Ok(true);
        }
        let request = Fetch {
            call,
            method: "DELETE",
            headers: self.common_headers(session),
            body: None,
            read: BodyRead::Whole,
        };
        let Some(res) = self.fetch(request)? else {
            return Ok(false);
        };
        let ok = (200..=299).contains(&res.status) || res.status == 405;
        if !ok {
            self.http_failure(call, &res, session);
            return Ok(false);
        }
        let detail = if res.status == 405 {
            "405: the server does not end sessions on request (fine)".to_owned()
        } else {
            format!("{}, session ended", res.status)
        };
        self.report.step(call, true, detail);
        Ok(true)
    }

    /// The `result` of a JSON-RPC answer, or a failed step saying why there is none.
    fn rpc_result(&mut self, call: &str, res: &Response, id: u64) -> Option<Value> {
        if !(200..=299).contains(&res.status) {
            self.http_failure(call, res, &Session::default());
            return None;
        }
        let content_type = res.headers.get("content-type").unwrap_or_default();
        match sse::result_of(&content_type, &res.body, id) {
            Ok(result) => Some(result),
            Err(e) => {
                self.report
                    .step(call, false, format!("{}: {e}", res.status));
                None
            }
        }
    }

    /// A step that passed the CORS checks but got an error status, as the SDK reports it.
    fn http_failure(&mut self, call: &str, res: &Response, session: &Session) {
        let mut detail = format!(
            "HTTP {}: the SDK fails with \"Error POSTing to endpoint (HTTP {})\"",
            res.status, res.status
        );
        if call == "GET stream" {
            detail = format!("HTTP {}: failed to open the SSE stream", res.status);
        } else if call == "DELETE" {
            detail = format!("HTTP {}: failed to terminate the session", res.status);
        }
        if session.hidden_id {
            detail.push_str(
                "; the page sent no Mcp-Session-Id because it cannot read it: add Mcp-Session-Id to Access-Control-Expose-Headers",
            );
        }
        self.report.step(call, false, detail);
    }

    /// One `fetch()` of the page: its preflight when needed, then the request, each
    /// checked as the browser checks it. `None` when the browser would reject it (the
    /// failing step is recorded).
    fn fetch(&mut self, f: Fetch<'_>) -> Result<Option<Response>, Unreachable> {
        let mut page_headers = f.headers;
        page_headers.retain(|(n, _)| !n.eq_ignore_ascii_case("cookie"));
        let cookie = self.page_cookie();
        let needs_preflight = !fetch::is_safelisted_method(f.method)
            || !fetch::cors_unsafe_names(&page_headers).is_empty();
        if needs_preflight && !self.preflight(f.call, f.method, &page_headers)? {
            return Ok(None);
        }
        let mut headers = vec![
            ("host".to_owned(), self.page.host.clone()),
            ("origin".to_owned(), self.page.origin.clone()),
        ];
        headers.extend(page_headers);
        if !headers.iter().any(|(n, _)| n == "accept") {
            headers.push(("accept".into(), "*/*".into()));
        }
        headers.extend(cookie);
        let request = Request {
            method: f.method,
            url: self.page.url.clone(),
            headers,
            body: f.body,
            read: f.read,
        };
        let Some(res) = self.exchange(f.call, &request)? else {
            return Ok(None);
        };
        warnings::response(self.report, f.call, &res, self.page.include);
        if let Err(e) = fetch::cors_check(&res.headers, &self.page.origin, self.page.include) {
            self.report.step(f.call, false, e.to_string());
            return Ok(None);
        }
        if matches!(res.status, 301 | 302 | 303 | 307 | 308) {
            let to = res.headers.get("location").unwrap_or_default();
            self.report.step(
                f.call,
                false,
                format!(
                    "{}: redirected to '{to}'; probe the final URL instead",
                    res.status
                ),
            );
            return Ok(None);
        }
        Ok(Some(res))
    }

    /// The cookie a credentialed request carries (`--header cookie:…` with
    /// `--credentials`): a browser sends it from its jar, never from the page.
    fn page_cookie(&self) -> Option<(String, String)> {
        if !self.page.include {
            return None;
        }
        self.page
            .extra
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("cookie"))
            .cloned()
    }

    /// The CORS-preflight fetch for a request; records its step.
    fn preflight(
        &mut self,
        call: &str,
        method: &'static str,
        page_headers: &[(String, String)],
    ) -> Result<bool, Unreachable> {
        let name = format!("{call} preflight");
        let unsafe_names = fetch::cors_unsafe_names(page_headers);
        let mut headers = vec![
            ("host".to_owned(), self.page.host.clone()),
            ("origin".to_owned(), self.page.origin.clone()),
            ("accept".to_owned(), "*/*".to_owned()),
            (
                "access-control-request-method".to_owned(),
                method.to_owned(),
            ),
        ];
        if !unsafe_names.is_empty() {
            headers.push((
                "access-control-request-headers".into(),
                unsafe_names.join(","),
            ));
        }
        if self.page.private_network {
            headers.push((
                "access-control-request-private-network".into(),
                "true".into(),
            ));
        }
        let request = Request {
            method: "OPTIONS",
            url: self.page.url.clone(),
            headers,
            body: None,
            read: BodyRead::Whole,
        };
        let Some(res) = self.exchange(&name, &request)? else {
            return Ok(false);
        };
        warnings::preflight(self.report, &res, self.page);
        let asked = PreflightFor {
            method,
            headers: page_headers,
        };
        match fetch::preflight_check(
            res.status,
            &res.headers,
            &asked,
            &self.page.origin,
            self.page.include,
        ) {
            Ok(accepted) => {
                if accepted.authorization_by_wildcard {
                    self.report.warn(
                        "Access-Control-Allow-Headers: * covers Authorization only in Chromium (deprecated there); Firefox, Safari and the Fetch standard need Authorization named",
                    );
                }
                let detail = format!(
                    "{}, allows {method}{}",
                    res.status,
                    if unsafe_names.is_empty() {
                        String::new()
                    } else {
                        format!(" with {}", unsafe_names.join(", "))
                    }
                );
                self.report.step(&name, true, detail);
                Ok(true)
            }
            Err(e) => {
                self.report.step(&name, false, e.on_preflight());
                Ok(false)
            }
        }
    }

    /// Sends one request; a network error is a failed step, or [`Unreachable`] when the
    /// endpoint never answered.
    fn exchange(&mut self, step: &str, request: &Request) -> Result<Option<Response>, Unreachable> {
        match self.t.send(request) {
            Ok(res) => {
                self.reached = true;
                Ok(Some(res))
            }
            Err(source) if !self.reached => Err(Unreachable {
                url: self.page.url.to_string(),
                source,
            }),
            Err(e) => {
                self.report.step(
                    step,
                    false,
                    format!("network error (the page sees \"TypeError: Failed to fetch\"): {e}"),
                );
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::probe::fetch::Headers;

    const ORIGIN: &str = "http://127.0.0.1:5173";

    /// A server scripted by a function of the request; every request is kept.
    struct Scripted<F> {
        answer: F,
        sent: Vec<Request>,
    }

    impl<F: FnMut(&Request) -> Result<Response, HttpError>> Transport for Scripted<F> {
        fn send(&mut self, request: &Request) -> Result<Response, HttpError> {
            self.sent.push(request.clone());
            (self.answer)(request)
        }
    }

    fn header<'a>(request: &'a Request, name: &str) -> Option<&'a str> {
        request
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    fn page() -> Page {
        Page {
            url: Url::parse("http://localhost:8080/mcp").unwrap(),
            host: "localhost:8080".into(),
            origin: ORIGIN.into(),
            include: false,
            extra: Vec::new(),
            private_network: false,
        }
    }

    fn response(status: u16, pairs: &[(&str, &str)], body: &str) -> Response {
        Response {
            status,
            headers: Headers::from_pairs(pairs.iter().copied()),
            body: body.to_owned(),
        }
    }

    /// A correct server, but for `expose` (Access-Control-Expose-Headers) and `sse`.
    fn server(
        expose: &'static str,
        sse: bool,
    ) -> impl FnMut(&Request) -> Result<Response, HttpError> {
        move |r: &Request| {
            let cors = [
                ("access-control-allow-origin", ORIGIN),
                ("vary", "Origin"),
                ("access-control-allow-methods", "GET, POST, DELETE"),
                (
                    "access-control-allow-headers",
                    "content-type, mcp-protocol-version, mcp-session-id",
                ),
                ("access-control-expose-headers", expose),
            ];
            let body = r.body.as_deref().unwrap_or("");
            let answer = if r.method == "OPTIONS" {
                response(204, &cors, "")
            } else if body.contains("\"initialize\"") {
                let json = r#"{"jsonrpc":"2.0","id":1,"result":{"protocolVersion":"2025-06-18"}}"#;
                let mut all = cors.to_vec();
                all.push(("mcp-session-id", "s1"));
                if sse {
                    all.push(("content-type", "text/event-stream"));
                    response(200, &all, &format!("event: message\ndata: {json}\n\n"))
                } else {
                    all.push(("content-type", "application/json"));
                    response(200, &all, json)
                }
            } else if header(r, "mcp-session-id") != Some("s1") {
                response(400, &cors, "no session")
            } else if r.method == "GET" {
                response(405, &cors, "")
            } else if body.contains("tools/list") {
                let mut all = cors.to_vec();
                all.push(("content-type", "application/json"));
                response(
                    200,
                    &all,
                    r#"{"jsonrpc":"2.0","id":2,"result":{"tools":[{"name":"a"}]}}"#,
                )
            } else {
                response(202, &cors, "")
            };
            Ok(answer)
        }
    }

    fn run_against<F: FnMut(&Request) -> Result<Response, HttpError>>(
        answer: F,
    ) -> (Result<Report, Unreachable>, Vec<Request>) {
        let mut t = Scripted {
            answer,
            sent: Vec::new(),
        };
        let mut report = Report::default();
        let outcome = run(&mut t, &page(), &mut report).map(|()| report);
        (outcome, t.sent)
    }

    #[test]
    fn a_correct_server_passes_and_the_page_sends_what_the_sdk_sends() {
        let (report, sent) = run_against(server("Mcp-Session-Id", true));
        let report = report.unwrap();
        assert!(report.ok(), "{report:#?}");
        assert!(report.warnings.is_empty(), "{:?}", report.warnings);
        let preflight = &sent[0];
        assert_eq!(preflight.method, "OPTIONS");
        assert_eq!(
            header(preflight, "access-control-request-method"),
            Some("POST")
        );
        assert_eq!(
            header(preflight, "access-control-request-headers"),
            Some("content-type")
        );
        assert_eq!(header(preflight, "origin"), Some(ORIGIN));
        assert_eq!(header(preflight, "host"), Some("localhost:8080"));
        let init = &sent[1];
        assert_eq!(
            header(init, "mcp-protocol-version"),
            None,
            "not before initialize"
        );
        assert_eq!(
            header(init, "accept"),
            Some("application/json, text/event-stream")
        );
        let list = sent
            .iter()
            .find(|r| r.body.as_deref().is_some_and(|b| b.contains("tools/list")))
            .unwrap();
        assert_eq!(header(list, "mcp-session-id"), Some("s1"));
        assert_eq!(header(list, "mcp-protocol-version"), Some("2025-06-18"));
        let names: Vec<&str> = report.steps.iter().map(|s| s.name.as_str()).collect();
        assert!(
            names.contains(&"GET stream") && names.contains(&"DELETE"),
            "{names:?}"
        );
    }

    #[test]
    fn an_unexposed_session_id_is_not_sent_and_the_next_call_says_why() {
        let (report, sent) = run_against(server("X-Other", false));
        let report = report.unwrap();
        let failed = report.first_failure().unwrap();
        assert_eq!(failed.name, "notifications/initialized");
        assert!(failed.detail.contains("HTTP 400"), "{}", failed.detail);
        assert!(
            failed.detail.contains("Access-Control-Expose-Headers"),
            "{}",
            failed.detail
        );
        assert!(sent.iter().all(|r| header(r, "mcp-session-id").is_none()));
        assert!(report.warnings.iter().any(|w| w.contains("Mcp-Session-Id")));
    }

    #[test]
    fn no_answer_at_all_is_unreachable_but_a_later_network_error_is_a_failed_step() {
        let (outcome, _) =
            run_against(|_: &Request| Err(HttpError::Body(std::io::Error::other("refused"))));
        assert!(outcome.is_err());
        let mut correct = server("Mcp-Session-Id", false);
        let (outcome, _) = run_against(move |r: &Request| {
            if r.method == "GET" {
                Err(HttpError::Body(std::io::Error::other("reset")))
            } else {
                correct(r)
            }
        });
        let report = outcome.unwrap();
        let failed = report.first_failure().unwrap();
        assert_eq!(failed.name, "GET stream");
        assert!(
            failed.detail.contains("Failed to fetch"),
            "{}",
            failed.detail
        );
    }
}
