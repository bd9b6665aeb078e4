//! Bounds on what a policy may hold: an origin no longer than a browser can send (at load,
//! in admin edits, in requests), and a regex set with a total size cap.

mod common;

use std::path::Path;
use std::time::Duration;

use actix_web::http::Method;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use common::server::setup;
use mcp_cors::protocol::{ErrorCode, MAX_LINE, Request, ServerLine};
use mcp_cors::{Decision, DenyReason, Policy};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

/// The cap, as documented on `origin::MAX_ORIGIN_LEN`: scheme 32, `://`, a 254-byte host
/// name (253 and a trailing dot), `:65535`.
const CAP: usize = 295;

/// A well-formed `https` origin of exactly `len` bytes: DNS-sized labels under `example`.
fn origin_of_len(len: usize) -> String {
    let suffix = ".example";
    let host_len = len - "https://".len() - suffix.len();
    let mut host = String::new();
    while host.len() < host_len {
        let room = host_len - host.len();
        // A label of up to 63 letters, then a dot, unless the dot would end the host.
        let label = room.min(63);
        host.push_str(&"a".repeat(label));
        if host.len() < host_len {
            if host_len - host.len() == 1 {
                // One byte left: lengthen the label rather than end on a dot.
                host.push('a');
            } else {
                host.push('.');
            }
        }
    }
    let origin = format!("https://{host}{suffix}");
    assert_eq!(origin.len(), len);
    origin
}

fn policy_with_origin(origin: &str) -> String {
    format!("# first line\nallowed_origins = [\n  \"{origin}\",\n]\n")
}

#[test]
fn an_origin_at_the_cap_loads_and_one_byte_over_is_refused_with_key_clipped_value_and_line() {
    let at_cap = origin_of_len(CAP);
    let policy = Policy::from_toml_str(&policy_with_origin(&at_cap)).expect("at the cap loads");
    assert_eq!(policy.settings().allowed_origins, [at_cap]);

    let over = origin_of_len(CAP + 1);
    let err = Policy::from_toml_str(&policy_with_origin(&over)).expect_err("one byte over");
    let d = &err.diagnostics()[0];
    assert_eq!(d.key.as_deref(), Some("allowed_origins"));
    assert_eq!(d.line, Some(3));
    assert!(
        d.message.contains(&format!("{} bytes long", CAP + 1)) && d.message.contains("295"),
        "the message says how long it is and what the cap is: {}",
        d.message
    );
    let value = d.value.as_deref().unwrap();
    assert!(value.len() < 200, "the value is clipped: {value}");
    assert!(value.starts_with("https://aaa") && value.contains("(296 bytes)"));

    // A 65 KB entry: refused the same way, and the whole error stays short.
    let huge = format!("https://{}.example", "a".repeat(65_000));
    let err = Policy::from_toml_str(&policy_with_origin(&huge)).expect_err("65 KB");
    assert!(err.to_string().len() < 600, "{}", err.to_string().len());
    assert!(err.to_string().contains("295"), "{err}");
}

/// The decision on a POST from `origin` to a policy allowing any origin.
fn decide_any(origin: &str) -> Decision {
    let policy = Policy::from_toml_str(r#"allowed_origins = ["*"]"#).unwrap();
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("host"),
        HeaderValue::from_static("localhost:8080"),
    );
    headers.insert(
        HeaderName::from_static("origin"),
        HeaderValue::from_str(origin).unwrap(),
    );
    policy.decide(&Method::POST, &headers, None)
}

#[test]
fn a_request_origin_longer_than_the_cap_is_malformed_even_where_any_origin_is_allowed() {
    assert!(matches!(
        decide_any(&origin_of_len(CAP)),
        Decision::Allow { .. }
    ));
    for len in [CAP + 1, 8 * 1024] {
        let decision = decide_any(&origin_of_len(len));
        assert_eq!(
            decision.reason(),
            Some(&DenyReason::OriginMalformed),
            "{len} bytes"
        );
    }
}

/// A bare admin-socket client: one JSON line out, one JSON line back.
struct Admin {
    lines: Lines<BufReader<OwnedReadHalf>>,
    out: OwnedWriteHalf,
}

impl Admin {
    async fn connect(path: &Path) -> Admin {
        let (read, out) = UnixStream::connect(path).await.unwrap().into_split();
        let mut admin = Admin {
            lines: BufReader::new(read).lines(),
            out,
        };
        let (hello, _) = admin.recv().await;
        assert!(matches!(hello, ServerLine::Hello { .. }), "{hello:?}");
        admin
    }

    /// The next line, parsed, and its length in bytes.
    async fn recv(&mut self) -> (ServerLine, usize) {
        let line = tokio::time::timeout(Duration::from_secs(10), self.lines.next_line())
            .await
            .expect("the server answers within 10 s")
            .unwrap()
            .expect("a line, not a closed connection");
        let parsed = serde_json::from_str(&line).unwrap_or_else(|e| panic!("{line:?}: {e}"));
        (parsed, line.len())
    }

    /// Sends `request`, asserting its line fits the server's limit; returns the reply.
    async fn call(&mut self, request: Request) -> ServerLine {
        let mut line = serde_json::to_vec(&request).unwrap();
        assert!(
            line.len() <= MAX_LINE,
            "request line of {} bytes",
            line.len()
        );
        line.push(b'\n');
        self.out.write_all(&line).await.unwrap();
        self.recv().await.0
    }
}

