//! The reload error banner: shown while the policy file on disk is refused, until the
//! next good reload, because the operator's last edit is not in force. While no policy has
//! ever loaded (a bad file at start-up), it says so: there is no previous policy serving,
//! and every cross-origin request is refused.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph};

use super::styles;
use crate::clock;
use crate::escape::owned;
use crate::state::App;
use mcp_cors::ReloadError;

/// The most lines of the error shown.
const MAX_LINES: usize = 3;

/// Rows the banner takes: none without an error.
pub fn height(app: &App) -> u16 {
    app.reload_error.as_ref().map_or(0, |e| {
        let lines = text(app, e).lines().count().clamp(1, MAX_LINES);
        // Borders, plus the lines (fits in u16 by the clamp).
        lines as u16 + 2
    })
}

/// Whether the server reports that no policy has loaded yet (failing closed).
fn unloaded(app: &App) -> bool {
    app.stats.as_ref().is_some_and(|s| !s.loaded)
}

/// What the banner says: the error, or, while failing closed, the server's own refusal
/// reason (`no policy loaded: <file>:<line>: <error>`, the first problem).
fn text(app: &App, error: &ReloadError) -> String {
    if !unloaded(app) {
        return error.message.clone();
    }
    let first = error
        .diagnostics
        .first()
        .map_or_else(|| error.message.clone(), ToString::to_string);
    format!("no policy loaded: {first}")
}

/// Draws the banner, if there is an error.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let Some(error) = &app.reload_error else {
        return;
    };
    let at = clock::hms(error.at_ms);
    let title = if unloaded(app) {
        format!(
            " policy file refused at {at} UTC; no policy loaded: every cross-origin request is refused "
        )
    } else {
        format!(" policy file refused at {at} UTC; the previous policy keeps serving ")
    };
    let block = Block::bordered()
        .border_style(styles::error())
        .title(Line::styled(title, styles::error()));
    let lines: Vec<Line> = text(app, error)
        .lines()
        .take(MAX_LINES)
        .map(|l| Line::styled(owned(l), styles::error()))
        .collect();
    frame.render_widget(Paragraph::new(lines).block(block), area);
}
