//! [`Source`]: where a policy lives, a file or a key in etcd, and how a source URI is
//! parsed. Plain data: it builds without the server (the CLI parses `--source` with it).

use std::fmt;
use std::path::{Path, PathBuf};

use super::tls::{EtcdTls, PemKind, read_pem};
use crate::error::SourceParseError;

/// The port of an etcd endpoint written without one.
pub const ETCD_DEFAULT_PORT: u16 = 2379;

/// Where a policy lives: a file, or a key in etcd.
///
/// A path (`"cors.toml"`, a `&Path`, a `PathBuf`) is a file; [`Source::parse`] also reads
/// `etcd://HOST:PORT[,HOST:PORT…]/KEY[?cache=PATH&user=NAME&password_file=PATH]`, and
/// `etcds://…` for etcd over TLS (`?ca_file=PATH&cert_file=PATH&key_file=PATH`).
///
/// ```
/// use mcp_cors::Source;
///
/// let file = Source::from("cors.toml");
/// assert!(matches!(file, Source::File(_)));
/// let etcd = Source::parse("etcd://10.0.0.1:2379,10.0.0.2:2379/mcp/cors?cache=/var/cache/cors.toml")?;
/// let Source::Etcd(etcd) = etcd else { unreachable!() };
/// assert_eq!(etcd.endpoints(), ["http://10.0.0.1:2379", "http://10.0.0.2:2379"]);
/// assert_eq!(etcd.key(), "/mcp/cors");
/// assert_eq!(etcd.cache().map(|p| p.to_str()), Some(Some("/var/cache/cors.toml")));
/// # Ok::<(), mcp_cors::SourceParseError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A policy file, watched (and edited in place by the admin socket).
    File(PathBuf),
    /// A key in etcd whose value is the policy's TOML text.
    Etcd(EtcdSource),
}

/// A policy kept in etcd: the endpoints, the key, and the options.
///
/// Built by [`Source::parse`] or by [`Source::etcd`] and its builder methods. `Debug`
/// never shows the password nor a private key.
///
/// ```
/// use mcp_cors::Source;
///
/// let source = Source::etcd(["127.0.0.1:2379"], "/mcp/cors")
///     .with_cache("/var/cache/mcp-cors/cors.toml")
///     .with_user("mcp", "s3cret");
/// assert!(!format!("{source:?}").contains("s3cret"));
/// ```
///
/// Over TLS ([`EtcdTls`]), with a private CA and a client certificate, as a Kubernetes
/// etcd asks for:
///
/// ```no_run
/// use mcp_cors::Source;
///
/// let source = Source::etcd(["10.0.0.1:2379"], "/mcp/cors")
///     .with_ca_pem(std::fs::read("/etc/etcd/tls/ca.crt")?)
///     .with_client_identity(
///         std::fs::read("/etc/etcd/tls/tls.crt")?,
///         std::fs::read("/etc/etcd/tls/tls.key")?,
///     );
/// assert_eq!(source.endpoints(), ["https://10.0.0.1:2379"]);
/// assert_eq!(source.name(), "etcds://10.0.0.1:2379/mcp/cors");
/// # Ok::<(), std::io::Error>(())
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdSource {
    endpoints: Vec<String>,
    pub(super) key: String,
    cache: Option<PathBuf>,
    user: Option<(String, String)>,
    tls: Option<EtcdTls>,
}

