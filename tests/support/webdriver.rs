//! Headless Chromium (Debian's `chromium`) driven over W3C WebDriver by Debian's
//! `chromium-driver`: shared by the browser end-to-end tests.
//!
//! Each test crate uses a part of it.
#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const CHROMIUM: &str = "/usr/bin/chromium";
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A WebDriver session on a chromedriver child process; both are ended on drop.
pub struct Browser {
    driver: Child,
    http: awc::Client,
    url: String,
    _profile: tempfile::TempDir,
}

impl Browser {
    pub async fn start() -> Browser {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: install Debian's chromium and chromium-driver (`.ci/run` does)"
            );
        }
        let port = free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            // Its own process group, which the browser it starts joins: killing the group
            // on drop ends both (killing chromedriver alone orphans a running browser).
            .process_group(0)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start chromedriver");
        let http = awc::Client::builder()
            .timeout(Duration::from_secs(60))
            .finish();
        let base = format!("http://127.0.0.1:{port}");
        let start = Instant::now();
        loop {
            let ready = match http.get(format!("{base}/status")).send().await {
                Ok(mut res) => res
                    .json::<Value>()
                    .await
                    .ok()
                    .is_some_and(|v| v["value"]["ready"] == true),
                Err(_) => false,
            };
            if ready {
                break;
            }
            assert!(
                start.elapsed() < Duration::from_secs(20),
                "chromedriver did not start"
            );
            actix_web::rt::time::sleep(Duration::from_millis(50)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--disable-quic",
        ]
        .into_iter()
        .map(str::to_owned)
        .chain([format!("--user-data-dir={}", profile.path().display())])
        .collect::<Vec<_>>();
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            "timeouts": {"script": 30000, "pageLoad": 30000},
            "goog:loggingPrefs": {"browser": "ALL"}
        }}});
        let mut res = http
            .post(format!("{base}/session"))
            .send_json(&caps)
            .await
            .expect("new session");
        let body: Value = res.json().limit(1 << 20).await.unwrap();
        let session = body["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {body}"))
            .to_owned();
        Browser {
            driver,
            http,
            url: format!("{base}/session/{session}"),
            _profile: profile,
        }
    }

    pub async fn command(&self, path: &str, body: Value) -> Value {
        let mut res = self
            .http
            .post(format!("{}/{path}", self.url))
            .send_json(&body)
            .await
            .unwrap_or_else(|e| panic!("webdriver {path}: {e}"));
        let status = res.status();
        let body: Value = res.json().limit(16 << 20).await.unwrap();
        assert!(status.is_success(), "webdriver {path}: {status} {body}");
        body["value"].clone()
    }

    pub async fn goto(&self, url: &str) {
        self.command("url", json!({ "url": url })).await;
    }

    /// Runs `call` (an expression returning a promise) in the page; returns its value.
    pub async fn run(&self, call: &str) -> Value {
        let script = format!(
            "const done = arguments[arguments.length - 1];\
             ({call}).then(done, (e) => done({{ thrown: String(e) }}));"
        );
        self.command("execute/async", json!({ "script": script, "args": [] }))
            .await
    }

    pub async fn add_cookie(&self, name: &str, value: &str) {
        let cookie =
            json!({"cookie": {"name": name, "value": value, "path": "/", "sameSite": "Lax"}});
        self.command("cookie", cookie).await;
    }
}

impl Browser {
    /// The console messages logged since the last call (chromedriver's log endpoint).
    pub async fn console(&self) -> Vec<String> {
        let entries = self.command("se/log", json!({ "type": "browser" })).await;
        entries
            .as_array()
            .map(|all| {
                all.iter()
                    .filter_map(|e| e["message"].as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        // The whole group: chromedriver and the browser it started.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.driver.id())])
            .status();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
