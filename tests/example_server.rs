//! The example binary itself, as a user runs it: `mcp_server --config FILE --bind ADDR`.
//! `cargo test` builds the examples next to the test binaries; when only this test was
//! asked for, it builds the example first.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

const ALLOWED: &str = "http://localhost:5173";
const REFUSED: &str = "https://evil.example";

/// The built example: `target/<profile>/examples/mcp_server`, beside `deps/` where this
/// test runs; built with cargo (once for all tests here) when missing.
fn example_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(locate_or_build).clone()
}

fn locate_or_build() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let binary = profile_dir.join("examples").join("mcp_server");
    if !binary.exists() {
        let status = Command::new(env!("CARGO"))
            .args(["build", "--example", "mcp_server"])
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .status()
            .expect("run cargo build --example mcp_server");
        assert!(status.success(), "cargo build --example mcp_server failed");
    }
    assert!(binary.exists(), "no example binary at {}", binary.display());
    binary
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port()
}

/// The example server as a child process, its log collected; killed on drop.
struct Example {
    child: Child,
    log: Arc<Mutex<String>>,
    _dir: tempfile::TempDir,
}

impl Example {
    fn start(bind: &str) -> Example {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("cors.toml");
        std::fs::write(&config, format!("allowed_origins = [\"{ALLOWED}\"]\n")).expect("config");
        let mut child = Command::new(example_binary())
            .arg("--config")
            .arg(&config)
            .args(["--bind", bind])
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the example");
        let log = Arc::new(Mutex::new(String::new()));
        let outputs: [Box<dyn Read + Send>; 2] = [
            Box::new(child.stdout.take().expect("stdout")),
            Box::new(child.stderr.take().expect("stderr")),
        ];
        for output in outputs {
            let log = Arc::clone(&log);
            thread::spawn(move || {
                for line in BufReader::new(output).lines().map_while(Result::ok) {
                    let mut log = log.lock().expect("log lock");
                    log.push_str(&line);
                    log.push('\n');
                }
            });
        }
        Example {
            child,
            log,
            _dir: dir,
        }
    }

    fn log(&self) -> String {
        self.log.lock().expect("log lock").clone()
    }

    /// Polls until the log contains `needle`; panics with the log after a deadline.
    fn wait_for_log(&mut self, needle: &str) {
        let start = Instant::now();
        while !self.log().contains(needle) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the example exited ({status}): {}", self.log());
            }
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "no {needle:?} in the log: {}",
                self.log()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A parsed HTTP/1.1 response: status, lower-cased headers, body.
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends one request (`Connection: close`) and reads the whole response.
fn http(addr: SocketAddr, head: &str, body: &str) -> Response {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let request = format!(
        "{head}\r\nHost: 127.0.0.1:{}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        addr.port(),
        body.len()
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut raw = String::new();
    stream.read_to_string(&mut raw).expect("read the response");
    let (head, body) = raw.split_once("\r\n\r\n").expect("a response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {raw:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    Response {
        status,
        headers,
        body: body.to_owned(),
    }
}

fn initialize(addr: SocketAddr, origin: &str) -> Response {
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"example-test","version":"1.0"}}}"#;
    let head = format!(
        "POST /mcp HTTP/1.1\r\nOrigin: {origin}\r\nContent-Type: application/json\r\n\
         Accept: application/json, text/event-stream\r\nMCP-Protocol-Version: 2025-06-18"
    );
    http(addr, &head, body)
}

/// Polls `GET /health` until it answers (the server is up).
fn wait_for_health(server: &mut Example, addr: SocketAddr) -> Response {
    let start = Instant::now();
    loop {
        if TcpStream::connect(addr).is_ok() {
            return http(addr, "GET /health HTTP/1.1", "");
        }
        if let Ok(Some(status)) = server.child.try_wait() {
            panic!("the example exited ({status}): {}", server.log());
        }
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the example did not listen: {}",
            server.log()
        );
        thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_example_serves_health_and_mcp_behind_mcp_cors() {
    let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let mut server = Example::start(&addr.to_string());
    let health = wait_for_health(&mut server, addr);
    assert_eq!(health.status, 200);
    let value: serde_json::Value = serde_json::from_str(&health.body).expect("JSON");
    assert_eq!(value, serde_json::json!({"status": "ok"}));

    let res = initialize(addr, ALLOWED);
    assert_eq!(res.status, 200, "{}", res.body);
    assert_eq!(res.header("access-control-allow-origin"), Some(ALLOWED));
    let exposed = res.header("access-control-expose-headers").unwrap_or("");
    assert!(exposed.contains("Mcp-Session-Id"), "{exposed}");
    assert!(res.header("mcp-session-id").is_some());
    assert!(res.body.contains("\"serverInfo\""), "{}", res.body);

    let res = initialize(addr, REFUSED);
    assert_eq!(res.status, 403);
    assert_eq!(res.header("access-control-allow-origin"), None);
    assert!(
        res.body.contains("Forbidden: origin not allowed"),
        "{}",
        res.body
    );
    assert!(!server.log().contains("non-loopback"), "{}", server.log());
}

#[test]
fn binding_a_non_loopback_address_is_warned_about() {
    let port = free_port();
    let mut server = Example::start(&format!("0.0.0.0:{port}"));
    server.wait_for_log("listening on a non-loopback address");
    let log = server.log();
    let warning = log
        .lines()
        .find(|l| l.contains("non-loopback"))
        .expect("the warning line");
    assert!(warning.contains("WARN"), "{warning}");
}

#[test]
fn the_defaults_are_what_the_readme_says() {
    let out = Command::new(example_binary())
        .arg("--help")
        .output()
        .expect("run the example with --help");
    assert!(out.status.success());
    let help = String::from_utf8_lossy(&out.stdout);
    assert!(help.contains("[default: examples/cors.toml]"), "{help}");
    assert!(help.contains("[default: 127.0.0.1:8080]"), "{help}");
    let readme = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md"))
        .expect("README.md");
    assert!(
        readme.contains("cargo run --example mcp_server\n"),
        "the no-argument command"
    );
    assert!(
        readme.contains("`McpCors::watched(\"examples/cors.toml\")`, on `127.0.0.1:8080`"),
        "the README names both defaults"
    );
}