impl Source {
    /// A file path, or an `etcd://` URI.
    ///
    /// The URI is `etcd://HOST[:PORT][,HOST[:PORT]…]/KEY[?PARAMS]`. The port defaults to
    /// 2379. KEY is the URI's path with its leading `/` (`etcd://h/mcp/cors` is the key
    /// `/mcp/cors`), taken as written. PARAMS (percent-encoded, `&`-separated):
    /// - `cache=PATH`: each valid value is also written to PATH; a replica that starts
    ///   while etcd is unreachable serves it;
    /// - `user=NAME` with `password=SECRET` or `password_file=PATH` (read once, at parse
    ///   time, trailing newline dropped; better than a password in a URI): etcd's
    ///   user/password authentication.
    ///
    /// `etcds://…` speaks TLS to every endpoint, verifying the server's certificate against
    /// the system's trusted roots and the endpoint's host; so does `etcd://…` with any of
    /// the TLS parameters (never plain text once one is given). The files are read once,
    /// at parse time, and must be PEM:
    /// - `ca_file=PATH`: trust the CA certificate(s) in PATH instead of the system's roots
    ///   (a private CA, as etcd's in Kubernetes);
    /// - `cert_file=PATH` with `key_file=PATH`: the client certificate and its key, for an
    ///   etcd started with `--client-cert-auth` (both or neither);
    /// - `server_name=NAME`: verify the certificate against NAME instead of the
    ///   endpoint's host (endpoints written as addresses, a certificate issued for a name).
    ///
    /// ```
    /// use mcp_cors::Source;
    ///
    /// assert_eq!(Source::parse("cors.toml")?, Source::from("cors.toml"));
    /// let err = Source::parse("etcd://127.0.0.1:2379/k?cahce=/tmp/x").unwrap_err();
    /// assert!(err.to_string().contains("cahce"));
    /// let Source::Etcd(tls) = Source::parse("etcds://etcd.example.com/mcp/cors")? else {
    ///     unreachable!()
    /// };
    /// assert_eq!(tls.endpoints(), ["https://etcd.example.com:2379"]);
    /// let err = Source::parse("etcds://h/k?ca_file=/nonexistent/ca.crt").unwrap_err();
    /// assert!(err.to_string().contains("ca_file /nonexistent/ca.crt"), "{err}");
    /// # Ok::<(), mcp_cors::SourceParseError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Source, SourceParseError> {
        if let Some(rest) = text.strip_prefix("etcd://") {
            return EtcdSource::parse(text, rest, false).map(Source::Etcd);
        }
        if let Some(rest) = text.strip_prefix("etcds://") {
            return EtcdSource::parse(text, rest, true).map(Source::Etcd);
        }
        if text.contains("://") {
            return Err(SourceParseError::UnknownScheme {
                uri: text.to_owned(),
            });
        }
        if text.is_empty() {
            return Err(SourceParseError::Empty);
        }
        Ok(Source::File(PathBuf::from(text)))
    }

    /// An etcd source with default options, for the builder methods of [`EtcdSource`].
    /// An endpoint without a scheme gets `http://`, and one without a port gets 2379. An
    /// endpoint written `https://…` turns TLS on for all of them (as
    /// [`EtcdSource::with_tls`]).
    pub fn etcd<E: AsRef<str>>(
        endpoints: impl IntoIterator<Item = E>,
        key: impl Into<String>,
    ) -> EtcdSource {
        let written: Vec<String> = endpoints
            .into_iter()
            .map(|e| e.as_ref().to_owned())
            .collect();
        let source = EtcdSource {
            endpoints: written.iter().map(|e| endpoint_url(e)).collect(),
            key: key.into(),
            cache: None,
            user: None,
            tls: None,
        };
        if written.iter().any(|e| e.starts_with("https://")) {
            source.with_tls()
        } else {
            source
        }
    }
}

impl EtcdSource {
    fn parse(uri: &str, rest: &str, tls: bool) -> Result<EtcdSource, SourceParseError> {
        let (authority, path_and_query) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
        let (key, query) = match path_and_query.split_once('?') {
            Some((key, query)) => (key, Some(query)),
            None => (path_and_query, None),
        };
        if key.len() <= 1 {
            return Err(SourceParseError::NoKey {
                uri: uri.to_owned(),
            });
        }
        let mut endpoints = Vec::new();
        for endpoint in authority.split(',') {
            endpoints.push(parse_endpoint(uri, endpoint)?);
        }
        let mut source = EtcdSource {
            endpoints,
            key: key.to_owned(),
            cache: None,
            user: None,
            tls: None,
        };
        if tls {
            source = source.with_tls();
        }
        source.read_params(uri, query.unwrap_or(""))?;
        Ok(source)
    }

