//! `Vary`: merged with what the handler set, never duplicated, never clobbered.

use actix_web::http::header::{self, HeaderMap, HeaderValue};

use crate::set_header::set;

/// Adds `name` to the response's `Vary`, keeping every value the handler set.
///
/// `Vary: *` already covers everything and is left alone; a name already present (in any
/// case) is not added twice; several `Vary` lines are folded into one.
#[inline]
pub(crate) fn add(headers: &mut HeaderMap, name: &'static str) {
    // One lookup in the common case, where the handler set no `Vary` and ours goes in
    // alone: inserting hands back whatever it displaced, which is then merged back in.
    if let Some(displaced) = set(headers, header::VARY, HeaderValue::from_static(name)) {
        merge(headers, name, displaced);
    }
}

/// [`add`] where the handler had set `Vary` (`displaced`, now replaced by `name` alone):
/// out of line, to keep the common case small.
#[inline(never)]
fn merge(
    headers: &mut HeaderMap,
    name: &'static str,
    displaced: impl Iterator<Item = HeaderValue>,
) {
    let values: Vec<HeaderValue> = displaced.collect();
    let existing: Vec<&str> = values
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .collect();
    if existing.is_empty() {
        return; // Only empty `Vary` lines: ours alone says it.
    }
    let merged = if existing
        .iter()
        .any(|v| *v == "*" || v.eq_ignore_ascii_case(name))
    {
        existing.join(", ")
    } else {
        format!("{}, {name}", existing.join(", "))
    };
    if let Ok(value) = HeaderValue::from_str(&merged) {
        headers.insert(header::VARY, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vary_after(existing: &[&'static str]) -> Vec<String> {
        let mut headers = HeaderMap::new();
        for v in existing {
            headers.append(header::VARY, HeaderValue::from_static(v));
        }
        add(&mut headers, "Origin");
        headers
            .get_all(header::VARY)
            .map(|v| v.to_str().unwrap().to_owned())
            .collect()
    }

    #[test]
    fn merges_keeps_and_does_not_duplicate() {
        assert_eq!(vary_after(&[]), ["Origin"]);
        assert_eq!(
            vary_after(&["Accept-Encoding"]),
            ["Accept-Encoding, Origin"]
        );
        assert_eq!(
            vary_after(&["accept-encoding", "Cookie"]),
            ["accept-encoding, Cookie, Origin"]
        );
        assert_eq!(vary_after(&["origin"]), ["origin"]);
        assert_eq!(vary_after(&["*"]), ["*"]);
        // Only empty lines: ours alone.
        assert_eq!(vary_after(&["", " "]), ["Origin"]);
    }
}
