//! Certificates for a TLS etcd, made by the `openssl` command in a folder of the test's:
//! a CA, a server certificate it signed for 127.0.0.1 and localhost, a client certificate
//! it signed, and a second CA that signed nothing (a wrong CA). A test that needs them
//! FAILS when `openssl` is missing (`.ci/run` installs it).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

/// The files, in one folder: `ca.crt`, `server.crt`/`server.key`, `client.crt`/
/// `client.key`, `other-ca.crt`.
pub struct Pki {
    dir: PathBuf,
}

/// What the server certificate is valid for: the address the tests connect to, and a
/// name for `server_name`.
const SERVER_EXTENSIONS: &str = "basicConstraints=CA:FALSE\n\
keyUsage=critical,digitalSignature,keyEncipherment\n\
extendedKeyUsage=serverAuth\n\
subjectAltName=IP:127.0.0.1,DNS:localhost\n";
/// etcd (Go) accepts a client certificate only with the clientAuth usage.
const CLIENT_EXTENSIONS: &str = "basicConstraints=CA:FALSE\n\
keyUsage=critical,digitalSignature,keyEncipherment\n\
extendedKeyUsage=clientAuth\n";

impl Pki {
    /// Makes them in `dir` (created); panics (the test fails) if `openssl` cannot.
    pub fn create(dir: &Path) -> Pki {
        std::fs::create_dir_all(dir).expect("a folder for the certificates");
        let pki = Pki {
            dir: dir.to_path_buf(),
        };
        pki.ca("ca", "mcp-cors test CA");
        pki.ca("other-ca", "a CA nobody trusts");
        pki.signed("server", "etcd", SERVER_EXTENSIONS);
        pki.signed("client", "mcp-cors", CLIENT_EXTENSIONS);
        pki
    }

    /// One of the files, e.g. `pki.file("ca.crt")`.
    pub fn file(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    fn ca(&self, name: &str, subject: &str) {
        self.openssl(&[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={subject}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &self.path(&format!("{name}.key")),
            "-out",
            &self.path(&format!("{name}.crt")),
        ]);
    }

    /// `NAME.key` and `NAME.crt`, signed by `ca`, with `extensions`.
    fn signed(&self, name: &str, subject: &str, extensions: &str) {
        let ext = self.file(&format!("{name}.ext"));
        std::fs::write(&ext, extensions).expect("the extensions file");
        let csr = self.path(&format!("{name}.csr"));
        self.openssl(&[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-subj",
            &format!("/CN={subject}"),
            "-keyout",
            &self.path(&format!("{name}.key")),
            "-out",
            &csr,
        ]);
        self.openssl(&[
            "x509",
            "-req",
            "-in",
            &csr,
            "-CA",
            &self.path("ca.crt"),
            "-CAkey",
            &self.path("ca.key"),
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            &ext.display().to_string(),
            "-out",
            &self.path(&format!("{name}.crt")),
        ]);
    }

    fn path(&self, name: &str) -> String {
        self.file(name).display().to_string()
    }

    fn openssl(&self, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .output()
            .expect("openssl must be installed (Debian: openssl); this test makes certificates");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
