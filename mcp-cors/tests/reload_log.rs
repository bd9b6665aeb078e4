//! How reloads are logged, as an operator reads `kubectl logs`: a good reload at info, a
//! refused one at warn (the server keeps serving the last good policy: a warning, not an
//! error), each naming the file. The watcher logs from its own thread, so this binary
//! installs a global subscriber (one per process: this file holds one test).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use mcp_cors::McpCors;

/// Everything logged, as text.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Waits for a line holding `text`, and returns it.
    fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let all = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
            if let Some(line) = all.lines().find(|l| l.contains(text)) {
                return line.to_owned();
            }
            assert!(
                Instant::now() < deadline,
                "no line with {text:?} in:\n{all}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn a_reload_is_logged_at_info_and_a_refused_one_at_warn_naming_the_file() {
    let captured = Captured::default();
    let writer = captured.clone();
    tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .with_max_level(tracing::Level::INFO)
        .init();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cors.toml");
    std::fs::write(&path, "allowed_origins = [\"https://a.example\"]\n").unwrap();
    let cors = McpCors::try_watched(path.as_path()).expect("a valid policy");

    std::fs::write(
        &path,
        "allowed_origins = [\"https://a.example\", \"https://b.example\"]\n",
    )
    .unwrap();
    let reloaded = captured.wait_for("policy reloaded");
    assert!(reloaded.contains(" INFO "), "{reloaded}");
    assert!(reloaded.contains("+https://b.example"), "{reloaded}");

    std::fs::write(&path, "allowed_origins = [\"https://c.example/path\"]\n").unwrap();
    let refused = captured.wait_for("policy file refused");
    assert!(refused.contains(" WARN "), "{refused}");
    assert!(refused.contains(&path.display().to_string()), "{refused}");
    assert!(refused.contains("an origin has no path"), "{refused}");
    assert_eq!(
        cors.policy().settings().allowed_origins,
        ["https://a.example", "https://b.example"],
        "the last good policy keeps serving"
    );
}
