//! The whole product where it matters: a page in headless Chromium (Debian's `chromium`,
//! driven over W3C WebDriver by Debian's `chromium-driver`) speaks MCP with `fetch` to the
//! example MCP server, served from another origin, behind `McpCors::watched`.
//!
//! The page is served on `http://localhost:PAGE` (allowed) and `http://127.0.0.1:PAGE`
//! (refused) — two origins of one page server; the MCP server is `http://localhost:SRV`.
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (`.ci/run` installs them).

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::dev::{Service, ServiceRequest, ServiceResponse};
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use mcp_cors::McpCors;
use mcp_cors::client::Client;
use mcp_cors::protocol::{Event, Request, ServerLine};
use serde_json::json;

mod support;
use support::webdriver::Browser;

const PAGE: &str = include_str!("browser/page.html");

/// Serves the test page at `/` on both of its origins.
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

/// One response as the client got it: method, path, status, `Origin`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Exchange {
    method: String,
    path: String,
    status: u16,
    origin: Option<String>,
}

/// What the test observes around `McpCors`: every response leaving the app (recorded
/// outside the middleware, so its 403s are seen), and, per origin, the requests that got
/// past it into the app (counted inside it, in front of rmcp and the routes).
#[derive(Debug, Clone, Default)]
struct Probes {
    responses: Arc<Mutex<Vec<Exchange>>>,
    reached_app: Arc<Mutex<HashMap<String, usize>>>,
}

impl Probes {
    fn responses_to(&self, origin: &str) -> Vec<Exchange> {
        let all = self.responses.lock().unwrap();
        all.iter()
            .filter(|e| e.origin.as_deref() == Some(origin))
            .cloned()
            .collect()
    }

    fn reached_app(&self, origin: &str) -> usize {
        let counts = self.reached_app.lock().unwrap();
        counts.get(origin).copied().unwrap_or(0)
    }
}

fn origin_of(req: &ServiceRequest) -> Option<String> {
    let origin = req.headers().get("origin")?;
    origin.to_str().ok().map(str::to_owned)
}

/// A response on its way out of a middleware.
type Responding<B> =
    std::pin::Pin<Box<dyn Future<Output = Result<ServiceResponse<B>, actix_web::Error>>>>;

/// The outermost layer: records every response.
fn record<S, B>(
    responses: Arc<Mutex<Vec<Exchange>>>,
) -> impl Fn(ServiceRequest, &S) -> Responding<B> + Clone
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = actix_web::Error>,
    S::Future: 'static,
{
    move |req, srv| {
        let (method, path, origin) = (
            req.method().to_string(),
            req.path().to_owned(),
            origin_of(&req),
        );
        let call = srv.call(req);
        let responses = Arc::clone(&responses);
        Box::pin(async move {
            let res = call.await?;
            let status = res.status().as_u16();
            let exchange = Exchange {
                method,
                path,
                status,
                origin,
            };
            responses.lock().unwrap().push(exchange);
            Ok(res)
        })
    }
}

/// The example's MCP app behind `McpCors::watched(config)`, plus `/whoami`, which tells
/// the page which cookie it sent (for the credentials scenario), between the [`Probes`].
fn start_mcp_server(
    config: &Path,
    sessions: Arc<AtomicUsize>,
    probes: &Probes,
) -> (SocketAddr, McpCors) {
    let cors = McpCors::try_watched(config).expect("valid test policy");
    let mcp = mcp_cors_e2e::mcp_service(sessions);
    let config = config.to_path_buf();
    let probes = probes.clone();
    let server = HttpServer::new(move || {
        let reached = Arc::clone(&probes.reached_app);
        App::new()
            .configure(mcp_cors_e2e::routes(mcp.clone()))
            .route(
                "/whoami",
                web::get().to(|req: HttpRequest| async move {
                    let cookie = req
                        .headers()
                        .get("cookie")
                        .and_then(|c| c.to_str().ok())
                        .map(str::to_owned);
                    HttpResponse::Ok().json(json!({ "cookie": cookie }))
                }),
            )
            // Registered first, so innermost: runs only for what McpCors let through.
            .wrap_fn(move |req, srv| {
                let origin = origin_of(&req).unwrap_or_default();
                *reached.lock().unwrap().entry(origin).or_default() += 1;
                srv.call(req)
            })
            .wrap(McpCors::watched(&config))
            // Registered last, so outermost: sees McpCors's own answers.
            .wrap_fn(record(Arc::clone(&probes.responses)))
    })
    .workers(2)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    (addr, cors)
}

/// The library's admin client, failing the test on any error or a late answer.
async fn admin(path: &Path) -> Client {
    Client::connect(path).await.expect("admin socket")
}

/// The next line from the admin socket, within 10 s.
async fn next_line(admin: &mut Client) -> ServerLine {
    tokio::time::timeout(Duration::from_secs(10), admin.recv())
        .await
        .expect("admin line within 10 s")
        .expect("admin connection open")
}

