//! A real etcd for tests: started on free ports in a temporary folder, waited for, and
//! killed when dropped; in plain text, or serving TLS with certificates of its own
//! ([`Etcd::start_tls`], [`pki`]). Shared by the library's tests and the root package's
//! (fleet) tests. A test that needs etcd FAILS when the `etcd` or `etcdctl` binary is
//! missing (`.ci/run` installs Debian's `etcd-server` and `etcd-client`).

#![allow(dead_code)]

// Beside this file, wherever it is included from.
#[path = "pki.rs"]
pub mod pki;

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use pki::Pki;

/// A running (or stopped, between [`Etcd::kill`] and [`Etcd::restart`]) etcd.
pub struct Etcd {
    child: Option<Child>,
    dir: tempfile::TempDir,
    /// The client port.
    pub port: u16,
    peer: u16,
    tls: Option<Tls>,
}

/// How a TLS etcd serves its clients.
struct Tls {
    pki: Pki,
    /// `--client-cert-auth`: only clients with a certificate its CA signed.
    client_cert_auth: bool,
}

fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("a free port");
    listener.local_addr().expect("its address").port()
}

impl Etcd {
    /// Starts etcd and waits until it answers; panics (the test fails) if it cannot.
    pub fn start() -> Etcd {
        Etcd::start_with(|_| None)
    }

    /// Starts etcd serving TLS to its clients (`https://127.0.0.1:PORT`) with a server
    /// certificate of [`Etcd::pki`]'s CA; with `client_cert_auth`, it also asks each
    /// client for a certificate that CA signed. Panics (the test fails) if it cannot.
    pub fn start_tls(client_cert_auth: bool) -> Etcd {
        Etcd::start_with(|dir| {
            Some(Tls {
                pki: Pki::create(&dir.join("pki")),
                client_cert_auth,
            })
        })
    }

    fn start_with(tls: impl FnOnce(&std::path::Path) -> Option<Tls>) -> Etcd {
        let dir = tempfile::tempdir().expect("a temporary folder");
        let mut etcd = Etcd {
            child: None,
            tls: tls(dir.path()),
            dir,
            port: free_port(),
            peer: free_port(),
        };
        etcd.restart();
        etcd
    }

    /// `127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The URI a source reads it with: `etcd://127.0.0.1:PORT/KEY`; for a TLS etcd with
    /// `?ca_file=…` (its CA) and, when it asks for one, `&cert_file=…&key_file=…` (a
    /// client certificate it accepts).
    pub fn uri(&self, key: &str) -> String {
        let plain = format!("etcd://{}{key}", self.endpoint());
        let Some(tls) = &self.tls else {
            return plain;
        };
        let mut uri = format!("{plain}?ca_file={}", tls.pki.file("ca.crt").display());
        if tls.client_cert_auth {
            uri.push_str(&format!(
                "&cert_file={}&key_file={}",
                tls.pki.file("client.crt").display(),
                tls.pki.file("client.key").display()
            ));
        }
        uri
    }

    /// The certificates of a TLS etcd ([`Etcd::start_tls`]).
    pub fn pki(&self) -> &Pki {
        &self.tls.as_ref().expect("a TLS etcd (Etcd::start_tls)").pki
    }

    /// `http://` or `https://`, as it serves its clients.
    fn scheme(&self) -> &'static str {
        if self.tls.is_some() { "https" } else { "http" }
    }

    /// Starts it again (same ports, same data) after [`Etcd::kill`].
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "etcd is running already");
        let client = format!("{}://127.0.0.1:{}", self.scheme(), self.port);
        let peer = format!("http://127.0.0.1:{}", self.peer);
        let log = std::fs::File::create(self.dir.path().join("etcd.log")).expect("a log file");
        let mut command = Command::new("etcd");
        command
            .args(["--name", "t", "--data-dir"])
            .arg(self.dir.path().join("data"))
            .args(["--listen-client-urls", &client])
            .args(["--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer])
            .args(["--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("t={peer}")]);
        if let Some(tls) = &self.tls {
            command
                .arg("--cert-file")
                .arg(tls.pki.file("server.crt"))
                .arg("--key-file")
                .arg(tls.pki.file("server.key"));
            if tls.client_cert_auth {
                command
                    .arg("--client-cert-auth")
                    .arg("--trusted-ca-file")
                    .arg(tls.pki.file("ca.crt"));
            }
        }
        let child = command
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("the log file"))
            .stderr(log)
            .spawn()
            .expect("etcd must be installed (Debian: etcd-server); this test needs a real etcd");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if TcpStream::connect(("127.0.0.1", self.port)).is_ok() && self.ctl(&["get", "/"]).0 {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("etcd did not answer within 20 s; its log:\n{}", self.log());
    }

    /// Kills it (SIGKILL: an outage, not a shutdown) and waits for it to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What etcd logged.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("etcd.log")).unwrap_or_default()
    }

    /// A folder of the test's own, removed with this etcd.
    pub fn scratch(&self) -> PathBuf {
        let dir = self.dir.path().join("scratch");
        std::fs::create_dir_all(&dir).expect("a scratch folder");
        dir
    }

    /// Runs `etcdctl ARGS`, with `stdin` as its input: (succeeded, stdout).
    pub fn ctl_with(&self, args: &[&str], stdin: Option<&str>) -> (bool, String) {
        let mut command = Command::new("etcdctl");
        command.env("ETCDCTL_API", "3").arg(format!(
            "--endpoints={}://{}",
            self.scheme(),
            self.endpoint()
        ));
        if let Some(tls) = &self.tls {
            // etcdctl is trusted (and, where etcd asks, known) as an operator's would be.
            command
                .arg(format!("--cacert={}", tls.pki.file("ca.crt").display()))
                .arg(format!("--cert={}", tls.pki.file("client.crt").display()))
                .arg(format!("--key={}", tls.pki.file("client.key").display()));
        }
        let mut child = command
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("etcdctl must be installed (Debian: etcd-client)");
        if let Some(mut input) = child.stdin.take() {
            let _ = input.write_all(stdin.unwrap_or("").as_bytes());
        }
        let out = child.wait_with_output().expect("etcdctl's output");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
        )
    }

    fn ctl(&self, args: &[&str]) -> (bool, String) {
        self.ctl_with(args, None)
    }

    /// Puts `value` at `key`; its revision.
    pub fn put(&self, key: &str, value: &str) -> u64 {
        let (ok, _) = self.ctl_with(&["put", key], Some(value));
        assert!(ok, "etcdctl put {key} failed");
        self.revision()
    }

    /// The value at `key`, if any.
    pub fn get(&self, key: &str) -> Option<String> {
        let (ok, out) = self.ctl(&["get", key, "--print-value-only"]);
        assert!(ok, "etcdctl get {key} failed");
        let value = out.strip_suffix('\n').unwrap_or(&out);
        (!out.is_empty()).then(|| value.to_owned())
    }

    /// The store's current revision.
    pub fn revision(&self) -> u64 {
        let (ok, out) = self.ctl(&["get", "/", "-w", "json"]);
        assert!(ok, "etcdctl get failed");
        let json: serde_json::Value = serde_json::from_str(&out).expect("etcdctl's JSON");
        json["header"]["revision"].as_u64().expect("a revision")
    }

    /// Compacts the history up to `revision`.
    pub fn compact(&self, revision: u64) {
        let (ok, _) = self.ctl(&["compact", &revision.to_string()]);
        assert!(ok, "etcdctl compact {revision} failed");
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        self.kill();
    }
}
