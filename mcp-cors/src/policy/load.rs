//! From TOML text to a validated, compiled [`Policy`]: every problem is reported with the
//! key, the value and the line and column where it was written.

use std::collections::{BTreeMap, HashMap};
use std::ops::Range;
use std::rc::Rc;
use std::sync::Arc;

use http::HeaderValue;
use regex::{RegexBuilder, RegexSet, RegexSetBuilder};
use serde::Deserialize;
use serde::de::IgnoredAny;
use toml::Spanned;

use super::routes::{self, PathPattern, Route, Routes};
use super::{Compiled, Policy, PolicySettings, RouteSettings};
use crate::allow_headers::{self, HeaderAllowList};
use crate::error::Diagnostic;
use crate::extras::AllowExtras;
use crate::forwarded::{self, TrustedProxies};
use crate::host::{self, HostGuard};
use crate::matcher::OriginMatcher;
use crate::origin::{self, OriginEntry};

const REGEX_KEY: &str = "allowed_origin_regexes";
/// A compiled regex may not grow past this (bytes); keeps a hostile pattern from eating memory.
const REGEX_SIZE_LIMIT: usize = 1 << 20;
/// The most the whole regex set may compile to (bytes).
///
/// The set runs on every request whose origin no exact or wildcard entry allows. Its lazy
/// DFA keeps a cache of states; once the compiled set outgrows what that cache holds, the
/// search keeps rebuilding states and falls back to slower engines, and each such request
/// costs tens of microseconds instead of about a hundred nanoseconds (measured: a set of
/// 4 MiB with the default 2 MiB cache, ~70× slower than a typical set of ten). 2 MiB is
/// ten times what 200 ordinary patterns (`https://[a-z0-9-]+\.tenant\.example\.com`)
/// compile to.
const REGEX_SET_SIZE_LIMIT: usize = 2 << 20;
/// The lazy DFA's cache for the set, per thread that searches it: twice the set's cap, so
/// a set at the cap still searches at full speed (measured).
const REGEX_DFA_SIZE_LIMIT: usize = 2 * REGEX_SET_SIZE_LIMIT;
/// The most pattern text all regexes together may have (bytes). Ordinary patterns are tens
/// of bytes; 64 KiB of literal alternatives already compiles to about the set's cap.
const REGEX_TEXT_LIMIT: usize = 64 << 10;

/// Origins no operator would allow. A regex that matches one of them matches (nearly)
/// anything, which is reflect-any-origin in disguise.
const CANARY_ORIGINS: [&str; 3] = [
    "https://mcp-cors-canary.invalid",
    "http://attacker.invalid:31337",
    "https://xn--80ak6aa92e.com",
];

/// Where each value sits in the source, for diagnostics. Deserialised from the same text as
/// the settings; it only records positions, so it ignores keys it does not know.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct SpanMap {
    allowed_origins: Option<Spanned<Vec<Spanned<IgnoredAny>>>>,
    allowed_origin_regexes: Option<Spanned<Vec<Spanned<IgnoredAny>>>>,
    allowed_hosts: Option<Spanned<Vec<Spanned<IgnoredAny>>>>,
    allowed_methods: Option<Spanned<Vec<Spanned<IgnoredAny>>>>,
    allowed_headers: Option<Spanned<Vec<Spanned<IgnoredAny>>>>,
    exposed_headers: Option<Spanned<Vec<Spanned<IgnoredAny>>>>,
    allow_credentials: Option<Spanned<IgnoredAny>>,
    trusted_proxies: Option<Spanned<Vec<Spanned<IgnoredAny>>>>,
    admin: Option<AdminSpans>,
    /// Inside a route only.
    paths: Option<Spanned<Vec<Spanned<IgnoredAny>>>>,
    routes: Option<BTreeMap<String, Spanned<SpanMap>>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct AdminSpans {
    socket: Option<Spanned<IgnoredAny>>,
    audit_log: Option<Spanned<IgnoredAny>>,
}

/// Turns a key (and list index) into a located [`Diagnostic`].
pub(super) struct Locator<'a> {
    source: Option<&'a str>,
    spans: Rc<SpanMap>,
    /// Set while a route is compiled: its diagnostics name `routes.NAME.key`.
    scope: Option<Scope>,
}

/// The route being compiled, and which keys it writes itself (the others are inherited).
struct Scope {
    route: String,
    overridden: Vec<&'static str>,
}

