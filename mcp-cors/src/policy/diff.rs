//! What changed between two policies, for reload reports.

use std::fmt;

use foldhash::HashSet;
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
    /// Every other key whose value changed (routes apart, below).
    pub keys_changed: Vec<String>,
    /// `[routes.NAME]` tables that are new.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes_added: Vec<String>,
    /// `[routes.NAME]` tables that are gone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes_removed: Vec<String>,
    /// `[routes.NAME]` tables in both whose content changed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub routes_changed: Vec<String>,
}

impl PolicyDiff {
    /// Compares two (normalised) settings. Linear in the size of the lists: a reload or
    /// an edit of a 100 000-origin policy compares in milliseconds.
    pub fn between(old: &PolicySettings, new: &PolicySettings) -> PolicyDiff {
        // Compare every other key generically, so a key added later cannot be forgotten;
        // without the origins, which are compared as sets, not converted.
        let table = |s: &PolicySettings| {
            let others = PolicySettings {
                allowed_origins: Vec::new(),
                routes: Default::default(),
                ..s.clone()
            };
            match toml::Value::try_from(others) {
                Ok(toml::Value::Table(t)) => t,
                _ => toml::Table::new(),
            }
        };
        let (old_t, new_t) = (table(old), table(new));
        let mut keys: Vec<&String> = old_t.keys().chain(new_t.keys()).collect();
        keys.sort();
        keys.dedup();
        let (old_o, new_o) = (&old.allowed_origins, &new.allowed_origins);
        let (gone, came) = differing_middles(old_o, new_o);
        PolicyDiff {
            origins_added: missing_from(came, old_o),
            origins_removed: missing_from(gone, new_o),
            keys_changed: keys
                .into_iter()
                .filter(|k| *k != "allowed_origins" && old_t.get(*k) != new_t.get(*k))
                .cloned()
                .collect(),
            routes_added: (new.routes.keys())
                .filter(|k| !old.routes.contains_key(*k))
                .cloned()
                .collect(),
            routes_removed: (old.routes.keys())
                .filter(|k| !new.routes.contains_key(*k))
                .cloned()
                .collect(),
            routes_changed: (new.routes.iter())
                .filter(|(k, r)| old.routes.get(*k).is_some_and(|o| o != *r))
                .map(|(k, _)| k.clone())
                .collect(),
        }
    }

    /// Whether nothing changed.
    pub fn is_empty(&self) -> bool {
        self.origins_added.is_empty()
            && self.origins_removed.is_empty()
            && self.keys_changed.is_empty()
            && self.routes_added.is_empty()
            && self.routes_removed.is_empty()
            && self.routes_changed.is_empty()
    }
}

/// The parts of `old` and `new` between their common beginning and their common end:
/// after an edit, one entry or none. Every entry outside them is in both lists.
fn differing_middles<'a>(old: &'a [String], new: &'a [String]) -> (&'a [String], &'a [String]) {
    let start = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let (old, new) = (&old[start..], &new[start..]);
    let end = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    (&old[..old.len() - end], &new[..new.len() - end])
}

/// Up to this many entries are looked for in the other list one by one; more through a
/// hash set of it.
const FEW: usize = 16;

/// The entries of `list` that `other` lacks, in `list`'s order. Linear in both: a few are
/// looked for directly, more through a hash set.
fn missing_from(list: &[String], other: &[String]) -> Vec<String> {
    if list.len() <= FEW {
        return list
            .iter()
            .filter(|o| !other.contains(o))
            .cloned()
            .collect();
    }
    let other: HashSet<&str> = other.iter().map(String::as_str).collect();
    list.iter()
        .filter(|o| !other.contains(o.as_str()))
        .cloned()
        .collect()
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
        let routes = [
            ("added", &self.routes_added),
            ("removed", &self.routes_removed),
            ("changed", &self.routes_changed),
        ];
        for (what, names) in routes {
            if !names.is_empty() {
                parts.push(format!("route {what} {}", names.join(", ")));
            }
        }
        f.write_str(&parts.join(" "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(origins: &[&str], max_age: u32) -> PolicySettings {
        PolicySettings {
            allowed_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            max_age,
            ..PolicySettings::default()
        }
    }

    #[test]
    fn origins_are_compared_as_sets_in_list_order_and_other_keys_by_value() {
        let old = settings(
            &[
                "https://a.example",
                "https://b.example",
                "https://c.example",
            ],
            5,
        );
        let new = settings(
            &[
                "https://d.example",
                "https://c.example",
                "https://a.example",
            ],
            6,
        );
        let diff = PolicyDiff::between(&old, &new);
        assert_eq!(diff.origins_added, ["https://d.example"]);
        assert_eq!(diff.origins_removed, ["https://b.example"]);
        assert_eq!(diff.keys_changed, ["max_age"]);
        assert!(PolicyDiff::between(&new, &new).is_empty());
        // An entry listed twice, or moved, is neither added nor removed.
        let twice = settings(
            &[
                "https://a.example",
                "https://b.example",
                "https://a.example",
            ],
            5,
        );
        let moved = settings(&["https://b.example", "https://a.example"], 5);
        let diff = PolicyDiff::between(&twice, &moved);
        assert!(diff.is_empty(), "{diff}");
        let many: Vec<String> = (0..100).map(|i| format!("https://o{i}.example")).collect();
        let mut reversed = many.clone();
        reversed.reverse();
        reversed[0] = "https://new.example".into();
        let old = PolicySettings {
            allowed_origins: many,
            ..PolicySettings::default()
        };
        let new = PolicySettings {
            allowed_origins: reversed,
            ..PolicySettings::default()
        };
        let diff = PolicyDiff::between(&old, &new);
        assert_eq!(diff.origins_added, ["https://new.example"]);
        assert_eq!(diff.origins_removed, ["https://o99.example"]);
    }

    /// Fails on the code before this fix: `Vec::contains` made this 10^10 comparisons.
    #[test]
    fn a_diff_of_100_000_origins_is_linear() {
        let many: Vec<String> = (0..100_000)
            .map(|i| format!("https://o{i}.example"))
            .collect();
        let mut old = PolicySettings {
            allowed_origins: many.clone(),
            ..PolicySettings::default()
        };
        let new = PolicySettings {
            allowed_origins: many,
            ..PolicySettings::default()
        };
        old.allowed_origins[50_000] = "https://gone.example".into();
        let start = std::time::Instant::now();
        let diff = PolicyDiff::between(&old, &new);
        let took = start.elapsed();
        assert_eq!(diff.origins_added, ["https://o50000.example"]);
        assert_eq!(diff.origins_removed, ["https://gone.example"]);
        assert!(took < std::time::Duration::from_secs(1), "took {took:?}");
    }
}
