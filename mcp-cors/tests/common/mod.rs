//! A real actix service with recording handlers, and assertion helpers.
#![allow(dead_code)] // each test file uses its own subset

pub mod client;
pub mod inotify;
pub mod log;
pub mod server;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use actix_web::body::MessageBody;
use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::header::HeaderName;
use actix_web::http::{Method, StatusCode};
use actix_web::web::Bytes;
use actix_web::{App, HttpRequest, HttpResponse, test, web};
use mcp_cors::{McpCors, Policy};

pub const HOST: &str = "localhost:8080";
pub const APP: &str = "https://app.example.com";

/// Counts handler runs.
#[derive(Clone, Default)]
pub struct Hits(Arc<AtomicUsize>);

impl Hits {
    pub fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

async fn handler(
    hits: web::Data<Hits>,
    req: HttpRequest,
) -> Result<HttpResponse, actix_web::Error> {
    hits.0.fetch_add(1, Ordering::SeqCst);
    let path = req.path();
    if let Some(code) = path.strip_prefix("/status/") {
        let code: u16 = code.parse().unwrap();
        return Ok(HttpResponse::build(StatusCode::from_u16(code).unwrap()).body("handler"));
    }
    match path {
        "/err" => Err(actix_web::error::ErrorInternalServerError("handler failed")),
        "/vary" => Ok(HttpResponse::Ok()
            .insert_header(("Vary", "Accept-Encoding"))
            .body("handler")),
        "/sse" => {
            let first = futures_util::stream::once(async {
                Ok::<_, actix_web::Error>(Bytes::from_static(b"data: 1\n\n"))
            });
            // The stream never ends: a middleware that buffered would never answer.
            let stream = futures_util::StreamExt::chain(first, futures_util::stream::pending());
            Ok(HttpResponse::Ok()
                .content_type("text/event-stream")
                .streaming(stream))
        }
        _ => Ok(HttpResponse::Ok().body("handler")),
    }
}

/// A service behind `McpCors` with the given policy, routing every path and method to a
/// handler that counts its runs.
pub async fn service(
    policy_toml: &str,
) -> (
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody + use<>>,
        Error = actix_web::Error,
    > + use<>,
    Hits,
) {
    let policy = Policy::from_toml_str(policy_toml).expect("test policy is valid");
    service_with(McpCors::from_policy(policy)).await
}

pub async fn service_with(
    cors: McpCors,
) -> (
    impl Service<
        actix_http::Request,
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
    >,
    Hits,
) {
    let hits = Hits::default();
    let app = App::new()
        .app_data(web::Data::new(hits.clone()))
        .wrap(cors)
        .default_service(web::to(handler));
    (test::init_service(app).await, hits)
}

/// A request to `path` with `Host: localhost:8080`.
pub fn request(method: Method, path: &str) -> test::TestRequest {
    test::TestRequest::default()
        .method(method)
        .uri(path)
        .insert_header(("host", HOST))
}

/// A CORS preflight from `origin` asking for `method` (and `headers`, if any).
pub fn preflight(origin: &str, method: &str, headers: Option<&str>) -> test::TestRequest {
    let mut req = request(Method::OPTIONS, "/mcp")
        .insert_header(("origin", origin))
        .insert_header(("access-control-request-method", method));
    if let Some(h) = headers {
        req = req.insert_header(("access-control-request-headers", h));
    }
    req
}

/// The response's status, headers and body, collected.
pub struct Answer {
    pub status: StatusCode,
    pub headers: actix_web::http::header::HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = HeaderName::try_from(name).unwrap();
        let mut values = self.headers.get_all(&name);
        let first = values.next().map(|v| v.to_str().unwrap());
        assert!(values.next().is_none(), "{name} must appear at most once");
        first
    }

    /// Asserts that no `Access-Control-*` header is present.
    pub fn assert_no_cors_headers(&self) {
        let cors: Vec<_> = self
            .headers
            .keys()
            .filter(|k| k.as_str().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "unexpected CORS headers {cors:?}");
    }

    pub fn assert_forbidden_origin(&self) {
        assert_eq!(self.status, StatusCode::FORBIDDEN);
        assert_eq!(self.header("content-type"), Some("application/json"));
        assert_eq!(
            self.body,
            r#"{"jsonrpc":"2.0","error":{"code":-32000,"message":"Forbidden: origin not allowed"},"id":null}"#
        );
        self.assert_no_cors_headers();
    }
}

pub async fn call<S, B>(svc: &S, req: test::TestRequest) -> Answer
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody,
{
    let res = test::call_service(svc, req.to_request()).await;
    let status = res.status();
    let headers = res.headers().clone();
    let body = test::read_body(res).await;
    Answer {
        status,
        headers,
        body,
    }
}
