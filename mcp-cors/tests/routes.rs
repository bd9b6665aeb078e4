//! Per-route policy in the middleware (SPEC §3 `[routes.NAME]`, §4 "the route is chosen
//! first"): the decision table per route, and the path tricks that must not reach a handler
//! under a more permissive route than the one its path really belongs to.

mod common;

use actix_web::http::{Method, StatusCode};
use actix_web::middleware::NormalizePath;
use actix_web::{App, HttpResponse, test, web};
use common::*;
use mcp_cors::{McpCors, Policy};

const EVIL: &str = "https://evil.example";

/// A real app whose handlers say who they are: `/mcp` (any method), `/health`, and a
/// default service answering 404 `default`.
macro_rules! app {
    ($policy:expr) => {
        app!($policy, |app| app)
    };
    ($policy:expr, $outer:expr) => {{
        let policy = Policy::from_toml_str($policy).expect("test policy is valid");
        let app = App::new()
            .wrap(McpCors::from_policy(policy))
            .route("/mcp", web::to(|| async { HttpResponse::Ok().body("mcp") }))
            .route(
                "/health",
                web::get().to(|| async { HttpResponse::Ok().body("health") }),
            )
            .route(
                "/.well-known/oauth-protected-resource",
                web::get().to(|| async { HttpResponse::Ok().body("metadata") }),
            )
            .default_service(web::to(|| async {
                HttpResponse::NotFound().body("default")
            }));
        #[allow(clippy::redundant_closure_call)]
        test::init_service(($outer)(app)).await
    }};
}

/// What happened to one request: the status, which handler answered (its body, or
/// `refused` for the middleware's 403), and the `Access-Control-Allow-Origin` given.
#[derive(Debug, PartialEq, Eq)]
struct Seen {
    status: u16,
    handler: String,
    acao: Option<String>,
}

fn seen(answer: Answer) -> Seen {
    let handler = if answer.status == StatusCode::FORBIDDEN
        && answer.header("content-type") == Some("application/json")
    {
        "refused".to_owned()
    } else {
        String::from_utf8_lossy(&answer.body).into_owned()
    };
    Seen {
        status: answer.status.as_u16(),
        handler,
        acao: answer
            .header("access-control-allow-origin")
            .map(str::to_owned),
    }
}

fn want(status: u16, handler: &str, acao: Option<&str>) -> Seen {
    Seen {
        status,
        handler: handler.to_owned(),
        acao: acao.map(str::to_owned),
    }
}

/// The top level strict, `/health` (and below) open to every origin and host.
const OPEN_HEALTH: &str = r#"
allowed_origins = ["https://app.example.com"]

[routes.health]
paths = ["/health", "/health/*"]
allowed_origins = ["*"]
allowed_hosts = ["*"]
"#;

/// The reverse: the top level open to every origin, `/mcp` strict.
const STRICT_MCP: &str = r#"
allowed_origins = ["*"]

[routes.mcp]
paths = ["/mcp"]
allowed_origins = ["https://app.example.com"]
"#;

fn evil_get(path: &str) -> test::TestRequest {
    request(Method::GET, path).insert_header(("origin", EVIL))
}

#[actix_web::test]
async fn path_tricks_never_reach_mcp_under_the_open_health_route() {
    let app = app!(OPEN_HEALTH);
    let star = Some("*");
    let refused = want(403, "refused", None);
    let cases = [
        ("/health", want(200, "health", star)),
        ("/health/deep", want(404, "default", star)),
        ("/healthx", refused),
        ("/mcp", want(403, "refused", None)),
        // The router sees these as written: none of them reaches the `/mcp` handler, so
        // the route they fall under does not matter to it.
        ("/health/../mcp", want(404, "default", star)),
        ("/health/%2e%2e/mcp", want(404, "default", star)),
        ("/health%2F..%2Fmcp", want(403, "refused", None)),
        ("//mcp", want(403, "refused", None)),
        ("/%2e%2e/mcp", want(403, "refused", None)),
        ("/mcp;x", want(403, "refused", None)),
        ("/MCP", want(403, "refused", None)),
        ("/health;x", want(403, "refused", None)),
        ("/HEALTH", want(403, "refused", None)),
        // Decoded by the router to `/mcp`: the strict top level decides.
        ("/%6dcp", want(403, "refused", None)),
        // Decoded to `/health`: the router runs the health handler, under its route.
        ("/%68ealth", want(200, "health", star)),
    ];
    for (path, expected) in cases {
        let got = seen(call(&app, evil_get(path)).await);
        assert_eq!(got, expected, "GET {path}");
    }
}

