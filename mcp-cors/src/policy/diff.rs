//! What changed between two policies, for reload reports.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::PolicySettings;

/// The difference between two policies: origins added and removed, other keys changed.
///
/// ```
/// use mcp_cors::{Policy, PolicyDiff};
///
/// let old = Policy::from_toml_str(r#"allowed_origins = ["https://a.example"]"#)?;
/// let new = Policy::from_toml_str("allowed_origins = [\"https://b.example\"]\nmax_age = 60")?;
/// let diff = PolicyDiff::between(old.settings(), new.settings());
/// assert_eq!(diff.origins_added, ["https://b.example"]);
/// assert_eq!(diff.origins_removed, ["https://a.example"]);
/// assert_eq!(diff.keys_changed, ["max_age"]);
/// # Ok::<(), mcp_cors::PolicyError>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyDiff {
    /// Entries of `allowed_origins` that are new.
    pub origins_added: Vec<String>,
    /// Entries of `allowed_origins` that are gone.
    pub origins_removed: Vec<String>,
    /// Every other key whose value changed.
    pub keys_changed: Vec<String>,
}

impl PolicyDiff {
    /// Compares two (normalised) settings.
    pub fn between(old: &PolicySettings, new: &PolicySettings) -> PolicyDiff {
        let missing_from = |list: &[String], other: &[String]| -> Vec<String> {
            list.iter()
                .filter(|o| !other.contains(o))
                .cloned()
                .collect()
        };
        // Compare every other key generically, so a key added later cannot be forgotten.
        let table = |s: &PolicySettings| match toml::Value::try_from(s) {
            Ok(toml::Value::Table(t)) => t,
            _ => toml::Table::new(),
        };
        let (old_t, new_t) = (table(old), table(new));
        let mut keys: Vec<&String> = old_t.keys().chain(new_t.keys()).collect();
        keys.sort();
        keys.dedup();
        PolicyDiff {
            origins_added: missing_from(&new.allowed_origins, &old.allowed_origins),
            origins_removed: missing_from(&old.allowed_origins, &new.allowed_origins),
            keys_changed: keys
                .into_iter()
                .filter(|k| *k != "allowed_origins" && old_t.get(*k) != new_t.get(*k))
                .cloned()
                .collect(),
        }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.origins_added.is_empty()
            && self.origins_removed.is_empty()
            && self.keys_changed.is_empty()
    }
}

impl fmt::Display for PolicyDiff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("no change");
        }
        let mut parts: Vec<String> = Vec::new();
        parts.extend(self.origins_added.iter().map(|o| format!("+{o}")));
        parts.extend(self.origins_removed.iter().map(|o| format!("-{o}")));
        if !self.keys_changed.is_empty() {
            parts.push(format!("changed {}", self.keys_changed.join(", ")));
        }
        f.write_str(&parts.join(" "))
    }
}
