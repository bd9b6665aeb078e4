//! `mcp-cors-tui probe` against the real browser: a matrix of small MCP servers, each with
//! one CORS or guard mistake, and for each the probe's verdict (pass, or which step fails,
//! in which words) must be what headless Chromium does when a page runs an MCP client
//! against it with `fetch` calls like the official TypeScript SDK's.
//!
//! The page is served on `http://127.0.0.1:PAGE`; every server is `http://localhost:PORT`
//! (one port each). The probe runs as the built binary (`target/<profile>/mcp-cors-tui`,
//! built with cargo first). Needs `/usr/bin/chromium` and `/usr/bin/chromedriver`.

use std::net::SocketAddr;

use actix_web::http::StatusCode;
use actix_web::web::{self, Bytes};
use actix_web::{App, HttpRequest, HttpResponse, HttpResponseBuilder, HttpServer};
use serde_json::{Value, json};

mod support;
use support::binaries::probe_binary;
use support::webdriver::Browser;

const PAGE: &str = include_str!("probe_browser/page.html");
/// An origin other than the page's, for servers that name the wrong one.
const OTHER: &str = "http://localhost:5173";

/// The one CORS or guard mistake of a server (`Correct` has none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mistake {
    Correct,
    NoAllowOrigin,
    Preflight405,
    Preflight401,
    AllowOriginOther,
    AllowOriginList,
    AllowOriginTwice,
    AllowOriginTrailingSlash,
    AllowOriginWrongCase,
    AllowOriginStar,
    NoAllowCredentials,
    AllowHeadersStar,
    AllowHeadersWithoutProtocolVersion,
    SessionIdNotExposed,
    ExposeStar,
    AllowOriginOnlyOnPreflight,
    Preflight200,
    AllowMethodsWithoutPost,
    AllowMethodsWithoutDelete,
    AllowMethodsLowerCase,
    EventStreams,
    NoOriginGuard,
    NoHostGuard,
    NoVary,
    LongMaxAge,
    PreflightRedirect,
    AllowHeadersNotTokens,
    UnauthorizedWithoutExposedChallenge,
}

/// One server of the matrix and how the page (and the probe) call it.
#[derive(Debug, Clone, Copy)]
struct Case {
    mistake: Mistake,
    /// `credentials: "include"` / `--credentials`.
    credentials: bool,
    /// A header the page adds (`--header`).
    header: Option<(&'static str, &'static str)>,
    /// `--no-security`.
    no_security: bool,
    /// The probe's first failing step; `None`: all pass.
    expect: Option<&'static str>,
    /// Words one of the probe's warnings must contain.
    warning: Option<&'static str>,
}

const fn case(mistake: Mistake, expect: Option<&'static str>) -> Case {
    Case {
        mistake,
        credentials: false,
        header: None,
        no_security: false,
        expect,
        warning: None,
    }
}

const fn with_credentials(mistake: Mistake, expect: Option<&'static str>) -> Case {
    Case {
        credentials: true,
        ..case(mistake, expect)
    }
}

