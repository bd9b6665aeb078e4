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
    for args in [
        vec!["status", "--config", s(&config)],
        vec!["origins", "list", "--config", s(&config)],
        vec!["tail", "--config", s(&config)],
        vec!["--socket", s(&derived), "origins", "add", APP],
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

/// Spawns `tail` with `args`, makes denied requests until it prints a line, returns it.
fn first_tail_line(server: &Server, args: &[&str]) -> String {
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
    // The subscription starts asynchronously: request until a line shows up.
    let mut line = None;
    for _ in 0..50 {
        assert_eq!(server.post(EVIL), 403);
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
}

#[test]
fn tail_prints_a_readable_line() {
    let server = Server::start(POLICY);
    let line = first_tail_line(&server, &["--socket", s(&server.socket), "tail"]);
    assert!(
        line.ends_with(&format!(" deny       {EVIL} POST /mcp: origin not allowed")),
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