    fn read_params(&mut self, uri: &str, query: &str) -> Result<(), SourceParseError> {
        let (mut user, mut password) = (None, None);
        let (mut cert, mut key) = (None, None);
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()) {
            if value.is_empty() {
                return Err(SourceParseError::EmptyParameter {
                    uri: uri.to_owned(),
                    name: name.into_owned(),
                });
            }
            match &*name {
                "cache" => self.cache = Some(PathBuf::from(&*value)),
                "user" => user = Some(value.into_owned()),
                "password" => password = Some(value.into_owned()),
                "password_file" => password = Some(read_password(&value)?),
                "ca_file" => {
                    let pem = read_pem(&name, &value, PemKind::Certificate)?;
                    self.tls_mut().set_ca_pem(pem);
                }
                "cert_file" => cert = Some(read_pem(&name, &value, PemKind::Certificate)?),
                "key_file" => key = Some(read_pem(&name, &value, PemKind::PrivateKey)?),
                "server_name" => self.tls_mut().set_server_name(value.into_owned()),
                _ => {
                    return Err(SourceParseError::UnknownParameter {
                        uri: uri.to_owned(),
                        name: name.into_owned(),
                    });
                }
            }
        }
        match (user, password) {
            (Some(user), Some(password)) => self.user = Some((user, password)),
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => {
                return Err(SourceParseError::HalfCredentials {
                    uri: uri.to_owned(),
                });
            }
        }
        match (cert, key) {
            (Some(cert), Some(key)) => self.tls_mut().set_identity(cert, key),
            (None, None) => {}
            (Some(_), None) | (None, Some(_)) => {
                return Err(SourceParseError::HalfIdentity {
                    uri: uri.to_owned(),
                });
            }
        }
        Ok(())
    }

    /// Also writes each valid value to `path` (atomically), and serves it at start-up
    /// while etcd cannot be reached.
    pub fn with_cache(mut self, path: impl Into<PathBuf>) -> EtcdSource {
        self.cache = Some(path.into());
        self
    }

    /// Authenticates as `user` (etcd's user/password authentication).
    pub fn with_user(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.user = Some((user.into(), password.into()));
        self
    }

    /// Speaks TLS to every endpoint (`https://`), verifying the server's certificate
    /// against the system's trusted roots, unless [`EtcdSource::with_ca_pem`] names a CA.
    /// The other TLS methods turn it on too.
    ///
    /// ```
    /// use mcp_cors::Source;
    ///
    /// let source = Source::etcd(["etcd.example.com"], "/mcp/cors").with_tls();
    /// assert_eq!(source.endpoints(), ["https://etcd.example.com:2379"]);
    /// ```
    pub fn with_tls(mut self) -> EtcdSource {
        self.tls_mut();
        self
    }

    /// Over TLS, trusts the CA certificate(s) in `pem` (PEM text) instead of the
    /// system's roots: a private CA, as a Kubernetes etcd has.
    pub fn with_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> EtcdSource {
        self.tls_mut().set_ca_pem(pem.into());
        self
    }

    /// Over TLS, presents this client certificate, proven by its private key (both PEM),
    /// for an etcd that asks for one (`--client-cert-auth`).
    pub fn with_client_identity(
        mut self,
        cert_pem: impl Into<Vec<u8>>,
        key_pem: impl Into<Vec<u8>>,
    ) -> EtcdSource {
        self.tls_mut().set_identity(cert_pem.into(), key_pem.into());
        self
    }

    /// Over TLS, verifies the server's certificate against `name` instead of the
    /// endpoint's host.
    pub fn with_server_name(mut self, name: impl Into<String>) -> EtcdSource {
        self.tls_mut().set_server_name(name.into());
        self
    }

    /// The TLS options, TLS turned on first (every endpoint `https://`) if it was off.
    fn tls_mut(&mut self) -> &mut EtcdTls {
        if self.tls.is_none() {
            for endpoint in &mut self.endpoints {
                if let Some(rest) = endpoint.strip_prefix("http://") {
                    *endpoint = format!("https://{rest}");
                }
            }
        }
        self.tls.get_or_insert_with(EtcdTls::default)
    }

    /// The endpoints, as URLs (`http://HOST:PORT`, or `https://HOST:PORT` over TLS).
    pub fn endpoints(&self) -> &[String] {
        &self.endpoints
    }

    /// The key whose value is the policy.
    pub fn key(&self) -> &str {
        &self.key
    }

    /// The cache file, if any.
    pub fn cache(&self) -> Option<&Path> {
        self.cache.as_deref()
    }

    /// The user name and password, if any.
    pub fn user(&self) -> Option<(&str, &str)> {
        self.user.as_ref().map(|(u, p)| (u.as_str(), p.as_str()))
    }

    /// The TLS options, when it speaks TLS.
    pub fn tls(&self) -> Option<&EtcdTls> {
        self.tls.as_ref()
    }

    /// `etcd://HOST:PORT,…/KEY` (`etcds://…` over TLS): how the source is named in logs,
    /// events and `status` (never with the options, so never with a password).
    pub fn name(&self) -> String {
        let hosts: Vec<&str> = self.endpoints.iter().map(|e| strip_scheme(e)).collect();
        let scheme = if self.tls.is_some() { "etcds" } else { "etcd" };
        format!("{scheme}://{}{}", hosts.join(","), self.key)
    }
}

