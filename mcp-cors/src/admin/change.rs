//! What an admin edit changes in a policy's TOML text: one entry added to or removed from
//! one of its lists (`allowed_origins`, `allowed_hosts`), comments, order and formatting
//! kept (`toml_edit`). Where the text lives, and how it is replaced without losing a
//! concurrent save, is the caller's business (a file: [`super::edit`]).

use toml_edit::{Array, DocumentMut, Item, Value};

use crate::host;
use crate::origin;
use crate::policy::Policy;
use crate::protocol::ErrorCode;

/// An entry to add or remove.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Change<'a> {
    Add(&'a str),
    Remove(&'a str),
}

/// A list of the policy file that admin edits change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ListKey {
    /// `allowed_origins`.
    Origins,
    /// `allowed_hosts` (the DNS-rebinding guard).
    Hosts,
}

/// The longest `allowed_hosts` entry an edit takes: a DNS name is at most 253 bytes, and
/// a port or a CIDR suffix adds a few. It keeps a `remove_host` of any stored entry
/// within the socket's line limit.
const MAX_HOST_ENTRY: usize = 300;

impl ListKey {
    /// The key in the policy file.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ListKey::Origins => "allowed_origins",
            ListKey::Hosts => "allowed_hosts",
        }
    }

    /// The code of an entry that is not valid for this list.
    pub(crate) fn invalid(self) -> ErrorCode {
        match self {
            ListKey::Origins => ErrorCode::InvalidOrigin,
            ListKey::Hosts => ErrorCode::InvalidHost,
        }
    }

    /// `raw` validated and normalised exactly as the loader does, so that it compares
    /// equal to the entries of a parsed policy.
    pub(crate) fn normalise(self, raw: &str) -> Result<String, String> {
        match self {
            ListKey::Origins => origin::parse_entry(raw).map(|e| e.to_string()),
            ListKey::Hosts if raw.trim().len() > MAX_HOST_ENTRY => Err(format!(
                "a host entry is at most {MAX_HOST_ENTRY} bytes (a DNS name is at most 253)"
            )),
            ListKey::Hosts => host::parse_host_entry(raw).map(|e| e.to_string()),
        }
    }

    /// The list's entries in a parsed policy, normalised, in the file's order.
    pub(crate) fn entries(self, policy: &Policy) -> &[String] {
        match self {
            ListKey::Origins => &policy.settings().allowed_origins,
            ListKey::Hosts => &policy.settings().allowed_hosts,
        }
    }
}

/// One admin edit: which list, what change, and whether `*` was explicitly asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Edit<'a> {
    pub(crate) key: ListKey,
    pub(crate) change: Change<'a>,
    /// `*` (every origin; no Host guard) is added only when this is set.
    pub(crate) force: bool,
}

