//! What an admin edit changes in a policy's TOML text: one entry added to or removed from
//! one of its lists (`allowed_origins`, `allowed_hosts`), at the top level or in one
//! `[routes.NAME]` table, comments, order and formatting kept (`toml_edit`). Where the
//! text lives, and how it is replaced without losing a concurrent save, is the caller's
//! business (a file: `admin::edit`; a store: `source::cas`).
//!
//! A list that the file does not set stands for what it inherits: for the top level its
//! default (for `allowed_hosts`, the loopback names), for a route the top level's list.
//! An edit writes that list out in full with its change, so that adding one entry never
//! drops the others. A route's list written out no longer follows the top level's: that
//! is what the operator asked for, an override of that route.

use toml_edit::{Array, DocumentMut, Item, TableLike, Value};

use crate::host;
use crate::origin;
use crate::policy::Policy;
use crate::protocol::{AuditAction, AuditRecord, ErrorCode, Request};

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

    /// The list as `route` sets it (normalised), or `None` when the route inherits it.
    fn set_in(self, route: &crate::policy::RouteSettings) -> Option<&[String]> {
        match self {
            ListKey::Origins => route.allowed_origins.as_deref(),
            ListKey::Hosts => route.allowed_hosts.as_deref(),
        }
    }
}

/// One admin edit: which list (of the top level or of a route), what change, and whether
/// `*` was explicitly asked for.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Edit<'a> {
    pub(crate) key: ListKey,
    pub(crate) change: Change<'a>,
    /// `*` (every origin; no Host guard) is added only when this is set.
    pub(crate) force: bool,
    /// The `[routes.NAME]` whose list is edited; `None`: the top level's.
    pub(crate) route: Option<&'a str>,
}

impl<'a> Edit<'a> {
    /// An edit of the top level's list.
    pub(crate) fn new(key: ListKey, change: Change<'a>, force: bool) -> Edit<'a> {
        Edit {
            key,
            change,
            force,
            route: None,
        }
    }

    /// The same edit, of `route`'s list instead (`None`: the top level's).
    pub(crate) fn on_route(self, route: Option<&'a str>) -> Edit<'a> {
        Edit { route, ..self }
    }

    /// The edited list as the policy file's keys name it: `allowed_origins`, or
    /// `routes.NAME.allowed_origins`; the name errors use.
    pub(crate) fn place(&self) -> String {
        match self.route {
            Some(route) => format!("routes.{route}.{}", self.key.name()),
            None => self.key.name().to_owned(),
        }
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
                    self.place()
                ),
            ));
        }
        Ok(wanted)
    }
}

impl<'a> Edit<'a> {
    /// The edit `request` asks for (`add_origin`, `remove_origin`, `add_host`,
    /// `remove_host`), or a refusal for any other request.
    pub(crate) fn from_request(request: &'a Request) -> Result<Edit<'a>, EditError> {
        let (key, change, force, route) = match request {
            Request::AddOrigin {
                origin,
                force,
                route,
            } => (ListKey::Origins, Change::Add(origin), *force, route),
            Request::RemoveOrigin { origin, route } => {
                (ListKey::Origins, Change::Remove(origin), false, route)
            }
            Request::AddHost { host, force, route } => {
                (ListKey::Hosts, Change::Add(host), *force, route)
            }
            Request::RemoveHost { host, route } => {
                (ListKey::Hosts, Change::Remove(host), false, route)
            }
            _ => {
                return Err(refuse(
                    ErrorCode::BadRequest,
                    "not an edit: only add/remove of an origin or a host changes a policy",
                ));
            }
        };
        Ok(Edit::new(key, change, force).on_route(route.as_deref()))
    }
}

impl Edit<'_> {
    /// The audit record of this edit, served with `entry` as stored, made at `at_ms` (who
    /// made it is the caller's to fill in).
    pub(crate) fn audit_record(&self, entry: &str, at_ms: u64) -> AuditRecord {
        let (action, origin, host) = match (self.key, &self.change) {
            (ListKey::Origins, Change::Add(_)) => (AuditAction::AddOrigin, Some(entry), None),
            (ListKey::Origins, Change::Remove(_)) => (AuditAction::RemoveOrigin, Some(entry), None),
            (ListKey::Hosts, Change::Add(_)) => (AuditAction::AddHost, None, Some(entry)),
            (ListKey::Hosts, Change::Remove(_)) => (AuditAction::RemoveHost, None, Some(entry)),
        };
        AuditRecord {
            origin: origin.map(str::to_owned),
            host: host.map(str::to_owned),
            route: self.route.map(str::to_owned),
            ..AuditRecord::new(at_ms, action)
        }
    }
}

