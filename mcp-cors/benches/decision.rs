//! The cost of a decision, and of a whole in-process request, by policy size and request
//! kind, against actix-cors configured alike and against no middleware.
//!
//! ```sh
//! cargo bench -p mcp-cors --bench decision
//! ```

use std::hint::black_box;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::Method;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::{App, HttpResponse, test, web};
use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use mcp_cors::{Decision, McpCors, Policy};

const EXACT: &str = "https://site5000.example.com";
const WILDCARD_HIT: &str = "https://app.tenant500.example.net";
const REGEX_HIT: &str = "https://pr-42.preview19.example.org";
const REFUSED: &str = "https://evil.example";

/// 10 000 exact origins and 1 000 subdomain wildcards.
fn large_lists() -> (Vec<String>, Vec<String>) {
    let exact = (0..10_000)
        .map(|i| format!("https://site{i}.example.com"))
        .collect();
    let wildcards = (0..1_000)
        .map(|i| format!("https://*.tenant{i}.example.net"))
        .collect();
    (exact, wildcards)
}

/// The policies compared: sizes from one entry to thousands.
fn policies() -> Vec<(&'static str, Policy)> {
    let quoted = |items: Vec<String>| {
        items
            .iter()
            .map(|o| format!("{o:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (exact, wildcards) = large_lists();
    let regexes: Vec<String> = (0..20)
        .map(|i| format!("'https://pr-\\d+\\.preview{i}\\.example\\.org'"))
        .collect();
    let load = |source: String| Policy::from_toml_str(&source).expect("bench policy is valid");
    vec![
        ("1 exact", load(format!("allowed_origins = [{EXACT:?}]"))),
        (
            "1 wildcard",
            load("allowed_origins = [\"https://*.tenant500.example.net\"]".into()),
        ),
        (
            "10k exact + 1k wildcard",
            load(format!(
                "allowed_origins = [{}, {}]",
                quoted(exact),
                quoted(wildcards)
            )),
        ),
        (
            "20 regexes",
            load(format!("allowed_origin_regexes = [{}]", regexes.join(", "))),
        ),
    ]
}

fn headers(origin: &str, preflight: bool) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(
        HeaderName::from_static("host"),
        HeaderValue::from_static("localhost:8080"),
    );
    h.insert(
        HeaderName::from_static("origin"),
        HeaderValue::from_str(origin).unwrap(),
    );
    if preflight {
        h.insert(
            HeaderName::from_static("access-control-request-method"),
            HeaderValue::from_static("POST"),
        );
        h.insert(
            HeaderName::from_static("access-control-request-headers"),
            HeaderValue::from_static("content-type,mcp-session-id,mcp-protocol-version"),
        );
    }
    h
}

fn decision(c: &mut Criterion) {
    let mut group = c.benchmark_group("decide");
    for (name, policy) in policies() {
        let hit = match name {
            "1 wildcard" => WILDCARD_HIT,
            "20 regexes" => REGEX_HIT,
            _ => EXACT,
        };
        let cases = [
            ("allowed", Method::POST, headers(hit, false)),
            ("preflight", Method::OPTIONS, headers(hit, true)),
            ("refused", Method::POST, headers(REFUSED, false)),
        ];
        for (kind, method, h) in cases {
            assert!(
                !matches!(policy.decide(&method, &h, None), Decision::Refuse { .. })
                    || kind == "refused"
            );
            group.bench_with_input(BenchmarkId::new(kind, name), &h, |b, h| {
                b.iter(|| black_box(policy.decide(black_box(&method), black_box(h), None)))
            });
        }
        if name == "10k exact + 1k wildcard" {
            let h = headers(WILDCARD_HIT, false);
            assert!(matches!(
                policy.decide(&Method::POST, &h, None),
                Decision::Allow { .. }
            ));
            group.bench_with_input(BenchmarkId::new("allowed by wildcard", name), &h, |b, h| {
                b.iter(|| black_box(policy.decide(black_box(&Method::POST), black_box(h), None)))
            });
        }
    }
    group.finish();
}

fn actix_cors(origins: &[String], wildcard: bool) -> actix_cors::Cors {
    let mut cors = actix_cors::Cors::default()
        .allowed_methods(["GET", "POST", "DELETE"])
        .allowed_headers(["content-type", "mcp-session-id", "mcp-protocol-version"])
        .expose_headers([
            "Mcp-Session-Id",
            "Mcp-Protocol-Version",
            "WWW-Authenticate",
            "Last-Event-ID",
        ])
        .max_age(600)
        .block_on_origin_mismatch(true);
    for o in origins {
        cors = cors.allowed_origin(o);
    }
    if wildcard {
        // actix-cors has no wildcard entries: the closest is a predicate.
        cors = cors.allowed_origin_fn(|origin, _| {
            origin.to_str().is_ok_and(|o| {
                o.strip_prefix("https://").is_some_and(|host| {
                    (0..1_000).any(|i| host.ends_with(&format!(".tenant{i}.example.net")))
                })
            })
        });
    }
    cors
}

/// Times `requests` through a service, one `call_service` per iteration.
fn bench_service<S, B>(
    group: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    id: BenchmarkId,
    system: &actix_web::rt::SystemRunner,
    svc: &S,
    request: impl Fn() -> test::TestRequest,
) where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    group.bench_function(id, |b| {
        b.iter(|| {
            let res = system.block_on(test::call_service(svc, request().to_request()));
            black_box(res.status())
        })
    });
}

fn request(c: &mut Criterion) {
    let system = actix_web::rt::System::new();
    let mut group = c.benchmark_group("request");
    let (exact, wildcards) = large_lists();
    let actual = |origin: &'static str| {
        move || {
            test::TestRequest::post()
                .uri("/mcp")
                .insert_header(("host", "localhost:8080"))
                .insert_header(("origin", origin))
        }
    };
    let preflight = || {
        test::TestRequest::default()
            .method(Method::OPTIONS)
            .uri("/mcp")
            .insert_header(("host", "localhost:8080"))
            .insert_header(("origin", EXACT))
            .insert_header(("access-control-request-method", "POST"))
            .insert_header((
                "access-control-request-headers",
                "content-type,mcp-session-id",
            ))
    };
    let handler = || web::to(|| async { HttpResponse::Ok().body("ok") });

    let bare = system.block_on(test::init_service(App::new().route("/mcp", handler())));
    bench_service(
        &mut group,
        BenchmarkId::new("allowed", "no middleware"),
        &system,
        &bare,
        actual(EXACT),
    );

    for (label, origins, wildcard) in [
        ("1 origin", &exact[5000..5001], false),
        ("10k origins", &exact[..], false),
    ] {
        let svc = system.block_on(test::init_service(
            App::new()
                .route("/mcp", handler())
                .wrap(actix_cors(origins, wildcard)),
        ));
        bench_service(
            &mut group,
            BenchmarkId::new("allowed", format!("actix-cors {label}")),
            &system,
            &svc,
            actual(EXACT),
        );
        bench_service(
            &mut group,
            BenchmarkId::new("preflight", format!("actix-cors {label}")),
            &system,
            &svc,
            preflight,
        );
        bench_service(
            &mut group,
            BenchmarkId::new("refused", format!("actix-cors {label}")),
            &system,
            &svc,
            actual(REFUSED),
        );
    }
    let svc = system.block_on(test::init_service(
        App::new()
            .route("/mcp", handler())
            .wrap(actix_cors(&[], true)),
    ));
    bench_service(
        &mut group,
        BenchmarkId::new("allowed by wildcard", "actix-cors 1k origin_fn"),
        &system,
        &svc,
        actual(WILDCARD_HIT),
    );

    let quoted = |items: &[String]| {
        items
            .iter()
            .map(|o| format!("{o:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (label, source) in [
        ("1 origin", format!("allowed_origins = [{EXACT:?}]")),
        (
            "10k exact + 1k wildcard",
            format!(
                "allowed_origins = [{}, {}]",
                quoted(&exact),
                quoted(&wildcards)
            ),
        ),
    ] {
        let policy = Policy::from_toml_str(&source).expect("valid");
        let svc = system.block_on(test::init_service(
            App::new()
                .route("/mcp", handler())
                .wrap(McpCors::from_policy(policy)),
        ));
        bench_service(
            &mut group,
            BenchmarkId::new("allowed", format!("McpCors {label}")),
            &system,
            &svc,
            actual(EXACT),
        );
        bench_service(
            &mut group,
            BenchmarkId::new("preflight", format!("McpCors {label}")),
            &system,
            &svc,
            preflight,
        );
        bench_service(
            &mut group,
            BenchmarkId::new("refused", format!("McpCors {label}")),
            &system,
            &svc,
            actual(REFUSED),
        );
        if label != "1 origin" {
            bench_service(
                &mut group,
                BenchmarkId::new("allowed by wildcard", format!("McpCors {label}")),
                &system,
                &svc,
                actual(WILDCARD_HIT),
            );
        }
    }
    group.finish();
}

criterion_group!(benches, decision, request);
criterion_main!(benches);
