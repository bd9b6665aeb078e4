//! A real server behind `McpCors::watched` on a loopback port, its admin socket, a raw
//! HTTP client, and the built `mcp-cors-tui` binary.
#![allow(dead_code)] // each test file uses its own subset

pub mod tmux;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, HttpServer, web};
use mcp_cors::McpCors;

pub const APP: &str = "https://app.example.com";
pub const EVIL: &str = "https://evil.example";

pub const POLICY: &str = "\
# Test policy.
allowed_origins = [
  \"https://app.example.com\",  # the web UI
]
";

/// A running server; stopped when dropped.
pub struct Server {
    /// The folder of the config and socket; `None` once handed on by [`Server::stop`].
    dir: Option<tempfile::TempDir>,
    pub folder: PathBuf,
    pub config: PathBuf,
    pub socket: PathBuf,
    pub addr: SocketAddr,
    handle: actix_web::dev::ServerHandle,
    thread: Option<thread::JoinHandle<()>>,
}

impl Server {
    /// Writes `policy` to a fresh `cors.toml` and serves it, as the README says, on its
    /// own thread and actix system; returns once the admin socket answers.
    pub fn start(policy: &str) -> Server {
        Server::start_at(policy, "cors.sock")
    }

    /// Like [`Server::start`], for a policy whose admin socket is `socket_name` in the
    /// config's folder.
    pub fn start_at(policy: &str, socket_name: &str) -> Server {
        Server::serve(tempfile::tempdir().expect("temp dir"), policy, socket_name)
    }

    /// Serves `policy` from `dir` (a folder a stopped server handed on).
    pub fn start_in(dir: tempfile::TempDir, policy: &str) -> Server {
        Server::serve(dir, policy, "cors.sock")
    }

    /// Stops the server, keeping its folder.
    pub fn stop(mut self) -> tempfile::TempDir {
        self.dir.take().expect("the folder is still owned")
    }

    fn serve(dir: tempfile::TempDir, policy: &str, socket_name: &str) -> Server {
        let config = dir.path().join("cors.toml");
        std::fs::write(&config, policy).expect("write policy");
        let (tx, rx) = mpsc::channel();
        let path = config.clone();
        let thread = thread::spawn(move || {
            actix_web::rt::System::new().block_on(async move {
                let server = HttpServer::new(move || {
                    App::new()
                        .wrap(McpCors::watched(&path))
                        .default_service(web::to(|| async { HttpResponse::Ok().body("handler") }))
                })
                .workers(1)
                .bind(("127.0.0.1", 0))
                .expect("bind");
                let addr = server.addrs()[0];
                let server = server.run();
                tx.send((addr, server.handle())).expect("report address");
                server.await.expect("server runs");
            });
        });
        let (addr, handle) = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("server starts");
        let socket = dir.path().join(socket_name);
        wait_for(Duration::from_secs(10), "the admin socket", || {
            UnixStream::connect(&socket).is_ok()
        });
        Server {
            folder: dir.path().to_path_buf(),
            dir: Some(dir),
            config,
            socket,
            addr,
            handle,
            thread: Some(thread),
        }
    }

    /// The policy file's text.
    pub fn policy_text(&self) -> String {
        std::fs::read_to_string(&self.config).expect("read policy")
    }

    /// Status of a POST to `/mcp` from `origin`.
    pub fn post(&self, origin: &str) -> u16 {
        post(self.addr, origin)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        actix_web::rt::System::new().block_on(self.handle.stop(false));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Polls `done` every 20 ms until it holds; panics naming `what` after `timeout`.
pub fn wait_for(timeout: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(20));
    }
}

/// Status of a `POST /mcp` with `Origin: origin`, over a raw HTTP/1.1 connection.
pub fn post(addr: SocketAddr, origin: &str) -> u16 {
    post_with(addr, origin, &[])
}

/// [`post`], with extra `headers`.
pub fn post_with(addr: SocketAddr, origin: &str, headers: &[(&str, &str)]) -> u16 {
    let extra: String = headers
        .iter()
        .map(|(name, value)| format!("{name}: {value}\r\n"))
        .collect();
    let mut stream = TcpStream::connect(addr).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = format!(
        "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nOrigin: {origin}\r\n{extra}Content-Length: 0\r\nConnection: close\r\n\r\n",
        addr.port()
    );
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

/// The built binary.
pub fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_mcp-cors-tui"))
}

/// Runs the binary with `args` and waits for it.
pub fn run(args: &[&str]) -> Output {
    bin().args(args).output().expect("run mcp-cors-tui")
}

/// `path` as a `&str` (test paths are UTF-8).
pub fn s(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// A stand-in for a server, owned by this process's user, on `path`: greets each
/// connection with a hello, agrees to `hello`, and answers `subscribe` by sending
/// `events` (whole JSON lines, written as given) after the `subscribed` reply.
pub fn fake_server(path: &Path, events: Vec<String>) {
    use std::io::BufRead;
    use std::os::unix::net::UnixListener;
    let listener = UnixListener::bind(path).expect("bind the fake server");
    thread::spawn(move || {
        for stream in listener.incoming().map_while(Result::ok) {
            let events = events.clone();
            thread::spawn(move || {
                let mut out = stream.try_clone().expect("clone the stream");
                let hello = format!(
                    "{{\"type\":\"hello\",\"protocol\":\"{}\",\"version\":{},\"server\":\"0.0.0\"}}\n",
                    mcp_cors::protocol::PROTOCOL,
                    mcp_cors::protocol::VERSION
                );
                let _ = out.write_all(hello.as_bytes());
                for line in std::io::BufReader::new(stream)
                    .lines()
                    .map_while(Result::ok)
                {
                    let reply = if line.contains("\"subscribe\"") {
                        let mut reply = "{\"type\":\"subscribed\",\"replayed\":0}\n".to_owned();
                        for event in &events {
                            reply.push_str(event);
                            reply.push('\n');
                        }
                        reply
                    } else {
                        "{\"type\":\"hello_ok\"}\n".to_owned()
                    };
                    let _ = out.write_all(reply.as_bytes());
                }
            });
        }
    });
}
