//! [`EtcdTls`]: how an etcd source speaks TLS (whom it trusts, who it is, which name it
//! verifies), and the PEM files a source URI names, read at parse time. Plain data: the
//! etcd backend turns it into the client's options.

use std::fmt;
use std::path::PathBuf;

use crate::error::SourceParseError;

/// TLS to etcd, for every endpoint of a source.
///
/// By default the server's certificate is verified against the system's trusted roots
/// and the endpoint's host (a name, or an IP address in the certificate's SAN). A CA of
/// its own replaces the system's roots (a private CA, as a Kubernetes etcd has); a client
/// identity (certificate and key) answers etcd's `--client-cert-auth`. Set through
/// [`EtcdSource`](crate::EtcdSource)'s builder methods or an `etcds://` URI. `Debug`
/// never shows key material.
///
/// ```
/// use mcp_cors::Source;
///
/// let source = Source::etcd(["etcd.internal:2379"], "/mcp/cors")
///     .with_server_name("etcd.example.com");
/// let tls = source.tls().expect("a server name turns TLS on");
/// assert_eq!(tls.server_name(), Some("etcd.example.com"));
/// assert!(tls.ca_pem().is_none(), "the system's roots");
/// ```
#[derive(Clone, Default, PartialEq, Eq)]
pub struct EtcdTls {
    ca_pem: Option<Vec<u8>>,
    identity: Option<(Vec<u8>, Vec<u8>)>,
    server_name: Option<String>,
}

impl EtcdTls {
    /// The CA certificate(s) trusted instead of the system's roots (PEM), if any.
    pub fn ca_pem(&self) -> Option<&[u8]> {
        self.ca_pem.as_deref()
    }

    /// The client certificate (PEM) presented to etcd, if any.
    pub fn client_cert_pem(&self) -> Option<&[u8]> {
        self.identity.as_ref().map(|(cert, _)| cert.as_slice())
    }

    /// The name the server's certificate is verified against instead of the endpoint's
    /// host, if any.
    pub fn server_name(&self) -> Option<&str> {
        self.server_name.as_deref()
    }

    /// The client certificate and its key (PEM): only the backend needs the key.
    #[cfg_attr(not(feature = "etcd"), allow(dead_code))]
    pub(super) fn identity(&self) -> Option<(&[u8], &[u8])> {
        self.identity
            .as_ref()
            .map(|(cert, key)| (cert.as_slice(), key.as_slice()))
    }

    pub(super) fn set_ca_pem(&mut self, pem: Vec<u8>) {
        self.ca_pem = Some(pem);
    }

    pub(super) fn set_identity(&mut self, cert_pem: Vec<u8>, key_pem: Vec<u8>) {
        self.identity = Some((cert_pem, key_pem));
    }

    pub(super) fn set_server_name(&mut self, name: String) {
        self.server_name = Some(name);
    }
}

impl fmt::Debug for EtcdTls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let trust = match &self.ca_pem {
            Some(pem) => format!("CA of its own ({} bytes of PEM)", pem.len()),
            None => "the system's roots".to_owned(),
        };
        f.debug_struct("EtcdTls")
            .field("trust", &trust)
            .field("client_identity", &self.identity.is_some())
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// What a PEM file named by a parameter must hold.
#[derive(Debug, Clone, Copy)]
pub(super) enum PemKind {
    /// One or more certificates (`ca_file`, `cert_file`).
    Certificate,
    /// A private key (`key_file`), PKCS#8, PKCS#1 or SEC1.
    PrivateKey,
}

impl PemKind {
    fn found_in(self, text: &[u8]) -> bool {
        let text = String::from_utf8_lossy(text);
        match self {
            PemKind::Certificate => text.contains("-----BEGIN CERTIFICATE-----"),
            // `PRIVATE KEY`, `RSA PRIVATE KEY`, `EC PRIVATE KEY`.
            PemKind::PrivateKey => text
                .lines()
                .any(|l| l.starts_with("-----BEGIN ") && l.ends_with("PRIVATE KEY-----")),
        }
    }

    fn described(self) -> &'static str {
        match self {
            PemKind::Certificate => "a PEM certificate",
            PemKind::PrivateKey => "a PEM private key",
        }
    }
}

/// Reads the PEM file that parameter `name` names; an error names the parameter and the
/// path, never what the file holds (it may be a key).
pub(super) fn read_pem(name: &str, path: &str, kind: PemKind) -> Result<Vec<u8>, SourceParseError> {
    let bytes = std::fs::read(path).map_err(|source| SourceParseError::TlsFile {
        name: name.to_owned(),
        path: PathBuf::from(path),
        source,
    })?;
    if !kind.found_in(&bytes) {
        return Err(SourceParseError::NotPem {
            name: name.to_owned(),
            path: PathBuf::from(path),
            expected: kind.described(),
        });
    }
    Ok(bytes)
}
