//! Setting a response header to one value, replacing what the handler set: what every
//! allowed response's CORS headers and `Vary` are written with.

use actix_web::http::header::map::Removed;
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

/// Sets `name` to `value` alone, and hands back what it replaced, if anything.
#[inline(always)]
pub(crate) fn set(
    headers: &mut HeaderMap,
    name: HeaderName,
    value: HeaderValue,
) -> Option<Removed> {
    let replaced = headers.insert(name, value);
    if replaced.is_empty() {
        // Right after `insert`, empty means nothing was replaced and it holds nothing to
        // free: forgetting it skips an out-of-line call to its drop on every response.
        std::mem::forget(replaced);
        return None;
    }
    Some(replaced)
}
