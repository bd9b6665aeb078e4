//! The edge cases that separate a correct CORS guard from a plausible one.

mod common;

use std::future::poll_fn;
use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::http::{Method, StatusCode};
use common::*;
use mcp_cors::Policy;

async fn origin_allowed(policy: &str, origin: &str) -> bool {
    let (svc, _) = service(policy).await;
    let res = call(
        &svc,
        request(Method::POST, "/mcp").insert_header(("origin", origin)),
    )
    .await;
    match res.status {
        StatusCode::OK => {
            assert_eq!(res.header("access-control-allow-origin"), Some(origin));
            true
        }
        StatusCode::FORBIDDEN => {
            res.assert_forbidden_origin();
            false
        }
        other => panic!("unexpected status {other}"),
    }
}

#[actix_web::test]
async fn subdomain_wildcard_refuses_lookalikes_and_the_bare_domain() {
    let policy = r#"allowed_origins = ["https://*.example.com"]"#;
    assert!(origin_allowed(policy, "https://app.example.com").await);
    assert!(origin_allowed(policy, "https://a.b.example.com").await);
    assert!(!origin_allowed(policy, "https://evil-example.com").await);
    assert!(!origin_allowed(policy, "https://example.com").await);
    assert!(!origin_allowed(policy, "https://example.com.evil.com").await);
    assert!(!origin_allowed(policy, "http://app.example.com").await);
}

#[actix_web::test]
async fn a_file_entry_with_case_and_default_port_matches_what_browsers_send() {
    let policy = r#"allowed_origins = ["https://App.Example.com:443"]"#;
    assert!(origin_allowed(policy, "https://app.example.com").await);
}