/// What an edit of a policy made without a server ([`edit_file`](crate::edit_file)) or
/// of a remote policy ([`edit_remote`](crate::edit_remote)) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditOutcome {
    /// The entry, normalised as the policy stores it.
    pub entry: String,
    /// `false` when there was nothing to do (added an entry already there).
    pub changed: bool,
    /// The revision written, when something was written to a store that has revisions
    /// (etcd); `None` for a file.
    pub revision: Option<u64>,
}

/// Why an edit made without a server, or of a remote policy, was refused: the admin
/// protocol's code and a sentence for the operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct EditRefused {
    /// What kind of refusal, as the admin socket would answer it.
    pub code: ErrorCode,
    /// What was wrong, and what to do.
    pub message: String,
}

impl From<EditError> for EditRefused {
    fn from(e: EditError) -> EditRefused {
        EditRefused {
            code: e.code,
            message: e.message,
        }
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
    let (key, place) = (change.key, change.place());
    let (table, inherited): (&mut dyn TableLike, &[String]) = match change.route {
        None => (doc.as_table_mut(), key.entries(policy)),
        Some(route) => route_table(&mut doc, policy, change.key, route, name)?,
    };
    // A list the file does not set stands for what it inherits (the top level's default,
    // or for a route the top level's list): written out in full, so that adding one entry
    // never drops the others and removing one keeps them.
    let unset = table.get(key.name()).is_none();
    let item = table.entry(key.name()).or_insert_with(|| {
        let mut defaults: Array = inherited.iter().map(String::as_str).collect();
        // Laid out as written by hand (`["a", "b"]`), so a removal keeps the spacing.
        defaults.fmt();
        Item::Value(Value::Array(defaults))
    });
    let Some(list) = item.as_array_mut() else {
        return Err(refuse(
            ErrorCode::Conflict,
            format!("{place} is not an array"),
        ));
    };
    // The parsed policy's entries of this list, normalised, in the file's order: the
    // inherited ones just written out, or the ones the file sets.
    let normalised = if unset {
        inherited
    } else {
        match change.route {
            None => key.entries(policy),
            Some(route) => policy
                .settings()
                .routes
                .get(route)
                .and_then(|r| key.set_in(r))
                .unwrap_or(&[]),
        }
    };
    let matching = entries_equal_to(list, key, normalised, wanted);
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
                    format!("{wanted} is not in {place}"),
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

/// The `[routes.NAME]` table an edit of `route` changes, and the list it inherits from
/// the top level. Refused: a route the policy does not have (naming those it has), and a
/// `guard = false` route, whose lists are never checked.
fn route_table<'d, 'p>(
    doc: &'d mut DocumentMut,
    policy: &'p Policy,
    key: ListKey,
    route: &str,
    name: &dyn std::fmt::Display,
) -> Result<(&'d mut dyn TableLike, &'p [String]), EditError> {
    let routes = &policy.settings().routes;
    let Some(settings) = routes.get(route) else {
        let known = if routes.is_empty() {
            format!("{name} has no [routes.NAME] table")
        } else {
            let names: Vec<&str> = routes.keys().map(String::as_str).collect();
            format!("its routes are: {}", names.join(", "))
        };
        return Err(refuse(
            ErrorCode::NotFound,
            format!("there is no route {route:?} in {name}; {known}"),
        ));
    };
    if !settings.guard {
        return Err(refuse(
            ErrorCode::Unguarded,
            format!(
                "route {route:?} has guard = false: its requests are not checked at all \
                 (no Host or Origin check, no CORS headers), so its {} would change nothing; \
                 edit the top level (no --route), or set guard = true on the route first",
                key.name()
            ),
        ));
    }
    let inherited = key.entries(policy);
    let table = doc
        .get_mut("routes")
        .and_then(Item::as_table_like_mut)
        .and_then(|routes| routes.get_mut(route))
        .and_then(Item::as_table_like_mut)
        .ok_or_else(|| {
            refuse(
                ErrorCode::Conflict,
                format!("{name}: routes.{route} is not a table that can be edited"),
            )
        })?;
    Ok((table, inherited))
}

/// The positions of the entries of `list` that normalise to `wanted`. The parsed policy
/// holds the same entries normalised, in the same order: comparing those is one string
/// compare per entry, where normalising each again would cost a parse.
fn entries_equal_to(list: &Array, key: ListKey, normalised: &[String], wanted: &str) -> Vec<usize> {
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

#[cfg(test)]
mod tests {
    use super::*;

    const A: &str = "https://a.example";
    const B: &str = "https://b.example";

    /// `source` with `edit` made, as the admin socket would make it.
    fn edit_text(source: &str, edit: Edit<'_>) -> Result<Option<String>, EditError> {
        let policy = Policy::from_toml_str(source).expect("the test's policy is valid");
        let wanted = edit.wanted()?;
        edited(source, &policy, edit, &wanted, &"cors.toml")
    }

    fn on(route: &'static str, key: ListKey, change: Change<'static>) -> Edit<'static> {
        Edit::new(key, change, false).on_route(Some(route))
    }

    fn changed(source: &str, edit: Edit<'_>) -> String {
        edit_text(source, edit)
            .expect("the edit is accepted")
            .expect("the edit changes the text")
    }

    /// The policy the edited text loads as: what the server would serve.
    fn serves(text: &str, route: &str) -> Vec<String> {
        let policy = Policy::from_toml_str(text).expect("the edited text is valid");
        let route = policy.route_policy(route).expect("the route is there");
        route.settings().allowed_origins.clone()
    }

    const WITH_LIST: &str = "\
allowed_origins = [\"https://a.example\"]

# Metadata for OAuth discovery.
[routes.meta]
paths = [\"/.well-known/*\"]   # RFC 9728
allowed_origins = [
  \"https://docs.example\",  # the docs site
]
max_age = 60 # short
";

    #[test]
    fn a_route_that_sets_the_list_gets_the_entry_in_its_table_with_comments_kept() {
        let out = changed(WITH_LIST, on("meta", ListKey::Origins, Change::Add(B)));
        assert_eq!(
            out,
            WITH_LIST.replace(
                "  \"https://docs.example\",  # the docs site\n",
                "  \"https://docs.example\",  # the docs site\n  \"https://b.example\",\n"
            )
        );
        assert_eq!(serves(&out, "meta"), ["https://docs.example", B]);
        let top = Policy::from_toml_str(&out).unwrap();
        assert_eq!(
            top.settings().allowed_origins,
            [A],
            "the top level is untouched"
        );

        let out = changed(
            WITH_LIST,
            on(
                "meta",
                ListKey::Origins,
                Change::Remove("HTTPS://Docs.Example:443"),
            ),
        );
        assert!(
            out.contains("allowed_origins = [  # the docs site\n]\nmax_age = 60 # short\n"),
            "{out}"
        );
        assert!(out.contains("# Metadata for OAuth discovery.\n") && out.contains("# RFC 9728"));
        assert!(serves(&out, "meta").is_empty());
    }

    #[test]
    fn an_entry_already_in_the_route_changes_nothing_and_one_missing_is_not_found() {
        let again = on(
            "meta",
            ListKey::Origins,
            Change::Add("https://docs.example"),
        );
        assert!(edit_text(WITH_LIST, again).unwrap().is_none());
        // In the top level's list, not in the route's: not there to remove.
        let err =
            edit_text(WITH_LIST, on("meta", ListKey::Origins, Change::Remove(A))).unwrap_err();
        assert_eq!(err.code, ErrorCode::NotFound);
        assert!(
            err.message.contains("routes.meta.allowed_origins"),
            "{}",
            err.message
        );
    }

    const INHERITING: &str = "\
allowed_origins = [\"https://a.example\"]  # the app

[routes.meta]
# Same origins as the app, for now.
paths = [\"/.well-known/*\"]
";

    #[test]
    fn adding_to_a_route_that_inherits_writes_the_inherited_list_out_with_the_entry() {
        let out = changed(INHERITING, on("meta", ListKey::Origins, Change::Add(B)));
        assert_eq!(
            out,
            format!(
                "{INHERITING}allowed_origins = [\"https://a.example\", \"https://b.example\"]\n"
            )
        );
        assert_eq!(serves(&out, "meta"), [A, B], "the inherited entry is kept");
        // Removing an inherited entry from the route keeps the others, and the top level's.
        let out = changed(INHERITING, on("meta", ListKey::Origins, Change::Remove(A)));
        assert_eq!(out, format!("{INHERITING}allowed_origins = []\n"));
        let top = Policy::from_toml_str(&out).unwrap();
        assert_eq!(top.settings().allowed_origins, [A]);
        // Adding what it inherits already changes nothing.
        assert!(
            edit_text(INHERITING, on("meta", ListKey::Origins, Change::Add(A)))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn hosts_of_a_route_inherit_the_top_levels_default_when_neither_sets_them() {
        let source = "[routes.meta]\npaths = [\"/m\"]\n";
        let out = changed(
            source,
            on("meta", ListKey::Hosts, Change::Add("10.0.0.0/8")),
        );
        assert_eq!(
            out,
            "[routes.meta]\npaths = [\"/m\"]\nallowed_hosts = [\"localhost\", \"127.0.0.1\", \"[::1]\", \"10.0.0.0/8\"]\n"
        );
        let policy = Policy::from_toml_str(&out).unwrap();
        assert_eq!(
            policy.settings().allowed_hosts,
            ["localhost", "127.0.0.1", "[::1]"],
            "the top level keeps its default"
        );
    }

    #[test]
    fn an_unknown_route_is_not_found_naming_the_routes_there_are() {
        let err =
            edit_text(WITH_LIST, on("metadata", ListKey::Origins, Change::Add(B))).unwrap_err();
        assert_eq!(err.code, ErrorCode::NotFound);
        assert!(
            err.message.contains("\"metadata\"") && err.message.contains("its routes are: meta"),
            "{}",
            err.message
        );
        let err = edit_text(
            "allowed_origins = []\n",
            on("meta", ListKey::Hosts, Change::Add("localhost")),
        )
        .unwrap_err();
        assert_eq!(err.code, ErrorCode::NotFound);
        assert!(
            err.message.contains("no [routes.NAME] table"),
            "{}",
            err.message
        );
    }

    #[test]
    fn a_route_without_the_guard_is_refused_saying_why() {
        let source = "[routes.health]\npaths = [\"/health\"]\nguard = false\n";
        for (key, entry) in [(ListKey::Origins, A), (ListKey::Hosts, "localhost:1")] {
            let err = edit_text(source, on("health", key, Change::Add(entry))).unwrap_err();
            assert_eq!(err.code, ErrorCode::Unguarded);
            assert!(
                err.message.contains("guard = false") && err.message.contains(key.name()),
                "{}",
                err.message
            );
        }
    }

    #[test]
    fn a_route_written_as_an_inline_table_or_with_a_dotted_name_is_edited_in_place() {
        let source = "[routes]\nmeta = { paths = [\"/m\"], allowed_origins = [\"https://a.example\"] }\n\"v1.docs\" = { paths = [\"/docs/*\"] }\n";
        let out = changed(source, on("meta", ListKey::Origins, Change::Add(B)));
        assert_eq!(serves(&out, "meta"), [A, B]);
        let out = changed(source, on("v1.docs", ListKey::Origins, Change::Add(B)));
        assert_eq!(serves(&out, "v1.docs"), [B]);
        assert!(
            out.starts_with(
                "[routes]\nmeta = { paths = [\"/m\"], allowed_origins = [\"https://a.example\"] }\n"
            ),
            "{out}"
        );
    }

    #[test]
    fn a_route_written_with_dotted_keys_gets_a_dotted_key() {
        let source = "allowed_origins = [\"https://a.example\"]\nroutes.meta.paths = [\"/m\"]\n";
        let out = changed(source, on("meta", ListKey::Origins, Change::Add(B)));
        assert_eq!(serves(&out, "meta"), [A, B]);
        assert!(out.starts_with(source), "{out}");
    }

    #[test]
    fn the_edited_text_breaks_a_rule_inside_the_route_and_the_loader_names_it() {
        let source =
            "allowed_origins = []\n[routes.meta]\npaths = [\"/m\"]\nallow_credentials = true\n";
        let star = Edit::new(ListKey::Origins, Change::Add("*"), true).on_route(Some("meta"));
        let out = changed(source, star);
        let err = Policy::from_toml_str(&out).unwrap_err().to_string();
        assert!(
            err.contains("routes.meta.allowed_origins") && err.contains("wildcard + credentials"),
            "{err}"
        );
        // Without force, `*` is refused first, naming the route's list.
        let err = edit_text(source, on("meta", ListKey::Origins, Change::Add("*"))).unwrap_err();
        assert_eq!(err.code, ErrorCode::ForceRequired);
        assert!(
            err.message.contains("routes.meta.allowed_origins"),
            "{}",
            err.message
        );
    }

    #[test]
    fn an_edit_without_a_route_leaves_the_routes_alone() {
        let out = changed(
            WITH_LIST,
            Edit::new(ListKey::Origins, Change::Add(B), false),
        );
        assert_eq!(
            out,
            WITH_LIST.replace(
                "allowed_origins = [\"https://a.example\"]\n",
                "allowed_origins = [\"https://a.example\", \"https://b.example\"]\n"
            )
        );
    }
}