impl fmt::Debug for EtcdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdSource")
            .field("endpoints", &self.endpoints)
            .field("key", &self.key)
            .field("cache", &self.cache)
            .field("user", &self.user.as_ref().map(|(u, _)| u))
            .field("tls", &self.tls)
            .finish()
    }
}

fn parse_endpoint(uri: &str, endpoint: &str) -> Result<String, SourceParseError> {
    let bad = |reason: &str| SourceParseError::BadEndpoint {
        uri: uri.to_owned(),
        endpoint: endpoint.to_owned(),
        reason: reason.to_owned(),
    };
    if endpoint.is_empty() {
        return Err(bad(
            "an endpoint is empty (write HOST:PORT, comma-separated)",
        ));
    }
    let (host, port) = match endpoint.rsplit_once(':') {
        // `[::1]` alone has colons but no port.
        Some((host, port)) if !port.ends_with(']') => (host, Some(port)),
        _ => (endpoint, None),
    };
    if host.is_empty() || host.contains(['@', '/', '?', '#']) {
        return Err(bad("not a host name or address"));
    }
    if let Some(port) = port {
        port.parse::<u16>()
            .map_err(|_| bad("the port is not a number from 0 to 65535"))?;
    }
    Ok(endpoint_url(endpoint))
}

/// `HOST[:PORT]` as the URL the client connects to (plain; [`EtcdSource::with_tls`] makes
/// it `https://`).
fn endpoint_url(endpoint: &str) -> String {
    let endpoint = strip_scheme(endpoint);
    let has_port = endpoint
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.ends_with(']'));
    if has_port {
        format!("http://{endpoint}")
    } else {
        format!("http://{endpoint}:{ETCD_DEFAULT_PORT}")
    }
}

fn strip_scheme(endpoint: &str) -> &str {
    endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .unwrap_or(endpoint)
}

fn read_password(path: &str) -> Result<String, SourceParseError> {
    let text = std::fs::read_to_string(path).map_err(|source| SourceParseError::PasswordFile {
        path: PathBuf::from(path),
        source,
    })?;
    Ok(text.trim_end_matches(['\n', '\r']).to_owned())
}

impl From<&str> for Source {
    fn from(path: &str) -> Source {
        Source::File(PathBuf::from(path))
    }
}

impl From<String> for Source {
    fn from(path: String) -> Source {
        Source::File(PathBuf::from(path))
    }
}

impl From<&Path> for Source {
    fn from(path: &Path) -> Source {
        Source::File(path.to_path_buf())
    }
}

impl From<PathBuf> for Source {
    fn from(path: PathBuf) -> Source {
        Source::File(path)
    }
}

impl From<&PathBuf> for Source {
    fn from(path: &PathBuf) -> Source {
        Source::File(path.clone())
    }
}

impl From<&String> for Source {
    fn from(path: &String) -> Source {
        Source::File(PathBuf::from(path))
    }
}

impl From<std::ffi::OsString> for Source {
    fn from(path: std::ffi::OsString) -> Source {
        Source::File(PathBuf::from(path))
    }
}

impl From<&std::ffi::OsString> for Source {
    fn from(path: &std::ffi::OsString) -> Source {
        Source::File(PathBuf::from(path))
    }
}

impl From<std::borrow::Cow<'_, Path>> for Source {
    fn from(path: std::borrow::Cow<'_, Path>) -> Source {
        Source::File(path.into_owned())
    }
}