const CASES: &[Case] = &[
    case(Mistake::Correct, None),
    with_credentials(Mistake::Correct, None),
    case(Mistake::NoAllowOrigin, Some("initialize preflight")),
    case(Mistake::Preflight405, Some("initialize preflight")),
    case(Mistake::Preflight401, Some("initialize preflight")),
    case(Mistake::AllowOriginOther, Some("initialize preflight")),
    case(Mistake::AllowOriginList, Some("initialize preflight")),
    case(Mistake::AllowOriginTwice, Some("initialize preflight")),
    case(
        Mistake::AllowOriginTrailingSlash,
        Some("initialize preflight"),
    ),
    case(Mistake::AllowOriginWrongCase, Some("initialize preflight")),
    case(Mistake::AllowOriginStar, None),
    with_credentials(Mistake::AllowOriginStar, Some("initialize preflight")),
    with_credentials(Mistake::NoAllowCredentials, Some("initialize preflight")),
    case(Mistake::AllowHeadersStar, None),
    with_credentials(Mistake::AllowHeadersStar, Some("initialize preflight")),
    Case {
        // Chromium still lets `*` cover Authorization (the standard does not): a warning.
        header: Some(("Authorization", "Bearer probe-token")),
        warning: Some("covers Authorization only in Chromium"),
        ..case(Mistake::AllowHeadersStar, None)
    },
    Case {
        header: Some(("Authorization", "Bearer probe-token")),
        ..case(Mistake::Correct, None)
    },
    case(
        Mistake::AllowHeadersWithoutProtocolVersion,
        Some("notifications/initialized preflight"),
    ),
    case(
        Mistake::SessionIdNotExposed,
        Some("notifications/initialized"),
    ),
    case(Mistake::ExposeStar, None),
    with_credentials(Mistake::ExposeStar, Some("notifications/initialized")),
    case(Mistake::AllowOriginOnlyOnPreflight, Some("initialize")),
    case(Mistake::Preflight200, None),
    case(Mistake::AllowMethodsWithoutPost, None),
    case(Mistake::AllowMethodsWithoutDelete, Some("DELETE preflight")),
    case(Mistake::AllowMethodsLowerCase, Some("DELETE preflight")),
    case(Mistake::EventStreams, None),
    // The guards are invisible to a browser: it succeeds, the probe does not.
    case(Mistake::NoOriginGuard, Some("guard: foreign Origin")),
    case(Mistake::NoHostGuard, Some("guard: foreign Host")),
    Case {
        no_security: true,
        ..case(Mistake::NoOriginGuard, None)
    },
    case(Mistake::PreflightRedirect, Some("initialize preflight")),
    case(Mistake::AllowHeadersNotTokens, Some("initialize preflight")),
    // Fine in a browser today, yet warned about.
    Case {
        warning: Some("Vary does not list Origin"),
        ..case(Mistake::NoVary, None)
    },
    Case {
        warning: Some("Access-Control-Max-Age is 86400 s"),
        ..case(Mistake::LongMaxAge, None)
    },
    Case {
        warning: Some("does not list it"),
        ..case(
            Mistake::UnauthorizedWithoutExposedChallenge,
            Some("initialize"),
        )
    },
];

/// What one matrix server knows.
struct Server {
    mistake: Mistake,
    credentials: bool,
    page: String,
    port: u16,
}

impl Server {
    fn session(&self) -> String {
        format!("session-{}", self.port)
    }

    /// The CORS headers of an answer (`preflight`: of a preflight's).
    fn cors(&self, preflight: bool) -> Vec<(&'static str, String)> {
        use Mistake as M;
        let o = self.page.clone();
        let mut h = Vec::new();
        let allow_origin = match self.mistake {
            M::NoAllowOrigin => None,
            M::AllowOriginOnlyOnPreflight if !preflight => None,
            M::AllowOriginOther => Some(OTHER.to_owned()),
            M::AllowOriginList => Some(format!("{o}, {OTHER}")),
            M::AllowOriginTrailingSlash => Some(format!("{o}/")),
            M::AllowOriginWrongCase => Some(o.to_uppercase()),
            M::AllowOriginStar => Some("*".to_owned()),
            _ => Some(o.clone()),
        };
        h.extend(allow_origin.map(|v| ("access-control-allow-origin", v)));
        if self.mistake == M::AllowOriginTwice {
            h.push(("access-control-allow-origin", o.clone()));
        }
        if self.credentials && self.mistake != M::NoAllowCredentials {
            h.push(("access-control-allow-credentials", "true".to_owned()));
        }
        if self.mistake != M::NoVary {
            h.push(("vary", "Origin".to_owned()));
        }
        if preflight {
            let methods = match self.mistake {
                M::AllowMethodsWithoutPost => "GET, DELETE",
                M::AllowMethodsWithoutDelete => "GET, POST",
                M::AllowMethodsLowerCase => "get, post, delete",
                _ => "GET, POST, DELETE",
            };
            let headers = match self.mistake {
                M::AllowHeadersStar => "*",
                M::AllowHeadersWithoutProtocolVersion => "Content-Type, Mcp-Session-Id",
                M::AllowHeadersNotTokens => "Content-Type; Mcp-Protocol-Version; Mcp-Session-Id",
                _ => "Content-Type, Mcp-Protocol-Version, Mcp-Session-Id, Authorization",
            };
            h.push(("access-control-allow-methods", methods.to_owned()));
            h.push(("access-control-allow-headers", headers.to_owned()));
            let max_age = if self.mistake == M::LongMaxAge {
                "86400"
            } else {
                "600"
            };
            h.push(("access-control-max-age", max_age.to_owned()));
        } else {
            match self.mistake {
                M::SessionIdNotExposed => {}
                M::ExposeStar => h.push(("access-control-expose-headers", "*".to_owned())),
                _ => h.push(("access-control-expose-headers", "Mcp-Session-Id".to_owned())),
            }
        }
        h
    }