/// Keys only a route has; always its own.
const ROUTE_KEYS: [&str; 3] = ["", "paths", "guard"];

impl<'a> Locator<'a> {
    /// For settings built in code: no positions.
    pub(super) fn none() -> Self {
        Locator {
            source: None,
            spans: Rc::default(),
            scope: None,
        }
    }

    /// The locator for compiling route `name`, which writes the keys `overridden`.
    fn for_route(&self, name: &str, overridden: Vec<&'static str>) -> Locator<'a> {
        Locator {
            source: self.source,
            spans: Rc::clone(&self.spans),
            scope: Some(Scope {
                route: name.to_owned(),
                overridden,
            }),
        }
    }

    /// Whether `key` was inherited from the top level by the route being compiled.
    fn inherited(&self, key: &str) -> bool {
        self.scope
            .as_ref()
            .is_some_and(|s| !ROUTE_KEYS.contains(&key) && !s.overridden.contains(&key))
    }

    fn span(&self, key: &str, index: Option<usize>) -> Option<Range<usize>> {
        let s: &SpanMap = match &self.scope {
            Some(scope) if !self.inherited(key) => {
                let route = self.spans.routes.as_ref()?.get(&scope.route)?;
                if key.is_empty() {
                    return Some(route.span());
                }
                route.get_ref()
            }
            _ => &self.spans,
        };
        let list = |l: &Option<Spanned<Vec<Spanned<IgnoredAny>>>>| {
            let l = l.as_ref()?;
            match index {
                Some(i) => l.get_ref().get(i).map(Spanned::span),
                None => Some(l.span()),
            }
        };
        match key {
            "paths" => list(&s.paths),
            "allowed_origins" => list(&s.allowed_origins),
            "allowed_origin_regexes" => list(&s.allowed_origin_regexes),
            "allowed_hosts" => list(&s.allowed_hosts),
            "allowed_methods" => list(&s.allowed_methods),
            "allowed_headers" => list(&s.allowed_headers),
            "exposed_headers" => list(&s.exposed_headers),
            "trusted_proxies" => list(&s.trusted_proxies),
            "allow_credentials" => s.allow_credentials.as_ref().map(Spanned::span),
            "admin.socket" => s.admin.as_ref()?.socket.as_ref().map(Spanned::span),
            "admin.audit_log" => s.admin.as_ref()?.audit_log.as_ref().map(Spanned::span),
            _ => None,
        }
    }

    fn diag(&self, key: &str, index: Option<usize>, value: &str, message: String) -> Diagnostic {
        let (line, column) = match (self.source, self.span(key, index)) {
            (Some(src), Some(span)) => line_column(src, span.start),
            _ => (None, None),
        };
        let (key, message) = match &self.scope {
            None => (key.to_owned(), message),
            Some(scope) if key.is_empty() => (format!("routes.{}", scope.route), message),
            Some(scope) if self.inherited(key) => (
                format!("routes.{}.{key}", scope.route),
                format!("{message} (inherited from the top-level `{key}`)"),
            ),
            Some(scope) => (format!("routes.{}.{key}", scope.route), message),
        };
        Diagnostic {
            file: None,
            line,
            column,
            key: Some(key),
            // Clipped: an oversized value (a 64 KB origin, a huge regex) would otherwise be
            // repeated whole in logs, events and the admin socket's replies.
            value: Some(origin::shown(value).into_owned()),
            message,
        }
    }
}

impl Locator<'_> {
    /// A diagnostic about a whole list (no single value to quote), at the list.
    fn list_diag(&self, key: &str, message: String) -> Diagnostic {
        Diagnostic {
            value: None,
            ..self.diag(key, None, "", message)
        }
    }
}

/// 1-based line and column (in characters) of a byte offset.
fn line_column(source: &str, offset: usize) -> (Option<usize>, Option<usize>) {
    let Some(before) = source.get(..offset) else {
        return (None, None);
    };
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before[line_start..].chars().count() + 1;
    (Some(line), Some(column))
}

/// How many unknown keys one load reports, at most: enough for any real typo pass, and a
/// bound on the re-parses each one costs.
const MAX_UNKNOWN_KEYS: usize = 32;