impl From<&std::ffi::OsStr> for Source {
    fn from(path: &std::ffi::OsStr) -> Source {
        Source::File(PathBuf::from(path))
    }
}

impl From<EtcdSource> for Source {
    fn from(etcd: EtcdSource) -> Source {
        Source::Etcd(etcd)
    }
}

impl std::str::FromStr for Source {
    type Err = SourceParseError;

    fn from_str(text: &str) -> Result<Source, SourceParseError> {
        Source::parse(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn etcd(uri: &str) -> EtcdSource {
        match Source::parse(uri) {
            Ok(Source::Etcd(e)) => e,
            other => panic!("{uri}: {other:?}"),
        }
    }

    #[test]
    fn endpoints_get_a_scheme_and_the_default_port() {
        let e = etcd("etcd://a,b:1234,[::1],[::1]:9/k");
        assert_eq!(
            e.endpoints(),
            [
                "http://a:2379",
                "http://b:1234",
                "http://[::1]:2379",
                "http://[::1]:9"
            ]
        );
        assert_eq!(e.name(), "etcd://a:2379,b:1234,[::1]:2379,[::1]:9/k");
    }

    #[test]
    fn parameters_are_read_and_percent_decoded() {
        let e = etcd("etcd://h/mcp/cors?cache=/tmp/a%20b.toml&user=u&password=p%26q");
        assert_eq!(e.key(), "/mcp/cors");
        assert_eq!(e.cache(), Some(Path::new("/tmp/a b.toml")));
        assert_eq!(e.user(), Some(("u", "p&q")));
    }

    #[test]
    fn a_password_file_is_read_without_its_newline() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "hunter2\n").unwrap();
        let e = etcd(&format!(
            "etcd://h/k?user=u&password_file={}",
            file.display()
        ));
        assert_eq!(e.user(), Some(("u", "hunter2")));
    }

    #[test]
    fn mistakes_are_named() {
        let cases = [
            ("", "empty"),
            ("etcd://h:2379", "no key"),
            ("etcd://h:2379/", "no key"),
            ("etcd://h:99999/k", "port"),
            ("etcd://h,,x/k", "empty"),
            ("etcd://h/k?cahce=x", "cahce"),
            ("etcd://h/k?cache=", "cache"),
            ("etcd://h/k?user=u", "user"),
            ("etcd://u@h/k", "u@h"),
            ("consul://h/k", "consul://h/k"),
            (
                "etcd://h/k?password_file=/nonexistent/pw",
                "/nonexistent/pw",
            ),
        ];
        for (uri, needle) in cases {
            let err = Source::parse(uri).expect_err(uri).to_string();
            assert!(err.contains(needle), "{uri}: {err}");
        }
    }

