//! The reload error banner: shown while the policy file on disk is refused, until the
//! next good reload, because the operator's last edit is not in force.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph};

use super::styles;
use crate::clock;
use crate::escape::owned;
use crate::state::App;

/// The most lines of the error shown.
const MAX_LINES: usize = 3;

/// Rows the banner takes: none without an error.
pub fn height(app: &App) -> u16 {
    app.reload_error.as_ref().map_or(0, |e| {
        let lines = e.message.lines().count().clamp(1, MAX_LINES);
        // Borders, plus the lines (fits in u16 by the clamp).
        lines as u16 + 2
    })
}

/// Draws the banner, if there is an error.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let Some(error) = &app.reload_error else {
        return;
    };
    let at = clock::hms(error.at_ms);
    let title = format!(" policy file refused at {at} UTC; the previous policy keeps serving ");
    let block = Block::bordered()
        .border_style(styles::error())
        .title(Line::styled(title, styles::error()));
    let lines: Vec<Line> = error
        .message
        .lines()
        .take(MAX_LINES)
        .map(|l| Line::styled(owned(l), styles::error()))
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
