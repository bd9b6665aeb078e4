//! `allowed_headers` and `allowed_methods`: what a preflight may ask for.

use foldhash::HashSet;

/// The request headers a preflight may ask for. Matching is case-insensitive; an entry
/// ending in `*` (`Mcp-Param-*`) admits every header with that prefix.
///
/// Entries are kept as lower-case bytes: a preflight's header list is checked byte by byte
/// and never needs a UTF-8 pass.
#[derive(Debug, Default)]
pub(crate) struct HeaderAllowList {
    exact: HashSet<Box<[u8]>>,
    prefixes: Vec<Box<[u8]>>,
}

impl HeaderAllowList {
    /// Builds the list from entries already validated by [`check_header_entry`].
    pub(crate) fn new<'a>(entries: impl IntoIterator<Item = &'a str>) -> Self {
        let mut list = HeaderAllowList::default();
        for entry in entries {
            let lower = entry.to_ascii_lowercase().into_bytes();
            match lower.strip_suffix(b"*") {
                Some(prefix) => list.prefixes.push(prefix.into()),
                None => {
                    list.exact.insert(lower.into());
                }
            }
        }
        list
    }

    /// Whether `name` (any case) may be requested.
    pub(crate) fn allows(&self, name: &[u8]) -> bool {
        let allowed = |lower: &[u8]| {
            self.exact.contains(lower) || self.prefixes.iter().any(|p| lower.starts_with(p))
        };
        // Browsers send `Access-Control-Request-Headers` in lower case already.
        if name.iter().any(u8::is_ascii_uppercase) {
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
const fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

/// [`is_tchar`] as a table: every byte of every preflight's header list goes through it.
const TCHAR: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        table[b] = is_tchar(b as u8);
        b += 1;
    }
    table
};

/// Splits an `Access-Control-Request-Headers` value into header names, on its raw bytes.
/// `Err` carries an element that is not a token (the request is then refused): one with
/// a space inside, a byte outside ASCII, or any other non-token byte.
pub(crate) fn split_request_headers(value: &[u8]) -> impl Iterator<Item = Result<&[u8], &[u8]>> {
    value
        .split(|&b| b == b',')
        .map(<[u8]>::trim_ascii)
        .filter(|name| !name.is_empty())
        .map(|name| {
            if name.iter().all(|&b| TCHAR[usize::from(b)]) {
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
        assert!(list.allows(b"content-type"));
        assert!(list.allows(b"CONTENT-TYPE"));
        assert!(list.allows(b"mcp-param-foo"));
        assert!(list.allows(b"Mcp-Param-Foo"));
        assert!(!list.allows(b"mcp-para"));
        assert!(!list.allows(b"x-evil"));
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
            split_request_headers(b"mcp-protocol-version, content-type,,\tx ").collect();
        assert_eq!(
            names,
            [
                Ok(&b"mcp-protocol-version"[..]),
                Ok(&b"content-type"[..]),
                Ok(&b"x"[..])
            ]
        );
        assert_eq!(
            split_request_headers(b"a b").collect::<Vec<_>>(),
            [Err(&b"a b"[..])]
        );
        assert_eq!(
            split_request_headers("x-caf\u{e9}".as_bytes()).collect::<Vec<_>>(),
            [Err("x-caf\u{e9}".as_bytes())]
        );
    }

    #[test]
    fn the_tchar_table_agrees_with_rfc_9110() {
        let specials = b"!#$%&'*+-.^_`|~";
        for b in 0..=255u8 {
            let expected = b.is_ascii_alphanumeric() || specials.contains(&b);
            assert_eq!(TCHAR[usize::from(b)], expected, "byte {b:#04x}");
        }
    }
}
