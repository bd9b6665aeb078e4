//! A real terminal for the interactive UI: a tmux server of our own, driven with
//! `send-keys` and read with `capture-pane`. Shared by this crate's tests and the
//! workspace's end-to-end fleet test (which includes this file by path).
#![allow(dead_code)] // each test file uses its own subset

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// A tmux server of our own (its own socket name), killed when dropped, even when the
/// test fails.
pub struct Tmux {
    name: String,
}

impl Tmux {
    /// Runs `command` (a shell command line) in a 160 × 48 terminal.
    pub fn start(command: &str) -> Tmux {
        let version = Command::new("tmux").arg("-V").output();
        assert!(
            version.is_ok_and(|o| o.status.success()),
            "tmux is required for this test but was not found on PATH: install it (apt-get install -y tmux)"
        );
        // Unique per process and per test: tests run in parallel threads.
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::SeqCst);
        let name = format!("mcp-cors-tui-test-{}-{n}", std::process::id());
        let tmux = Tmux { name };
        let status = tmux
            .cmd()
            .args([
                "new-session",
                "-d",
                "-x",
                "160",
                "-y",
                "48",
                "-s",
                "tui",
                command,
            ])
            .status()
            .expect("run tmux");
        assert!(status.success(), "tmux new-session failed");
        tmux
    }

    /// Runs `binary` with `args`, each quoted for the shell.
    pub fn run(binary: &Path, args: &[String]) -> Tmux {
        let binary = std::fs::canonicalize(binary).expect("the binary");
        let mut command = quoted(&binary.display().to_string());
        for arg in args {
            command.push(' ');
            command.push_str(&quoted(arg));
        }
        Tmux::start(&command)
    }

    fn cmd(&self) -> Command {
        let mut cmd = Command::new("tmux");
        cmd.args(["-L", &self.name]);
        cmd
    }

    /// The screen's text, now.
    pub fn screen(&self) -> String {
        let out = self
            .cmd()
            .args(["capture-pane", "-p", "-t", "tui"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Types `keys` (tmux key names or text).
    pub fn keys(&self, keys: &[&str]) {
        let status = self
            .cmd()
            .args(["send-keys", "-t", "tui"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    /// Waits until the screen shows `text`; on timeout, fails showing the screen.
    pub fn wait_for_text(&self, text: &str) {
        self.wait_for_screen(&format!("{text:?}"), |screen| screen.contains(text));
    }

    /// Waits until a line of the screen holds `cells` in this order (the tail is a
    /// table: its columns are padded to what the lines on screen need).
    pub fn wait_for_row(&self, cells: &[&str]) {
        self.wait_for_screen(&format!("a row {cells:?}"), |screen| {
            screen.lines().any(|line| holds_in_order(line, cells))
        });
    }

    /// Waits (15 s at most) until `done` holds of the screen; on timeout, fails naming
    /// `what` and showing the screen.
    pub fn wait_for_screen(&self, what: &str, done: impl Fn(&str) -> bool) {
        let start = Instant::now();
        let mut last = String::new();
        while start.elapsed() < Duration::from_secs(15) {
            last = self.screen();
            if done(&last) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the screen never showed {what}; it shows:\n{last}");
    }

    /// Presses `q` and waits for the UI to exit.
    pub fn quit(&self) {
        self.keys(&["q"]);
        let start = Instant::now();
        while self.running() {
            assert!(
                start.elapsed() < Duration::from_secs(5),
                "the UI did not quit on q"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Whether the UI still runs.
    pub fn running(&self) -> bool {
        self.cmd()
            .args(["has-session", "-t", "tui"])
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        // The server is already gone when the UI quit and closed the last session.
        let _ = self.cmd().arg("kill-server").stderr(Stdio::null()).status();
    }
}

/// `text` in single quotes for the shell.
fn quoted(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

/// Whether `line` holds each of `cells`, in order.
pub fn holds_in_order(line: &str, cells: &[&str]) -> bool {
    let mut rest = line;
    cells.iter().all(|cell| match rest.find(cell) {
        Some(at) => {
            rest = &rest[at + cell.len()..];
            true
        }
        None => false,
    })
}
