//! One policy for a fleet (issue 15): three replicas of the example server
//! (`examples/mcp_server.rs --source etcd://…`), separate processes, serve one key of a real
//! etcd started by the test. Edits from the CLI (`mcp-cors-tui --source`, no server needed)
//! reach every replica; puts are served by all three within a bound (timed, printed, and
//! recorded in BENCHMARKS.md); invalid values are kept out; comments survive edits;
//! concurrent CLI edits never lose one another; an etcd outage changes nothing for the
//! replicas, a replica restarted during it serves its cache, and once etcd is back the
//! next change reaches every replica within 3 s, a compacted revision included.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use mcp_cors::{EtcdBackend, PolicyBackend, Source};
use support::binaries::{mcp_server_binary, probe_binary};
use support::etcd::Etcd;
use support::example::free_port;

const KEY: &str = "/fleet/cors";
const A: &str = "https://a.example.com";
const B: &str = "https://b.example.com";
/// How long a change may take to reach every replica in the functional checks (the timed
/// puts have their own targets).
const BOUND: Duration = Duration::from_secs(5);

fn policy(origins: &[&str]) -> String {
    let list: Vec<String> = origins.iter().map(|o| format!("  {o:?},\n")).collect();
    format!(
        "# The fleet's policy: edit with mcp-cors-tui --source.\nallowed_origins = [\n{}]\n",
        list.concat()
    )
}

/// One replica: the example server on a free port, its own runtime folder (and so its own
/// admin socket) and its own cache file.
struct Replica {
    child: Option<Child>,
    addr: SocketAddr,
    dir: tempfile::TempDir,
    uri: String,
}

impl Replica {
    fn start(etcd: &Etcd) -> Replica {
        let dir = tempfile::tempdir().expect("a replica's folder");
        let base = etcd.uri(KEY);
        // A TLS etcd's URI has parameters already.
        let then = if base.contains('?') { '&' } else { '?' };
        let uri = format!(
            "{base}{then}cache={}",
            dir.path().join("cache/cors.toml").display()
        );
        let mut replica = Replica {
            child: None,
            addr: ([127, 0, 0, 1], free_port()).into(),
            dir,
            uri,
        };
        replica.restart();
        replica
    }

