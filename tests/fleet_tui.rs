//! The fleet view end to end (issue 15): the interactive UI, in a real terminal (tmux),
//! watches three replicas of the example server (separate processes, each with its own
//! policy file and admin socket) through one pattern. Each event is labelled with its
//! replica (host name and pid, from the hello), each replica has its own totals, a replica
//! that goes down says why, one started later joins, and an edit from the UI goes to one
//! replica and lands in its file.

mod support;

#[path = "../mcp-cors-tui/tests/common/tmux.rs"]
mod tmux;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use support::binaries::{mcp_server_binary, probe_binary};
use support::example::free_port;
use tmux::{Tmux, holds_in_order};

const EVIL: &str = "https://evil.example";
const NEW: &str = "https://new.example.com";
const POLICY: &str = "# A replica's own policy.\nallowed_origins = [\"https://app.example.com\"]\n";

/// One replica: the example server on a free port, serving `folder/cors.toml` (its admin
/// socket is `folder/cors.sock`).
struct Replica {
    child: Child,
    addr: SocketAddr,
    folder: PathBuf,
}

impl Replica {
    fn start(folder: PathBuf) -> Replica {
        std::fs::create_dir_all(&folder).expect("the replica's folder");
        std::fs::write(folder.join("cors.toml"), POLICY).expect("the replica's policy");
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let child = Command::new(mcp_server_binary())
            .arg("--config")
            .arg(folder.join("cors.toml"))
            .args(["--bind", &addr.to_string()])
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start the example server");
        let replica = Replica {
            child,
            addr,
            folder,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(addr).is_err() || !replica.socket().exists() {
            assert!(Instant::now() < deadline, "a replica does not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
        replica
    }

    fn socket(&self) -> PathBuf {
        self.folder.join("cors.sock")
    }

    /// How the UI labels it: `HOST:PID`.
    fn label(&self) -> String {
        format!("{}:{}", hostname(), self.child.id())
    }

    /// Status of a `POST /mcp` from `origin`.
    fn post(&self, origin: &str) -> u16 {
        let mut stream = TcpStream::connect(self.addr).expect("connect to a replica");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("a timeout");
        let request = format!(
            "POST /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nOrigin: {origin}\r\n\
             Content-Type: application/json\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
            self.addr.port()
        );
        stream.write_all(request.as_bytes()).expect("send");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
            .split(' ')
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or(0)
    }

    fn policy_text(&self) -> String {
        std::fs::read_to_string(self.folder.join("cors.toml")).expect("read the policy")
    }

    fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// This host's name, as a server's hello says it.
fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .expect("the host name")
        .trim()
        .to_owned()
}

/// The tail's row of a refusal of `origin` by the replica with `pid`: the label column is
/// elided in the middle when a host name is long, so its `:PID` end is what is matched.
fn refusal_row(pid: u32) -> [String; 3] {
    [format!(":{pid}"), "DENY".into(), EVIL.into()]
}

fn wait_for_row(tmux: &Tmux, cells: &[String]) {
    let cells: Vec<&str> = cells.iter().map(String::as_str).collect();
    tmux.wait_for_row(&cells);
}

/// The replicas panel's row of the replica labelled `label` (not the header's line,
/// which names the replica edits go to).
fn line_of<'a>(screen: &'a str, label: &str) -> Option<&'a str> {
    screen
        .lines()
        .find(|l| l.contains(label) && l.contains("● connected"))
}

#[test]
fn the_fleet_view_labels_each_replica_s_events_totals_its_counts_and_edits_one_replica() {
    let base = tempfile::tempdir().expect("the fleet's folder");
    let mut replicas: Vec<Replica> = (1..=3)
        .map(|i| Replica::start(base.path().join(format!("r{i}"))))
        .collect();
    let pattern = base.path().join("*/cors.sock");
    let tmux = Tmux::run(
        &probe_binary(),
        &["--socket".into(), pattern.display().to_string()],
    );
    tmux.wait_for_text("3 of 3 replicas connected");

    // Replica i is refused i times: each refusal is labelled with the replica that made
    // it, and each replica's row counts its own.
    for (i, replica) in replicas.iter().enumerate() {
        for _ in 0..=i {
            assert_eq!(replica.post(EVIL), 403);
        }
    }
    for replica in &replicas {
        wait_for_row(&tmux, &refusal_row(replica.child.id()));
    }
    for (i, replica) in replicas.iter().enumerate() {
        let label = replica.label();
        let denied = format!(" {} ", i + 1);
        tmux.wait_for_screen(&format!("{label}'s row with {} refusals", i + 1), |s| {
            line_of(s, &label).is_some_and(|l| holds_in_order(l, &[&label, " 0 ", &denied]))
        });
    }
    tmux.wait_for_text("denied 6");

    // A replica that goes down says so, and why; the others go on.
    let gone = replicas[2].label();
    replicas[2].kill();
    tmux.wait_for_text("2 of 3 replicas connected");
    tmux.wait_for_screen(&format!("{gone} down, with a reason"), |s| {
        // "connection lost: …" at first, then "cannot connect: …" at each retry.
        s.lines()
            .any(|l| holds_in_order(l, &[&gone, "✕ down, retry in", "connect"]))
    });

    // A replica started later joins through the pattern.
    let late = Replica::start(base.path().join("r4"));
    tmux.wait_for_text("3 of 4 replicas connected");
    assert_eq!(late.post(EVIL), 403);
    wait_for_row(&tmux, &refusal_row(late.child.id()));

    // An edit from the UI goes to the replica marked ▸ (the first connected one), and
    // its outcome names it.
    let editor = &replicas[0];
    tmux.wait_for_screen("the first replica marked as where edits go", |s| {
        s.lines()
            .any(|l| holds_in_order(l, &["▸", &editor.label()]))
    });
    tmux.keys(&["n"]);
    tmux.keys(&[NEW]);
    tmux.keys(&["Enter"]);
    tmux.wait_for_text(&format!("allowed {NEW}"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while !editor.policy_text().contains(NEW) {
        assert!(Instant::now() < deadline, "the edit never reached the file");
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(editor.policy_text().contains("# A replica's own policy."));
    assert!(
        !replicas[1].policy_text().contains(NEW),
        "one replica, one file"
    );
    // The replicas now serve different policies: the panel says where an edit goes.
    tmux.wait_for_text("policies differ: an edit goes to ▸ only");
    tmux.quit();
    drop(late);
    assert!(Path::new(&base.path().join("r1/cors.toml")).exists());
}
