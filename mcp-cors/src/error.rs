//! Error types: what went wrong loading a policy, and where.

use std::fmt;
use std::path::PathBuf;

/// One problem found in a policy file, located as precisely as the source allows.
///
/// `Display` renders it the way compilers and `nginx -t` do:
/// `cors.toml:3:5: allowed_origins: "https://a.com/x": an origin has no path`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Diagnostic {
    /// The file the problem is in, when the policy came from a file.
    pub file: Option<PathBuf>,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (in characters), when known.
    pub column: Option<usize>,
    /// The policy key concerned (`allowed_origins`, `admin.socket`, …), when known.
    pub key: Option<String>,
    /// The offending value as written, when there is one.
    pub value: Option<String>,
    /// What is wrong, in a sentence an operator can act on.
    pub message: String,
}

impl Diagnostic {
    /// A diagnostic with only a message (no position, key or value).
    pub fn message(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            file: None,
            line: None,
            column: None,
            key: None,
            value: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.file, self.line, self.column) {
            (Some(file), Some(l), Some(c)) => write!(f, "{}:{l}:{c}: ", file.display())?,
            (Some(file), Some(l), None) => write!(f, "{}:{l}: ", file.display())?,
            (Some(file), None, _) => write!(f, "{}: ", file.display())?,
            (None, Some(l), Some(c)) => write!(f, "line {l}, column {c}: ")?,
            (None, Some(l), None) => write!(f, "line {l}: ")?,
            (None, None, _) => {}
        }
        if let Some(key) = &self.key {
            write!(f, "{key}: ")?;
        }
        if let Some(value) = &self.value {
            write!(f, "{value:?}: ")?;
        }
        f.write_str(&self.message)
    }
}

/// A policy that could not be loaded. Nothing of it was applied.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The file could not be read.
    #[error("cannot read policy file {}: {source}", path.display())]
    Read {
        /// The file that was asked for.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// The path is not a regular file (after symlinks are followed): a FIFO, a device, a
    /// directory. It is never read.
    #[error(
        "policy file {} is {kind}, not a regular file; put the policy in a regular file (a symlink to one is fine)",
        path.display()
    )]
    NotAFile {
        /// The file that was asked for.
        path: PathBuf,
        /// What it is instead, in words (`a FIFO (named pipe)`, `a directory`, …).
        kind: &'static str,
    },
    /// The file is larger than [`MAX_FILE_SIZE`](crate::MAX_FILE_SIZE); it is not read.
    #[error(
        "policy file {} is {size} bytes, larger than the {} MiB a policy file may be; is it the right file?",
        path.display(),
        limit >> 20
    )]
    TooLarge {
        /// The file that was asked for.
        path: PathBuf,
        /// Its size in bytes (at least, when it grew while being read).
        size: u64,
        /// The cap, in bytes.
        limit: u64,
    },
    /// The file was read but is not a valid policy; every problem found is listed.
    #[error("{}", DisplayList(diagnostics))]
    Invalid {
        /// Each problem, in file order. Never empty.
        diagnostics: Vec<Diagnostic>,
    },
}

impl PolicyError {
    /// The individual problems (empty when the file could not be read).
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            PolicyError::Read { .. }
            | PolicyError::NotAFile { .. }
            | PolicyError::TooLarge { .. } => &[],
            PolicyError::Invalid { diagnostics } => diagnostics,
        }
    }

    /// Attaches the file name to every diagnostic that lacks one.
    pub(crate) fn in_file(mut self, path: &std::path::Path) -> Self {
        if let PolicyError::Invalid { diagnostics } = &mut self {
            for d in diagnostics {
                d.file.get_or_insert_with(|| path.to_path_buf());
            }
        }
        self
    }
}

struct DisplayList<'a>(&'a [Diagnostic]);

impl fmt::Display for DisplayList<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{d}")?;
        }
        Ok(())
    }
}