/// Parses TOML text into settings plus the positions of their values.
///
/// Every unknown key is reported, not only the first: serde stops at the first one, so
/// each is blanked out (its lines kept, so positions hold) and the text parsed again. The
/// settings come back too when the rest of the text is valid, so that the caller can
/// report the value errors in the same pass.
pub(super) fn parse(source: &str) -> (Option<PolicySettings>, Locator<'_>, Vec<Diagnostic>) {
    let mut errors = Vec::new();
    let mut text = std::borrow::Cow::Borrowed(source);
    let settings = loop {
        match toml::from_str::<PolicySettings>(&text) {
            Ok(settings) => break Some(settings),
            Err(e) => {
                let unknown = e.message().starts_with("unknown field");
                let mut diagnostic = toml_error(source, &e);
                let span = e
                    .span()
                    .filter(|_| unknown && errors.len() < MAX_UNKNOWN_KEYS);
                let blanked = span.and_then(|span| {
                    diagnostic.key = dotted_key_at(&text, &span).or(diagnostic.key.take());
                    blank_entry(&text, &span)
                });
                errors.push(diagnostic);
                match blanked {
                    Some(next) => text = std::borrow::Cow::Owned(next),
                    None => break None,
                }
            }
        }
    };
    // Positions are best effort, from the text as written.
    let spans = toml::from_str(source).unwrap_or_default();
    let locator = Locator {
        source: Some(source),
        spans: Rc::new(spans),
        scope: None,
    };
    (settings, locator, errors)
}

/// The dotted name (`admin.socket`) of the key written at `span`.
fn dotted_key_at(source: &str, span: &Range<usize>) -> Option<String> {
    fn walk(table: &toml::de::DeTable<'_>, span: &Range<usize>, path: &mut Vec<String>) -> bool {
        for (key, value) in table {
            path.push(key.get_ref().to_string());
            if key.span() == *span {
                return true;
            }
            if let toml::de::DeValue::Table(inner) = value.get_ref() {
                if walk(inner, span, path) {
                    return true;
                }
            }
            path.pop();
        }
        false
    }
    let table = toml::de::DeTable::parse(source).ok()?;
    let mut path = Vec::new();
    walk(table.get_ref(), span, &mut path).then(|| path.join("."))
}

/// `source` with the entry whose key is written at `span` replaced by spaces (newlines
/// kept, so every other position stays where it was). A `[table]` header goes with all of
/// its lines. `None` when the entry cannot be found.
fn blank_entry(source: &str, span: &Range<usize>) -> Option<String> {
    let table = toml::de::DeTable::parse(source).ok()?;
    let range = entry_range(source, table.get_ref(), span)?;
    let mut bytes = source.as_bytes().to_vec();
    for b in &mut bytes[range] {
        if *b != b'\n' {
            *b = b' ';
        }
    }
    // Only ASCII bytes were replaced by ASCII bytes, on whole characters.
    String::from_utf8(bytes).ok()
}

fn entry_range(
    source: &str,
    table: &toml::de::DeTable<'_>,
    span: &Range<usize>,
) -> Option<Range<usize>> {
    for (key, value) in table {
        if key.span() == *span {
            let start = source[..span.start].rfind('\n').map_or(0, |i| i + 1);
            let header = source[start..span.start].trim_start().starts_with('[');
            let end = if header {
                // Up to the next table header, or the end of the text.
                let mut at = value.span().end.max(span.end);
                at = source[at..]
                    .find("\n[")
                    .map_or(source.len(), |i| at + i + 1);
                at
            } else {
                value.span().end
            };
            return Some(if header { start } else { span.start }..end);
        }
        if let toml::de::DeValue::Table(inner) = value.get_ref() {
            if let Some(range) = entry_range(source, inner, span) {
                return Some(range);
            }
        }
    }
    None
}

fn toml_error(source: &str, err: &toml::de::Error) -> Diagnostic {
    let span = err.span();
    let (line, column) = span
        .as_ref()
        .map_or((None, None), |s| line_column(source, s.start));
    let value = span
        .clone()
        .and_then(|s| source.get(s))
        .map(|text| text.trim())
        .filter(|text| !text.is_empty() && text.len() <= 80 && !text.contains('\n'))
        .map(str::to_owned);
    let message = err.message().trim().to_owned();
    // For a misspelt key, the text at the span is the key itself. For a value of the wrong
    // type or an unknown `mode`, serde does not say which key it was reading (toml reports
    // only the span), so find the key whose value holds that span.
    let (key, value) = if message.starts_with("unknown field") {
        (value, None)
    } else {
        (span.and_then(|s| key_holding(source, &s)), value)
    };
    Diagnostic {
        file: None,
        line,
        column,
        key,
        value,
        message,
    }
}

