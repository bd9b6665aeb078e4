//! The MCP transport's guards, which no browser checks for you: a request from a foreign
//! `Origin` must get 403, and one naming a foreign `Host` (a DNS-rebound name pointing at
//! this server) must be refused.

use serde_json::json;

use super::http::{BodyRead, Request, Transport};
use super::plan::{Page, REQUESTED_VERSION};
use super::report::Report;

/// An origin no policy allows.
pub const FOREIGN_ORIGIN: &str = "https://probe-foreign.invalid";
/// A name no server answers to.
pub const FOREIGN_HOST: &str = "probe-rebind.invalid";

fn initialize_body() -> String {
    json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {
            "protocolVersion": REQUESTED_VERSION,
            "capabilities": {},
            "clientInfo": {"name": "mcp-cors-tui-probe", "version": env!("CARGO_PKG_VERSION")},
        },
    })
    .to_string()
}

fn initialize(page: &Page, host: String, origin: Option<&str>) -> Request {
    let mut headers = vec![("host".to_owned(), host)];
    headers.extend(origin.map(|o| ("origin".to_owned(), o.to_owned())));
    headers.push(("content-type".into(), "application/json".into()));
    headers.push((
        "accept".into(),
        "application/json, text/event-stream".into(),
    ));
    headers.extend(
        page.extra
            .iter()
            .filter(|(n, _)| !n.eq_ignore_ascii_case("cookie"))
            .cloned(),
    );
    Request {
        method: "POST",
        url: page.url.clone(),
        headers,
        body: Some(initialize_body()),
        read: BodyRead::Whole,
    }
}

/// Runs both guard checks, one step each.
pub fn run(t: &mut dyn Transport, page: &Page, report: &mut Report) {
    foreign_origin(t, page, report);
    foreign_host(t, page, report);
}

fn foreign_origin(t: &mut dyn Transport, page: &Page, report: &mut Report) {
    let name = "guard: foreign Origin";
    let request = initialize(page, page.host.clone(), Some(FOREIGN_ORIGIN));
    match t.send(&request) {
        Ok(res) if res.status == 403 => {
            report.step(name, true, format!("403 for Origin: {FOREIGN_ORIGIN}"));
        }
        Ok(res) => report.step(
            name,
            false,
            format!(
                "{} for Origin: {FOREIGN_ORIGIN}; the MCP transport requires 403 for an origin that is not allowed",
                res.status
            ),
        ),
        Err(e) => report.step(
            name,
            false,
            format!("no answer for Origin: {FOREIGN_ORIGIN} ({e}); the MCP transport requires 403"),
        ),
    }
}

/// Without `Origin`, as a same-origin request of a rebound page may be, so that only the
/// `Host` check can refuse it.
fn foreign_host(t: &mut dyn Transport, page: &Page, report: &mut Report) {
    let name = "guard: foreign Host";
    let host = match page.url.port() {
        Some(port) => format!("{FOREIGN_HOST}:{port}"),
        None => FOREIGN_HOST.to_owned(),
    };
    let request = initialize(page, host.clone(), None);
    match t.send(&request) {
        Ok(res) if (400..=499).contains(&res.status) => {
            report.step(name, true, format!("{} for Host: {host}", res.status));
        }
        Ok(res) => report.step(
            name,
            false,
            format!(
                "{} for Host: {host}; a page at a DNS-rebound name can call this server: refuse Host names it does not serve (4xx)",
                res.status
            ),
        ),
        // Dropping the connection refuses it just as well.
        Err(e) => report.step(name, true, format!("connection refused for Host: {host} ({e})")),
    }
}
