//! The interactive UI end to end: the real binary in a real terminal (tmux), against a
//! real server. A denied request shows up; allowing it from the denied-origins panel makes
//! the next request from that origin pass, and the policy file on disk holds it.

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use common::tmux::{Tmux, holds_in_order};
use common::{EVIL, POLICY, Server, s, wait_for};

/// The interactive UI with `flags`, on the server of `config`, in a tmux of its own.
fn ui(flags: &[&str], config: &std::path::Path) -> Tmux {
    let mut args: Vec<String> = flags.iter().map(|f| (*f).to_owned()).collect();
    args.extend(["--config".to_owned(), s(config).to_owned()]);
    Tmux::run(Path::new(env!("CARGO_BIN_EXE_mcp-cors-tui")), &args)
}

#[test]
fn a_denied_origin_is_allowed_from_the_denied_panel() {
    let server = Server::start(POLICY);
    assert_eq!(server.post(EVIL), 403);
    let tmux = ui(&[], &server.config);

    // The refusal arrives through the replay, the counters through the first poll.
    tmux.wait_for_text("● connected");
    tmux.wait_for_row(&["DENY", "POST", EVIL, "/mcp", "origin not allowed"]);
    tmux.wait_for_text("denied 1");

    tmux.keys(&["Tab"]);
    tmux.keys(&["a"]);
    // The add prompt, filled in with the denied origin, on the top level (the route
    // that refused it: the policy has none).
    tmux.wait_for_text(&format!("adds {EVIL} to allowed_origins"));
    tmux.keys(&["Enter"]);
    tmux.wait_for_text(&format!("allowed {EVIL}"));

    assert_eq!(server.post(EVIL), 200, "the next request from it passes");
    assert!(server.policy_text().contains(&format!("\"{EVIL}\"")));
    assert!(
        server.policy_text().contains("# the web UI"),
        "comments kept"
    );
    tmux.wait_for_text(&format!("RELOADED   +{EVIL}"));
    // An ALLOW line for it: the earlier DENY line also shows `POST {EVIL} /mcp`.
    tmux.wait_for_row(&["ALLOW", "POST", EVIL, "/mcp"]);
    tmux.wait_for_text("allowed 1");
    // Allowed now: it has left the denied panel.
    tmux.wait_for_text("no origin refused yet");

    tmux.quit();
}

#[test]
fn read_only_refuses_every_edit_key_and_the_file_is_untouched() {
    let server = Server::start(POLICY);
    assert_eq!(server.post(EVIL), 403);
    let before = server.policy_text();
    let tmux = ui(&["--read-only"], &server.config);
    tmux.wait_for_text("● connected");
    tmux.wait_for_text("READ-ONLY: no edits");
    tmux.wait_for_row(&["DENY", "POST", EVIL, "/mcp", "origin not allowed"]);

    // `a` on the denied origin, `n`, `h`, and `d` on the policy panel: each refused,
    // no dialog opens.
    tmux.keys(&["Tab", "a"]);
    tmux.wait_for_text("read-only: edits are off");
    for key in ["n", "h", "Tab", "d"] {
        tmux.keys(&[key]);
    }
    std::thread::sleep(Duration::from_millis(300));
    let screen = tmux.screen();
    assert!(
        !screen.contains("Add an allowed"),
        "no add dialog:\n{screen}"
    );
    assert!(!screen.contains("Remove "), "no remove question:\n{screen}");
    tmux.keys(&["Enter", "y"]);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(server.policy_text(), before, "the policy file is untouched");
    assert_eq!(server.post(EVIL), 403, "and it is still refused");

    tmux.quit();
}

#[test]
fn read_only_is_refused_with_a_subcommand() {
    let out = Command::new(env!("CARGO_BIN_EXE_mcp-cors-tui"))
        .args(["--read-only", "origins", "add", EVIL])
        .output()
        .expect("run mcp-cors-tui");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("--read-only is for the interactive UI"),
        "{stderr}"
    );
}

