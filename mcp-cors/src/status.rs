//! How the serving policy got there: its reload status and the last refused file. Plain
//! data, shared by the server and the protocol (so clients build without the server).

use std::path::PathBuf;
use std::time::SystemTime;

use crate::error::{Diagnostic, PolicyError};
use crate::protocol::unix_millis;

/// A policy file that was refused; the policy before it kept serving.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReloadError {
    /// When it was refused (Unix ms).
    pub at_ms: u64,
    /// The whole error, as logged.
    pub message: String,
    /// Each problem, with file, line and column where known.
    pub diagnostics: Vec<Diagnostic>,
}

impl ReloadError {
    pub(crate) fn new(error: &PolicyError) -> Self {
        ReloadError {
            at_ms: unix_millis(SystemTime::now()),
            message: error.to_string(),
            diagnostics: error.diagnostics().to_vec(),
        }
    }
}

/// Where the serving policy came from and how its reloads went.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ReloadStatus {
    /// The policy file, for a watched policy.
    pub source: Option<PathBuf>,
    /// `false` while failing closed: no good policy has been read from the file yet, so
    /// every cross-origin request is refused.
    pub loaded: bool,
    /// How many times a new policy replaced the serving one.
    pub reloads: u64,
    /// When the serving policy was put in place.
    pub last_reload: Option<SystemTime>,
    /// The last refused file, kept until a good one is applied.
    pub last_error: Option<ReloadError>,
    /// For a remote source (etcd) with a cache: the cache file, while the policy serves
    /// from it because the source could not be reached at start-up; `None` once the
    /// source answers.
    #[serde(default)]
    pub cached: Option<PathBuf>,
}
