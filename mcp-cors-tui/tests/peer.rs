//! The CLI checks who owns the socket it talks to: in a sticky shared folder another user
//! can bind `cors.sock` first and answer like a server would.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use mcp_cors::protocol::{PROTOCOL, Request, ServerLine, VERSION};

use common::{run, s};

/// The user the squatter runs as; created by the test when missing.
const SQUATTER: &str = "mcpcors-squat";
/// Tells the re-run test binary to play the squatter on this socket path.
const SQUAT_ENV: &str = "MCP_CORS_SQUAT_SOCKET";
const READY: &str = "SQUATTER_READY";

/// The uid of `name`, creating it as a system user first if needed.
fn ensure_user(name: &str) -> u32 {
    let uid = |name: &str| {
        Command::new("id")
            .args(["-u", name])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
    };
    if let Some(uid) = uid(name) {
        return uid;
    }
    let made = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            name,
        ])
        .status()
        .expect("run useradd (this test needs root to create another user)");
    assert!(
        made.success(),
        "useradd {name} failed: this test needs root"
    );
    uid(name).expect("the user just created has a uid")
}

/// The primary gid of `name`.
fn gid_of(name: &str) -> u32 {
    let out = Command::new("id")
        .args(["-g", name])
        .output()
        .expect("run id");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a numeric gid")
}

#[test]
fn a_socket_squatted_by_another_user_is_refused_naming_its_uid() {
    // SAFETY: geteuid has no preconditions and cannot fail.
    let me = unsafe { libc::geteuid() };
    assert_eq!(
        me, 0,
        "this test needs root: it creates a user and runs as it"
    );
    let uid = ensure_user(SQUATTER);
    let gid = gid_of(SQUATTER);

    // A shared folder like /tmp: everyone may create files, only owners remove them.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o1777)).unwrap();
    let socket = dir.path().join("cors.sock");

    // This test binary, run again as the other user, binds the socket and answers.
    let mut squatter = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "squatter", "--nocapture", "--test-threads=1"])
        .env(SQUAT_ENV, &socket)
        .uid(uid)
        .gid(gid)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the squatter");
    let stdout = squatter.stdout.take().expect("piped stdout");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if line.contains(READY) {
                let _ = tx.send(());
            }
        }
    });
    let ready = rx.recv_timeout(Duration::from_secs(20));
    if ready.is_err() {
        let _ = squatter.kill();
        panic!("the squatter did not bind {}", socket.display());
    }

    // With the policy file named too, a squatted socket is no reason to go around the
    // server and edit the file directly: that is not "no server running".
    let config = dir.path().join("cors.toml");
    std::fs::write(&config, common::POLICY).unwrap();
    let outs = [
        run(&["--socket", s(&socket), "origins", "remove", common::APP]),
        run(&["--config", s(&config), "origins", "remove", common::APP]),
        run(&["--config", s(&config), "status"]),
    ];
    let _ = squatter.kill();
    let _ = squatter.wait();
    for out in outs {
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            out.status.code(),
            Some(1),
            "stdout {stdout:?} stderr {stderr:?}"
        );
        assert!(!stdout.contains("removed"), "{stdout}");
        assert!(!stderr.contains("removed"), "{stderr}");
        assert!(!stderr.contains("directly"), "{stderr}");
        assert!(stderr.contains(&format!("uid {uid}")), "{stderr}");
        assert!(stderr.contains(s(&socket)), "{stderr}");
    }
    assert_eq!(std::fs::read_to_string(&config).unwrap(), common::POLICY);
}

/// Not a test on its own: the squatter of the test above, run as another user. Binds the
/// socket and answers every connection as a server that agrees to everything would.
#[test]
fn squatter() {
    let Some(path) = std::env::var_os(SQUAT_ENV) else {
        return;
    };
    let listener = UnixListener::bind(&path).expect("bind the squatted socket");
    println!("{READY}");
    for stream in listener.incoming().map_while(Result::ok) {
        thread::spawn(move || agree_to_everything(stream));
    }
}

fn agree_to_everything(mut stream: UnixStream) {
    let hello = ServerLine::Hello {
        protocol: PROTOCOL.into(),
        version: VERSION,
        server: "0.1.0".into(),
        hostname: None,
        pid: None,
    };
    let _ = writeln!(stream, "{}", serde_json::to_string(&hello).unwrap());
    let reader = BufReader::new(stream.try_clone().expect("clone the stream"));
    for line in reader.lines().map_while(Result::ok) {
        let reply = match serde_json::from_str::<Request>(&line) {
            Ok(Request::Hello { .. }) => ServerLine::HelloOk,
            Ok(Request::AddOrigin { origin, .. } | Request::RemoveOrigin { origin, .. }) => {
                ServerLine::OriginChanged {
                    origin,
                    changed: true,
                    route: None,
                }
            }
            _ => ServerLine::Subscribed { replayed: 0 },
        };
        let _ = writeln!(stream, "{}", serde_json::to_string(&reply).unwrap());
    }
}
