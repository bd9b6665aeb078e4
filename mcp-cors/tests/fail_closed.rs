//! A watched policy file that is bad at start-up: every cross-origin request is refused,
//! and the refusal says why (`no policy loaded: <file>:<line>: <error>`) in the 403 body,
//! in the decision event, and in the status; fixing the file brings the policy up.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use common::{call, request, service_with};
use mcp_cors::McpCors;
use mcp_cors::protocol::{Event, Request, ServerLine};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

const A: &str = "https://a.example.com";
const BAD: &str = "# owner: platform team\nallowed_origins = [\"https://a.example.com/app\"]\n";
const GOOD: &str = "allowed_origins = [\"https://a.example.com\"]\n";

/// The 403 body's JSON-RPC error message.
fn message(body: &[u8]) -> String {
    let json: serde_json::Value = serde_json::from_slice(body).expect("a JSON body");
    assert_eq!(json["jsonrpc"], "2.0");
    assert_eq!(json["error"]["code"], -32000);
    assert_eq!(json["id"], serde_json::Value::Null);
    json["error"]["message"].as_str().unwrap().to_owned()
}

/// A bare admin-socket subscriber.
struct Subscriber {
    lines: Lines<BufReader<OwnedReadHalf>>,
    _out: OwnedWriteHalf,
}

impl Subscriber {
    async fn connect(socket: &Path) -> Subscriber {
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(socket).await {
                Ok(s) => break s,
                Err(e) => {
                    assert!(start.elapsed() < Duration::from_secs(5), "no socket: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
        };
        let (read, mut out) = stream.into_split();
        let line = serde_json::to_string(&Request::Subscribe { replay: 0 }).unwrap();
        out.write_all(format!("{line}\n").as_bytes()).await.unwrap();
        let mut s = Subscriber {
            lines: BufReader::new(read).lines(),
            _out: out,
        };
        assert!(matches!(s.next().await, ServerLine::Hello { .. }));
        assert!(matches!(s.next().await, ServerLine::Subscribed { .. }));
        s
    }

    async fn next(&mut self) -> ServerLine {
        let line = tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
            .await
            .expect("a line within 10 s")
            .unwrap()
            .expect("the connection stays open");
        serde_json::from_str(&line).unwrap()
    }

    async fn decision(&mut self) -> mcp_cors::protocol::DecisionEvent {
        loop {
            if let ServerLine::Event(Event::Decision(d)) = self.next().await {
                return d;
            }
        }
    }
}

#[actix_web::test]
async fn a_bad_file_at_start_up_refuses_saying_no_policy_loaded_until_it_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cors.toml");
    std::fs::write(&config, BAD).unwrap();
    let cors = McpCors::watched(&config);
    let (svc, hits) = service_with(cors.clone()).await;
    let mut events = Subscriber::connect(&dir.path().join("cors.sock")).await;

    let want = format!("no policy loaded: {}:2:", config.display());
    for req in [
        request(Method::POST, "/mcp").insert_header(("origin", A)),
        request(Method::POST, "/mcp").insert_header(("origin", "https://other.example")),
        common::preflight(A, "POST", None),
    ] {
        let answer = call(&svc, req).await;
        assert_eq!(answer.status, 403);
        assert_eq!(answer.header("content-type"), Some("application/json"));
        answer.assert_no_cors_headers();
        let message = message(&answer.body);
        assert!(message.starts_with(&want), "{message}");
        assert!(message.contains("an origin has no path"), "{message}");

        let event = events.decision().await;
        assert_eq!(event.verdict, mcp_cors::Verdict::Deny);
        assert_eq!(event.reason.as_deref(), Some(message.as_str()));
    }
    assert_eq!(hits.get(), 0);
    // No Origin: not a cross-origin request; the handler runs as always.
    assert_eq!(call(&svc, request(Method::POST, "/mcp")).await.status, 200);

    let status = cors.status();
    assert!(!status.loaded);
    let error = status.last_error.expect("the start-up error is the status");
    assert!(
        error
            .message
            .starts_with(&format!("{}:2:", config.display())),
        "{}",
        error.message
    );

    // Fixed: the next request is decided by the file's policy.
    std::fs::write(&config, GOOD).unwrap();
    let start = Instant::now();
    while !cors.status().loaded {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "the fixed file is applied"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let allowed = call(
        &svc,
        request(Method::POST, "/mcp").insert_header(("origin", A)),
    )
    .await;
    assert_eq!(allowed.status, 200);
    assert_eq!(allowed.header("access-control-allow-origin"), Some(A));
    let refused = call(
        &svc,
        request(Method::POST, "/mcp").insert_header(("origin", "https://other.example")),
    )
    .await;
    refused.assert_forbidden_origin();
}

#[actix_web::test]
async fn a_missing_file_at_start_up_says_it_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cors.toml");
    let (svc, _) = service_with(McpCors::watched(&config)).await;
    let answer = call(
        &svc,
        request(Method::POST, "/mcp").insert_header(("origin", A)),
    )
    .await;
    assert_eq!(answer.status, 403);
    let message = message(&answer.body);
    assert!(
        message.starts_with(&format!(
            "no policy loaded: cannot read policy file {}",
            config.display()
        )),
        "{message}"
    );
}

/// With no tracing subscriber installed, the fail-closed start is still said, once, on
/// stderr: run in a child process, which installs none.
#[test]
fn without_a_tracing_subscriber_the_failure_goes_to_stderr_once() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cors.toml");
    std::fs::write(&config, BAD).unwrap();
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_watches_a_bad_file_twice",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("FAIL_CLOSED_CHILD_CONFIG", &config)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let said: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("no policy loaded: "))
        .collect();
    assert_eq!(said.len(), 1, "{stderr}");
    assert!(
        said[0].contains(&format!("{}:2:", config.display())),
        "{stderr}"
    );
}

/// The child of the test above: two workers' worth of `McpCors::watched` on a bad file.
#[test]
fn child_watches_a_bad_file_twice() {
    let Some(config) = std::env::var_os("FAIL_CLOSED_CHILD_CONFIG") else {
        return; // Run directly by the harness: only the parent above runs it for real.
    };
    let first = McpCors::watched(&config);
    let second = McpCors::watched(&config);
    assert!(first.shares_policy_with(&second));
    assert!(!first.status().loaded);
}