    fn respond(&self, status: StatusCode, preflight: bool) -> HttpResponseBuilder {
        let mut res = HttpResponse::build(status);
        for (name, value) in self.cors(preflight) {
            res.append_header((name, value));
        }
        res
    }

    /// The MCP guards: a foreign Host or Origin gets 403 (unless this server forgets one).
    fn guard(&self, req: &HttpRequest) -> Option<HttpResponse> {
        let header = |n: &str| req.headers().get(n).and_then(|v| v.to_str().ok());
        let hosts = [
            format!("localhost:{}", self.port),
            format!("127.0.0.1:{}", self.port),
        ];
        let host_ok = header("host").is_some_and(|h| hosts.iter().any(|a| a == h));
        if self.mistake != Mistake::NoHostGuard && !host_ok {
            return Some(HttpResponse::Forbidden().body("host not allowed"));
        }
        let origin_ok = header("origin").is_none_or(|o| o == self.page);
        if self.mistake != Mistake::NoOriginGuard && !origin_ok {
            return Some(HttpResponse::Forbidden().body("origin not allowed"));
        }
        None
    }

    fn preflight(&self) -> HttpResponse {
        match self.mistake {
            // A router without OPTIONS: a bare 405.
            Mistake::Preflight405 => HttpResponse::MethodNotAllowed().finish(),
            // Authentication in front of CORS, with CORS headers added outside both.
            Mistake::Preflight401 => self
                .respond(StatusCode::UNAUTHORIZED, true)
                .append_header(("www-authenticate", "Bearer"))
                .finish(),
            Mistake::Preflight200 => self.respond(StatusCode::OK, true).finish(),
            Mistake::PreflightRedirect => self
                .respond(StatusCode::TEMPORARY_REDIRECT, true)
                .append_header(("location", "/elsewhere"))
                .finish(),
            _ => self.respond(StatusCode::NO_CONTENT, true).finish(),
        }
    }

    fn message(&self, status: StatusCode) -> HttpResponseBuilder {
        let mut res = self.respond(status, false);
        if self.mistake == Mistake::EventStreams {
            res.content_type("text/event-stream");
        } else {
            res.content_type("application/json");
        }
        res
    }

    fn body(&self, message: &Value) -> String {
        if self.mistake == Mistake::EventStreams {
            format!("event: message\ndata: {message}\n\n")
        } else {
            message.to_string()
        }
    }

