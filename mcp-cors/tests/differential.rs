//! Differential tests against actix-cors: where both should agree for an allowed origin,
//! they must, so a divergence from the reference is caught.

mod common;

use std::collections::BTreeSet;

use actix_cors::Cors;
use actix_web::http::Method;
use actix_web::{App, HttpResponse, test, web};
use common::*;

const ORIGINS: [&str; 3] = [
    "https://app.example.com",
    "http://localhost:5173",
    "https://b.example.org",
];
const EXPOSED: [&str; 4] = [
    "Mcp-Session-Id",
    "Mcp-Protocol-Version",
    "WWW-Authenticate",
    "Last-Event-ID",
];

/// actix-cors configured to the same effect as the policy below.
fn reference(credentials: bool) -> Cors {
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST", "DELETE"])
        .allowed_headers([
            "content-type",
            "accept",
            "authorization",
            "mcp-session-id",
            "mcp-protocol-version",
        ])
        .expose_headers(EXPOSED)
        .max_age(600)
        // mcp-cors refuses mismatched origins (the MCP spec's MUST); make the reference too.
        .block_on_origin_mismatch(true);
    for o in ORIGINS {
        cors = cors.allowed_origin(o);
    }
    if credentials {
        cors.supports_credentials()
    } else {
        cors
    }
}

fn policy(credentials: bool) -> String {
    let origins: Vec<String> = ORIGINS.iter().map(|o| format!("{o:?}")).collect();
    format!(
        "allowed_origins = [{}]\nallow_credentials = {credentials}",
        origins.join(", ")
    )
}

fn token_set(value: Option<&str>) -> BTreeSet<String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

#[actix_web::test]
async fn allowed_actual_requests_agree_with_actix_cors() {
    for credentials in [false, true] {
        let (ours, _) = service(&policy(credentials)).await;
        let theirs = test::init_service(
            App::new()
                .wrap(reference(credentials))
                .default_service(web::to(|| async { HttpResponse::Ok().body("handler") })),
        )
        .await;
        for origin in ORIGINS {
            for method in [Method::GET, Method::POST, Method::DELETE] {
                let req = || request(method.clone(), "/mcp").insert_header(("origin", origin));
                let a = call(&ours, req()).await;
                let b = call(&theirs, req()).await;
                let ctx = format!("{method} from {origin}, credentials={credentials}");
                assert_eq!(a.status, b.status, "{ctx}");
                assert_eq!(a.body, b.body, "{ctx}");
                assert_eq!(
                    a.header("access-control-allow-origin"),
                    b.header("access-control-allow-origin"),
                    "{ctx}"
                );
                assert_eq!(
                    a.header("access-control-allow-credentials"),
                    b.header("access-control-allow-credentials"),
                    "{ctx}"
                );
                assert_eq!(
                    token_set(a.header("access-control-expose-headers")),
                    token_set(b.header("access-control-expose-headers")),
                    "{ctx}"
                );
                assert!(token_set(a.header("vary")).contains("origin"), "{ctx}");
                assert!(token_set(b.header("vary")).contains("origin"), "{ctx}");
            }
        }
    }
}

#[actix_web::test]
async fn allowed_preflights_agree_with_actix_cors() {
    for credentials in [false, true] {
        let (ours, _) = service(&policy(credentials)).await;
        let theirs = test::init_service(
            App::new()
                .wrap(reference(credentials))
                .default_service(web::to(HttpResponse::Ok)),
        )
        .await;
        for origin in ORIGINS {
            let req = || preflight(origin, "POST", Some("content-type,mcp-session-id"));
            let a = call(&ours, req()).await;
            let b = call(&theirs, req()).await;
            let ctx = format!("preflight from {origin}, credentials={credentials}");
            // actix-cors answers 200; the Fetch standard accepts any ok status, and 204 is
            // the precise one for an empty answer.
            assert!(a.status.is_success() && b.status.is_success(), "{ctx}");
            for name in [
                "access-control-allow-origin",
                "access-control-allow-credentials",
                "access-control-max-age",
            ] {
                assert_eq!(a.header(name), b.header(name), "{name}: {ctx}");
            }
            for name in ["access-control-allow-methods", "vary"] {
                assert_eq!(
                    token_set(a.header(name)),
                    token_set(b.header(name)),
                    "{name}: {ctx}"
                );
            }
            // actix-cors lists every allowed header; mcp-cors echoes the validated request
            // (prefix entries cannot be listed). The browser's check is the same: each
            // requested header must be in the answer.
            let requested = token_set(Some("content-type,mcp-session-id"));
            assert!(
                token_set(a.header("access-control-allow-headers")).is_superset(&requested),
                "{ctx}"
            );
            assert!(
                token_set(b.header("access-control-allow-headers")).is_superset(&requested),
                "{ctx}"
            );
        }
    }
}

#[actix_web::test]
async fn both_refuse_an_origin_not_allowed() {
    let (ours, ours_hits) = service(&policy(false)).await;
    let theirs = test::init_service(
        App::new()
            .wrap(reference(false))
            .default_service(web::to(HttpResponse::Ok)),
    )
    .await;
    for req in [
        || request(Method::POST, "/mcp").insert_header(("origin", "https://evil.example")),
        || preflight("https://evil.example", "POST", None),
    ] {
        let a = call(&ours, req()).await;
        let b = call(&theirs, req()).await;
        assert!(
            a.status.is_client_error() && b.status.is_client_error(),
            "{} {}",
            a.status,
            b.status
        );
        assert_eq!(a.header("access-control-allow-origin"), None);
        assert_eq!(b.header("access-control-allow-origin"), None);
    }
    assert_eq!(ours_hits.get(), 0);
}