    fn restart(&mut self) {
        assert!(self.child.is_none());
        let log = std::fs::File::create(self.dir.path().join("log")).expect("a log file");
        std::fs::create_dir_all(self.dir.path().join("run")).expect("a runtime folder");
        let child = Command::new(mcp_server_binary())
            .args(["--source", &self.uri, "--bind", &self.addr.to_string()])
            .env("XDG_RUNTIME_DIR", self.dir.path().join("run"))
            .env("RUST_LOG", "info")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log"))
            .stderr(log)
            .spawn()
            .expect("start the example server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(self.addr).is_err() {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(Child::try_wait) {
                panic!("a replica exited ({status}): {}", self.log());
            }
            assert!(Instant::now() < deadline, "a replica does not listen");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    fn signal(&self, signal: libc::c_int) {
        let pid = self.child.as_ref().expect("running").id();
        // SAFETY: kill(2) on our own child's pid.
        assert_eq!(unsafe { libc::kill(pid as libc::pid_t, signal) }, 0);
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
    }

    /// Whether a browser page at `origin` is allowed: a CORS preflight to `/mcp`.
    fn allows(&self, origin: &str) -> bool {
        let Ok(mut stream) = TcpStream::connect(self.addr) else {
            return false;
        };
        let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
        let request = format!(
            "OPTIONS /mcp HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nOrigin: {origin}\r\n\
             Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n",
            self.addr.port()
        );
        if stream.write_all(request.as_bytes()).is_err() {
            return false;
        }
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
            .to_ascii_lowercase()
            .contains(&format!("access-control-allow-origin: {origin}"))
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        if self.child.is_some() {
            self.signal(libc::SIGCONT);
        }
        self.kill();
    }
}

/// The fleet tests run one at a time: each runs four processes (three replicas and etcd),
/// and one of them times puts against targets.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

fn fleet(etcd: &Etcd) -> Vec<Replica> {
    (0..3).map(|_| Replica::start(etcd)).collect()
}

/// Waits until every replica allows (`true`) or refuses (`false`) `origin`; how long.
fn served(replicas: &[Replica], origin: &str, allowed: bool, bound: Duration) -> Duration {
    let start = Instant::now();
    let mut pending: Vec<&Replica> = replicas.iter().collect();
    while !pending.is_empty() {
        pending.retain(|r| r.allows(origin) != allowed);
        if start.elapsed() > bound {
            let logs: Vec<String> = pending.iter().map(|r| r.log()).collect();
            panic!(
                "{origin} not {} by every replica within {bound:?}; their logs:\n{}",
                if allowed { "allowed" } else { "refused" },
                logs.join("\n----\n")
            );
        }
    }
    start.elapsed()
}

/// `mcp-cors-tui --source URI ARGS`.
fn cli(etcd: &Etcd, args: &[&str]) -> Output {
    let output = Command::new(probe_binary())
        .args(["--source", &etcd.uri(KEY)])
        .args(args)
        .output()
        .expect("run mcp-cors-tui");
    assert!(
        output.status.success(),
        "mcp-cors-tui {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn backend(etcd: &Etcd) -> EtcdBackend {
    match Source::parse(&etcd.uri(KEY)) {
        Ok(Source::Etcd(source)) => EtcdBackend::new(source),
        other => panic!("{other:?}"),
    }
}

#[test]
fn edits_and_puts_reach_every_replica_fast_and_invalid_values_are_kept_out() {
    let _serial = one_at_a_time();
    let etcd = Etcd::start();
    etcd.put(KEY, &policy(&[A]));
    let replicas = fleet(&etcd);
    served(&replicas, A, true, BOUND);

    // An edit from the CLI, no server involved, reaches every replica; comments stay.
    cli(&etcd, &["origins", "add", B]);
    served(&replicas, B, true, BOUND);
    let stored = etcd.get(KEY).expect("a value");
    assert!(stored.starts_with("# The fleet's policy"), "{stored}");
    let listed = String::from_utf8(cli(&etcd, &["origins", "list"]).stdout).unwrap();
    assert_eq!(listed, format!("{A}\n{B}\n"));

    // `--source` finds a replica's admin socket by the server's rule (here, the replica's
    // runtime folder); with no server answering, `status` reports the value itself.
    let status = Command::new(probe_binary())
        .args(["--source", &etcd.uri(KEY), "status"])
        .env("XDG_RUNTIME_DIR", replicas[1].dir.path().join("run"))
        .output()
        .expect("run mcp-cors-tui status");
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(status.status.success(), "{said}");
    let socket = replicas[1].dir.path().join("run/mcp-cors/fleet_cors.sock");
    assert!(said.contains(&format!("{}", socket.display())), "{said}");
    assert!(said.contains("reloads:"), "the server's own status: {said}");
    let nobody = tempfile::tempdir().unwrap();
    let status = Command::new(probe_binary())
        .args(["--source", &etcd.uri(KEY), "status"])
        .env("XDG_RUNTIME_DIR", nobody.path())
        .output()
        .expect("run mcp-cors-tui status");
    let said = String::from_utf8_lossy(&status.stdout);
    assert!(
        said.contains("valid:") && said.contains("none answering"),
        "{said}"
    );

    // An invalid value is kept out: every replica keeps the last good policy.
    etcd.put(KEY, "allowed_origins = [\"https://c.example.com/path\"]\n");
    std::thread::sleep(Duration::from_millis(500));
    served(&replicas, B, true, BOUND);
    let check = Command::new(probe_binary())
        .args(["--source", &etcd.uri(KEY), "check"])
        .output()
        .unwrap();
    assert!(
        !check.status.success(),
        "check must refuse the invalid value"
    );

    // 20 puts, each timed from the put to served by all three.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let backend = backend(&etcd);
    let mut times = Vec::new();
    for i in 0..20 {
        let origin = format!("https://p{i}.example.com");
        let value = policy(&[A, &origin]);
        let start = Instant::now();
        runtime.block_on(async {
            let at = backend.read().await.unwrap().mod_revision;
            let written = backend.compare_and_swap(value.into_bytes(), at).await;
            assert!(written.unwrap().is_some(), "nobody else writes");
        });
        served(&replicas, &origin, true, BOUND);
        times.push(start.elapsed());
    }
    times.sort();
    let median = (times[9] + times[10]) / 2;
    let worst = times[19];
    println!("fleet: 20 puts, put to served by all 3 replicas: median {median:?}, worst {worst:?}");
    assert!(
        median <= Duration::from_millis(50),
        "median {median:?} > 50 ms"
    );
    assert!(
        worst <= Duration::from_millis(200),
        "worst {worst:?} > 200 ms"
    );
}

#[test]
fn concurrent_cli_adds_all_land() {
    let _serial = one_at_a_time();
    let etcd = Arc::new(Etcd::start());
    etcd.put(KEY, &policy(&[A]));
    let replicas = fleet(&etcd);
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let etcd = Arc::clone(&etcd);
            std::thread::spawn(move || {
                for i in 0..20 {
                    cli(
                        &etcd,
                        &["origins", "add", &format!("https://w{w}-{i}.example.com")],
                    );
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().expect("a writer");
    }
    let listed = String::from_utf8(cli(&etcd, &["origins", "list"]).stdout).unwrap();
    assert_eq!(listed.lines().count(), 41, "{listed}");
    for w in 0..2 {
        for i in 0..20 {
            served(
                &replicas,
                &format!("https://w{w}-{i}.example.com"),
                true,
                BOUND,
            );
        }
    }
    assert!(etcd.get(KEY).unwrap().starts_with("# The fleet's policy"));
}

#[test]
fn over_mutual_tls_a_cli_edit_reaches_a_replica_and_a_cli_without_its_certificate_is_refused() {
    const C: &str = "https://c.example.com";
    let _serial = one_at_a_time();
    let etcd = Etcd::start_tls(true);
    etcd.put(KEY, &policy(&[A]));
    let replicas = vec![Replica::start(&etcd)];
    served(&replicas, A, true, BOUND);

    // `--source etcd://…?ca_file=…&cert_file=…&key_file=…`, the CA and client identity of
    // an etcd started with --client-cert-auth.
    cli(&etcd, &["origins", "add", B]);
    served(&replicas, B, true, BOUND);
    let listed = String::from_utf8(cli(&etcd, &["origins", "list"]).stdout).unwrap();
    assert_eq!(listed.lines().collect::<Vec<_>>(), [A, B], "{listed}");

    let without = format!(
        "etcd://{}{KEY}?ca_file={}",
        etcd.endpoint(),
        etcd.pki().file("ca.crt").display()
    );
    let output = Command::new(probe_binary())
        .args(["--source", &without, "origins", "add", C])
        .output()
        .expect("run mcp-cors-tui");
    let said = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{said}");
    assert!(said.contains(&etcd.endpoint()), "{said}");
    assert!(!etcd.get(KEY).unwrap().contains(C));
}

#[test]
fn an_outage_changes_nothing_a_restart_serves_the_cache_and_recovery_takes_under_3s() {
    let _serial = one_at_a_time();
    let mut etcd = Etcd::start();
    etcd.put(KEY, &policy(&[A]));
    let mut replicas = fleet(&etcd);
    served(&replicas, A, true, BOUND);

    etcd.kill();
    std::thread::sleep(Duration::from_millis(500));
    served(&replicas, A, true, BOUND);

    // A replica restarted during the outage serves its cache.
    replicas[0].kill();
    replicas[0].restart();
    served(&replicas, A, true, BOUND);
    assert!(
        replicas[0].log().contains("cached"),
        "{}",
        replicas[0].log()
    );

    // The third replica is frozen through the recovery: when it runs again, the revision
    // it would resume from has been compacted.
    replicas[2].signal(libc::SIGSTOP);
    etcd.restart();
    let start = Instant::now();
    let _ = etcd.put(KEY, &policy(&[B]));
    let live = served(&replicas[..2], B, true, Duration::from_secs(3));
    println!("after the outage: the next change reached the running replicas in {live:?}");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "took {:?}",
        start.elapsed()
    );

    let last = etcd.put(KEY, &policy(&[A, B]));
    etcd.compact(last);
    replicas[2].signal(libc::SIGCONT);
    served(&replicas, A, true, BOUND);
    served(&replicas, B, true, BOUND);
}
