//! `origins`, `hosts` and `status` with the policy file named and no server running: they
//! work on the file itself, as safely as the server would (real processes, real files).

mod common;

use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::Path;
use std::process::{Output, Stdio};
use std::thread;

use common::{APP, POLICY, Server, bin, run, s};

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// A `cors.toml` holding `policy` in a fresh folder, no server.
fn policy_file(policy: &str) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cors.toml");
    fs::write(&config, policy).unwrap();
    (dir, config)
}

/// `origins add https://b.example` on `config`.
fn add_b(config: &Path) -> Output {
    run(&["--config", s(config), "origins", "add", "https://b.example"])
}

fn ok(out: &Output) -> String {
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout {:?} stderr {:?}",
        stdout(out),
        stderr(out)
    );
    stdout(out)
}

#[test]
fn with_no_server_origins_and_hosts_edit_the_file_itself_keeping_comments() {
    let (dir, config) = policy_file(POLICY);
    let c = s(&config);
    assert_eq!(
        ok(&run(&["--config", c, "origins", "list"])),
        format!("{APP}\n")
    );
    let out = run(&["--config", c, "origins", "add", "https://B.example"]);
    assert_eq!(ok(&out), "allowed https://b.example\n");
    let note = stderr(&out);
    assert!(
        note.contains("no server answers at") && note.contains(s(&dir.path().join("cors.sock"))),
        "{note}"
    );
    assert!(note.contains("edited directly"), "{note}");
    assert_eq!(
        ok(&run(&["--config", c, "hosts", "add", "mcp.example.com"])),
        "allowed host mcp.example.com\n"
    );
    assert_eq!(
        ok(&run(&["--config", c, "origins", "remove", APP])),
        format!("removed {APP}\n")
    );
    assert_eq!(
        fs::read_to_string(&config).unwrap(),
        "# Test policy.\nallowed_origins = [\n  \"https://b.example\",\n]\n\
         allowed_hosts = [\"localhost\", \"127.0.0.1\", \"[::1]\", \"mcp.example.com\"]\n"
    );
    // `--source FILE` names the file as `--config` does.
    assert_eq!(
        ok(&run(&["--source", c, "hosts", "list"])),
        "localhost\n127.0.0.1\n[::1]\nmcp.example.com\n"
    );
}

#[test]
fn with_no_server_status_reports_the_file() {
    let (dir, config) = policy_file(POLICY);
    let status = ok(&run(&["--config", s(&config), "status"]));
    assert!(
        status.contains("valid:") && status.contains("yes"),
        "{status}"
    );
    assert!(
        status.contains(&format!(
            "none answering at {}",
            dir.path().join("cors.sock").display()
        )),
        "{status}"
    );
    let json = ok(&run(&["--config", s(&config), "status", "--json"]));
    let doc: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(doc["valid"], true, "{doc}");
    assert_eq!(doc["origins"], 1, "{doc}");
    assert!(doc["server"].is_null(), "{doc}");
    fs::write(&config, "allowed_origins = [\n").unwrap();
    let status = ok(&run(&["--config", s(&config), "status"]));
    assert!(
        status.contains("valid:") && status.contains("no: "),
        "{status}"
    );
}

#[test]
fn a_socket_a_stopped_server_left_behind_is_no_server() {
    let (dir, config) = policy_file(POLICY);
    let socket = dir.path().join("cors.sock");
    // Bound, then nobody listens: connecting is refused, as after a crash.
    drop(UnixListener::bind(&socket).unwrap());
    assert!(socket.exists());
    let out = add_b(&config);
    assert_eq!(ok(&out), "allowed https://b.example\n");
    assert!(
        fs::read_to_string(&config)
            .unwrap()
            .contains("https://b.example")
    );
}

#[test]
fn with_a_server_running_the_edit_goes_through_it() {
    let server = Server::start(POLICY);
    let out = add_b(&server.config);
    assert_eq!(ok(&out), "allowed https://b.example\n");
    assert!(!stderr(&out).contains("directly"), "{}", stderr(&out));
    assert_eq!(server.post("https://b.example"), 200, "served at once");
}

