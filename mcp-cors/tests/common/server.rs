//! A real `HttpServer` on a loopback port, wrapped in `McpCors::watched` as the README
//! says, and a client for it.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

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

/// A real server on a policy file in its own folder, with its admin socket answering.
pub struct Setup {
    pub _dir: tempfile::TempDir,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub server: Server,
}

/// Writes `policy` to a fresh `cors.toml`, starts a one-worker server on it, and waits
/// until its admin socket (`cors.sock`) answers.
pub async fn setup(policy: &str) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cors.toml");
    std::fs::write(&config, policy).unwrap();
    let server = start(&config, 1);
    let socket = dir.path().join("cors.sock");
    wait_for_socket(&socket).await;
    Setup {
        _dir: dir,
        config,
        socket,
        server,
    }
}

/// Waits (5 s at most) until something accepts connections at `path`.
pub async fn wait_for_socket(path: &Path) {
    let start = Instant::now();
    while tokio::net::UnixStream::connect(path).await.is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "no admin socket at {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}
