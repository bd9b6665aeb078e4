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
                "   origin, path or verdict; Enter keeps, Esc clears",
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
        hints()
    };
    frame.render_widget(Paragraph::new(line), area);
}

fn hints() -> Line<'static> {
    let pairs = [
        ("?", "help"),
        ("q", "quit"),
        ("Tab", "panel"),
        ("/", "filter"),
        ("Space", "pause"),
        ("a", "allow"),
        ("n", "add"),
        ("d", "remove"),
    ];
    let mut spans = Vec::new();
    for (key, what) in pairs {
        spans.push(Span::styled(key, styles::key()));
        spans.push(Span::styled(format!(" {what}  "), styles::dim()));
    }
    Line::from(spans)
}
