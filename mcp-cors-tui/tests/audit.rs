//! The audit trail end to end: a real server (`McpCors::watched`) with `[admin]
//! audit_log`, edited by the real `mcp-cors-tui` binary over the real admin socket and by
//! hand; `mcp-cors-tui audit [--json]` reads the trail from the server, and from the file
//! once the server is gone.

mod common;

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use common::{EVIL, Server, bin, run, s, wait_for};
use serde_json::Value;

const POLICY: &str = "\
# Test policy.
allowed_origins = [
  \"https://app.example.com\",  # the web UI
]
max_age = 60

[admin]
audit_log = \"audit.jsonl\"  # relative to this file's folder
";

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs the binary with `args`, returning its pid and output; fails the test unless it
/// succeeded.
fn run_ok(args: &[&str]) -> (u32, Output) {
    let child = bin()
        .args(args)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run mcp-cors-tui");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait for mcp-cors-tui");
    assert!(
        out.status.success(),
        "{args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (pid, out)
}

/// The records `audit --json` prints for `config`.
fn audit_json(config: &Path) -> Vec<Value> {
    let (_, out) = run_ok(&["audit", "--json", "--config", s(config)]);
    stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?}: {e}")))
        .collect()
}

/// The records in the audit log file, once it holds `n` of them.
fn file_records(path: &Path, n: usize) -> Vec<Value> {
    wait_for(Duration::from_secs(10), "the audit log's records", || {
        std::fs::read_to_string(path).is_ok_and(|t| t.lines().count() >= n)
    });
    std::fs::read_to_string(path)
        .expect("read the audit log")
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

fn the_binary() -> PathBuf {
    std::fs::canonicalize(env!("CARGO_BIN_EXE_mcp-cors-tui")).expect("the binary's path")
}

#[test]
fn audit_records_for_the_cli_name_the_cli_process_and_are_read_with_and_without_a_server() {
    let server = Server::start(POLICY);
    let config = server.config.clone();
    let cfg = s(&config);
    let uid = std::fs::metadata(&config).expect("config").uid();
    let (add, _) = run_ok(&["origins", "add", EVIL, "--config", cfg]);
    let (remove, _) = run_ok(&["origins", "remove", EVIL, "--config", cfg]);
    let (host, _) = run_ok(&["hosts", "add", "API.example.com", "--config", cfg]);
    // Already there: nothing changed, nothing to audit.
    run_ok(&["hosts", "add", "api.example.com", "--config", cfg]);

    let records = audit_json(&config);
    let exe = the_binary();
    let expected = [
        ("add-origin", "origin", EVIL, add),
        ("remove-origin", "origin", EVIL, remove),
        ("add-host", "host", "api.example.com", host),
    ];
    assert_eq!(
        records.len(),
        3,
        "one record per change, none for the edits' own reloads: {records:#?}"
    );
    for (record, (action, key, entry, pid)) in records.iter().zip(expected) {
        assert_eq!(record["action"], action, "{record}");
        assert_eq!(record[key], entry, "{record}");
        assert_eq!(record["uid"], uid, "{record}");
        assert_eq!(
            record["pid"], pid,
            "the pid of the CLI process that edited: {record}"
        );
        assert_eq!(record["exe"], s(&exe), "{record}");
        assert!(
            record["at_ms"]
                .as_u64()
                .is_some_and(|t| t > 1_600_000_000_000)
        );
        assert!(record.get("route").is_none() && record.get("diff").is_none());
    }

    // The same records in the file, created 0600 next to the config.
    let log = server.folder.join("audit.jsonl");
    assert_eq!(file_records(&log, 3), records);
    let mode = std::fs::metadata(&log).expect("log").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);

    let (_, out) = run_ok(&["audit", "--config", cfg]);
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 3, "{text}");
    assert!(
        lines[0].contains(&format!("add-origin    {EVIL} uid={uid} pid={add} exe=")),
        "{text}"
    );
    assert!(
        lines[2].contains(&format!(
            "add-host      api.example.com uid={uid} pid={host}"
        )),
        "{text}"
    );

    // No server: the file is read, with the same result.
    let dir = server.stop();
    let config = dir.path().join("cors.toml");
    assert_eq!(audit_json(&config), records);
    let (_, out) = run_ok(&["audit", "--config", s(&config)]);
    assert_eq!(stdout(&out), text);
}

#[test]
fn a_hand_edit_is_audited_as_a_reload_with_its_diff_and_a_no_op_or_bad_save_is_not() {
    let server = Server::start(POLICY);
    let config = server.config.clone();
    let edited = POLICY
        .replace(
            "  \"https://app.example.com\",  # the web UI\n",
            "  \"https://app.example.com\",  # the web UI\n  \"https://docs.example.com\",\n",
        )
        .replace("max_age = 60", "max_age = 120");
    std::fs::write(&config, &edited).expect("save by hand");
    wait_for(Duration::from_secs(10), "the reload's record", || {
        !audit_json(&config).is_empty()
    });
    let records = audit_json(&config);
    assert_eq!(records.len(), 1, "{records:#?}");
    let reload = &records[0];
    assert_eq!(reload["action"], "reload");
    assert_eq!(reload["source"], "file");
    assert_eq!(
        reload["diff"]["origins_added"],
        serde_json::json!(["https://docs.example.com"])
    );
    assert_eq!(
        reload["diff"]["keys_changed"],
        serde_json::json!(["max_age"])
    );
    assert!(
        reload.get("uid").is_none() && reload.get("pid").is_none(),
        "{reload}"
    );

    // A comment-only save, then an invalid one: the policy does not change, no record.
    std::fs::write(&config, format!("# reviewed\n{edited}")).expect("save a comment");
    // Let the watcher take this save in on its own, not folded into the next one.
    std::thread::sleep(Duration::from_millis(500));
    std::fs::write(&config, "allowed_origins = [\"not an origin\"]\n").expect("save a typo");
    wait_for(
        Duration::from_secs(10),
        "the bad save to be refused",
        || {
            let (_, out) = run_ok(&["status", "--json", "--config", s(&config)]);
            stdout(&out).contains("not an origin")
        },
    );
    assert_eq!(
        audit_json(&config),
        records,
        "no record for a no-op or a refused save"
    );

    let (_, out) = run_ok(&["audit", "--config", s(&config)]);
    let text = stdout(&out);
    assert!(
        text.ends_with(" reload        +https://docs.example.com changed max_age (file)\n"),
        "{text}"
    );
    let log = server.folder.join("audit.jsonl");
    assert_eq!(file_records(&log, 1), records);
}

#[test]
fn without_a_server_or_an_audit_log_the_error_says_so() {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("cors.toml");
    std::fs::write(&config, "allowed_origins = []\n").expect("write");
    let out = run(&["audit", "--config", s(&config)]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no [admin] audit_log"), "{err}");
}