#[actix_web::test]
async fn path_tricks_never_reach_mcp_under_the_open_top_level() {
    // Here a wrong route choice would be a bypass: the top level is the permissive one.
    let app = app!(STRICT_MCP);
    let star = Some("*");
    let cases = [
        ("/mcp", want(403, "refused", None)),
        // `%6d` is `m`: the router runs the `/mcp` handler, so the `/mcp` route decides.
        // Choosing on the raw path would have let any origin in.
        ("/%6dcp", want(403, "refused", None)),
        ("/%6Dcp", want(403, "refused", None)),
        ("/m%63p", want(403, "refused", None)),
        // Never the `/mcp` handler: open top level, and the handler is the default one.
        ("//mcp", want(404, "default", star)),
        ("/mcp;x", want(404, "default", star)),
        ("/MCP", want(404, "default", star)),
        ("/x/../mcp", want(404, "default", star)),
        ("/%2e%2e/mcp", want(404, "default", star)),
        ("/mcp%2F", want(404, "default", star)),
        ("/mcp/", want(404, "default", star)),
        ("/health", want(200, "health", star)),
    ];
    for (path, expected) in cases {
        let got = seen(call(&app, evil_get(path)).await);
        assert_eq!(got, expected, "GET {path}");
        let post = request(Method::POST, path).insert_header(("origin", EVIL));
        let got = seen(call(&app, post).await);
        let expected_post = match expected.handler.as_str() {
            // `/health` is GET-only: actix answers 404 for a POST (default service).
            "health" => want(404, "default", star),
            _ => expected,
        };
        assert_eq!(got, expected_post, "POST {path}");
    }
    // The listed origin reaches the handler through either spelling.
    let ok = request(Method::POST, "/%6dcp").insert_header(("origin", APP));
    assert_eq!(
        seen(call(&app, ok).await),
        want(200, "mcp", Some(APP)),
        "POST /%6dcp from {APP}"
    );
}

#[actix_web::test]
async fn with_normalize_path_outside_the_route_is_chosen_on_the_normalised_path() {
    // `NormalizePath` wrapped outside (registered after) `McpCors` rewrites the path
    // before the route is chosen, so both see `/mcp`.
    let app = app!(STRICT_MCP, |app: App<_>| app.wrap(NormalizePath::trim()));
    let cases = [
        ("//mcp", want(403, "refused", None)),
        ("/mcp/", want(403, "refused", None)),
        ("//%6dcp//", want(403, "refused", None)),
        ("//health", want(200, "health", Some("*"))),
    ];
    for (path, expected) in cases {
        let got = seen(call(&app, evil_get(path)).await);
        assert_eq!(got, expected, "GET {path}");
    }
}

/// Every row of SPEC §4 under a route that overrides keys, and the top level beside it.
const TABLE: &str = r#"
allowed_origins = ["https://app.example.com"]
allow_credentials = true
max_age = 60

[routes.meta]
paths = ["/.well-known/oauth-protected-resource", "/.well-known/oauth-protected-resource/*"]
allowed_origins = ["https://docs.example.com"]
allowed_methods = ["GET"]
allow_credentials = false

[routes.report]
paths = ["/mcp"]
mode = "report-only"
allowed_hosts = ["mcp.example.com"]

[routes.health]
paths = ["/health"]
guard = false
"#;

const META: &str = "/.well-known/oauth-protected-resource";
const DOCS: &str = "https://docs.example.com";

fn preflight_to(path: &str, origin: &str, method: &str) -> test::TestRequest {
    request(Method::OPTIONS, path)
        .insert_header(("origin", origin))
        .insert_header(("access-control-request-method", method))
}

