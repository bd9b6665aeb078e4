//! The footer: the filter prompt, the last notice, or key hints.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::Paragraph;

use super::styles;
use crate::escape::owned;
use crate::state::App;

/// Draws the footer line.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let line = if app.filter.editing {
        Line::from(vec![
            Span::styled("/", styles::key()),
            Span::raw(format!("{}█", owned(&app.filter.text))),
            Span::styled(
                "   origin, path, client, route or verdict; Enter keeps, Esc clears",
                styles::dim(),
            ),
        ])
    } else if let Some(notice) = &app.notice {
        let style = if notice.error {
            styles::error()
        } else {
            styles::ok()
        };
        Line::styled(owned(&notice.text), style)
    } else {
        hints(app.read_only, usize::from(area.width))
    };
    frame.render_widget(Paragraph::new(line), area);
}

/// The key hints; pairs set apart by two spaces, or one where two would not fit.
fn hints(read_only: bool, width: usize) -> Line<'static> {
    let browse = [
        ("?", "help"),
        ("q", "quit"),
        ("Tab", "panel"),
        ("/", "filter"),
        ("Space", "pause"),
    ];
    let edit = [("a", "allow"), ("n", "add"), ("h", "host"), ("d", "remove")];
    let pairs: Vec<(&str, &str)> = browse
        .into_iter()
        .chain(edit.into_iter().filter(|_| !read_only))
        .collect();
    let wide: usize = pairs.iter().map(|(k, w)| k.len() + w.len() + 3).sum();
    let gap = if wide <= width { "  " } else { " " };
    let mut spans = Vec::new();
    for (key, what) in pairs {
        spans.push(Span::styled(key, styles::key()));
        spans.push(Span::styled(format!(" {what}{gap}"), styles::dim()));
    }
    if read_only {
        spans.push(Span::styled("READ-ONLY: no edits", styles::warn()));
    }
    Line::from(spans)
}