/// The dotted key (`max_age`, `admin.socket`) whose value contains the byte range `span`.
/// `None` when the text does not parse as TOML or no value contains it.
fn key_holding(source: &str, span: &Range<usize>) -> Option<String> {
    let table = toml::de::DeTable::parse(source).ok()?;
    let mut path = Vec::new();
    find_key(table.get_ref(), span, &mut path).then(|| path.join("."))
}

fn find_key(table: &toml::de::DeTable<'_>, span: &Range<usize>, path: &mut Vec<String>) -> bool {
    for (key, value) in table {
        path.push(key.get_ref().to_string());
        // Look inside tables first: a `[table]`'s own span need not cover its keys.
        if let toml::de::DeValue::Table(inner) = value.get_ref() {
            if find_key(inner, span, path) {
                return true;
            }
        }
        let held = value.span();
        if held.start <= span.start && span.end <= held.end {
            return true;
        }
        path.pop();
    }
    false
}

/// Validates and normalises settings and their routes, then compiles the matchers. All
/// problems are collected, so an operator fixes the file in one pass.
pub(super) fn compile(mut s: PolicySettings, loc: &Locator<'_>) -> Result<Policy, Vec<Diagnostic>> {
    let raw_routes = std::mem::take(&mut s.routes);
    if raw_routes.is_empty() {
        return compile_one(s, loc, Routes::default());
    }
    let top_raw = s.clone();
    let top = compile_one(s, loc, Routes::default());
    let top_errors = top.as_ref().err().cloned().unwrap_or_default();
    let mut errors = Vec::new();
    let routes = compile_routes(&raw_routes, &top_raw, loc, &top_errors, &mut errors);
    match top {
        Ok(mut policy) if errors.is_empty() => {
            let (table, normalised) = routes;
            policy.settings.routes = normalised;
            policy.compiled.routes = table;
            Ok(policy)
        }
        Ok(_) => Err(sorted(errors)),
        Err(mut top_errors) => {
            top_errors.extend(errors);
            Err(sorted(top_errors))
        }
    }
}

fn sorted(mut errors: Vec<Diagnostic>) -> Vec<Diagnostic> {
    errors.sort_by_key(|d| (d.line, d.column));
    errors
}

/// Compiles each route into its own policy: the top level's raw settings with the route's
/// overrides, validated like the top level. Diagnostics about an inherited value that the
/// top level already reports are not repeated.
fn compile_routes(
    raw: &BTreeMap<String, RouteSettings>,
    top: &PolicySettings,
    loc: &Locator<'_>,
    top_errors: &[Diagnostic],
    errors: &mut Vec<Diagnostic>,
) -> (Routes, BTreeMap<String, RouteSettings>) {
    let mut claimed: HashMap<PathPattern, &str> = HashMap::new();
    let mut entries = Vec::new();
    let mut normalised = BTreeMap::new();
    for (name, route) in raw {
        let rloc = loc.for_route(name, route.overridden());
        if let Err(message) = routes::check_name(name) {
            errors.push(rloc.diag("", None, name, message));
        }
        let paths = route_paths(name, route, &rloc, &mut claimed, errors);
        let policy = match compile_one(route.merged(top), &rloc, Routes::default()) {
            Ok(policy) => policy,
            Err(found) => {
                let repeated = |d: &Diagnostic| {
                    top_errors
                        .iter()
                        .any(|t| (t.line, t.column, &t.value) == (d.line, d.column, &d.value))
                };
                errors.extend(found.into_iter().filter(|d| !repeated(d)));
                continue;
            }
        };
        normalised.insert(name.clone(), normalise_route(route, policy.settings()));
        let route = Route {
            name: Arc::from(name.as_str()),
            guard: route.guard,
            policy,
        };
        entries.push((route, paths));
    }
    (Routes::new(entries), normalised)
}