#[actix_web::test]
async fn the_decision_table_per_route() {
    let app = app!(TABLE);

    // The metadata route: its own origins, methods and credentials; `max_age` inherited.
    let res = call(
        &app,
        request(Method::GET, META).insert_header(("origin", DOCS)),
    )
    .await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body, "metadata");
    assert_eq!(res.header("access-control-allow-origin"), Some(DOCS));
    assert_eq!(res.header("access-control-allow-credentials"), None);
    let res = call(
        &app,
        request(Method::GET, META).insert_header(("origin", APP)),
    )
    .await;
    res.assert_forbidden_origin();
    let res = call(&app, preflight_to(META, DOCS, "GET")).await;
    assert_eq!(res.status, 204);
    assert_eq!(res.header("access-control-allow-methods"), Some("GET"));
    assert_eq!(res.header("access-control-max-age"), Some("60"));
    let res = call(&app, preflight_to(META, DOCS, "POST")).await;
    assert_eq!(res.status, 403);
    let sub = format!("{META}/mcp");
    let res = call(
        &app,
        request(Method::GET, &sub).insert_header(("origin", DOCS)),
    )
    .await;
    assert_eq!(res.header("access-control-allow-origin"), Some(DOCS));
    // No Origin: handler runs, untouched but for Vary.
    let res = call(&app, request(Method::GET, META)).await;
    assert_eq!(res.body, "metadata");
    res.assert_no_cors_headers();

    // The top level elsewhere: its origins, with credentials.
    let res = call(
        &app,
        request(Method::GET, "/other").insert_header(("origin", APP)),
    )
    .await;
    assert_eq!(res.header("access-control-allow-origin"), Some(APP));
    assert_eq!(res.header("access-control-allow-credentials"), Some("true"));
    let res = call(
        &app,
        request(Method::GET, "/other").insert_header(("origin", DOCS)),
    )
    .await;
    res.assert_forbidden_origin();
    let res = call(&app, preflight_to("/other", APP, "POST")).await;
    assert_eq!(res.status, 204);
    assert_eq!(
        res.header("access-control-allow-methods"),
        Some("GET, POST, DELETE")
    );

    // The report-only route with its own Host guard: localhost is refused there...
    let res = call(
        &app,
        request(Method::POST, "/mcp").insert_header(("origin", APP)),
    )
    .await;
    assert_eq!(res.status, 200, "report-only never blocks");
    assert_eq!(res.body, "mcp");
    res.assert_no_cors_headers();
    // ...and its own host passes, with the inherited origins and credentials.
    let mcp_host = test::TestRequest::post()
        .uri("/mcp")
        .insert_header(("host", "mcp.example.com"))
        .insert_header(("origin", APP));
    let res = call(&app, mcp_host).await;
    assert_eq!(res.header("access-control-allow-origin"), Some(APP));
    assert_eq!(res.header("access-control-allow-credentials"), Some("true"));
    // The top level still refuses that host.
    let other_host = test::TestRequest::get()
        .uri("/other")
        .insert_header(("host", "mcp.example.com"));
    assert_eq!(call(&app, other_host).await.status, 403);

    // guard = false: no Host check, no Origin check, no CORS headers, the handler runs.
    let probe = test::TestRequest::get()
        .uri("/health")
        .insert_header(("host", "10.1.2.3:8080"))
        .insert_header(("origin", EVIL));
    let res = call(&app, probe).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body, "health");
    res.assert_no_cors_headers();
    let res = call(&app, preflight_to("/health", EVIL, "PUT")).await;
    assert_eq!(res.status, 404, "a preflight goes to the handler too");
    res.assert_no_cors_headers();
}

#[actix_web::test]
async fn a_policy_without_routes_decides_as_before() {
    let app = app!(r#"allowed_origins = ["https://app.example.com"]"#);
    let res = call(&app, evil_get("/health")).await;
    res.assert_forbidden_origin();
    let ok = request(Method::GET, "/health").insert_header(("origin", APP));
    assert_eq!(seen(call(&app, ok).await), want(200, "health", Some(APP)));
}
