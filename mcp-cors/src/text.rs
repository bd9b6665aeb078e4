//! Text taken from requests, bounded before it is kept (counters, events, logs).

use std::borrow::Cow;

/// `text`, cut to at most `max` bytes (on a character boundary) with `…` appended when cut.
pub(crate) fn clip(text: Cow<'_, str>, max: usize) -> Cow<'_, str> {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    Cow::Owned(format!("{}…", &text[..end]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_cut_on_a_character_boundary_and_marked() {
        assert_eq!(clip("short".into(), 10), "short");
        assert_eq!(clip("ééé".into(), 3), "é…");
        assert_eq!(clip("abcdef".into(), 3), "abc…");
    }
}