/// A route's `paths`, validated; each may belong to one route only.
fn route_paths<'r>(
    name: &'r str,
    route: &RouteSettings,
    loc: &Locator<'_>,
    claimed: &mut HashMap<PathPattern, &'r str>,
    errors: &mut Vec<Diagnostic>,
) -> Vec<PathPattern> {
    if route.paths.is_empty() {
        errors.push(loc.diag(
            "",
            None,
            name,
            "a route needs `paths`: the exact paths (`/health`) or prefixes (`/x/*`) it              applies to"
                .into(),
        ));
        return Vec::new();
    }
    let mut paths = Vec::new();
    for (i, pattern) in validate_list(&route.paths, "paths", loc, errors, PathPattern::parse) {
        match claimed.get(&pattern) {
            Some(owner) if *owner == name => {} // listed twice in one route: harmless
            Some(owner) => errors.push(loc.diag(
                "paths",
                Some(i),
                &route.paths[i],
                format!(
                    "this path is already claimed by route `{owner}`; a path belongs to one                      route: remove it from one of them"
                ),
            )),
            None => {
                claimed.insert(pattern.clone(), name);
                paths.push(pattern);
            }
        }
    }
    paths
}

/// The route as written, with each override in the normalised form its policy holds, so
/// equal behaviour compares equal.
fn normalise_route(route: &RouteSettings, merged: &PolicySettings) -> RouteSettings {
    let own = |set: bool, v: &Vec<String>| set.then(|| v.clone());
    RouteSettings {
        paths: route.paths.clone(),
        guard: route.guard,
        allowed_origins: own(route.allowed_origins.is_some(), &merged.allowed_origins),
        allowed_origin_regexes: route.allowed_origin_regexes.clone(),
        allowed_hosts: own(route.allowed_hosts.is_some(), &merged.allowed_hosts),
        allowed_methods: own(route.allowed_methods.is_some(), &merged.allowed_methods),
        allowed_headers: own(route.allowed_headers.is_some(), &merged.allowed_headers),
        exposed_headers: own(route.exposed_headers.is_some(), &merged.exposed_headers),
        ..route.clone()
    }
}

/// Validates, normalises and compiles one policy (the top level, or a route's merged one).
fn compile_one(
    mut s: PolicySettings,
    loc: &Locator<'_>,
    routes: Routes,
) -> Result<Policy, Vec<Diagnostic>> {
    let mut errors = Vec::new();

    let entries = validate_list(
        &s.allowed_origins,
        "allowed_origins",
        loc,
        &mut errors,
        origin::parse_entry,
    );
    if s.allow_credentials {
        if let Some(i) = entries.iter().position(|(_, e)| *e == OriginEntry::Any) {
            errors.push(loc.diag(
                "allowed_origins",
                Some(entries[i].0),
                "*",
                "`\"*\"` together with `allow_credentials = true` is the wildcard + credentials \
                 mistake: every website could send requests carrying your users' cookies or \
                 credentials. Browsers reject `*` on credentialed requests, and echoing any \
                 origin instead would let every site in. List the origins that need \
                 credentials, or set `allow_credentials = false`"
                    .into(),
            ));
        }
    }
    let regexes = compile_regexes(&s.allowed_origin_regexes, loc, &mut errors);
    let hosts = validate_list(&s.allowed_hosts, "allowed_hosts", loc, &mut errors, |raw| {
        host::parse_host_entry(raw)
    });
    let methods = validate_list(
        &s.allowed_methods,
        "allowed_methods",
        loc,
        &mut errors,
        |raw| allow_headers::normalise_method(raw.trim()),
    );
    validate_list(
        &s.allowed_headers,
        "allowed_headers",
        loc,
        &mut errors,
        |raw| allow_headers::check_header_entry(raw.trim(), true),
    );
    validate_list(
        &s.exposed_headers,
        "exposed_headers",
        loc,
        &mut errors,
        |raw| allow_headers::check_header_entry(raw.trim(), false),
    );
    let proxies = validate_list(
        &s.trusted_proxies,
        "trusted_proxies",
        loc,
        &mut errors,
        forwarded::parse_entry,
    );
    if let Some(socket) = &s.admin.socket {
        if socket.as_os_str().is_empty() {
            errors.push(loc.diag("admin.socket", None, "", "the socket path is empty".into()));
        }
    }
    if let Some(log) = &s.admin.audit_log {
        if log.as_os_str().is_empty() {
            let message = "the audit log path is empty".into();
            errors.push(loc.diag("admin.audit_log", None, "", message));
        }
    }
    if !errors.is_empty() {
        errors.sort_by_key(|d| (d.line, d.column));
        return Err(errors);
    }

    // Store the normalised forms, so equal behaviour compares equal.
    s.allowed_origins = entries.iter().map(|(_, e)| e.to_string()).collect();
    s.allowed_hosts = hosts.iter().map(|(_, h)| h.to_string()).collect();
    s.allowed_methods = methods.into_iter().map(|(_, m)| m).collect();
    s.trusted_proxies = proxies.iter().map(|(_, r)| r.to_string()).collect();
    for list in [&mut s.allowed_headers, &mut s.exposed_headers] {
        for h in list.iter_mut() {
            *h = h.trim().to_owned();
        }
    }
    let entries: Vec<OriginEntry> = entries.into_iter().map(|(_, e)| e).collect();
    let hosts: Vec<_> = hosts.into_iter().map(|(_, h)| h).collect();

    let compiled = Compiled {
        id: crate::memo::PolicyId::next(),
        origins: OriginMatcher::new(&entries, regexes, s.allow_null_origin),
        hosts: HostGuard::new(&hosts),
        headers: HeaderAllowList::new(s.allowed_headers.iter().map(String::as_str)),
        allow_methods: joined_header(&s.allowed_methods),
        allow_extras: AllowExtras::interned(
            s.allow_credentials,
            (!s.exposed_headers.is_empty()).then(|| joined_header(&s.exposed_headers)),
        ),
        max_age: HeaderValue::from(s.max_age),
        proxies: TrustedProxies::new(proxies.into_iter().map(|(_, r)| r).collect()),
        routes,
    };
    Ok(Policy {
        settings: s,
        compiled,
        unloaded: None,
        #[cfg(feature = "server")]
        counters: std::sync::OnceLock::new(),
        #[cfg(feature = "metrics")]
        metrics: std::sync::OnceLock::new(),
    })
}