#[test]
fn the_ui_reconnects_when_the_server_restarts() {
    let server = Server::start(POLICY);
    assert_eq!(server.post(EVIL), 403);
    let config = server.config.clone();
    let tmux = ui(&[], &config);
    tmux.wait_for_text("● connected");
    tmux.wait_for_row(&["DENY", "POST", EVIL, "/mcp", "origin not allowed"]);

    // Keep the folder (and the event already on screen) but stop the server.
    let dir = server.stop();
    tmux.wait_for_text("✕ disconnected");
    tmux.wait_for_row(&["DENY", "POST", EVIL, "/mcp", "origin not allowed"]);

    let restarted = Server::start_in(dir, POLICY);
    tmux.wait_for_text("● connected");
    assert_eq!(restarted.post("https://other.example"), 403);
    tmux.wait_for_row(&[
        "DENY",
        "POST",
        "https://other.example",
        "/mcp",
        "origin not allowed",
    ]);
    let screen = tmux.screen();
    assert!(
        screen
            .lines()
            .any(|l| holds_in_order(l, &["DENY", EVIL, "/mcp"])),
        "the old events are kept:\n{screen}"
    );
}

/// Status of a `POST path` from `origin` to `server`.
fn post_to(server: &Server, path: &str, origin: &str) -> u16 {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(server.addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: localhost\r\nOrigin: {origin}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    response
        .split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

#[test]
fn an_origin_refused_on_a_route_is_allowed_on_that_route_from_the_ui() {
    let policy = format!("{POLICY}\n[routes.meta]\npaths = [\"/meta/*\"]\nallowed_origins = []\n");
    let server = Server::start(&policy);
    assert_eq!(post_to(&server, "/meta/x", EVIL), 403);
    let tmux = ui(&[], &server.config);
    tmux.wait_for_row(&[
        "DENY",
        "meta",
        "POST",
        EVIL,
        "/meta/x",
        "origin not allowed",
    ]);
    tmux.wait_for_text("route meta  /meta/*");
    tmux.wait_for_text("denied 1");

    tmux.keys(&["Tab"]);
    tmux.keys(&["a"]);
    // Filled in, on the route whose refusal it was.
    tmux.wait_for_text(&format!("adds {EVIL} to routes.meta.allowed_origins"));
    tmux.keys(&["Enter"]);
    tmux.wait_for_text(&format!("allowed {EVIL} (route meta)"));
    assert_eq!(post_to(&server, "/meta/x", EVIL), 200);
    assert_eq!(
        post_to(&server, "/mcp", EVIL),
        403,
        "the top level is unchanged"
    );
    assert!(
        server.policy_text().ends_with(&format!(
            "[routes.meta]\npaths = [\"/meta/*\"]\nallowed_origins = [\"{EVIL}\"]\n"
        )),
        "{}",
        server.policy_text()
    );
    tmux.quit();
}

#[test]
fn an_edit_from_the_ui_is_audited_with_the_ui_as_its_peer() {
    let policy = format!(
        "{POLICY}\n[routes.meta]\npaths = [\"/meta/*\"]\nallowed_origins = []\n\n[admin]\naudit_log = \"audit.jsonl\"\n"
    );
    let server = Server::start(&policy);
    assert_eq!(post_to(&server, "/meta/x", EVIL), 403);
    let binary = std::fs::canonicalize(env!("CARGO_BIN_EXE_mcp-cors-tui")).expect("binary");
    let tmux = ui(&[], &server.config);
    tmux.wait_for_row(&[
        "DENY",
        "meta",
        "POST",
        EVIL,
        "/meta/x",
        "origin not allowed",
    ]);
    tmux.keys(&["Tab"]);
    tmux.keys(&["a"]);
    tmux.wait_for_text(&format!("adds {EVIL} to routes.meta.allowed_origins"));
    tmux.keys(&["Enter"]);
    tmux.wait_for_text(&format!("allowed {EVIL} (route meta)"));
    // The record reaches the UI on the event stream, as one line of the tail.
    tmux.wait_for_row(&["AUDIT", "add-origin", EVIL, "route=meta", "uid="]);

    let log = server.folder.join("audit.jsonl");
    wait_for(Duration::from_secs(10), "the audit record", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.ends_with('\n'))
    });
    let text = std::fs::read_to_string(&log).expect("read the audit log");
    let records: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(records.len(), 1, "{text}");
    let record = &records[0];
    assert_eq!(record["action"], "add-origin");
    assert_eq!(record["origin"], EVIL);
    assert_eq!(record["route"], "meta");
    assert_eq!(record["exe"], s(&binary), "the UI's executable: {record}");
    // The pid is the UI's, still running in the terminal: its executable is the binary.
    let pid = record["pid"].as_u64().expect("a pid");
    let running = std::fs::read_link(format!("/proc/{pid}/exe")).expect("the UI is running");
    assert_eq!(running, binary);

    tmux.quit();
}