    fn post(&self, req: &HttpRequest, body: &[u8]) -> HttpResponse {
        let Ok(message) = serde_json::from_slice::<Value>(body) else {
            return self
                .respond(StatusCode::BAD_REQUEST, false)
                .body("not JSON");
        };
        let id = message.get("id").cloned();
        let method = message["method"].as_str().unwrap_or_default();
        if self.mistake == Mistake::UnauthorizedWithoutExposedChallenge {
            return self
                .respond(StatusCode::UNAUTHORIZED, false)
                .append_header(("www-authenticate", "Bearer resource_metadata=\"x\""))
                .finish();
        }
        if method == "initialize" {
            let answer = json!({"jsonrpc": "2.0", "id": id, "result": {
                "protocolVersion": "2025-06-18",
                "capabilities": {"tools": {}},
                "serverInfo": {"name": "matrix", "version": "1.0"},
            }});
            return self
                .message(StatusCode::OK)
                .append_header(("mcp-session-id", self.session()))
                .body(self.body(&answer));
        }
        let session = req
            .headers()
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok());
        if session != Some(self.session().as_str()) {
            let answer = json!({"jsonrpc": "2.0", "id": null, "error": {
                "code": -32000, "message": "Bad Request: No valid session ID provided",
            }});
            return self
                .respond(StatusCode::BAD_REQUEST, false)
                .content_type("application/json")
                .body(answer.to_string());
        }
        if id.is_none() {
            return self.respond(StatusCode::ACCEPTED, false).finish();
        }
        let answer = json!({"jsonrpc": "2.0", "id": id, "result": {"tools": []}});
        self.message(StatusCode::OK).body(self.body(&answer))
    }

    fn get(&self) -> HttpResponse {
        if self.mistake != Mistake::EventStreams {
            return self.respond(StatusCode::METHOD_NOT_ALLOWED, false).finish();
        }
        let first = futures_util::stream::once(async {
            Ok::<_, actix_web::Error>(Bytes::from_static(b": stream open\n\n"))
        });
        // The stream stays open, as a server's standalone SSE stream does.
        let open = futures_util::StreamExt::chain(first, futures_util::stream::pending());
        self.respond(StatusCode::OK, false)
            .content_type("text/event-stream")
            .streaming(open)
    }

    fn handle(&self, req: &HttpRequest, body: &[u8]) -> HttpResponse {
        if let Some(refused) = self.guard(req) {
            return refused;
        }
        match req.method().as_str() {
            "OPTIONS" => self.preflight(),
            "POST" => self.post(req, body),
            "GET" => self.get(),
            "DELETE" => self.respond(StatusCode::OK, false).finish(),
            _ => HttpResponse::MethodNotAllowed().finish(),
        }
    }
}

fn start_server(case: &Case, page: &str) -> SocketAddr {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let server = web::Data::new(Server {
        mistake: case.mistake,
        credentials: case.credentials,
        page: page.to_owned(),
        port: addr.port(),
    });
    let http = HttpServer::new(move || {
        App::new().app_data(server.clone()).default_service(web::to(
            |req: HttpRequest, body: Bytes, server: web::Data<Server>| async move {
                server.handle(&req, &body)
            },
        ))
    })
    .workers(1)
    .listen(listener)
    .unwrap();
    actix_web::rt::spawn(http.run());
    addr
}

fn start_page_server() -> SocketAddr {
    let server = HttpServer::new(|| {
        App::new().route(
            "/",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("text/html; charset=utf-8")
                    .body(PAGE)
            }),
        )
    })
    .workers(1)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    addr
}

/// The probe's verdict: exit code and JSON report.
async fn run_probe(url: &str, origin: &str, case: &Case) -> (i32, Value) {
    let mut cmd = tokio::process::Command::new(probe_binary());
    cmd.args(["probe", url, "--origin", origin, "--json"]);
    if case.credentials {
        cmd.arg("--credentials");
    }
    if case.no_security {
        cmd.arg("--no-security");
    }
    if let Some((name, value)) = case.header {
        cmd.args(["--header", &format!("{name}: {value}")]);
    }
    let out = cmd.output().await.expect("run the probe");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "probe output is not JSON ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (out.status.code().unwrap_or(-1), report)
}

/// The first failing step of a report: `(name, detail)`.
fn first_failure(report: &Value, guards: bool) -> Option<(String, String)> {
    report["steps"].as_array()?.iter().find_map(|s| {
        let name = s["name"].as_str()?.to_owned();
        let relevant = guards || !name.starts_with("guard:");
        let detail = s["detail"].as_str()?.to_owned();
        (relevant && s["ok"] == false).then_some((name, detail))
    })
}

