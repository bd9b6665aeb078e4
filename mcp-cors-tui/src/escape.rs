//! Text from the wire made safe to draw on a terminal.
//!
//! An `Origin`, a path or a method comes from whoever sent the request, and a terminal
//! acts on the control characters in it: `ESC [` and its one-byte C1 form `\u{9b}` start
//! a control sequence that can recolour, move the cursor, clear the screen or retitle the
//! window. Every control character (C0, DEL and C1) is therefore shown escaped, as Rust
//! writes it — `\x1b`, `\x7f`, `\u{9b}` — so that the operator sees that it was there
//! and the terminal never acts on it. `--json` output is not passed through here: JSON
//! has its own escaping, and stays exactly what the server sent.

use std::borrow::Cow;
use std::fmt::Write;

/// `text` with every control character escaped; borrowed when there is none (the
/// common case costs a scan, not a copy).
///
/// `"a\x1b[31m"` is shown as the eight characters `a\x1b[31m`.
pub fn escaped(text: &str) -> Cow<'_, str> {
    if !text.chars().any(char::is_control) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if !c.is_control() {
            out.push(c);
        } else if c.is_ascii() {
            // C0 and DEL.
            let _ = write!(out, "\\x{:02x}", u32::from(c));
        } else {
            // C1.
            let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
        }
    }
    Cow::Owned(out)
}

/// [`escaped`], owned: for the `'static` lines the views build.
pub fn owned(text: &str) -> String {
    escaped(text).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn c0_del_and_c1_are_escaped_and_the_rest_is_kept() {
        assert_eq!(
            escaped("https://é.example\x1b[31m\u{9b}2J\x7f\t\n\u{85}\0"),
            r"https://é.example\x1b[31m\u{9b}2J\x7f\x09\x0a\u{85}\x00"
        );
    }

    #[test]
    fn text_without_control_characters_is_borrowed() {
        assert!(matches!(
            escaped("https://app.example.com ✓"),
            Cow::Borrowed(_)
        ));
    }

    #[test]
    fn every_control_character_is_escaped() {
        let all: String = (0..=0x9f_u32).filter_map(char::from_u32).collect();
        let shown = owned(&all);
        assert!(!shown.chars().any(char::is_control), "{shown:?}");
        // The printable ASCII between them is untouched.
        assert!(shown.contains(" !\"#$%&'()*+,-./0123456789"), "{shown}");
    }
}