/// Any error the library reports to its caller.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The policy could not be loaded.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// The configuration file could not be watched.
    #[cfg(feature = "server")]
    #[error("cannot watch {}: {source}", path.display())]
    Watch {
        /// The configuration file.
        path: PathBuf,
        /// Why watching failed.
        #[source]
        source: WatchError,
    },
    /// The admin socket could not be served (for example, another live process serves it).
    #[cfg(feature = "server")]
    #[error(transparent)]
    Admin(#[from] crate::admin::AdminError),
    /// A source URI that cannot be used.
    #[error(transparent)]
    SourceUri(#[from] SourceParseError),
    /// A remote source (etcd, a custom [`PolicyBackend`](crate::PolicyBackend)) could not
    /// be read at start-up, and there was no cache to serve.
    #[cfg(any(feature = "server", feature = "etcd"))]
    #[error("cannot read the policy from {name}: {source}")]
    Unreachable {
        /// The source, as named in logs (`etcd://HOST:PORT/KEY`).
        name: String,
        /// Why it could not be read.
        #[source]
        source: crate::source::BackendError,
    },
    /// The `etcd://` source needs the crate's `etcd` feature.
    #[error("{name}: this build of mcp-cors has no etcd support (enable its `etcd` feature)")]
    NoEtcdSupport {
        /// The source asked for.
        name: String,
    },
}

/// Why a policy file could not be watched.
#[cfg(feature = "server")]
#[derive(Debug, thiserror::Error)]
pub enum WatchError {
    /// The path could not be made absolute, or the watcher thread could not start.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

/// A source URI ([`Source::parse`](crate::Source::parse)) that cannot be used: what is
/// wrong, and in which URI.
#[derive(Debug, thiserror::Error)]
pub enum SourceParseError {
    /// Nothing was given.
    #[error("the policy source is empty: give a file path or etcd://HOST:PORT/KEY")]
    Empty,
    /// A `scheme://` other than `etcd://` and `etcds://`.
    #[error(
        "{uri}: unknown source scheme; a source is a file path, etcd://HOST:PORT[,HOST:PORT…]/KEY or etcds://… (TLS)"
    )]
    UnknownScheme {
        /// The URI as given.
        uri: String,
    },
    /// `etcd://HOST:PORT` without `/KEY`.
    #[error("{uri}: no key; write etcd://HOST:PORT/KEY, e.g. etcd://127.0.0.1:2379/mcp/cors")]
    NoKey {
        /// The URI as given.
        uri: String,
    },
    /// An endpoint that is not `HOST[:PORT]`.
    #[error("{uri}: endpoint {endpoint:?}: {reason}")]
    BadEndpoint {
        /// The URI as given.
        uri: String,
        /// The endpoint as written.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A query parameter this version does not know (a typo, most often).
    #[error(
        "{uri}: unknown parameter {name:?}; known: cache, user, password, password_file, ca_file, cert_file, key_file, server_name"
    )]
    UnknownParameter {
        /// The URI as given.
        uri: String,
        /// The parameter's name.
        name: String,
    },
    /// A query parameter without a value.
    #[error("{uri}: parameter {name:?} has no value")]
    EmptyParameter {
        /// The URI as given.
        uri: String,
        /// The parameter's name.
        name: String,
    },
    /// `user` without a password, or a password without `user`.
    #[error("{uri}: user and password (or password_file) go together; give both or neither")]
    HalfCredentials {
        /// The URI as given.
        uri: String,
    },
    /// `password_file` could not be read.
    #[error("cannot read the etcd password file {}: {source}", path.display())]
    PasswordFile {
        /// The file named by `password_file`.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// `cert_file` without `key_file`, or `key_file` without `cert_file`.
    #[error(
        "{uri}: cert_file and key_file (the client identity) go together; give both or neither"
    )]
    HalfIdentity {
        /// The URI as given.
        uri: String,
    },
    /// A TLS file (`ca_file`, `cert_file`, `key_file`) could not be read.
    #[error("cannot read the etcd {name} {}: {source}", path.display())]
    TlsFile {
        /// The parameter that names it.
        name: String,
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        #[source]
        source: std::io::Error,
    },
    /// A TLS file that does not hold the PEM it should (its contents are never shown:
    /// it may be a key).
    #[error("the etcd {name} {} is not {expected}", path.display())]
    NotPem {
        /// The parameter that names it.
        name: String,
        /// The file.
        path: PathBuf,
        /// What it should hold, e.g. "a PEM certificate".
        expected: &'static str,
    },
}