#[actix_web::test]
async fn an_origin_at_the_cap_round_trips_over_the_admin_socket_and_one_byte_over_is_refused() {
    let s = setup("allowed_origins = [\"https://a.example.com\"]\n").await;
    let mut admin = Admin::connect(&s.socket).await;

    let at_cap = origin_of_len(CAP);
    let added = admin
        .call(Request::AddOrigin {
            origin: at_cap.clone(),
            force: false,
            route: None,
        })
        .await;
    assert_eq!(
        added,
        ServerLine::OriginChanged {
            origin: at_cap.clone(),
            changed: true,
            route: None,
        }
    );
    let removed = admin
        .call(Request::RemoveOrigin {
            origin: at_cap.clone(),
            route: None,
        })
        .await;
    assert_eq!(
        removed,
        ServerLine::OriginChanged {
            origin: at_cap,
            changed: true,
            route: None,
        }
    );
    let before = std::fs::read(&s.config).unwrap();

    for origin in [origin_of_len(CAP + 1), origin_of_len(65_000)] {
        for request in [
            Request::AddOrigin {
                origin: origin.clone(),
                force: false,
                route: None,
            },
            Request::RemoveOrigin {
                origin: origin.clone(),
                route: None,
            },
        ] {
            let reply = admin.call(request).await;
            let ServerLine::Error { code, message } = reply else {
                panic!("{} bytes accepted: {reply:?}", origin.len());
            };
            assert_eq!(code, ErrorCode::InvalidOrigin);
            assert!(
                message.contains(&format!("{} bytes long", origin.len()))
                    && message.contains("at most 295"),
                "{message}"
            );
            assert!(message.len() < 600, "the reply quotes a clipped value");
        }
    }
    assert_eq!(
        std::fs::read(&s.config).unwrap(),
        before,
        "nothing was written"
    );
    s.server.handle.stop(true).await;
}

/// `n` patterns, each compiling to about 100 KB: `\w` is Unicode-aware.
fn large_patterns(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!(r"https://[\w-]{{1,2}}\.t{i}\.example\.com"))
        .collect()
}

fn regex_policy(patterns: &[String]) -> String {
    let list: Vec<String> = patterns.iter().map(|p| format!("  '{p}',")).collect();
    format!(
        "allowed_origins = []\nallowed_origin_regexes = [\n{}\n]\n",
        list.join("\n")
    )
}

#[test]
fn two_hundred_large_regexes_are_refused_at_load_naming_the_key_and_the_cap() {
    let started = std::time::Instant::now();
    let err = Policy::from_toml_str(&regex_policy(&large_patterns(200)))
        .expect_err("200 regexes of about 100 KB each exceed the total cap");
    let d = &err.diagnostics()[0];
    assert_eq!(d.key.as_deref(), Some("allowed_origin_regexes"));
    assert_eq!(d.line, Some(2), "{d}");
    assert!(
        d.message.contains("2 MiB") && d.message.contains("together"),
        "names the cap: {}",
        d.message
    );
    assert!(
        d.message.contains(r"\w") && d.message.contains("allowed_origins"),
        "says what to do: {}",
        d.message
    );
    // Refused without compiling all 20 MB first.
    assert!(started.elapsed() < Duration::from_secs(20));
}

#[test]
fn regex_text_over_its_total_cap_is_refused() {
    // 200 patterns of 400 bytes of literal text: 80 KB.
    let patterns: Vec<String> = (0..200)
        .map(|i| format!(r"https://t{i}-{}\.example\.com", "x".repeat(380)))
        .collect();
    let err = Policy::from_toml_str(&regex_policy(&patterns)).expect_err("80 KB of patterns");
    let d = &err.diagnostics()[0];
    assert_eq!(d.key.as_deref(), Some("allowed_origin_regexes"));
    assert!(
        d.message.contains("64 KiB") && d.message.contains("bytes"),
        "{}",
        d.message
    );
}

#[test]
fn a_policy_of_two_hundred_ordinary_regexes_still_loads() {
    let patterns: Vec<String> = (0..200)
        .map(|i| format!(r"https://[a-z0-9-]+\.tenant{i}\.example\.com"))
        .collect();
    let policy = Policy::from_toml_str(&regex_policy(&patterns)).expect("ordinary regexes load");
    assert_eq!(policy.settings().allowed_origin_regexes.len(), 200);
}

#[test]
fn a_regex_cannot_close_the_anchoring_group_to_match_unanchored() {
    // Wrapped as `^(?:…)$`, this would be `^(?:https://a\.example\.com)|(.*\.evil\.com)$`:
    // its second half anchored only at the end.
    let err = Policy::from_toml_str(
        r#"allowed_origin_regexes = ['https://a\.example\.com)|(.*\.evil\.com']"#,
    )
    .expect_err("an unbalanced pattern is refused");
    let d = &err.diagnostics()[0];
    assert_eq!(d.key.as_deref(), Some("allowed_origin_regexes"));
    assert!(d.message.contains("invalid regex"), "{}", d.message);
}