#[test]
fn an_origin_with_a_path_is_refused_at_load() {
    let err =
        Policy::from_toml_str(r#"allowed_origins = ["https://app.example.com/mcp"]"#).unwrap_err();
    let d = &err.diagnostics()[0];
    assert_eq!(d.key.as_deref(), Some("allowed_origins"));
    assert_eq!(d.value.as_deref(), Some("https://app.example.com/mcp"));
    assert_eq!((d.line, d.column), (Some(1), Some(20)));
    assert!(d.message.contains("path"), "{d}");
}

#[actix_web::test]
async fn regexes_are_anchored_to_the_whole_origin() {
    let policy = r#"allowed_origin_regexes = ['https://.*\.example\.org']"#;
    assert!(origin_allowed(policy, "https://x.example.org").await);
    assert!(!origin_allowed(policy, "https://x.example.org.evil.com").await);
    assert!(!origin_allowed(policy, "https://evil.com/https://x.example.org").await);
}

#[actix_web::test]
async fn only_the_requesting_origin_is_echoed() {
    let policy = r#"allowed_origins = ["https://a.example.com", "https://b.example.com"]"#;
    let (svc, _) = service(policy).await;
    for origin in ["https://a.example.com", "https://b.example.com"] {
        let res = call(
            &svc,
            request(Method::GET, "/mcp").insert_header(("origin", origin)),
        )
        .await;
        assert_eq!(res.header("access-control-allow-origin"), Some(origin));
        let res = call(&svc, preflight(origin, "POST", None)).await;
        assert_eq!(res.header("access-control-allow-origin"), Some(origin));
    }
}

#[actix_web::test]
async fn options_without_request_method_is_not_a_preflight() {
    let (svc, hits) = service(r#"allowed_origins = ["https://app.example.com"]"#).await;
    let res = call(
        &svc,
        request(Method::OPTIONS, "/mcp").insert_header(("origin", APP)),
    )
    .await;
    assert_eq!(res.status, StatusCode::OK);
    assert_eq!(res.body, "handler");
    assert_eq!(res.header("access-control-allow-origin"), Some(APP));
    assert_eq!(res.header("access-control-allow-methods"), None);
    assert_eq!(hits.get(), 1);
}

#[actix_web::test]
async fn requested_headers_are_matched_case_insensitively_with_spaces() {
    let (svc, _) = service(r#"allowed_origins = ["https://app.example.com"]"#).await;
    let res = call(
        &svc,
        preflight(APP, "POST", Some("mcp-protocol-version, content-type")),
    )
    .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(
        res.header("access-control-allow-headers"),
        Some("mcp-protocol-version, content-type")
    );
    let res = call(
        &svc,
        preflight(APP, "POST", Some("Content-Type, MCP-Session-Id")),
    )
    .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
}

#[actix_web::test]
async fn a_header_not_allowed_is_refused_with_a_reason() {
    let (svc, hits) = service(r#"allowed_origins = ["https://app.example.com"]"#).await;
    let res = call(&svc, preflight(APP, "POST", Some("content-type, x-evil"))).await;
    res.assert_forbidden_origin();
    assert_eq!(hits.get(), 0);

    let policy = Policy::from_toml_str(r#"allowed_origins = ["https://app.example.com"]"#).unwrap();
    let req = preflight(APP, "POST", Some("content-type, X-Evil")).to_http_request();
    let decision = policy.decide(req.method(), req.headers(), None);
    assert_eq!(
        decision.reason().unwrap().to_string(),
        "header X-Evil not allowed"
    );
    let req = preflight(APP, "PUT", None).to_http_request();
    let decision = policy.decide(req.method(), req.headers(), None);
    assert_eq!(
        decision.reason().unwrap().to_string(),
        "method PUT not allowed"
    );
}

#[actix_web::test]
async fn mcp_param_headers_are_allowed_by_the_default_prefix_entry() {
    let (svc, _) = service(r#"allowed_origins = ["https://app.example.com"]"#).await;
    let res = call(
        &svc,
        preflight(APP, "POST", Some("mcp-param-foo,mcp-method")),
    )
    .await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(
        res.header("access-control-allow-headers"),
        Some("mcp-param-foo,mcp-method")
    );
}

#[actix_web::test]
async fn private_network_access_needs_allow_private_network() {
    let pna = |origin| {
        preflight(origin, "POST", None)
            .insert_header(("access-control-request-private-network", "true"))
    };
    let (svc, _) = service(r#"allowed_origins = ["https://app.example.com"]"#).await;
    call(&svc, pna(APP)).await.assert_forbidden_origin();

    let (svc, _) =
        service("allowed_origins = [\"https://app.example.com\"]\nallow_private_network = true")
            .await;
    let res = call(&svc, pna(APP)).await;
    assert_eq!(res.status, StatusCode::NO_CONTENT);
    assert_eq!(
        res.header("access-control-allow-private-network"),
        Some("true")
    );
    // Not asked, not answered.
    let res = call(&svc, preflight(APP, "POST", None)).await;
    assert_eq!(res.header("access-control-allow-private-network"), None);
}

#[actix_web::test]
async fn error_responses_still_carry_cors_headers() {
    let (svc, hits) = service(r#"allowed_origins = ["https://app.example.com"]"#).await;
    for (path, status) in [("/status/401", 401), ("/status/500", 500), ("/err", 500)] {
        let res = call(
            &svc,
            request(Method::POST, path).insert_header(("origin", APP)),
        )
        .await;
        assert_eq!(res.status.as_u16(), status, "{path}");
        assert_eq!(
            res.header("access-control-allow-origin"),
            Some(APP),
            "{path}"
        );
        assert!(
            res.header("access-control-expose-headers").is_some(),
            "{path}"
        );
        assert_eq!(res.header("vary"), Some("Origin"), "{path}");
    }
    assert_eq!(hits.get(), 3);
}

#[actix_web::test]
async fn a_handlers_vary_is_kept_and_origin_appended() {
    let (svc, _) = service(r#"allowed_origins = ["https://app.example.com"]"#).await;
    let res = call(
        &svc,
        request(Method::GET, "/vary").insert_header(("origin", APP)),
    )
    .await;
    assert_eq!(res.header("vary"), Some("Accept-Encoding, Origin"));
    let res = call(&svc, request(Method::GET, "/vary")).await;
    assert_eq!(res.header("vary"), Some("Accept-Encoding, Origin"));
}

#[actix_web::test]
async fn streaming_bodies_pass_through_unbuffered() {
    let (svc, _) = service(r#"allowed_origins = ["https://app.example.com"]"#).await;
    let req = request(Method::GET, "/sse")
        .insert_header(("origin", APP))
        .to_request();
    let res = actix_web::test::call_service(&svc, req).await;
    assert_eq!(
        res.headers().get("access-control-allow-origin").unwrap(),
        APP
    );
    let mut body = Box::pin(res.into_body());
    // The handler's stream never ends; the first event must arrive anyway.
    let first = tokio::time::timeout(
        Duration::from_secs(5),
        poll_fn(|cx| body.as_mut().poll_next(cx)),
    )
    .await
    .expect("the first event arrives while the stream is still open");
    match first {
        Some(Ok(chunk)) => assert_eq!(chunk, "data: 1\n\n"),
        _ => panic!("expected the first event"),
    }
}

#[actix_web::test]
async fn an_err_from_an_inner_middleware_is_rendered_with_cors_headers() {
    use actix_web::dev::Service as _;
    use actix_web::{App, HttpResponse, web};
    let policy = Policy::from_toml_str(r#"allowed_origins = ["https://app.example.com"]"#).unwrap();
    // McpCors is outermost; the inner middleware fails with an `Err`, not a response.
    let app = App::new()
        .wrap_fn(|req, srv| {
            let fut = srv.call(req);
            async move {
                let _ = fut.await;
                Err::<actix_web::dev::ServiceResponse, _>(actix_web::error::ErrorUnauthorized("no"))
            }
        })
        .wrap(mcp_cors::McpCors::from_policy(policy))
        .route("/mcp", web::post().to(HttpResponse::Ok));
    let svc = actix_web::test::init_service(app).await;
    let req = request(Method::POST, "/mcp")
        .insert_header(("origin", APP))
        .to_request();
    let err = actix_web::test::try_call_service(&svc, req)
        .await
        .expect_err("an Err");
    let res = err.error_response();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        res.headers().get("access-control-allow-origin").unwrap(),
        APP
    );
    assert!(res.headers().get("access-control-expose-headers").is_some());
    assert_eq!(res.headers().get("vary").unwrap(), "Origin");
}

/// An inner middleware with a body type of its own (not actix's `BoxBody`): the response
/// is boxed once, whole, its body and headers as the handler made them plus the policy's.
#[actix_web::test]
async fn an_inner_body_type_of_its_own_is_boxed_and_decorated() {
    use actix_web::body::{EitherBody, to_bytes};
    use actix_web::dev::Service as _;
    use actix_web::{App, HttpResponse, web};
    let policy = Policy::from_toml_str(r#"allowed_origins = ["https://app.example.com"]"#).unwrap();
    let app = App::new()
        .wrap_fn(|req, srv| {
            let fut = srv.call(req);
            async move {
                let res = fut.await?;
                Ok(res.map_body(|_, body| EitherBody::<_, String>::left(body)))
            }
        })
        .wrap(mcp_cors::McpCors::from_policy(policy))
        .route(
            "/mcp",
            web::post().to(|| async {
                HttpResponse::Ok()
                    .insert_header(("x-handler", "1"))
                    .body("made")
            }),
        );
    let svc = actix_web::test::init_service(app).await;
    let req = request(Method::POST, "/mcp")
        .insert_header(("origin", APP))
        .to_request();
    let res = actix_web::test::call_service(&svc, req).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers().get("access-control-allow-origin").unwrap(),
        APP
    );
    assert_eq!(res.headers().get("x-handler").unwrap(), "1");
    assert_eq!(res.headers().get("vary").unwrap(), "Origin");
    let body = to_bytes(res.into_body()).await.ok();
    assert_eq!(body.as_deref(), Some(&b"made"[..]));
}

/// A handler that sets CORS headers of its own (one value, or more than fit inline in
/// actix's header map) has them replaced by the policy's, never doubled or kept.
#[actix_web::test]
async fn a_handlers_own_cors_headers_are_replaced() {
    use actix_web::{App, HttpResponse, web};
    let policy = Policy::from_toml_str(r#"allowed_origins = ["https://app.example.com"]"#).unwrap();
    let app = App::new()
        .wrap(mcp_cors::McpCors::from_policy(policy))
        .route(
            "/one",
            web::post().to(|| async {
                HttpResponse::Ok()
                    .insert_header(("access-control-allow-origin", "https://evil.example"))
                    .insert_header(("access-control-expose-headers", "X-Secret"))
                    .finish()
            }),
        )
        .route(
            "/many",
            web::post().to(|| async {
                let mut res = HttpResponse::Ok();
                for i in 0..6 {
                    res.append_header(("access-control-allow-origin", format!("https://{i}.evil")));
                }
                res.finish()
            }),
        );
    let svc = actix_web::test::init_service(app).await;
    for path in ["/one", "/many"] {
        let req = request(Method::POST, path)
            .insert_header(("origin", APP))
            .to_request();
        let res = actix_web::test::call_service(&svc, req).await;
        let all = |name: &str| -> Vec<String> {
            (res.headers().get_all(name))
                .map(|v| v.to_str().unwrap().to_owned())
                .collect()
        };
        assert_eq!(all("access-control-allow-origin"), [APP], "{path}");
        assert_eq!(
            all("access-control-expose-headers"),
            ["Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate, Last-Event-ID"],
            "{path}"
        );
    }
}

/// SPEC §6: a request sees one policy from start to end. The policy is replaced while the
/// handler of an allowed request is still running (it waits for the test to let it go):
/// that response carries the old policy's headers, the next request the new one's.
#[actix_web::test]
async fn a_policy_replaced_mid_request_does_not_reach_that_request() {
    use std::sync::Arc;
    use tokio::sync::Notify;

    use actix_web::{App, HttpResponse, web};
    use mcp_cors::McpCors;

    let old = r#"
        allowed_origins = ["https://app.example.com"]
        allow_credentials = true
        exposed_headers = ["X-Old"]
    "#;
    let new = r#"
        allowed_origins = ["https://app.example.com"]
        allow_credentials = false
        exposed_headers = ["X-New"]
    "#;
    let cors = McpCors::from_policy(Policy::from_toml_str(old).unwrap());
    let entered = Arc::new(Notify::new());
    let release = Arc::new(Notify::new());
    let (e, r) = (Arc::clone(&entered), Arc::clone(&release));
    let app = App::new().wrap(cors.clone()).route(
        "/slow",
        web::post().to(move || {
            let (e, r) = (Arc::clone(&e), Arc::clone(&r));
            async move {
                // notify_one keeps a permit, so neither side can miss the other's signal.
                e.notify_one();
                r.notified().await;
                HttpResponse::Ok().body("slow")
            }
        }),
    );
    let svc = actix_web::test::init_service(app).await;
    let slow = actix_web::test::call_service(
        &svc,
        request(Method::POST, "/slow")
            .insert_header(("origin", APP))
            .to_request(),
    );
    let swap = async {
        entered.notified().await;
        cors.replace_policy(Policy::from_toml_str(new).unwrap());
        assert!(!cors.policy().settings().allow_credentials, "swapped");
        release.notify_one();
    };
    let (res, ()) =
        tokio::time::timeout(Duration::from_secs(30), async { tokio::join!(slow, swap) })
            .await
            .expect("the slow request finishes once released");
    let headers = res.headers();
    assert_eq!(headers.get("access-control-allow-origin").unwrap(), APP);
    assert_eq!(
        headers.get("access-control-allow-credentials").unwrap(),
        "true"
    );
    assert_eq!(
        headers.get("access-control-expose-headers").unwrap(),
        "X-Old"
    );

    // The next request is decided and decorated by the new policy.
    release.notify_one(); // let the next handler run straight through
    let res = actix_web::test::call_service(
        &svc,
        request(Method::POST, "/slow")
            .insert_header(("origin", APP))
            .to_request(),
    )
    .await;
    assert_eq!(
        res.headers().get("access-control-allow-origin").unwrap(),
        APP
    );
    assert!(
        res.headers()
            .get("access-control-allow-credentials")
            .is_none()
    );
    assert_eq!(
        res.headers().get("access-control-expose-headers").unwrap(),
        "X-New"
    );
}
