//! Modal dialogs: a yes/no confirmation before changing the policy, and the add-origin
//! prompt validated as the operator types.

use mcp_cors::protocol::Request;
use mcp_cors::{Policy, PolicySettings};

/// A modal dialog; while one is open, keys go to it.
#[derive(Debug, Clone, PartialEq)]
pub enum Dialog {
    /// Asks before sending `request`.
    Confirm {
        /// The question, naming the origin and the effect.
        question: String,
        /// What `y` sends.
        request: Request,
        /// Whether only `y` answers yes (Enter does not): for what opens the server to
        /// every site, so that it is never a keystroke away.
        explicit: bool,
    },
    /// The add-origin prompt.
    AddOrigin(AddOrigin),
}

/// The add-origin prompt's text and its validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOrigin {
    /// What was typed.
    pub input: String,
    /// The verdict on `input`, recomputed on every keystroke.
    pub check: Validation,
}

/// Whether a candidate origin would be accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validation {
    /// Nothing typed yet.
    Empty,
    /// Valid; `normalised` is how it will be stored.
    Valid {
        /// The stored form (lower-case, default port dropped, …).
        normalised: String,
        /// Whether the policy already holds it.
        present: bool,
    },
    /// Refused, with the library's diagnostic.
    Invalid(String),
}

impl AddOrigin {
    /// An empty prompt.
    pub fn new() -> AddOrigin {
        AddOrigin {
            input: String::new(),
            check: Validation::Empty,
        }
    }

    /// Revalidates after an edit, against the serving policy's other keys (so that, for
    /// example, `*` is refused when credentials are allowed).
    pub fn revalidate(&mut self, base: Option<&PolicySettings>) {
        self.check = validate(&self.input, base);
    }
}

impl Default for AddOrigin {
    fn default() -> Self {
        AddOrigin::new()
    }
}

/// Validates `candidate` exactly as the server will: by building a policy that holds it.
pub fn validate(candidate: &str, base: Option<&PolicySettings>) -> Validation {
    let candidate = candidate.trim();
    if candidate.is_empty() {
        return Validation::Empty;
    }
    let base = base.cloned().unwrap_or_default();
    let present_already = base.allowed_origins.clone();
    // Only the candidate: the origins already in force were validated by the server.
    let settings = PolicySettings {
        allowed_origins: vec![candidate.to_owned()],
        ..base
    };
    match Policy::from_settings(settings) {
        Ok(policy) => {
            let normalised = policy
                .settings()
                .allowed_origins
                .first()
                .cloned()
                .unwrap_or_else(|| candidate.to_owned());
            Validation::Valid {
                present: present_already.contains(&normalised),
                normalised,
            }
        }
        Err(e) => Validation::Invalid(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn validates_like_the_server() {
        assert_eq!(validate("  ", None), Validation::Empty);
        assert_eq!(
            validate("https://App.Example.com:443", None),
            Validation::Valid {
                normalised: "https://app.example.com".into(),
                present: false
            }
        );
        match validate("https://app.example.com/path", None) {
            Validation::Invalid(msg) => assert!(msg.contains("path"), "{msg}"),
            other => panic!("expected invalid, got {other:?}"),
        }
    }

    #[test]
    fn uses_the_serving_policy_for_other_keys() {
        let base = PolicySettings {
            allow_credentials: true,
            allowed_origins: vec!["https://a.example".into()],
            ..PolicySettings::default()
        };
        assert!(matches!(validate("*", Some(&base)), Validation::Invalid(_)));
        assert_eq!(
            validate("https://A.example", Some(&base)),
            Validation::Valid {
                normalised: "https://a.example".into(),
                present: true
            }
        );
    }
}