/// Runs `check` on each item of a list, recording failures as diagnostics at the item.
fn validate_list<T>(
    items: &[String],
    key: &str,
    loc: &Locator<'_>,
    errors: &mut Vec<Diagnostic>,
    check: impl Fn(&str) -> Result<T, String>,
) -> Vec<(usize, T)> {
    items
        .iter()
        .enumerate()
        .filter_map(|(i, raw)| match check(raw) {
            Ok(v) => Some((i, v)),
            Err(message) => {
                errors.push(loc.diag(key, Some(i), raw, message));
                None
            }
        })
        .collect()
}

fn compile_regexes(
    patterns: &[String],
    loc: &Locator<'_>,
    errors: &mut Vec<Diagnostic>,
) -> Option<RegexSet> {
    if patterns.is_empty() {
        return None;
    }
    let text: usize = patterns.iter().map(String::len).sum();
    if text > REGEX_TEXT_LIMIT {
        errors.push(loc.list_diag(
            REGEX_KEY,
            format!(
                "the regexes are {text} bytes of text together, over the cap of 64 KiB \
                 ({REGEX_TEXT_LIMIT} bytes); list fixed origins in `allowed_origins` \
                 (wildcard entries such as `https://*.example.com` cover subdomains) and keep \
                 regexes for what those cannot say"
            ),
        ));
        return None;
    }
    let before = errors.len();
    // The author's pattern must parse on its own: inside `^(?:…)$`, a stray `)|(` would
    // close the anchoring group and leave the rest unanchored at the start.
    for (i, raw) in patterns.iter().enumerate() {
        if let Err(e) = check_syntax(raw) {
            errors.push(loc.diag(REGEX_KEY, Some(i), raw, format!("invalid regex: {e}")));
        }
    }
    if errors.len() > before {
        return None;
    }
    // Anchor every pattern: an author who forgot `^…$` must not allow `…evil.com`.
    let anchored: Vec<String> = patterns.iter().map(|p| format!("^(?:{p})$")).collect();
    // The set first: compiling it stops as soon as it passes the cap, so an oversized set
    // costs little to refuse; and once it fits, each pattern alone is small to compile.
    let set = match RegexSetBuilder::new(&anchored)
        .size_limit(REGEX_SET_SIZE_LIMIT)
        .dfa_size_limit(REGEX_DFA_SIZE_LIMIT)
        .build()
    {
        Ok(set) => set,
        Err(e) => {
            errors.push(set_error(loc, &e));
            return None;
        }
    };
    for (i, (pattern, raw)) in anchored.iter().zip(patterns).enumerate() {
        if let Some(message) = check_one(pattern) {
            errors.push(loc.diag(REGEX_KEY, Some(i), raw, message));
        }
    }
    (errors.len() == before).then_some(set)
}

