//! The decision given arbitrary header bytes, with and without a `Host` header (HTTP/2
//! requests carry the host in `:authority` instead), checked twice:
//!
//! - `Policy::decide`: an allowed answer echoes exactly the request's one `Origin`, that
//!   origin really is in the policy (checked by an independent, simple oracle), and the
//!   Host guard held;
//! - the real middleware (`McpCors` in an actix-web test service, on a runtime built once):
//!   a refused request's response never carries `Access-Control-Allow-Origin`, an allowed
//!   one carries exactly the request's origin, and the handler did not run on a refusal
//!   in enforce mode (it does in report-only mode, still without CORS headers).
#![no_main]

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::OnceLock;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::{self, HeaderMap, HeaderValue};
use actix_web::http::uri::{Authority, Uri};
use actix_web::http::{Method, StatusCode};
use actix_web::{App, HttpResponse, test, web};
use libfuzzer_sys::fuzz_target;
use mcp_cors::{Decision, McpCors, Policy};

const POLICY: &str = r#"
allowed_origins = ["https://app.example.com", "https://*.example.org", "http://localhost:*"]
allowed_hosts = ["localhost", "api.example.com:8443"]
"#;

fn load(report_only: bool) -> Policy {
    let mode = if report_only { "report-only" } else { "enforce" };
    Policy::from_toml_str(&format!("mode = \"{mode}\"\n{POLICY}")).expect("valid")
}

fn policy(report_only: bool) -> &'static Policy {
    static POLICIES: OnceLock<[Policy; 2]> = OnceLock::new();
    &POLICIES.get_or_init(|| [load(false), load(true)])[usize::from(report_only)]
}

/// What the middleware answered: status, headers, and whether the handler ran.
struct Answer {
    status: StatusCode,
    headers: HeaderMap,
    handler_ran: bool,
}

type Call = Box<dyn Fn(actix_http::Request) -> Pin<Box<dyn Future<Output = Answer>>>>;

thread_local! {
    static HANDLER_RAN: Cell<bool> = const { Cell::new(false) };
    /// One actix runtime and one service per policy mode, built on first use: building
    /// them per input would dominate the run time.
    static RUNTIME: actix_rt::SystemRunner = actix_rt::System::new();
    static SERVICES: [Call; 2] = [service(false), service(true)];
}

fn service(report_only: bool) -> Call {
    let app = App::new()
        .wrap(McpCors::from_policy(load(report_only)))
        .default_service(web::to(|| async {
            HANDLER_RAN.with(|ran| ran.set(true));
            HttpResponse::Ok().body("handler")
        }));
    let svc = Rc::new(RUNTIME.with(|rt| rt.block_on(test::init_service(app))));
    Box::new(move |req| {
        let svc = Rc::clone(&svc);
        Box::pin(async move {
            HANDLER_RAN.with(|ran| ran.set(false));
            let res: ServiceResponse<_> = match svc.call(req).await {
                Ok(res) => res.map_into_boxed_body(),
                Err(e) => panic!("the middleware answered with an error: {e}"),
            };
            Answer {
                status: res.status(),
                headers: res.headers().clone(),
                handler_ran: HANDLER_RAN.with(Cell::get),
            }
        })
    })
}

/// What the policy above allows, written the simplest way.
fn oracle_allows(origin: &str) -> bool {
    if origin == "https://app.example.com" {
        return true;
    }
    if let Some(host) = origin.strip_prefix("https://") {
        return host.len() > ".example.org".len()
            && host.ends_with(".example.org")
            && !host.starts_with('.')
            && host.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"-._".contains(&b))
            && !host.contains("..");
    }
    if let Some(rest) = origin.strip_prefix("http://localhost") {
        return rest.is_empty()
            || rest.strip_prefix(':').is_some_and(|p| {
                !p.is_empty() && (p == "0" || !p.starts_with('0')) && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit())
                    && p.parse::<u32>().is_ok_and(|n| n <= 65535 && n != 80)
            });
    }
    false
}

fn host_ok(host: &[u8]) -> bool {
    let h = String::from_utf8_lossy(host).to_ascii_lowercase();
    let (name, port) = match h.rsplit_once(':') {
        Some((n, p)) => (n.to_owned(), Some(p.to_owned())),
        None => (h.clone(), None),
    };
    match (name.as_str(), port.as_deref()) {
        ("localhost", None) => true,
        ("localhost", Some(p)) | ("api.example.com", Some(p)) => {
            let canonical = !p.is_empty() && p.len() <= 5 && p.bytes().all(|b| b.is_ascii_digit()) && (p == "0" || !p.starts_with('0'));
            canonical && p.parse::<u32>().is_ok_and(|n| n <= 65535) && (name == "localhost" || p == "8443")
        }
        _ => false,
    }
}

type Input = (u8, Option<Vec<u8>>, Vec<u8>, Vec<Vec<u8>>, Vec<u8>, Vec<u8>);

