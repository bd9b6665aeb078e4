//! A real `HttpServer` on a loopback port, wrapped in `McpCors::watched` as the README
//! says, and a client for it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::web::Bytes;
use actix_web::{App, HttpResponse, HttpServer, web};
use futures_util::StreamExt;
use mcp_cors::McpCors;

/// An SSE-style handler: 20 events, 50 ms apart.
async fn events() -> HttpResponse {
    let stream = futures_util::stream::iter(0..20).then(|i| async move {
        actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        Ok::<_, actix_web::Error>(Bytes::from(format!("data: {i}\n\n")))
    });
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .streaming(stream)
}

pub struct Server {
    pub addr: SocketAddr,
    pub handle: actix_web::dev::ServerHandle,
    pub made: Arc<Mutex<Vec<McpCors>>>,
}

/// Starts a real server with `workers` workers, each wrapping `McpCors::watched(path)`
/// exactly as the README says; records every middleware the factory made.
pub fn start(path: &Path, workers: usize) -> Server {
    let made = Arc::new(Mutex::new(Vec::new()));
    let path: PathBuf = path.to_path_buf();
    let record = Arc::clone(&made);
    let server = HttpServer::new(move || {
        let cors = McpCors::watched(&path);
        record.lock().unwrap().push(cors.clone());
        App::new()
            .wrap(cors)
            .route("/events", web::get().to(events))
            .default_service(web::to(|| async { HttpResponse::Ok().body("handler") }))
    })
    .workers(workers)
    .bind(("127.0.0.1", 0))
    .unwrap();
    let addr = server.addrs()[0];
    let server = server.run();
    let handle = server.handle();
    actix_web::rt::spawn(server);
    Server { addr, handle, made }
}

/// Status and `Access-Control-Allow-Origin` of a POST from `origin`, on a new connection
/// (so that successive requests land on different workers).
pub async fn post(addr: SocketAddr, origin: &str) -> (u16, Option<String>) {
    let res = awc::Client::new()
        .post(format!("http://{addr}/mcp"))
        .insert_header(("origin", origin))
        .force_close()
        .send()
        .await
        .expect("the request is answered");
    let acao = res
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status().as_u16(), acao)
}
