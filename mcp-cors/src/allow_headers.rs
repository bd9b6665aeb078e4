//! `allowed_headers` and `allowed_methods`: what a preflight may ask for.

use foldhash::HashSet;

/// The request headers a preflight may ask for. Matching is case-insensitive; an entry
/// ending in `*` (`Mcp-Param-*`) admits every header with that prefix.
#[derive(Debug, Default)]
pub(crate) struct HeaderAllowList {
    exact: HashSet<Box<str>>,
    prefixes: Vec<Box<str>>,
}

impl HeaderAllowList {
    /// Builds the list from entries already validated by [`check_header_entry`].
    pub(crate) fn new<'a>(entries: impl IntoIterator<Item = &'a str>) -> Self {
        let mut list = HeaderAllowList::default();
        for entry in entries {
            let lower = entry.to_ascii_lowercase();
            match lower.strip_suffix('*') {
                Some(prefix) => list.prefixes.push(prefix.into()),
                None => {
                    list.exact.insert(lower.into());
                }
            }
        }
        list
    }

    /// Whether `name` (any case) may be requested.
    pub(crate) fn allows(&self, name: &str) -> bool {
        let allowed = |lower: &str| {
            self.exact.contains(lower) || self.prefixes.iter().any(|p| lower.starts_with(&**p))
        };
        // Browsers send `Access-Control-Request-Headers` in lower case already.
        if name.bytes().any(|b| b.is_ascii_uppercase()) {
            allowed(&name.to_ascii_lowercase())
        } else {
            allowed(name)
        }
    }
}

/// Checks a header-name entry: an RFC 9110 token, optionally ending in `*`.
pub(crate) fn check_header_entry(entry: &str, allow_prefix: bool) -> Result<(), String> {
    let name = match entry.strip_suffix('*') {
        Some(prefix) if allow_prefix => prefix,
        Some(_) => return Err("a wildcard is not allowed here; list the header names".into()),
        None => entry,
    };
    if name.is_empty() && !allow_prefix {
        return Err("empty header name".into());
    }
    if !name.bytes().all(is_tchar) {
        return Err(
            "not a valid header name (an RFC 9110 token: letters, digits and \
                    !#$%&'*+-.^_`|~)"
                .into(),
        );
    }
    Ok(())
}

/// Checks and normalises a method entry. The methods Fetch normalises (`get`, `post`, …)
/// are upper-cased, as browsers send them upper-cased; other methods are case-sensitive.
pub(crate) fn normalise_method(entry: &str) -> Result<String, String> {
    if entry == "*" {
        return Err("list the methods explicitly; `*` is not allowed".into());
    }
    if entry.is_empty() || !entry.bytes().all(is_tchar) {
        return Err("not a valid method name (an RFC 9110 token)".into());
    }
    const NORMALISED: [&str; 6] = ["DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"];
    Ok(NORMALISED
        .iter()
        .find(|m| m.eq_ignore_ascii_case(entry))
        .map_or_else(|| entry.to_owned(), |m| (*m).to_owned()))
}

/// RFC 9110 `tchar`.
pub(crate) fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// Splits an `Access-Control-Request-Headers` value into header names. `None` when an
/// element is not a token (the request is then refused as malformed).
pub(crate) fn split_request_headers(value: &str) -> impl Iterator<Item = Result<&str, &str>> {
    value
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(|name| {
            if name.bytes().all(is_tchar) {
                Ok(name)
            } else {
                Err(name)
            }
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_and_prefix_entries_match_case_insensitively() {
        let list = HeaderAllowList::new(["Content-Type", "Mcp-Param-*"]);
        assert!(list.allows("content-type"));
        assert!(list.allows("CONTENT-TYPE"));
        assert!(list.allows("mcp-param-foo"));
        assert!(list.allows("Mcp-Param-Foo"));
        assert!(!list.allows("mcp-para"));
        assert!(!list.allows("x-evil"));
    }

    #[test]
    fn methods_are_normalised_like_fetch() {
        assert_eq!(normalise_method("get").unwrap(), "GET");
        assert_eq!(normalise_method("Patch").unwrap(), "Patch");
        assert!(normalise_method("GE T").is_err());
        assert!(normalise_method("*").is_err());
    }

    #[test]
    fn request_header_lists_are_split_on_commas_with_spaces() {
        let names: Vec<_> =
            split_request_headers("mcp-protocol-version, content-type,,x").collect();
        assert_eq!(
            names,
            [Ok("mcp-protocol-version"), Ok("content-type"), Ok("x")]
        );
        assert!(split_request_headers("a b").any(|r| r.is_err()));
    }
}