fuzz_target!(|input: Input| {
    let (flags, host, authority, origins, acrm, acrh) = input;
    let method = match flags % 4 {
        0 => Method::GET,
        1 => Method::POST,
        2 => Method::OPTIONS,
        _ => Method::DELETE,
    };
    let report_only = flags & 4 != 0;
    // The authority as the middleware sees it: the request URI's, which must parse.
    let authority = match authority.is_empty() {
        true => None,
        false => match Authority::try_from(authority.as_slice()) {
            Ok(a) => Some(a),
            Err(_) => return,
        },
    };
    let mut headers = HeaderMap::new();
    if let Some(host) = &host {
        let Ok(v) = HeaderValue::from_bytes(host) else { return };
        headers.insert(header::HOST, v);
    }
    for origin in origins.iter().take(3) {
        let Ok(v) = HeaderValue::from_bytes(origin) else { return };
        headers.append(header::ORIGIN, v);
    }
    if !acrm.is_empty() {
        let Ok(v) = HeaderValue::from_bytes(&acrm) else { return };
        headers.insert(header::ACCESS_CONTROL_REQUEST_METHOD, v);
    }
    if !acrh.is_empty() {
        let Ok(v) = HeaderValue::from_bytes(&acrh) else { return };
        headers.insert(header::ACCESS_CONTROL_REQUEST_HEADERS, v);
    }
    // The target's authority wins (RFC 9112 §3.2.2); the Host header counts only without one.
    let effective_host: Option<&[u8]> = match &authority {
        Some(a) => Some(a.as_str().as_bytes()),
        None => host.as_deref(),
    };
    let host_passes = effective_host.is_some_and(host_ok);

    let decision = policy(report_only).decide(&method, &headers, authority.as_ref().map(Authority::as_str));
    check_decision(&decision, &origins, host_passes, effective_host);

    let mut req = test::TestRequest::default().method(method.clone()).to_request();
    for (name, value) in &headers {
        req.headers_mut().append(name.clone(), value.clone());
    }
    if let Some(a) = &authority {
        let uri = Uri::builder().scheme("http").authority(a.clone()).path_and_query("/mcp").build();
        req.head_mut().uri = uri.expect("a parsed authority makes a URI");
    }
    let answer = RUNTIME.with(|rt| SERVICES.with(|s| rt.block_on(s[usize::from(report_only)](req))));
    check_answer(&decision, &answer, &origins, host_passes, report_only, &method);
});

fn check_decision(decision: &Decision, origins: &[Vec<u8>], host_passes: bool, host: Option<&[u8]>) {
    let shown = || host.map(String::from_utf8_lossy);
    let allow_origin = match decision {
        Decision::Allow { allow_origin } | Decision::Preflight { allow_origin, .. } => allow_origin,
        Decision::NoOrigin => {
            assert!(origins.is_empty());
            assert!(host_passes, "Host {:?} let through", shown());
            return;
        }
        Decision::Refuse { .. } => return,
    };
    assert!(host_passes, "Host {:?} let through", shown());
    assert_eq!(origins.len(), 1, "allowed with {} Origin headers", origins.len());
    assert_eq!(allow_origin.as_bytes(), origins[0].as_slice(), "the echo is the request's origin");
    let origin = std::str::from_utf8(&origins[0]).expect("allowed origins are text");
    assert!(oracle_allows(origin), "{origin:?} allowed but not in the policy");
}

fn check_answer(
    decision: &Decision,
    answer: &Answer,
    origins: &[Vec<u8>],
    host_passes: bool,
    report_only: bool,
    method: &Method,
) {
    let acao = answer.headers.get(header::ACCESS_CONTROL_ALLOW_ORIGIN);
    // Independently of the decision: CORS headers only ever go to one origin the oracle
    // allows, through a Host the guard allows.
    if acao.is_some() {
        assert!(host_passes && origins.len() == 1, "CORS headers past the Host guard or for {} origins", origins.len());
        let origin = String::from_utf8_lossy(&origins[0]);
        assert!(oracle_allows(&origin), "the middleware allowed {origin:?}");
    }
    match decision {
        Decision::Refuse { .. } => {
            assert!(acao.is_none(), "a refused request got Access-Control-Allow-Origin: {acao:?}");
            assert!(answer.headers.get(header::ACCESS_CONTROL_ALLOW_CREDENTIALS).is_none());
            if report_only {
                assert!(answer.handler_ran, "report-only must run the handler");
                assert_eq!(answer.status, StatusCode::OK);
            } else {
                assert!(!answer.handler_ran, "the handler ran on a refused request");
                assert_eq!(answer.status, StatusCode::FORBIDDEN);
            }
        }
        Decision::NoOrigin => {
            assert!(acao.is_none(), "no Origin, yet Access-Control-Allow-Origin: {acao:?}");
            assert!(answer.handler_ran);
        }
        Decision::Allow { .. } | Decision::Preflight { .. } => {
            let acao = acao.expect("an allowed origin gets Access-Control-Allow-Origin");
            assert!(
                acao.as_bytes() == origins[0].as_slice() || acao == "*",
                "Access-Control-Allow-Origin {acao:?} is not the request's origin {:?}",
                String::from_utf8_lossy(&origins[0])
            );
            let preflight = matches!(decision, Decision::Preflight { .. });
            assert_eq!(preflight, method == Method::OPTIONS && answer.status == StatusCode::NO_CONTENT);
            assert_eq!(answer.handler_ran, !preflight, "the handler runs exactly on actual requests");
        }
    }
}