/// Parses a pattern without compiling it: a size limit of zero stops right after the
/// parse, so only a syntax error is an error here.
fn check_syntax(pattern: &str) -> Result<(), regex::Error> {
    match RegexBuilder::new(pattern).size_limit(0).build() {
        Err(e @ regex::Error::Syntax(_)) => Err(e),
        _ => Ok(()),
    }
}

/// One anchored pattern: within the per-regex cap, and not matching (nearly) anything.
fn check_one(anchored: &str) -> Option<String> {
    let re = match RegexBuilder::new(anchored)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
    {
        Ok(re) => re,
        Err(e) => return Some(format!("invalid regex: {e}")),
    };
    let canary = CANARY_ORIGINS.iter().find(|c| re.is_match(c))?;
    Some(format!(
        "this regex matches `{canary}`, so it would reflect (nearly) any origin back; make \
         it specific to your domains"
    ))
}

/// The set did not compile: over the total cap (the usual case: every pattern parsed).
fn set_error(loc: &Locator<'_>, error: &regex::Error) -> Diagnostic {
    let message = match error {
        regex::Error::CompiledTooBig(_) => format!(
            "the regexes together compile to more than the cap of 2 MiB \
             ({REGEX_SET_SIZE_LIMIT} bytes), which would slow down every request they are \
             checked on; write `[a-z0-9-]` rather than `\\w` (which is Unicode and alone \
             compiles to about 50 KB), avoid large counted repeats (`{{1,100}}`), and list \
             fixed origins in `allowed_origins` instead"
        ),
        other => format!("the regexes cannot be compiled together: {other}"),
    };
    loc.list_diag(REGEX_KEY, message)
}

/// The joined lists of the default policy whose values go out on every allowed request
/// (`Access-Control-Expose-Headers`) or preflight (`Access-Control-Allow-Methods`). They
/// are kept static: a static value is copied per request, where one built at load time is
/// shared, and costs an atomic increment and decrement on every response.
const STATIC_VALUES: &[&str] = &[
    "Mcp-Session-Id, Mcp-Protocol-Version, WWW-Authenticate, Last-Event-ID",
    "GET, POST, DELETE",
];

/// `a, b, c` as a header value. Items were validated as tokens, so this cannot fail.
fn joined_header(items: &[String]) -> HeaderValue {
    let text = items.join(", ");
    if let Some(known) = STATIC_VALUES.iter().find(|known| **known == text) {
        return HeaderValue::from_static(known);
    }
    HeaderValue::from_str(&text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_lists_are_the_static_values() {
        // A default list that drifts from its static twin still works, but pays for a
        // shared value on every request: this keeps the two in step.
        let defaults = crate::policy::PolicySettings::default();
        for list in [&defaults.exposed_headers, &defaults.allowed_methods] {
            let joined = list.join(", ");
            assert!(STATIC_VALUES.contains(&joined.as_str()), "{joined}");
            assert_eq!(joined_header(list), joined.as_str());
        }
        // Anything else is built as given.
        let custom = vec!["X-Trace".to_string(), "Mcp-Session-Id".to_string()];
        assert_eq!(joined_header(&custom), "X-Trace, Mcp-Session-Id");
    }

    #[test]
    fn the_key_holding_a_span_is_found_in_tables_too() {
        let src = "max_age = 5\n[admin]\nsocket = 7\n";
        let at = |needle: &str| {
            let start = src.find(needle).unwrap();
            start..start + needle.len()
        };
        assert_eq!(key_holding(src, &at("5")).as_deref(), Some("max_age"));
        assert_eq!(key_holding(src, &at("7")).as_deref(), Some("admin.socket"));
        assert_eq!(key_holding(src, &(0..3)), None); // the key itself, not a value
    }

    #[test]
    fn an_empty_audit_log_path_is_refused_naming_the_key_and_line() {
        let error = crate::Policy::from_toml_str("max_age = 5\n[admin]\naudit_log = \"\"\n")
            .unwrap_err()
            .to_string();
        assert!(error.contains("3:"), "{error}");
        assert!(error.contains("admin.audit_log"), "{error}");
        assert!(error.contains("the audit log path is empty"), "{error}");
    }

    #[test]
    fn line_and_column_count_characters() {
        let src = "a = 1\nbé = \"x\"";
        assert_eq!(line_column(src, 0), (Some(1), Some(1)));
        assert_eq!(line_column(src, src.find('"').unwrap()), (Some(2), Some(6)));
    }
}
