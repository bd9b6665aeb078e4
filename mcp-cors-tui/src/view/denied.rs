//! The origins denied most often, with one key to allow the selected one.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::{refused, styles};
use crate::escape::owned;
use crate::state::{App, Focus, UNTRACKED};

/// Draws the panel: the table, then the selected origin's whole last reason (the table's
/// column is cut on a narrow terminal) and the refusals the server counted together for
/// origins beyond its tracking limit (not an origin, so not a row one could allow).
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let focused = app.focus == Focus::Denied;
    let block = Block::bordered()
        .border_style(styles::border(focused))
        .title(" Denied origins ")
        .title_bottom(Line::styled(
            if app.read_only {
                " read-only "
            } else {
                " a: allow selected "
            },
            styles::dim(),
        ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let notes = notes(app);
    let [table, notes_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(notes.len() as u16)]).areas(inner);
    let refused = app.denied_origins();
    if refused.is_empty() {
        let text = Line::styled("no origin refused yet", styles::dim());
        frame.render_widget(Paragraph::new(text), table);
    } else {
        refused::render_table(
            frame,
            table,
            app.now_ms,
            (&refused, "origin"),
            app.allowed_origins(),
            focused.then_some(app.denied_selected),
        );
    }
    frame.render_widget(Paragraph::new(notes), notes_area);
}

/// The lines under the table.
fn notes(app: &App) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let denied = app.denied_origins();
    if let Some(selected) = denied.get(app.denied_selected) {
        let reason = owned(selected.last_reason.as_deref().unwrap_or_default());
        // Listed now but still refused: for another reason (a method, a header, a Host).
        let text = if app.allowed_origins().contains(&selected.origin) {
            format!("listed, still refused: {reason}")
        } else {
            reason
        };
        lines.push(Line::from(vec![
            Span::styled("why: ", styles::dim()),
            Span::raw(text),
        ]));
    }
    if let Some(count) = app.untracked_refusals() {
        lines.push(Line::styled(
            format!("{UNTRACKED} {count} refusals from untracked origins"),
            styles::dim(),
        ));
    }
    lines
}