/// What Chromium's console says after "has been blocked by CORS policy: ".
fn cors_message(console: &[String]) -> Option<String> {
    console.iter().find_map(|m| {
        let (_, rest) = m.split_once("blocked by CORS policy: ")?;
        Some(rest.trim_end_matches('"').to_owned())
    })
}

/// Compares one server's verdicts; `Err` says how they differ, `Ok(true)` when Chromium
/// logged a CORS error whose words the probe matched.
async fn compare(browser: &Browser, page: &str, case: &Case) -> Result<bool, String> {
    let addr = start_server(case, page);
    let url = format!("http://localhost:{}/mcp", addr.port());
    browser.console().await;
    let extra = case.header.map_or(json!({}), |(n, v)| json!({ n: v }));
    let credentials = if case.credentials {
        "include"
    } else {
        "same-origin"
    };
    let seen = browser
        .run(&format!("sdkSession({url:?}, {credentials:?}, {extra})"))
        .await;
    let console = browser.console().await;
    let chromium_failed = seen["failedAt"].as_str().map(str::to_owned);
    let chromium_cors = cors_message(&console);
    let (code, report) = run_probe(&url, page, case).await;
    let probe_failed = first_failure(&report, false);
    let context = || format!("chromium: {seen} console: {console:?}\nprobe ({code}): {report}");

    let probe_call = probe_failed
        .as_ref()
        .map(|(name, _)| name.trim_end_matches(" preflight").to_owned());
    if probe_call != chromium_failed {
        return Err(format!("failing call differs\n{}", context()));
    }
    if let (Some((name, detail)), Some(message)) = (&probe_failed, &chromium_cors) {
        let chromium_preflight = message.starts_with("Response to preflight request")
            || message.contains("in preflight response");
        if name.ends_with(" preflight") != chromium_preflight {
            return Err(format!("preflight or not differs\n{}", context()));
        }
        if !message.starts_with(detail.as_str()) {
            return Err(format!("wording differs\n{}", context()));
        }
    }
    if let (Some((_, detail)), None) = (&probe_failed, &chromium_cors) {
        if !detail.starts_with("HTTP ") {
            return Err(format!(
                "no CORS error in Chromium, yet the probe says one\n{}",
                context()
            ));
        }
    }
    if let Some(words) = case.warning {
        let warnings = report["warnings"].as_array().cloned().unwrap_or_default();
        if !warnings
            .iter()
            .any(|w| w.as_str().is_some_and(|w| w.contains(words)))
        {
            return Err(format!("no warning with {words:?}\n{}", context()));
        }
    }
    let expected = case.expect.map(str::to_owned);
    if first_failure(&report, true).map(|(name, _)| name) != expected {
        return Err(format!(
            "not the expected verdict {expected:?}\n{}",
            context()
        ));
    }
    if code != i32::from(expected.is_some()) {
        return Err(format!("exit code {code}\n{}", context()));
    }
    Ok(chromium_cors.is_some())
}

#[actix_web::test]
async fn the_probe_agrees_with_chromium_on_every_server_of_the_matrix() {
    probe_binary();
    let page_addr = start_page_server();
    let page = format!("http://127.0.0.1:{}", page_addr.port());
    let browser = Browser::start().await;
    browser.goto(&format!("{page}/")).await;
    let mut differences = Vec::new();
    let mut worded = 0;
    for case in CASES {
        match compare(&browser, &page, case).await {
            Ok(cors_error) => worded += usize::from(cors_error),
            Err(why) => differences.push(format!("{case:?}: {why}")),
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} servers judged differently:\n\n{}",
        differences.len(),
        CASES.len(),
        differences.join("\n\n")
    );
    // The console was read: every CORS refusal of the matrix was compared word for word.
    assert!(
        worded >= 15,
        "only {worded} CORS errors seen in Chromium's console"
    );
}
