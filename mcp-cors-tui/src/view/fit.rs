//! Fitting text into a column. An origin or a host is elided in the middle: its scheme
//! and its end (the registrable domain and the port) are what tell two apart, and a cut
//! at the end would drop exactly those. Other text (paths, reasons) is cut at the end.

/// The ellipsis that marks what was left out.
const ELLIPSIS: char = '…';

/// `text` in at most `width` characters, elided in the middle when longer.
pub fn middle(text: &str, width: usize) -> String {
    let len = text.chars().count();
    if len <= width {
        return text.to_owned();
    }
    if width <= 1 {
        return ELLIPSIS.to_string().chars().take(width).collect();
    }
    // The end gets the extra character: `example.com:8443` matters more than `https://`.
    let head = (width - 1) / 2;
    let tail = width - 1 - head;
    let mut out: String = text.chars().take(head).collect();
    out.push(ELLIPSIS);
    out.extend(text.chars().skip(len - tail));
    out
}

/// `text` in at most `width` characters, cut at the end (marked) when longer.
pub fn end(text: &str, width: usize) -> String {
    let len = text.chars().count();
    if len <= width {
        return text.to_owned();
    }
    if width == 0 {
        return String::new();
    }
    let mut out: String = text.chars().take(width - 1).collect();
    out.push(ELLIPSIS);
    out
}

/// `text` padded with spaces to `width` characters (never cut: fit it first).
pub fn pad(text: &str, width: usize) -> String {
    let len = text.chars().count();
    let mut out = text.to_owned();
    out.extend(std::iter::repeat_n(' ', width.saturating_sub(len)));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_origin_too_long_keeps_its_scheme_and_its_end() {
        let origin = "https://preview-1234.staging.apps.example.com:8443";
        let shown = middle(origin, 30);
        assert_eq!(shown.chars().count(), 30);
        assert_eq!(shown, "https://previe…xample.com:8443");
        assert_eq!(middle(origin, 80), origin);
        assert_eq!(middle(origin, 1), "…");
        assert_eq!(middle(origin, 0), "");
    }

    #[test]
    fn other_text_is_cut_at_the_end() {
        assert_eq!(end("origin not allowed", 10), "origin no…");
        assert_eq!(end("short", 10), "short");
        assert_eq!(end("x", 0), "");
        assert_eq!(pad("ab", 4), "ab  ");
    }
}
