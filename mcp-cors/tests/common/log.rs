//! What the library logs, captured as the text a `fmt` subscriber writes (the form an
//! operator reads in `kubectl logs`).

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Everything logged, as text.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

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
    /// A plain-text `fmt` subscriber up to `level` that writes here.
    pub fn subscriber(&self, level: tracing::Level) -> impl tracing::Subscriber + Send + Sync {
        let writer = self.clone();
        tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .with_max_level(level)
            .finish()
    }

    /// The lines logged so far that hold `text`.
    pub fn lines_with(&self, text: &str) -> Vec<String> {
        String::from_utf8_lossy(&self.0.lock().unwrap())
            .lines()
            .filter(|l| l.contains(text))
            .map(str::to_owned)
            .collect()
    }

    /// Waits (up to 10 s) for a line holding `text`, and returns it.
    pub fn wait_for(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(line) = self.lines_with(text).into_iter().next() {
                return line;
            }
            let all = String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned();
            assert!(
                Instant::now() < deadline,
                "no line with {text:?} in:\n{all}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}
