//! `mcp-cors-tui probe` against the example MCP server (`examples/mcp_server.rs`, a real
//! process, behind a copy of its `examples/cors.toml`): the exit codes a CI job or an
//! uptime monitor relies on.

use std::process::{Command, Output};

use serde_json::Value;

mod support;
use support::binaries::probe_binary;
use support::example::{Example, free_port};

/// Listed in `examples/cors.toml`.
const ALLOWED: &str = "http://localhost:5173";
const REFUSED: &str = "https://evil.example";

fn probe(args: &[&str]) -> Output {
    Command::new(probe_binary())
        .arg("probe")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run the probe")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn an_allowed_origin_passes_every_step_and_exits_0() {
    let server = Example::start();
    let out = probe(&[&server.url(), "--origin", ALLOWED, "--json"]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    let report: Value = serde_json::from_str(&stdout).expect("JSON");
    assert_eq!(report["ok"], true);
    assert_eq!(report["origin"], ALLOWED);
    assert_eq!(report["url"], server.url());
    let names: Vec<&str> = report["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| s["name"].as_str().expect("a name"))
        .collect();
    assert_eq!(
        names,
        [
            "initialize preflight",
            "initialize",
            "notifications/initialized preflight",
            "notifications/initialized",
            "tools/list preflight",
            "tools/list",
            "GET stream preflight",
            "GET stream",
            "DELETE preflight",
            "DELETE",
            "guard: foreign Origin",
            "guard: foreign Host",
        ]
    );
    assert_eq!(report["warnings"], serde_json::json!([]), "{stdout}");

    let human = probe(&[&server.url(), "--origin", ALLOWED]);
    let lines = text(&human.stdout);
    assert_eq!(human.status.code(), Some(0));
    assert!(lines.contains("✔ tools/list: 200, 3 tools"), "{lines}");
    assert!(!lines.contains('✘') && !lines.contains('\x1b'), "{lines}");
}

#[test]
fn another_origin_fails_at_the_first_preflight_and_exits_1() {
    let server = Example::start();
    let out = probe(&[&server.url(), "--origin", REFUSED]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("initialize preflight failed: Response to preflight request doesn't pass access control check: No 'Access-Control-Allow-Origin' header is present on the requested resource."),
        "{stderr}"
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("✘ initialize preflight"), "{stdout}");
    assert!(stdout.contains("✔ guard: foreign Origin: 403"), "{stdout}");
    // A public page calling a loopback server: Chrome's Local Network Access applies.
    assert!(stdout.contains("Local Network Access"), "{stdout}");
}

#[test]
fn no_server_or_a_bad_command_line_exits_2() {
    let url = format!("http://127.0.0.1:{}/mcp", free_port());
    let out = probe(&[&url, "--origin", ALLOWED]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("cannot reach"),
        "{}",
        text(&out.stderr)
    );
    let out = probe(&[&url]);
    assert_eq!(out.status.code(), Some(2), "missing --origin");
    let out = probe(&[&url, "--origin", "http://localhost:5173/app"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("scheme://host[:port]"),
        "{}",
        text(&out.stderr)
    );
}