    /// A folder with `ca.pem`, `cert.pem` and `key.pem` (PEM-shaped: parsing checks the
    /// markers, the handshake the rest), and `junk.txt`.
    fn pem_files() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";
        std::fs::write(dir.path().join("ca.pem"), cert).unwrap();
        std::fs::write(dir.path().join("cert.pem"), cert).unwrap();
        let key = "-----BEGIN PRIVATE KEY-----\nSECRETKEY\n-----END PRIVATE KEY-----\n";
        std::fs::write(dir.path().join("key.pem"), key).unwrap();
        std::fs::write(dir.path().join("junk.txt"), "SECRETKEY\n").unwrap();
        dir
    }

    #[test]
    fn etcds_is_tls_with_the_system_roots() {
        let e = etcd("etcds://a,b:1234/k");
        assert_eq!(e.endpoints(), ["https://a:2379", "https://b:1234"]);
        assert_eq!(e.name(), "etcds://a:2379,b:1234/k");
        let tls = e.tls().expect("TLS");
        assert_eq!(tls.ca_pem(), None);
        assert_eq!(tls.client_cert_pem(), None);
        assert_eq!(tls.server_name(), None);
        assert!(etcd("etcd://a/k").tls().is_none());
    }

    #[test]
    fn tls_files_are_read_and_any_tls_parameter_turns_tls_on() {
        let dir = pem_files();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let e = etcd(&format!(
            "etcd://h/k?ca_file={}&cert_file={}&key_file={}&server_name=etcd.example.com",
            path("ca.pem"),
            path("cert.pem"),
            path("key.pem")
        ));
        assert_eq!(e.endpoints(), ["https://h:2379"]);
        assert_eq!(e.name(), "etcds://h:2379/k");
        let tls = e.tls().expect("TLS");
        let cert = std::fs::read(path("cert.pem")).unwrap();
        assert_eq!(tls.ca_pem(), Some(cert.as_slice()));
        assert_eq!(tls.client_cert_pem(), Some(cert.as_slice()));
        assert_eq!(tls.server_name(), Some("etcd.example.com"));
        let key = std::fs::read(path("key.pem")).unwrap();
        assert_eq!(tls.identity(), Some((cert.as_slice(), key.as_slice())));

        let only_name = etcd("etcd://h/k?server_name=n");
        assert_eq!(only_name.endpoints(), ["https://h:2379"]);
        assert_eq!(only_name.tls().and_then(EtcdTls::server_name), Some("n"));
    }

    #[test]
    fn tls_mistakes_are_named_and_never_show_a_key() {
        let dir = pem_files();
        let path = |name: &str| dir.path().join(name).display().to_string();
        let missing = dir.path().join("absent.pem").display().to_string();
        let cases = [
            (
                format!("etcds://h/k?cert_file={}", path("cert.pem")),
                "key_file",
            ),
            (
                format!("etcds://h/k?key_file={}", path("key.pem")),
                "cert_file",
            ),
            (format!("etcds://h/k?ca_file={missing}"), "ca_file"),
            (format!("etcds://h/k?ca_file={missing}"), missing.as_str()),
            (
                format!(
                    "etcds://h/k?cert_file={}&key_file={missing}",
                    path("cert.pem")
                ),
                "key_file",
            ),
            (
                format!("etcds://h/k?ca_file={}", path("junk.txt")),
                "not a PEM certificate",
            ),
            (
                format!(
                    "etcds://h/k?cert_file={}&key_file={}",
                    path("cert.pem"),
                    path("junk.txt")
                ),
                "key_file",
            ),
            (
                format!(
                    "etcds://h/k?cert_file={}&key_file={}",
                    path("key.pem"),
                    path("key.pem")
                ),
                "cert_file",
            ),
            ("etcds://h/k?server_name=".to_owned(), "server_name"),
            ("etcds://h/k?ca_flie=x".to_owned(), "ca_flie"),
            ("etcds://h".to_owned(), "no key"),
        ];
        for (uri, needle) in &cases {
            let err = Source::parse(uri).expect_err(uri).to_string();
            assert!(err.contains(needle), "{uri}: {err}");
            assert!(!err.contains("SECRETKEY"), "{uri}: {err}");
        }
    }

    #[test]
    fn the_builder_turns_tls_on_and_debug_hides_the_key() {
        let plain = Source::etcd(["h"], "/k");
        assert!(plain.tls().is_none());
        let e = plain
            .with_ca_pem("CA")
            .with_client_identity("CERT", "SECRETKEY")
            .with_server_name("n");
        assert_eq!(e.endpoints(), ["https://h:2379"]);
        let tls = e.tls().expect("TLS");
        assert_eq!(tls.ca_pem(), Some(b"CA".as_slice()));
        assert_eq!(tls.client_cert_pem(), Some(b"CERT".as_slice()));
        assert_eq!(tls.server_name(), Some("n"));
        let debug = format!("{e:?}");
        assert!(!debug.contains("SECRETKEY"), "{debug}");
        assert!(debug.contains("client_identity: true"), "{debug}");

        let https = Source::etcd(["https://h:1", "g:2"], "/k");
        assert_eq!(https.endpoints(), ["https://h:1", "https://g:2"]);
        assert!(https.tls().is_some());
        assert_eq!(
            Source::etcd(["h"], "/k").with_tls().name(),
            "etcds://h:2379/k"
        );
    }

    #[test]
    fn paths_are_files() {
        assert_eq!(
            Source::parse("/etc/mcp/cors.toml").unwrap(),
            Source::File("/etc/mcp/cors.toml".into())
        );
        assert_eq!(
            Source::from(PathBuf::from("a")),
            Source::from(Path::new("a"))
        );
        assert_eq!(Source::from(String::from("a")), Source::from("a"));
    }
}
