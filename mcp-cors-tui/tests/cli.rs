//! The scriptable subcommands against a real server: output, exit codes, error messages.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::process::{Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use common::{APP, EVIL, POLICY, Server, run, s};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The value of `key:` in `status` output.
fn field(status: &str, key: &str) -> String {
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{key}:")))
        .unwrap_or_else(|| panic!("no {key} in {status}"))
        .trim()
        .to_owned()
}

#[test]
fn status_reports_totals_mode_and_reloads() {
    let server = Server::start(POLICY);
    assert_eq!(server.post(APP), 200);
    assert_eq!(server.post(EVIL), 403);
    assert_eq!(server.post(EVIL), 403);
    let out = run(&["status", "--config", s(&server.config)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert_eq!(field(&text, "allowed"), "1");
    assert_eq!(field(&text, "denied"), "2");
    assert_eq!(field(&text, "would-deny"), "0");
    assert_eq!(field(&text, "mode"), "enforce");
    assert_eq!(field(&text, "loaded"), "yes");
    assert_eq!(field(&text, "origins"), "1");
    assert_eq!(field(&text, "last reload error"), "none");
    assert_eq!(field(&text, "socket"), s(&server.socket));
}

#[test]
fn status_lists_per_origin_counters_and_json_carries_the_same() {
    let server = Server::start(POLICY);
    assert_eq!(server.post(APP), 200);
    assert_eq!(server.post(EVIL), 403);
    assert_eq!(server.post(EVIL), 403);
    let out = run(&["status", "--config", s(&server.config)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let line = |origin: &str| {
        text.lines()
            .find(|l| l.starts_with("origin:") && l.contains(&format!("  {origin} (last ")))
            .unwrap_or_else(|| panic!("no origin line for {origin} in {text}"))
            .to_owned()
    };
    assert!(
        line(EVIL).contains("0 allowed, 2 denied, 0 would-deny"),
        "{text}"
    );
    assert!(
        line(APP).contains("1 allowed, 0 denied, 0 would-deny"),
        "{text}"
    );

    let out = run(&["status", "--json", "--config", s(&server.config)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let doc: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("one JSON document");
    assert_eq!(doc["stats"]["allowed"], 1);
    assert_eq!(doc["stats"]["denied"], 2);
    let origins = doc["stats"]["origins"]
        .as_array()
        .expect("per-origin counters");
    let evil = origins
        .iter()
        .find(|o| o["origin"] == EVIL)
        .expect("the refused origin");
    assert_eq!(
        (evil["denied"].as_u64(), evil["allowed"].as_u64()),
        (Some(2), Some(0))
    );
    assert_eq!(doc["policy"]["settings"]["allowed_origins"][0], APP);
    assert_eq!(doc["socket"], s(&server.socket));
}

#[test]
fn status_shows_the_last_reload_error() {
    let server = Server::start(POLICY);
    std::fs::write(
        &server.config,
        "allowed_origins = [\"https://a.example/x\"]\n",
    )
    .unwrap();
    common::wait_for(Duration::from_secs(10), "the reload error", || {
        let out = run(&["--socket", s(&server.socket), "status"]);
        field(&stdout(&out), "last reload error").contains("https://a.example/x")
    });
}

#[test]
fn origins_list_add_remove_edit_the_file_and_the_served_policy() {
    let server = Server::start(POLICY);
    let config = s(&server.config);
    assert_eq!(
        stdout(&run(&["origins", "list", "--config", config])),
        format!("{APP}\n")
    );
    assert_eq!(server.post(EVIL), 403);

    let out = run(&["origins", "add", EVIL, "--config", config]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("allowed {EVIL}\n"));
    assert_eq!(
        server.post(EVIL),
        200,
        "the reply comes once the policy serves"
    );
    assert!(server.policy_text().contains(EVIL));
    assert!(
        server.policy_text().contains("# the web UI"),
        "comments kept"
    );
    assert_eq!(
        stdout(&run(&["origins", "list", "--config", config])),
        format!("{APP}\n{EVIL}\n")
    );

    let again = run(&["origins", "add", EVIL, "--config", config]);
    assert!(again.status.success());
    assert_eq!(stdout(&again), format!("{EVIL} was already allowed\n"));

    let out = run(&["origins", "remove", EVIL, "--config", config]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("removed {EVIL}\n"));
    assert_eq!(server.post(EVIL), 403);
    assert!(!server.policy_text().contains(EVIL));
}

#[test]
fn removing_an_absent_origin_fails() {
    let server = Server::start(POLICY);
    let out = run(&["origins", "remove", EVIL, "--config", s(&server.config)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains(EVIL), "{}", stderr(&out));
    assert!(stdout(&out).is_empty());
}

#[test]
fn adding_an_invalid_origin_fails_and_changes_nothing() {
    let server = Server::start(POLICY);
    let before = server.policy_text();
    let out = run(&[
        "origins",
        "add",
        "https://a.example/path",
        "--config",
        s(&server.config),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("path"), "{}", stderr(&out));
    assert_eq!(server.policy_text(), before);
}

#[test]
fn no_server_is_a_clear_error_naming_the_socket() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cors.toml");
    std::fs::write(&config, POLICY).unwrap();
    let derived = dir.path().join("cors.sock");
    // Those that need a server; `origins`, `hosts` and `status` with the file named work
    // on it (tests/file_edit.rs), but a socket alone names no file.
    for args in [
        vec!["tail", "--config", s(&config)],
        vec!["audit", "--socket", s(&derived)],
        vec!["--socket", s(&derived), "origins", "add", APP],
        vec!["--socket", s(&derived), "status"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        assert!(err.contains(s(&derived)), "{args:?}: {err}");
        assert!(err.contains("cannot connect"), "{args:?}: {err}");
    }
}

#[test]
fn the_socket_path_follows_the_admin_table_of_the_config() {
    let policy = format!("{POLICY}\n[admin]\nsocket = \"admin.sock\"\n");
    let server = Server::start_at(&policy, "admin.sock");
    assert!(!server.folder.join("cors.sock").exists());
    let out = run(&["status", "--config", s(&server.config)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(field(&stdout(&out), "socket"), s(&server.socket));
}

#[test]
fn a_protocol_version_mismatch_names_both_versions() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.sock");
    let listener = UnixListener::bind(&path).unwrap();
    thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.write_all(
                b"{\"type\":\"hello\",\"protocol\":\"mcp-cors-admin\",\"version\":99,\"server\":\"9.9.9\"}\n",
            );
            thread::sleep(Duration::from_secs(2));
        }
    });
    let out = run(&["--socket", s(&path), "status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("version 99"), "{err}");
    assert!(
        err.contains(&format!("version {}", mcp_cors::protocol::VERSION)),
        "{err}"
    );
}

/// Spawns the binary with `args` (a `tail`), its stdout lines arriving on the receiver.
fn spawn_tail(args: &[&str]) -> (std::process::Child, mpsc::Receiver<std::io::Result<String>>) {
    let mut child = common::bin()
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tail");
    let stdout = child.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    (child, rx)
}

/// Spawns `tail` with `args`, makes denied requests until it prints a line, returns it.
fn first_tail_line(server: &Server, args: &[&str]) -> String {
    first_tail_line_with(server, args, &[])
}

/// [`first_tail_line`], the requests carrying `headers`.
fn first_tail_line_with(server: &Server, args: &[&str], headers: &[(&str, &str)]) -> String {
    let (mut child, rx) = spawn_tail(args);
    // The subscription starts asynchronously: request until a line shows up.
    let mut line = None;
    for _ in 0..50 {
        assert_eq!(common::post_with(server.addr, EVIL, headers), 403);
        if let Ok(Ok(l)) = rx.recv_timeout(Duration::from_millis(200)) {
            line = Some(l);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    line.expect("tail printed a line within 10 s")
}

#[test]
fn tail_json_prints_events_as_received() {
    let server = Server::start(POLICY);
    let line = first_tail_line(&server, &["tail", "--json", "--config", s(&server.config)]);
    let value: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(value["type"], "event");
    assert_eq!(value["kind"], "decision");
    assert_eq!(value["verdict"], "deny");
    assert_eq!(value["origin"], EVIL);
    assert_eq!(value["method"], "POST");
    assert_eq!(value["path"], "/mcp");
    assert_eq!(value["reason"], "origin not allowed");
    // Straight over loopback, with no trusted proxy: the peer.
    assert_eq!(value["client"], "127.0.0.1");
}

#[test]
fn tail_shows_the_client_a_trusted_proxy_forwarded_and_not_an_untrusted_ones() {
    // Loopback is the proxy here: every request of this test comes from 127.0.0.1.
    let server = Server::start(&format!("{POLICY}trusted_proxies = [\"127.0.0.0/8\"]\n"));
    let line = first_tail_line_with(
        &server,
        &["tail", "--json", "--config", s(&server.config)],
        &[("X-Forwarded-For", "6.6.6.6, 203.0.113.9")],
    );
    let value: serde_json::Value = serde_json::from_str(&line).expect("a JSON line");
    assert_eq!(value["origin"], EVIL);
    assert_eq!(value["client"], "203.0.113.9", "{line}");
    drop(server);

    // The same header from a peer that is not a trusted proxy names the peer.
    let untrusted = Server::start(&format!("{POLICY}trusted_proxies = [\"10.0.0.0/8\"]\n"));
    let line = first_tail_line_with(
        &untrusted,
        &["--socket", s(&untrusted.socket), "tail"],
        &[("X-Forwarded-For", "203.0.113.9")],
    );
    assert!(
        line.ends_with(&format!(
            " deny       {EVIL} POST /mcp client=127.0.0.1: origin not allowed"
        )),
        "{line}"
    );
}

#[test]
fn tail_prints_a_readable_line() {
    let server = Server::start(POLICY);
    let line = first_tail_line(&server, &["--socket", s(&server.socket), "tail"]);
    assert!(
        line.ends_with(&format!(
            " deny       {EVIL} POST /mcp client=127.0.0.1: origin not allowed"
        )),
        "{line}"
    );
    assert!(
        line.starts_with("20") && line.contains('T'),
        "a timestamp first: {line}"
    );
}

#[test]
fn check_accepts_a_valid_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("good.toml");
    std::fs::write(&file, POLICY).unwrap();
    let out = run(&["check", s(&file)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("ok"), "{}", stdout(&out));
}

#[test]
fn check_validates_trusted_proxies_as_the_server_does() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.toml");
    std::fs::write(&good, "trusted_proxies = [\"10.0.0.0/8\", \"fd00::7\"]\n").unwrap();
    let out = run(&["check", s(&good)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "max_age = 60\ntrusted_proxies = [\"10.0.0.0/33\"]\n").unwrap();
    let out = run(&["check", s(&bad)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("{}:2:", s(&bad)))
            && err.contains("trusted_proxies")
            && err.contains("10.0.0.0/33"),
        "{err}"
    );
}

#[test]
fn check_rejects_an_invalid_file_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "max_age = 60\nallowed_origins = [\"https://a.example/x\"]\n",
    )
    .unwrap();
    let out = run(&["check", s(&file)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:2:", s(&file))), "{err}");
    let column = err
        .split(&format!("{}:2:", s(&file)))
        .nth(1)
        .and_then(|rest| rest.split(':').next())
        .and_then(|c| c.parse::<usize>().ok());
    assert!(column.is_some_and(|c| c > 1), "a column: {err}");
}

#[test]
fn replies_larger_than_the_client_request_limit_are_read() {
    // 5 000 origins make a `policy` reply of ~150 KB, well over the 64 KiB a client may
    // send: the server is trusted, so the client reads its lines up to a far larger limit.
    let origins: Vec<String> = (0..5_000)
        .map(|i| format!("https://app-{i:05}.example.com"))
        .collect();
    let policy = format!(
        "allowed_origins = [\n{}]\n",
        origins
            .iter()
            .map(|o| format!("  \"{o}\",\n"))
            .collect::<String>()
    );
    assert!(policy.len() > mcp_cors::protocol::MAX_LINE);
    let server = Server::start(&policy);
    let out = run(&["origins", "list", "--config", s(&server.config)]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let listed: Vec<&str> = text.lines().collect();
    assert_eq!(listed, origins);
    let out = run(&["status", "--config", s(&server.config)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(field(&stdout(&out), "origins"), "5000");
}

#[test]
fn usage_errors_exit_1_with_clap_message_on_stderr() {
    for args in [
        vec!["--no-such-flag"],
        vec!["no-such-command"],
        vec!["origins"],
        vec!["origins", "add"],
        vec!["check"],
        vec!["tail", "--replay", "many"],
        vec!["--config", "a.toml", "--socket", "a.sock", "status"],
    ] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let err = stderr(&out);
        // An error, or (a subcommand missing) the subcommand's help, which names it.
        assert!(
            err.starts_with("error:") || err.contains("Usage: mcp-cors-tui origins"),
            "{args:?}: {err}"
        );
        assert!(stdout(&out).is_empty(), "{args:?}");
    }
}

#[test]
fn help_and_version_print_on_stdout_and_exit_0() {
    for args in [vec!["--help"], vec!["origins", "--help"], vec!["-h"]] {
        let out = run(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(stdout(&out).contains("Usage:"), "{args:?}");
    }
    let out = run(&["--version"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout(&out).contains(env!("CARGO_PKG_VERSION")),
        "{}",
        stdout(&out)
    );
}

#[test]
fn tail_exits_1_when_the_server_stops() {
    let server = Server::start(POLICY);
    let (mut child, rx) = spawn_tail(&["tail", "--config", s(&server.config)]);
    // Subscribed once it prints an event.
    let subscribed = (0..50).any(|_| {
        assert_eq!(server.post(EVIL), 403);
        rx.recv_timeout(Duration::from_millis(200)).is_ok()
    });
    assert!(subscribed, "tail printed a line within 10 s");
    drop(server);
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for tail") {
            break status;
        }
        if start.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            panic!("tail still running 20 s after the server stopped");
        }
        thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(status.code(), Some(1));
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut err)
        .expect("read stderr");
    assert!(err.contains("connection lost"), "{err}");
}

/// A socket at a fresh path whose only connection gets `greeting`, then is held open
/// for `hold`; returns the folder (keep it alive) and the path.
fn fake_socket(greeting: &'static [u8], hold: Duration) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.sock");
    let listener = UnixListener::bind(&path).unwrap();
    thread::spawn(move || {
        if let Ok((mut stream, _)) = listener.accept() {
            let _ = stream.write_all(greeting);
            thread::sleep(hold);
        }
    });
    (dir, path)
}

#[test]
fn a_socket_that_speaks_something_else_is_an_error() {
    let (_dir, path) = fake_socket(b"SSH-2.0-OpenSSH_9.2\r\n", Duration::from_secs(10));
    let out = run(&["--socket", s(&path), "origins", "list"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(s(&path)), "{err}");
    assert!(err.contains("unreadable line from the server"), "{err}");
}

#[test]
fn a_socket_that_never_says_hello_times_out() {
    let (_dir, path) = fake_socket(b"", Duration::from_secs(30));
    let start = std::time::Instant::now();
    let out = run(&["--socket", s(&path), "status"]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("no hello from the server"), "{err}");
    assert!(
        start.elapsed() < Duration::from_secs(25),
        "gave up on its own, before the peer closed"
    );
}

#[test]
fn check_on_a_missing_file_names_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("missing.toml");
    let out = run(&["check", s(&file)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains(s(&file)), "{err}");
    assert!(stdout(&out).is_empty());
}

#[test]
fn removing_an_absent_origin_without_a_server_fails_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cors.toml");
    std::fs::write(&config, POLICY).unwrap();
    let out = run(&["origins", "remove", EVIL, "--config", s(&config)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("not in"), "{err}");
    assert_eq!(std::fs::read_to_string(&config).unwrap(), POLICY);
}

#[test]
fn check_prints_every_error_of_a_file_with_line_and_column() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(
        &file,
        "max_age = 60\n\
         allowed_origins = [\"https://a.example/x\", \"ftp://b.example\"]\n\
         allowed_methods = [\"G ET\"]\n",
    )
    .unwrap();
    let out = run(&["check", s(&file)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    let located: Vec<(usize, usize)> = err
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{}:", s(&file))))
        .filter_map(|rest| {
            let mut parts = rest.splitn(3, ':');
            let line = parts.next()?.parse().ok()?;
            let column = parts.next()?.parse().ok()?;
            Some((line, column))
        })
        .collect();
    assert_eq!(located, [(2, 20), (2, 43), (3, 20)], "{err}");
    assert!(err.contains("https://a.example/x"), "{err}");
    assert!(err.contains("ftp://b.example"), "{err}");
    assert!(err.contains("G ET"), "{err}");
}

#[test]
fn a_custom_socket_is_found_while_the_config_is_broken() {
    let policy = format!("{POLICY}\n[admin]\nsocket = \"admin.sock\"\n");
    let server = Server::start_at(&policy, "admin.sock");
    // A syntax error above the [admin] table: the server keeps its last good policy and
    // its socket; the client must still find that socket from the file.
    std::fs::write(
        &server.config,
        format!("max_age = \n{POLICY}\n[admin]\nsocket = \"admin.sock\"\n"),
    )
    .unwrap();
    common::wait_for(Duration::from_secs(10), "the reload error", || {
        let out = run(&["status", "--config", s(&server.config)]);
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(field(&stdout(&out), "socket"), s(&server.socket));
        field(&stdout(&out), "last reload error") != "none"
    });
}

#[test]
fn a_stats_reply_with_hundreds_of_tracked_origins_is_read() {
    let server = Server::start(POLICY);
    // Long origins so that 600 entries (~150 bytes each) pass 64 KiB.
    for i in 0..600 {
        let origin = format!("https://client-{i:04}.a-rather-long-subdomain-name.example.org");
        assert_eq!(server.post(&origin), 403);
    }
    let out = run(&["status", "--config", s(&server.config)]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(field(&stdout(&out), "denied"), "600");
}

/// Whether `text` holds a control character (C0, DEL or C1) that a terminal would act on.
fn has_raw_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && c != '\n')
}

#[test]
fn tail_escapes_control_characters_that_a_request_carried() {
    let server = Server::start(POLICY);
    // HTTP/1.1 lets C1 (as UTF-8 obs-text) and tab through in a header value; C0 and DEL
    // are refused by the server's parser before any decision is made.
    let hostile = "https://evil.example\u{9b}2J\tx";
    assert_eq!(
        common::post(server.addr, "https://evil.example\x1b[31m\x7f"),
        400
    );
    let (mut child, rx) = spawn_tail(&["tail", "--config", s(&server.config)]);
    let mut line = None;
    for _ in 0..50 {
        assert_eq!(server.post(hostile), 403);
        if let Ok(Ok(l)) = rx.recv_timeout(Duration::from_millis(200)) {
            line = Some(l);
            break;
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("tail printed a line within 10 s");
    assert!(!has_raw_control(&line), "{line:?}");
    assert!(
        line.contains(r"https://evil.example\u{9b}2J\x09x POST /mcp"),
        "{line:?}"
    );
}

#[test]
fn tail_escapes_c0_c1_and_del_and_json_stays_exact() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fake.sock");
    // As a server sends it: serde escapes C0 in JSON strings; DEL and C1 travel as is.
    let event = "{\"type\":\"event\",\"kind\":\"decision\",\"at_ms\":1700000000000,\"verdict\":\"deny\",\"origin\":\"https://evil.example\\u001b[31m\u{9b}2J\u{7f}\",\"method\":\"POST\",\"path\":\"/mcp\",\"preflight\":false,\"reason\":\"origin not allowed\"}";
    common::fake_server(&path, vec![event.to_owned()]);
    let (mut child, rx) = spawn_tail(&["--socket", s(&path), "tail"]);
    let line = rx.recv_timeout(Duration::from_secs(10));
    let _ = child.kill();
    let _ = child.wait();
    let line = line.expect("tail printed a line").expect("UTF-8 output");
    assert!(!has_raw_control(&line), "{line:?}");
    assert!(
        line.ends_with(
            r" deny       https://evil.example\x1b[31m\u{9b}2J\x7f POST /mcp: origin not allowed"
        ),
        "{line:?}"
    );

    let (mut child, rx) = spawn_tail(&["--socket", s(&path), "tail", "--json"]);
    let line = rx.recv_timeout(Duration::from_secs(10));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(
        line.expect("tail printed a line").expect("UTF-8 output"),
        event
    );
}

/// `check` reads through the server's own reader: what the server refuses, `check`
/// refuses, however odd the file (it used to accept an empty file and block on a FIFO).
#[test]
fn check_agrees_with_the_server_on_empty_odd_and_misspelt_files() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.toml");
    std::fs::write(&empty, "# only a comment\n").unwrap();
    let out = run(&["check", s(&empty)]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stderr(&out).contains("empty"), "{}", stderr(&out));

    let fifo = dir.path().join("fifo.toml");
    let c = std::ffi::CString::new(s(&fifo)).unwrap();
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
    let start = std::time::Instant::now();
    let out = run(&["check", s(&fifo)]);
    assert!(
        start.elapsed() < std::time::Duration::from_secs(5),
        "blocked on the FIFO"
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("FIFO"), "{}", stderr(&out));

    let typos = dir.path().join("typos.toml");
    std::fs::write(&typos, "alowed_origins = []\nmax_agee = 1\n").unwrap();
    let out = run(&["check", s(&typos)]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains(":1:") && err.contains("alowed_origins"),
        "{err}"
    );
    assert!(err.contains(":2:") && err.contains("max_agee"), "{err}");
}

#[test]
fn several_sockets_or_a_pattern_are_for_the_interactive_ui_only() {
    for args in [
        &[
            "--socket",
            "/tmp/a.sock",
            "--socket",
            "/tmp/b.sock",
            "status",
        ][..],
        &["--socket", "/run/mcp/*/cors.sock", "origins", "list"][..],
    ] {
        let out = run(args);
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("several --socket, or a pattern, are for the interactive UI"),
            "{args:?}: {stderr}"
        );
    }
}