/// Waits until a request from `origin` gets `want` from the MCP server (a reload landed).
async fn wait_for_status(srv: SocketAddr, origin: &str, want: u16) {
    let start = Instant::now();
    loop {
        let res = awc::Client::new()
            .get(format!("http://localhost:{}/health", srv.port()))
            .insert_header(("origin", origin))
            .send()
            .await
            .unwrap();
        if res.status().as_u16() == want {
            return;
        }
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "{origin} never got {want}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
}

fn write_policy(path: &Path, origins: &[&str], credentials: bool) {
    let list: Vec<String> = origins.iter().map(|o| format!("{o:?}")).collect();
    std::fs::write(
        path,
        format!(
            "# browser test policy\nallowed_origins = [{}]\nallow_credentials = {credentials}\n",
            list.join(", ")
        ),
    )
    .unwrap();
}

#[actix_web::test]
async fn a_browser_speaks_mcp_across_origins_through_mcp_cors() {
    let dir = tempfile::tempdir().unwrap();
    let config: PathBuf = dir.path().join("cors.toml");
    let page = start_page_server();
    let allowed = format!("http://localhost:{}", page.port());
    let refused = format!("http://127.0.0.1:{}", page.port());
    write_policy(&config, &[&allowed], false);
    let sessions = Arc::new(AtomicUsize::new(0));
    let probes = Probes::default();
    let (srv, cors) = start_mcp_server(&config, Arc::clone(&sessions), &probes);
    let base = format!("http://localhost:{}", srv.port());
    let socket = cors.admin_socket().expect("admin socket");
    let browser = Browser::start().await;

    // 1. From an allowed origin, a whole MCP session succeeds in the browser.
    browser.goto(&format!("{allowed}/")).await;
    let out = browser.run(&format!("fullSession({base:?})")).await;
    assert_eq!(out["initStatus"], 200, "{out}");
    assert!(
        out["session"].as_str().is_some_and(|s| !s.is_empty()),
        "Mcp-Session-Id must be readable: {out}"
    );
    assert_eq!(out["serverProtocol"], "2025-06-18", "{out}");
    assert_eq!(out["initializedStatus"], 202, "{out}");
    assert_eq!(
        out["tools"],
        json!(["add", "echo", "refresh_tools"]),
        "{out}"
    );
    assert_eq!(out["sum"], "5", "{out}");
    assert_eq!(out["streamStatus"], 200, "{out}");
    assert_eq!(out["streamType"], "text/event-stream", "{out}");
    assert!(
        out["streamText"]
            .as_str()
            .unwrap()
            .contains("notifications/tools/list_changed"),
        "{out}"
    );
    assert!(
        out["deleteStatus"]
            .as_u64()
            .is_some_and(|s| (200..300).contains(&s)),
        "{out}"
    );
    assert_eq!(sessions.load(Ordering::SeqCst), 1);

    // 2. From a refused origin: blocked in the browser, 403 at the server, no handler.
    let mut events = admin(&socket).await;
    events.subscribe(0).await.expect("subscribe");
    browser.goto(&format!("{refused}/")).await;
    let out = browser.run(&format!("tryInitialize({base:?})")).await;
    assert_eq!(out["ok"], false, "the browser must block the call: {out}");
    assert!(
        out["error"].as_str().unwrap().contains("TypeError"),
        "{out}"
    );
    let deny = loop {
        if let ServerLine::Event(Event::Decision(d)) = next_line(&mut events).await {
            if d.origin.as_deref() == Some(refused.as_str()) {
                break d;
            }
        }
    };
    assert_eq!(deny.verdict, mcp_cors::Verdict::Deny);
    assert!(
        deny.preflight,
        "the browser's preflight was the request refused"
    );
    assert_eq!(deny.reason.as_deref(), Some("origin not allowed"));
    assert_eq!(
        sessions.load(Ordering::SeqCst),
        1,
        "the MCP handler never ran"
    );
    let answered = probes.responses_to(&refused);
    assert!(
        !answered.is_empty(),
        "the refused origin's requests reached the server"
    );
    assert!(
        answered.iter().all(|e| e.status == 403),
        "every request from the refused origin got 403: {answered:?}"
    );
    assert!(
        answered
            .iter()
            .any(|e| e.method == "OPTIONS" && e.path == "/mcp"),
        "{answered:?}"
    );
    assert_eq!(
        probes.reached_app(&refused),
        0,
        "no request from the refused origin got past McpCors"
    );
    assert!(
        probes.reached_app(&allowed) > 0,
        "the counter sees what McpCors lets through"
    );

    // 3. The refused origin is added over the admin socket: the next attempt succeeds.
    let mut editor = admin(&socket).await;
    let (_, changed) = editor
        .change_origin(&Request::AddOrigin {
            origin: refused.clone(),
            force: false,
            route: None,
        })
        .await
        .expect("the origin is added");
    assert!(changed);
    let out = browser.run(&format!("tryInitialize({base:?})")).await;
    assert_eq!(
        (out["ok"].clone(), out["status"].clone()),
        (json!(true), json!(200)),
        "{out}"
    );
    assert!(std::fs::read_to_string(&config).unwrap().contains(&refused));

    // 4. With credentials: a cookie for the server goes along and the call works.
    write_policy(&config, &[&allowed, &refused], true);
    let start = Instant::now();
    while !cors.policy().settings().allow_credentials {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "credentials policy not reloaded"
        );
        actix_web::rt::time::sleep(Duration::from_millis(20)).await;
    }
    browser.goto(&format!("{base}/health")).await;
    browser.add_cookie("mcp_demo", "s3cret").await;
    browser.goto(&format!("{allowed}/")).await;
    let who = browser.run(&format!("whoami({base:?})")).await;
    assert_eq!(who["ok"], true, "{who}");
    assert_eq!(who["body"]["cookie"], "mcp_demo=s3cret", "{who}");
    let out = browser
        .run(&format!("tryInitialize({base:?}, 'include')"))
        .await;
    assert_eq!(
        (out["ok"].clone(), out["status"].clone()),
        (json!(true), json!(200)),
        "{out}"
    );

    // 5. The origin is removed by editing cors.toml on disk: the next call fails.
    write_policy(&config, &[&refused], true);
    wait_for_status(srv, &allowed, 403).await;
    let out = browser
        .run(&format!("tryInitialize({base:?}, 'include')"))
        .await;
    assert_eq!(out["ok"], false, "{out}");
}
