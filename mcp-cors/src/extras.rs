//! What every allowed actual response of a policy gets besides its origin:
//! `Access-Control-Allow-Credentials` and `Access-Control-Expose-Headers`.
//!
//! They are the same for every request a policy allows, so a request carries a pointer to
//! them rather than copies: the response's CORS headers travel with the handler's future,
//! and every byte of them is moved several times on each request's way. Each distinct
//! value is kept once for the life of the process ([`AllowExtras::interned`]), which a
//! pointer needs (a reload may drop the policy while a response is still on its way).

use std::sync::Mutex;

use http::HeaderValue;

/// The headers an allowed actual response of one policy gets besides its origin.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct AllowExtras {
    /// `allow_credentials`: `Access-Control-Allow-Credentials: true`.
    pub(crate) credentials: bool,
    /// `exposed_headers`, joined; `None` when the list is empty.
    pub(crate) expose: Option<HeaderValue>,
}

/// Every distinct [`AllowExtras`] this process's policies have had.
static INTERNED: Mutex<Vec<&'static AllowExtras>> = Mutex::new(Vec::new());

impl AllowExtras {
    /// The one `AllowExtras` holding these values, made at a policy's load (never on a
    /// request's path). A process has one per distinct pair of values its policies and
    /// routes have had, a few dozen bytes each; a reload back to values seen before
    /// reuses theirs.
    ///
    /// The expose list's text is kept as a static value, so each response's copy of the
    /// header is a copy of a pointer, with no reference count shared between workers.
    pub(crate) fn interned(credentials: bool, expose: Option<HeaderValue>) -> &'static AllowExtras {
        let wanted = AllowExtras {
            credentials,
            expose,
        };
        // A panic elsewhere while holding the lock leaves the list as it was: still valid.
        let mut all = INTERNED.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(found) = all.iter().find(|known| ***known == wanted) {
            return found;
        }
        let kept: &'static AllowExtras = Box::leak(Box::new(AllowExtras {
            credentials,
            expose: wanted.expose.map(into_static),
        }));
        all.push(kept);
        kept
    }
}

/// `value` backed by text that lives as long as the process: its clones copy a pointer.
/// A value that is not visible ASCII (which `from_static` refuses) is kept as it is.
fn into_static(value: HeaderValue) -> HeaderValue {
    match value.to_str() {
        Ok(text) => HeaderValue::from_static(Box::leak(text.to_owned().into_boxed_str())),
        Err(_) => value,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_values_share_one_and_different_ones_do_not() {
        let expose = || Some(HeaderValue::from_static("Mcp-Session-Id, X-Interned-Test"));
        let a = AllowExtras::interned(false, expose());
        let b = AllowExtras::interned(false, expose());
        assert!(std::ptr::eq(a, b), "the same values are kept once");
        let with_credentials = AllowExtras::interned(true, expose());
        let without_expose = AllowExtras::interned(false, None);
        assert!(!std::ptr::eq(a, with_credentials));
        assert!(!std::ptr::eq(a, without_expose));
        assert!(with_credentials.credentials);
        assert_eq!(without_expose.expose, None);
        assert_eq!(
            a.expose.as_ref().map(|v| v.to_str().ok()),
            Some(Some("Mcp-Session-Id, X-Interned-Test"))
        );
    }

    #[test]
    fn a_value_that_is_not_visible_ascii_is_kept_as_it_is() {
        let odd = HeaderValue::from_bytes(b"X-\xe9t\xe9").ok();
        let kept = AllowExtras::interned(false, odd.clone());
        assert_eq!(kept.expose, odd);
    }
}
