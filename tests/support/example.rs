//! The example MCP server (`examples/mcp_server.rs`) as a user starts it: the real binary
//! on a free loopback port, behind a copy of the shipped `examples/cors.toml` (the copy
//! keeps the admin socket and any edit out of the checkout). Killed on drop.
#![allow(dead_code)]

use std::io::Read;
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::binaries::mcp_server_binary;

/// How long the example may take to listen once started.
const LISTEN_TIMEOUT: Duration = Duration::from_secs(30);

/// A free port on 127.0.0.1 (free when asked; nothing holds it afterwards).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port()
}

/// The running example server.
pub struct Example {
    child: Child,
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Example {
    /// Starts the example, its output discarded, and waits until it accepts connections.
    pub fn start() -> Example {
        Example::spawn(Stdio::null)
    }

    /// [`Example::start`], keeping what the server prints for [`Example::log`].
    pub fn start_logged() -> Example {
        Example::spawn(Stdio::piped)
    }

    fn spawn(output: fn() -> Stdio) -> Example {
        let dir = tempfile::tempdir().expect("temp dir");
        let config = dir.path().join("cors.toml");
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/cors.toml");
        std::fs::copy(&shipped, &config).expect("copy examples/cors.toml");
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let child = Command::new(mcp_server_binary())
            .arg("--config")
            .arg(&config)
            .args(["--bind", &addr.to_string()])
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(output())
            .stderr(output())
            .spawn()
            .expect("start the example server");
        let mut example = Example {
            child,
            addr,
            _dir: dir,
        };
        example.wait_until_listening();
        example
    }

    fn wait_until_listening(&mut self) {
        let start = Instant::now();
        while TcpStream::connect(self.addr).is_err() {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the example server exited ({status}): {}", self.log());
            }
            assert!(
                start.elapsed() < LISTEN_TIMEOUT,
                "the example server does not listen on {}",
                self.addr
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its MCP endpoint, named `localhost` as a browser user types it.
    pub fn url(&self) -> String {
        format!("http://localhost:{}/mcp", self.addr.port())
    }

    /// What the server printed (started with [`Example::start_logged`]; empty
    /// otherwise). Stops it first, so that the pipes end.
    pub fn log(&mut self) -> String {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let mut log = String::new();
        if let Some(out) = self.child.stdout.as_mut() {
            let _ = out.read_to_string(&mut log);
        }
        if let Some(err) = self.child.stderr.as_mut() {
            let _ = err.read_to_string(&mut log);
        }
        log
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
