//! The cost of an admin edit by policy size: an origin added and removed again through a
//! real admin socket on a real `cors.toml` (read, edit keeping the layout, write, fsync,
//! exchange, apply, reply), and the reload diff (`PolicyDiff::between`) on its own.
//!
//! ```sh
//! cargo bench -p mcp-cors --bench edit
//! ```

use std::hint::black_box;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, SamplingMode, criterion_group, criterion_main};
use mcp_cors::protocol::{Request, ServerLine};
use mcp_cors::{McpCors, PolicyDiff, PolicySettings};

/// Policy sizes, in exact origins.
const SIZES: [usize; 3] = [1_000, 10_000, 100_000];

fn origins(n: usize) -> Vec<String> {
    (0..n)
        .map(|i| format!("https://o{i}.example.com"))
        .collect()
}

/// A policy file with `n` origins, one per line, as an operator keeps a long list.
fn policy_file(n: usize) -> String {
    let mut text = String::from("# A long list.\nallowed_origins = [\n");
    for origin in origins(n) {
        text.push_str(&format!("  {origin:?},\n"));
    }
    text.push_str("]\nmax_age = 600\n");
    text
}

/// Two settings differing by one origin out of `n`, as after one edit.
fn diff(c: &mut Criterion) {
    let mut group = c.benchmark_group("reload diff");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    for n in SIZES {
        let old = PolicySettings {
            allowed_origins: origins(n),
            ..PolicySettings::default()
        };
        let mut new = old.clone();
        new.allowed_origins.push("https://new.example".into());
        group.bench_with_input(BenchmarkId::new("PolicyDiff::between", n), &n, |b, _| {
            b.iter(|| black_box(PolicyDiff::between(black_box(&old), black_box(&new))))
        });
    }
    group.finish();
}

/// A blocking admin-socket client.
struct Admin {
    reader: BufReader<UnixStream>,
    writer: UnixStream,
}

impl Admin {
    fn connect(socket: &Path) -> Admin {
        let start = Instant::now();
        let stream = loop {
            match UnixStream::connect(socket) {
                Ok(stream) => break stream,
                Err(e) if start.elapsed() > Duration::from_secs(30) => {
                    panic!("no admin socket at {}: {e}", socket.display())
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        };
        let writer = stream.try_clone().expect("clone the stream");
        let mut admin = Admin {
            reader: BufReader::new(stream),
            writer,
        };
        admin.recv(); // hello
        admin
    }

    fn recv(&mut self) -> ServerLine {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("a reply");
        serde_json::from_str(&line).expect("a server line")
    }

    fn edit(&mut self, request: Request) {
        let mut line = serde_json::to_vec(&request).expect("a request");
        line.push(b'\n');
        self.writer.write_all(&line).expect("sent");
        match self.recv() {
            ServerLine::OriginChanged { changed: true, .. } => {}
            other => panic!("the edit failed: {other:?}"),
        }
    }
}

/// One iteration: add an origin, then remove it again (so every iteration edits the
/// same file).
fn admin_edit(c: &mut Criterion) {
    let mut group = c.benchmark_group("admin edit");
    group
        .sampling_mode(SamplingMode::Flat)
        .sample_size(10)
        .measurement_time(Duration::from_secs(20));
    for n in SIZES {
        let dir = tempfile::tempdir().expect("a temp folder");
        let config = dir.path().join("cors.toml");
        std::fs::write(&config, policy_file(n)).expect("written");
        let cors = McpCors::try_watched(&config).expect("the policy loads");
        let mut admin = Admin::connect(&dir.path().join("cors.sock"));
        group.bench_with_input(BenchmarkId::new("add + remove", n), &n, |b, _| {
            b.iter(|| {
                admin.edit(Request::AddOrigin {
                    origin: "https://new.example".into(),
                    force: false,
                    route: None,
                });
                admin.edit(Request::RemoveOrigin {
                    origin: "https://new.example".into(),
                    route: None,
                });
            })
        });
        drop(admin);
        drop(cors);
    }
    group.finish();
}

criterion_group!(benches, diff, admin_edit);
criterion_main!(benches);
