//! `hosts list|add|remove`, `origins add '*'` and the `force` they need, against a real
//! server (`McpCors::watched` over a real admin socket): output, exit codes, the file.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::Output;
use std::time::Duration;

use common::{EVIL, Server, run, s};

const POLICY: &str = "\
# Test policy.
allowed_origins = [\"https://app.example.com\"]
allowed_hosts = [
  \"localhost\",  # the loopback names
  \"127.0.0.1\",
]
max_age = 60 # cache
";

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Status of a `GET /mcp` sent to `host` (no `Origin`: only the Host guard decides).
fn get_as(addr: SocketAddr, host: &str) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = format!("GET /mcp HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

#[test]
fn hosts_list_add_remove_edit_the_file_keeping_comments_and_the_served_policy() {
    let server = Server::start(POLICY);
    let config = s(&server.config);
    let pod = format!("10.1.2.3:{}", server.addr.port());
    assert_eq!(
        stdout(&run(&["hosts", "list", "--config", config])),
        "localhost\n127.0.0.1\n"
    );
    assert_eq!(get_as(server.addr, &pod), 403);
    assert_eq!(get_as(server.addr, &pod), 403);

    // The refusals are counted per host, and `status` names them.
    let status = stdout(&run(&["status", "--config", config]));
    assert!(
        status.contains(&format!("denied host:       2 {pod} (last ")),
        "{status}"
    );

    let out = run(&["hosts", "add", "10.0.0.0/8", "--config", config]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "allowed host 10.0.0.0/8\n");
    assert_eq!(
        get_as(server.addr, &pod),
        200,
        "the reply comes once it serves"
    );
    let text = server.policy_text();
    assert!(
        text.contains("  \"localhost\",  # the loopback names\n  \"127.0.0.1\",\n  \"10.0.0.0/8\",\n]\nmax_age = 60 # cache\n"),
        "comments and layout kept: {text}"
    );
    assert_eq!(
        stdout(&run(&["hosts", "list", "--config", config])),
        "localhost\n127.0.0.1\n10.0.0.0/8\n"
    );

    let again = run(&["hosts", "add", "10.0.0.0/8", "--config", config]);
    assert_eq!(again.status.code(), Some(0));
    assert_eq!(stdout(&again), "host 10.0.0.0/8 was already allowed\n");

    let out = run(&["hosts", "remove", "10.0.0.0/8", "--config", config]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "removed host 10.0.0.0/8\n");
    assert_eq!(get_as(server.addr, &pod), 403);
    assert_eq!(
        server.policy_text(),
        POLICY,
        "back to the hand-written file"
    );

    let out = run(&["hosts", "remove", "10.0.0.0/8", "--config", config]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("10.0.0.0/8 is not in allowed_hosts"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn adding_a_host_to_a_file_without_allowed_hosts_keeps_localhost() {
    let server = Server::start("allowed_origins = []\n");
    let config = s(&server.config);
    let out = run(&["hosts", "add", "api.example.com", "--config", config]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(
        server.policy_text(),
        "allowed_origins = []\nallowed_hosts = [\"localhost\", \"127.0.0.1\", \"[::1]\", \"api.example.com\"]\n"
    );
    assert_eq!(get_as(server.addr, "api.example.com"), 200);
    assert_eq!(
        get_as(server.addr, "127.0.0.1"),
        200,
        "the defaults still pass"
    );
}

#[test]
fn a_bad_host_is_refused_with_a_clear_error_and_nothing_changes() {
    let server = Server::start(POLICY);
    for (bad, why) in [
        ("10.0.0.0/33", "10.0.0.0/33"),
        ("https://api.example.com", "not a URL"),
        ("api.example.com:http", "is not a port number"),
    ] {
        let out = run(&["hosts", "add", bad, "--config", s(&server.config)]);
        assert_eq!(out.status.code(), Some(1), "{bad}");
        let err = stderr(&out);
        assert!(err.contains(bad) && err.contains(why), "{bad}: {err}");
        assert!(stdout(&out).is_empty());
    }
    assert_eq!(server.policy_text(), POLICY);
}

#[test]
fn a_star_host_turns_the_guard_off_only_with_force() {
    let server = Server::start(POLICY);
    let config = s(&server.config);
    let out = run(&["hosts", "add", "*", "--config", config]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("turns the Host guard off") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(server.policy_text(), POLICY, "nothing written");
    assert_eq!(get_as(server.addr, "evil.example"), 403);

    let out = run(&["hosts", "add", "*", "--force", "--config", config]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(get_as(server.addr, "evil.example"), 200);
}

#[test]
fn a_star_origin_is_added_only_with_force() {
    let server = Server::start(POLICY);
    let config = s(&server.config);
    let out = run(&["origins", "add", "*", "--config", config]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("allows every origin") && err.contains("--force"),
        "{err}"
    );
    assert_eq!(server.policy_text(), POLICY, "nothing written");
    assert_eq!(server.post(EVIL), 403);

    let out = run(&["origins", "add", "*", "--force", "--config", config]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "allowed *\n");
    assert_eq!(server.post(EVIL), 200);
}

/// Sends `request` on a fresh admin connection (after the hello exchange) and returns
/// the reply line as JSON.
fn socket_call(server: &Server, request: &str) -> serde_json::Value {
    let stream = UnixStream::connect(&server.socket).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut line = String::new();
    reader.read_line(&mut line).expect("hello");
    let hello: serde_json::Value = serde_json::from_str(&line).expect("hello JSON");
    let version = hello["version"].as_u64().expect("version");
    let mut out = stream;
    writeln!(out, "{{\"cmd\":\"hello\",\"version\":{version}}}").expect("send hello");
    line.clear();
    reader.read_line(&mut line).expect("hello_ok");
    writeln!(out, "{request}").expect("send request");
    line.clear();
    reader.read_line(&mut line).expect("reply");
    serde_json::from_str(&line).expect("reply JSON")
}

#[test]
fn over_the_socket_a_star_needs_force_true_and_gets_a_stable_error_code() {
    let server = Server::start(POLICY);
    for request in [
        r#"{"cmd":"add_origin","origin":"*"}"#,
        r#"{"cmd":"add_origin","origin":"*","force":false}"#,
        r#"{"cmd":"add_host","host":" * "}"#,
    ] {
        let reply = socket_call(&server, request);
        assert_eq!(reply["type"], "error", "{request}: {reply}");
        assert_eq!(reply["code"], "force_required", "{request}: {reply}");
    }
    assert_eq!(server.policy_text(), POLICY);
    let reply = socket_call(&server, r#"{"cmd":"add_host","host":"10.0.0.0/33"}"#);
    assert_eq!(reply["code"], "invalid_host", "{reply}");
    let reply = socket_call(&server, r#"{"cmd":"add_origin","origin":"*","force":true}"#);
    assert_eq!(reply["type"], "origin_changed", "{reply}");
    assert_eq!(reply["changed"], true);
    let reply = socket_call(&server, r#"{"cmd":"add_host","host":"API.example.com"}"#);
    assert_eq!(
        (reply["type"].as_str(), reply["host"].as_str()),
        (Some("host_changed"), Some("api.example.com")),
        "{reply}"
    );
}