#[test]
fn two_operators_adding_twenty_origins_each_at_once_lose_none_and_keep_owner_and_mode() {
    let (_dir, config) = policy_file(POLICY);
    fs::set_permissions(&config, fs::Permissions::from_mode(0o640)).unwrap();
    // Tests run as root, who may give the file away: the edits must give it back.
    std::os::unix::fs::chown(&config, Some(65534), Some(65534)).unwrap();
    let operators: Vec<_> = ["a", "b"]
        .into_iter()
        .map(|who| {
            let config = config.clone();
            thread::spawn(move || {
                let children: Vec<_> = (0..20)
                    .map(|i| {
                        bin()
                            .args(["--config", s(&config), "origins", "add"])
                            .arg(format!("https://{who}{i}.example"))
                            .stdout(Stdio::piped())
                            .stderr(Stdio::piped())
                            .spawn()
                            .unwrap()
                    })
                    .collect();
                children
                    .into_iter()
                    .map(|c| c.wait_with_output())
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    // Forty processes at once, twenty from each operator.
    for operator in operators {
        for out in operator.join().unwrap() {
            ok(&out.unwrap());
        }
    }
    let listed = ok(&run(&["--config", s(&config), "origins", "list"]));
    for who in ["a", "b"] {
        for i in 0..20 {
            assert!(
                listed.contains(&format!("https://{who}{i}.example\n")),
                "{who}{i} lost: {listed}"
            );
        }
    }
    assert_eq!(listed.lines().count(), 41, "{listed}");
    let text = fs::read_to_string(&config).unwrap();
    assert!(text.starts_with("# Test policy.\n"), "{text}");
    assert!(text.contains("# the web UI"), "{text}");
    let meta = fs::metadata(&config).unwrap();
    assert_eq!(
        (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        (65534, 65534, 0o640)
    );
    let leftovers: Vec<_> = fs::read_dir(config.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .filter(|n| n != "cors.toml")
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
}

#[test]
fn an_invalid_file_is_refused_naming_where_and_left_byte_for_byte() {
    let broken = "# half-saved\nallowed_origins = [\"https://a.example\"\n";
    let (_dir, config) = policy_file(broken);
    let out = add_b(&config);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).is_empty(), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(err.contains(&format!("{}:2:", s(&config))), "{err}");
    assert!(err.contains("nothing was changed"), "{err}");
    assert_eq!(fs::read_to_string(&config).unwrap(), broken);
}

#[test]
fn a_file_managed_elsewhere_through_a_symlink_is_refused() {
    // A ConfigMap volume: cors.toml -> ..data/cors.toml.
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("..data")).unwrap();
    let real = dir.path().join("..data/cors.toml");
    fs::write(&real, POLICY).unwrap();
    let config = dir.path().join("cors.toml");
    std::os::unix::fs::symlink(Path::new("..data/cors.toml"), &config).unwrap();
    let out = add_b(&config);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(
        err.contains("symlink") && err.contains("ConfigMap"),
        "{err}"
    );
    assert_eq!(fs::read_to_string(&real).unwrap(), POLICY);
}

#[test]
fn an_edit_with_no_server_is_on_the_audit_trail() {
    let policy = format!("{POLICY}\n[admin]\naudit_log = \"audit.jsonl\"\n");
    let (_dir, config) = policy_file(&policy);
    ok(&add_b(&config));
    let trail = ok(&run(&["--config", s(&config), "audit", "--json"]));
    let records: Vec<serde_json::Value> = trail
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 1, "{trail}");
    let record = &records[0];
    assert_eq!(record["action"], "add-origin", "{record}");
    assert_eq!(record["origin"], "https://b.example", "{record}");
    assert_eq!(record["uid"], 0, "{record}");
    assert!(
        record["exe"]
            .as_str()
            .is_some_and(|e| e.ends_with("mcp-cors-tui")),
        "{record}"
    );
}
