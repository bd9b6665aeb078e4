//! SPEC §4, row by row, through a real actix service: status, every CORS header, `Vary`,
//! and whether the handler ran.

mod common;

use actix_web::http::header::{HeaderMap, HeaderValue};
use actix_web::http::{Method, StatusCode, header};
use actix_web::test;
use common::*;
use mcp_cors::{Decision, DenyReason, Policy, Verdict};

const POLICY: &str =
    r#"allowed_origins = ["https://app.example.com", "https://other.example.com"]"#;

/// The decision `Policy::decide` takes (the one the middleware publishes as the event).
fn decide(policy_toml: &str, method: Method, headers: &[(&'static str, &str)]) -> Decision {
    let policy = Policy::from_toml_str(policy_toml).expect("test policy is valid");
    let mut map = HeaderMap::new();
    for (name, value) in headers {
        map.append(
            header::HeaderName::from_static(name),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    policy.decide(&method, &map, None)
}

#[actix_web::test]
async fn row1_host_not_allowed_is_refused_before_anything_else() {
    let (svc, hits) = service(POLICY).await;
    for origin in [None, Some(APP), Some("https://evil.example")] {
        let mut req = test::TestRequest::post()
            .uri("/mcp")
            .insert_header(("host", "evil.example:8080"));
        if let Some(o) = origin {
            req = req.insert_header(("origin", o));
        }
        let res = call(&svc, req).await;
        assert_eq!(res.status, StatusCode::FORBIDDEN);
        assert_eq!(res.header("content-type"), Some("application/json"));
        assert_eq!(
            res.body,
            r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Forbidden: host not allowed"},"id":null}"#
        );
        res.assert_no_cors_headers();
        // Refused whatever the Origin: the answer does not vary with it.
        assert_eq!(res.header("vary"), None, "{origin:?}");
    }
    // A preflight with a bad Host is refused too, not answered.
    let res = call(
        &svc,
        preflight(APP, "POST", None).insert_header(("host", "rebind.attacker.example")),
    )
    .await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    res.assert_no_cors_headers();
    assert_eq!(res.header("vary"), None);
    assert_eq!(hits.get(), 0, "the handler must not run");
}

#[actix_web::test]
async fn row1_missing_host_is_refused_and_star_turns_the_check_off() {
    let (svc, hits) = service(POLICY).await;
    let res = call(&svc, test::TestRequest::get().uri("/mcp")).await;
    assert_eq!(res.status, StatusCode::FORBIDDEN);
    assert_eq!(hits.get(), 0);

    let (svc, hits) = service(&format!("{POLICY}\nallowed_hosts = [\"*\"]")).await;
    let res = call(
        &svc,
        test::TestRequest::get()
            .uri("/mcp")
            .insert_header(("host", "anything.example")),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(hits.get(), 1);
}

#[actix_web::test]
async fn row2_no_origin_runs_the_handler_and_only_adds_vary() {
    let (svc, hits) = service(POLICY).await;
    let res = call(&svc, request(Method::POST, "/mcp")).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, "handler");
    assert_eq!(res.header("vary"), Some("Origin"));
    res.assert_no_cors_headers();
    assert_eq!(hits.get(), 1);
}

#[actix_web::test]
async fn row3_refused_origin_gets_403_on_every_method_preflights_included() {
    let (svc, hits) = service(POLICY).await;
    for method in [
        Method::GET,
        Method::POST,
        Method::DELETE,
        Method::PUT,
        Method::OPTIONS,
    ] {
        let res = call(
            &svc,
            request(method.clone(), "/mcp").insert_header(("origin", "https://evil.example")),
        )
        .await;
        res.assert_forbidden_origin();
        assert_eq!(res.header("vary"), Some("Origin"), "{method}");
    }
    let res = call(
        &svc,
        preflight("https://evil.example", "POST", Some("content-type")),
    )
    .await;
    res.assert_forbidden_origin();
    assert_eq!(
        res.header("vary"),
        Some("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
    );
    assert_eq!(hits.get(), 0, "the handler must not run");
}

#[actix_web::test]
async fn row3_malformed_and_null_origins_are_refused() {
    let (svc, hits) = service(POLICY).await;
    for origin in [
        "null",
        "not an origin",
        "https://app.example.com/",
        "https://APP.example.com",
        "https://app.example.com:443",
        "",
    ] {
        let res = call(
            &svc,
            request(Method::POST, "/mcp").insert_header(("origin", origin)),
        )
        .await;
        res.assert_forbidden_origin();
    }
    // Two Origin headers: refused, even when both are allowed.
    let req = request(Method::POST, "/mcp")
        .append_header(("origin", APP))
        .append_header(("origin", APP));
    call(&svc, req).await.assert_forbidden_origin();
    assert_eq!(hits.get(), 0);

    let (svc, hits) = service(&format!("{POLICY}\nallow_null_origin = true")).await;
    let res = call(
        &svc,
        request(Method::POST, "/mcp").insert_header(("origin", "null")),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.header("access-control-allow-origin"), Some("null"));
    assert_eq!(hits.get(), 1);
}

#[actix_web::test]
async fn row4_report_only_runs_the_handler_without_cors_headers() {
    let report_only = format!("{POLICY}\nmode = \"report-only\"");
    let (svc, hits) = service(&report_only).await;
    let res = call(
        &svc,
        request(Method::POST, "/mcp").insert_header(("origin", "https://evil.example")),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, "handler");
    assert_eq!(res.header("vary"), Some("Origin"));
    res.assert_no_cors_headers();
    assert_eq!(hits.get(), 1);
    // The verdict published for it is `would-deny`, not `allow` nor `deny`.
    let decision = decide(
        &report_only,
        Method::POST,
        &[("host", HOST), ("origin", "https://evil.example")],
    );
    assert_eq!(decision.verdict(), Verdict::WouldDeny);
    assert_eq!(decision.reason(), Some(&DenyReason::OriginNotAllowed));
    // The same request in enforce mode is a `deny`.
    let decision = decide(
        POLICY,
        Method::POST,
        &[("host", HOST), ("origin", "https://evil.example")],
    );
    assert_eq!(decision.verdict(), Verdict::Deny);

    // Allowed origins still get their headers in report-only mode.
    let res = call(
        &svc,
        request(Method::POST, "/mcp").insert_header(("origin", APP)),
    )
    .await;
    assert_eq!(res.header("access-control-allow-origin"), Some(APP));
    assert_eq!(hits.get(), 2);
}

#[actix_web::test]
async fn row4_report_only_refused_preflight_reaches_the_handler_without_cors_headers() {
    let report_only = format!("{POLICY}\nmode = \"report-only\"");
    let (svc, hits) = service(&report_only).await;
    // An allowed origin asking for a method not allowed: the handler answers the OPTIONS
    // itself, with none of the preflight's headers (so the browser will block the call).
    let res = call(&svc, preflight(APP, "PUT", Some("x-evil"))).await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, "handler");
    res.assert_no_cors_headers();
    assert_eq!(res.header("vary"), Some("Origin"));
    assert_eq!(hits.get(), 1);
    let decision = decide(
        &report_only,
        Method::OPTIONS,
        &[
            ("host", HOST),
            ("origin", APP),
            ("access-control-request-method", "PUT"),
        ],
    );
    assert_eq!(decision.verdict(), Verdict::WouldDeny);
    assert_eq!(
        decision.reason(),
        Some(&DenyReason::MethodNotAllowed("PUT".into()))
    );
}

/// Contract (README `mode` row, SECURITY.md): report-only also suspends the Host guard
/// (DNS rebinding), so it is for rollouts only.
#[actix_web::test]
async fn row4_report_only_also_only_reports_a_bad_host() {
    let report_only = format!("{POLICY}\nmode = \"report-only\"");
    let (svc, hits) = service(&report_only).await;
    for origin in [None, Some(APP)] {
        let mut req = test::TestRequest::post()
            .uri("/mcp")
            .insert_header(("host", "rebind.attacker.example"));
        if let Some(o) = origin {
            req = req.insert_header(("origin", o));
        }
        let res = call(&svc, req).await;
        assert_eq!(res.status, StatusCode::OK, "{origin:?}");
        assert_eq!(res.body, "handler");
        res.assert_no_cors_headers();
    }
    assert_eq!(hits.get(), 2);
    let decision = decide(
        &report_only,
        Method::POST,
        &[("host", "rebind.attacker.example"), ("origin", APP)],
    );
    assert_eq!(decision.verdict(), Verdict::WouldDeny);
    assert_eq!(
        decision.reason(),
        Some(&DenyReason::HostNotAllowed(
            "rebind.attacker.example".into()
        ))
    );
}

#[actix_web::test]
async fn row5_allowed_preflight_is_answered_204_without_the_handler() {
    let (svc, hits) = service(&format!("{POLICY}\nallow_credentials = true")).await;
    let res = call(
        &svc,
        preflight(APP, "POST", Some("content-type,mcp-session-id")),
    )
    .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert!(res.body.is_empty());
    assert_eq!(res.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        res.header("access-control-allow-methods"),
        Some("GET, POST, DELETE")
    );
    assert_eq!(
        res.header("access-control-allow-headers"),
        Some("content-type,mcp-session-id")
    );
    assert_eq!(res.header("access-control-max-age"), Some("600"));
    assert_eq!(res.header("access-control-allow-credentials"), Some("true"));
    assert_eq!(res.header("access-control-allow-private-network"), None);
    assert_eq!(res.header("access-control-expose-headers"), None);
    assert_eq!(
        res.header("vary"),
        Some("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
    );
    assert_eq!(hits.get(), 0, "the handler must not run for a preflight");
}

#[actix_web::test]
async fn row5_preflight_for_a_method_not_allowed_is_refused() {
    let (svc, hits) = service(POLICY).await;
    let res = call(&svc, preflight(APP, "PUT", None)).await;
    res.assert_forbidden_origin();
    assert_eq!(hits.get(), 0);
}

#[actix_web::test]
async fn row6_allowed_origin_gets_cors_headers_on_the_handlers_response() {
    let (svc, hits) = service(POLICY).await;
    let res = call(
        &svc,
        request(Method::POST, "/mcp").insert_header(("origin", APP)),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, "handler");
    assert_eq!(res.header("access-control-allow-origin"), Some(APP));
    assert_eq!(
        res.header("access-control-expose-headers"),
        Some("Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate, Last-Event-ID")
    );
    assert_eq!(res.header("access-control-allow-credentials"), None);
    assert_eq!(res.header("access-control-allow-methods"), None);
    assert_eq!(res.header("access-control-max-age"), None);
    assert_eq!(res.header("vary"), Some("Origin"));
    assert_eq!(hits.get(), 1);

    let (svc, _) = service(&format!("{POLICY}\nallow_credentials = true")).await;
    let res = call(
        &svc,
        request(Method::GET, "/mcp").insert_header(("origin", APP)),
    )
    .await;
    assert_eq!(res.header("access-control-allow-credentials"), Some("true"));
}

#[actix_web::test]
async fn star_without_credentials_answers_star() {
    let (svc, hits) = service(r#"allowed_origins = ["*"]"#).await;
    let res = call(
        &svc,
        request(Method::POST, "/mcp").insert_header(("origin", "https://any.example")),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        res.header("access-control-expose-headers"),
        Some("Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate, Last-Event-ID")
    );
    assert_eq!(res.header("access-control-allow-credentials"), None);
    assert_eq!(res.header("vary"), Some("Origin"));
    let res = call(&svc, preflight("https://any.example", "POST", None)).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(res.header("access-control-allow-origin"), Some("*"));
    assert_eq!(
        res.header("vary"),
        Some("Origin, Access-Control-Request-Method, Access-Control-Request-Headers")
    );
    assert_eq!(hits.get(), 1);
}