impl<'a> Edit<'a> {
    pub(crate) fn new(key: ListKey, change: Change<'a>, force: bool) -> Edit<'a> {
        Edit { key, change, force }
    }

    /// An edit of `allowed_origins`, not forced.
    #[cfg(test)]
    pub(crate) fn origins(change: Change<'a>) -> Edit<'a> {
        Edit::new(ListKey::Origins, change, false)
    }

    fn raw(&self) -> &'a str {
        match self.change {
            Change::Add(o) | Change::Remove(o) => o,
        }
    }

    /// The normalised entry, or why it is refused: not valid for the list, or `*` without
    /// `force`.
    pub(crate) fn wanted(&self) -> Result<String, EditError> {
        let raw = self.raw();
        let wanted = self.key.normalise(raw).map_err(|e| {
            let raw = origin::shown(raw);
            refuse(self.key.invalid(), format!("{raw:?}: {e}"))
        })?;
        if wanted == "*" && matches!(self.change, Change::Add(_)) && !self.force {
            let effect = match self.key {
                ListKey::Origins => "allows every origin: any web site could call this server",
                ListKey::Hosts => {
                    "turns the Host guard off: DNS-rebinding attacks are no longer refused"
                }
            };
            return Err(refuse(
                ErrorCode::ForceRequired,
                format!(
                    "\"*\" in {} {effect}; not added without force (`--force` on the command \
                     line, `\"force\": true` on the socket)",
                    self.key.name()
                ),
            ));
        }
        Ok(wanted)
    }
}

/// Why an edit was refused: a code for the protocol and a sentence for the operator.
#[derive(Debug)]
pub(crate) struct EditError {
    pub(crate) code: ErrorCode,
    pub(crate) message: String,
}

pub(crate) fn refuse(code: ErrorCode, message: impl Into<String>) -> EditError {
    EditError {
        code,
        message: message.into(),
    }
}

/// `text` (a policy that parsed as `policy`) with `change` made, or `None` when there is
/// nothing to change. `wanted` is the entry as [`Edit::wanted`] normalised it; `name`
/// names the text in errors (a file path, a key in a store).
pub(crate) fn edited(
    text: &str,
    policy: &Policy,
    change: Edit<'_>,
    wanted: &str,
    name: &dyn std::fmt::Display,
) -> Result<Option<String>, EditError> {
    let mut doc: DocumentMut = text
        .parse()
        .map_err(|e| refuse(ErrorCode::Conflict, format!("{name} does not parse: {e}")))?;
    let key = change.key;
    // A list the file does not set stands for its default (for `allowed_hosts`: the
    // loopback names): written out in full, so that adding one entry never drops them
    // and removing one keeps the others.
    let item = doc.entry(key.name()).or_insert_with(|| {
        let mut defaults: Array = key.entries(policy).iter().map(String::as_str).collect();
        // Laid out as written by hand (`["a", "b"]`), so a removal keeps the spacing.
        defaults.fmt();
        Item::Value(Value::Array(defaults))
    });
    let Some(list) = item.as_array_mut() else {
        return Err(refuse(
            ErrorCode::Conflict,
            format!("{} is not an array", key.name()),
        ));
    };
    let matching = entries_equal_to(list, key, policy, wanted);
    match change.change {
        Change::Add(_) => {
            if !matching.is_empty() {
                return Ok(None);
            }
            push_like_the_others(list, wanted);
        }
        Change::Remove(_) => {
            if matching.is_empty() {
                return Err(refuse(
                    ErrorCode::NotFound,
                    format!("{wanted} is not in {}", key.name()),
                ));
            }
            for i in matching.into_iter().rev() {
                remove_keeping_layout(list, i);
            }
        }
    }
    // Validated when applied, before it is written.
    Ok(Some(doc.to_string()))
}

/// The positions of the entries of `list` that normalise to `wanted`. The parsed policy
/// holds the same entries normalised, in the same order: comparing those is one string
/// compare per entry, where normalising each again would cost a parse.
fn entries_equal_to(list: &Array, key: ListKey, policy: &Policy, wanted: &str) -> Vec<usize> {
    let normalised = key.entries(policy);
    if normalised.len() == list.len() {
        return (0..normalised.len())
            .filter(|&i| normalised[i] == wanted)
            .collect();
    }
    let same = |v: &Value| {
        v.as_str()
            .and_then(|s| key.normalise(s).ok())
            .is_some_and(|e| e == wanted)
    };
    (0..list.len())
        .filter(|&i| list.get(i).is_some_and(same))
        .collect()
}

/// Appends `origin` laid out like the list's last entry: on its own line with the same
/// indentation when the list is one entry per line, after a space otherwise. Only the
/// whitespace is copied: a comment before the last entry belongs to it, and so does a
/// comment after it on the same line (it stays on that line, before the new entry).
fn push_like_the_others(list: &mut Array, origin: &str) {
    let indent = list.iter().last().map(|last| {
        let before = last
            .decor()
            .prefix()
            .and_then(|p| p.as_str())
            .unwrap_or(" ");
        before.rfind('\n').map(|i| before[i + 1..].to_owned())
    });
    let trailing = list.trailing().as_str().unwrap_or("").to_owned();
    let prefix = match (indent, trailing.rfind('\n')) {
        // One entry per line, with whatever followed the last entry's comma on its line.
        (Some(Some(indent)), Some(end)) => {
            list.set_trailing(format!("\n{}", &trailing[end + 1..]));
            format!("{}{indent}", &trailing[..=end])
        }
        (Some(Some(indent)), None) => format!("\n{indent}"),
        (Some(None), _) => " ".to_owned(),
        (None, _) => String::new(),
    };
    let mut value = Value::from(origin);
    value.decor_mut().set_prefix(prefix);
    value.decor_mut().set_suffix("");
    list.push_formatted(value);
}

/// The part of a decor up to and including its first newline: in a one-entry-per-line
/// array, the comment that ends the previous entry's line.
fn line_end(decor: &str) -> (&str, &str) {
    decor
        .find('\n')
        .map_or(("", decor), |i| decor.split_at(i + 1))
}

/// Removes entry `i`. The comment ending the previous entry's line lives in entry `i`'s
/// prefix; it is kept, replacing the comment ending entry `i`'s own line (which lives in
/// the next entry's prefix, or the array's trailing text).
fn remove_keeping_layout(list: &mut Array, i: usize) {
    let raw =
        |d: Option<&toml_edit::RawString>| d.and_then(|r| r.as_str()).unwrap_or("").to_owned();
    let prefix = raw(list.get(i).and_then(|v| v.decor().prefix()));
    list.remove(i);
    if i == 0 {
        // The new first entry takes the old first's place (`[` then its whitespace); the
        // comment ending the removed entry's line goes with it.
        if let Some(first) = list.get_mut(0) {
            first.decor_mut().set_prefix(prefix);
        }
        return;
    }
    let kept = line_end(&prefix).0.to_owned();
    match list.get_mut(i) {
        Some(next) => {
            let own = raw(next.decor().prefix());
            next.decor_mut()
                .set_prefix(format!("{kept}{}", line_end(&own).1));
        }
        None => {
            let own = list.trailing().as_str().unwrap_or("").to_owned();
            list.set_trailing(format!("{kept}{}", line_end(&own).1));
        }
    }
}
