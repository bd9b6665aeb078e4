//! [`Source`]: where a policy lives, a file or a key in etcd, and how a source URI is
//! parsed. Plain data: it builds without the server (the CLI parses `--source` with it).

use std::fmt;
use std::path::{Path, PathBuf};

use crate::error::SourceParseError;

/// The port of an etcd endpoint written without one.
pub const ETCD_DEFAULT_PORT: u16 = 2379;

/// Where a policy lives: a file, or a key in etcd.
///
/// A path (`"cors.toml"`, a `&Path`, a `PathBuf`) is a file; [`Source::parse`] also reads
/// `etcd://HOST:PORT[,HOST:PORT…]/KEY[?cache=PATH&user=NAME&password_file=PATH]`.
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
/// never shows the password.
///
/// ```
/// use mcp_cors::Source;
///
/// let source = Source::etcd(["127.0.0.1:2379"], "/mcp/cors")
///     .with_cache("/var/cache/mcp-cors/cors.toml")
///     .with_user("mcp", "s3cret");
/// assert!(!format!("{source:?}").contains("s3cret"));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct EtcdSource {
    endpoints: Vec<String>,
    pub(super) key: String,
    cache: Option<PathBuf>,
    user: Option<(String, String)>,
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
    /// TLS (`https://` endpoints) is not supported yet: the endpoints are plain HTTP.
    ///
    /// ```
    /// use mcp_cors::Source;
    ///
    /// assert_eq!(Source::parse("cors.toml")?, Source::from("cors.toml"));
    /// let err = Source::parse("etcd://127.0.0.1:2379/k?cahce=/tmp/x").unwrap_err();
    /// assert!(err.to_string().contains("cahce"));
    /// # Ok::<(), mcp_cors::SourceParseError>(())
    /// ```
    pub fn parse(text: &str) -> Result<Source, SourceParseError> {
        match text.strip_prefix("etcd://") {
            Some(rest) => EtcdSource::parse(text, rest).map(Source::Etcd),
            None if text.contains("://") => Err(SourceParseError::UnknownScheme {
                uri: text.to_owned(),
            }),
            None if text.is_empty() => Err(SourceParseError::Empty),
            None => Ok(Source::File(PathBuf::from(text))),
        }
    }

    /// An etcd source with default options, for the builder methods of [`EtcdSource`].
    /// An endpoint without a scheme gets `http://`, and one without a port gets 2379.
    pub fn etcd<E: AsRef<str>>(
        endpoints: impl IntoIterator<Item = E>,
        key: impl Into<String>,
    ) -> EtcdSource {
        EtcdSource {
            endpoints: endpoints
                .into_iter()
                .map(|e| endpoint_url(e.as_ref()))
                .collect(),
            key: key.into(),
            cache: None,
            user: None,
        }
    }
}

impl EtcdSource {
    fn parse(uri: &str, rest: &str) -> Result<EtcdSource, SourceParseError> {
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
        };
        source.read_params(uri, query.unwrap_or(""))?;
        Ok(source)
    }

    fn read_params(&mut self, uri: &str, query: &str) -> Result<(), SourceParseError> {
        let (mut user, mut password) = (None, None);
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

    /// The endpoints, as URLs (`http://HOST:PORT`).
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

    /// `etcd://HOST:PORT,…/KEY`: how the source is named in logs, events and `status`
    /// (never with the options, so never with a password).
    pub fn name(&self) -> String {
        let hosts: Vec<&str> = self
            .endpoints
            .iter()
            .map(|e| e.strip_prefix("http://").unwrap_or(e))
            .collect();
        format!("etcd://{}{}", hosts.join(","), self.key)
    }
}

impl fmt::Debug for EtcdSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EtcdSource")
            .field("endpoints", &self.endpoints)
            .field("key", &self.key)
            .field("cache", &self.cache)
            .field("user", &self.user.as_ref().map(|(u, _)| u))
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

/// `HOST[:PORT]` as the URL the client connects to.
fn endpoint_url(endpoint: &str) -> String {
    let endpoint = endpoint.strip_prefix("http://").unwrap_or(endpoint);
    let has_port = endpoint
        .rsplit_once(':')
        .is_some_and(|(_, port)| !port.ends_with(']'));
    if has_port {
        format!("http://{endpoint}")
    } else {
        format!("http://{endpoint}:{ETCD_DEFAULT_PORT}")
    }
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
