//! The origins denied most often, with one key to allow the selected one.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState};

use super::styles;
use crate::clock;
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
        .title_bottom(Line::styled(" a: allow selected ", styles::dim()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let notes = notes(app);
    let [table, notes_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(notes.len() as u16)]).areas(inner);
    if app.denied_origins().is_empty() {
        let text = Line::styled("no origin refused yet", styles::dim());
        frame.render_widget(Paragraph::new(text), table);
    } else {
        render_table(frame, table, app, focused);
    }
    frame.render_widget(Paragraph::new(notes), notes_area);
}

/// The lines under the table.
fn notes(app: &App) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    let denied = app.denied_origins();
    if let Some(selected) = denied.get(app.denied_selected) {
        let reason = owned(selected.last_reason.as_deref().unwrap_or_default());
        // An origin allowed since its refusals keeps its counts; say so, so nobody
        // allows it twice.
        let text = if app.allowed_origins().contains(&selected.origin) {
            format!("allowed now; was refused: {reason}")
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

/// The table: count, origin, last seen. The reason is in the line under it, whole.
fn render_table(frame: &mut Frame, area: Rect, app: &App, focused: bool) {
    let denied = app.denied_origins();
    let allowed = app.allowed_origins();
    let rows = denied.iter().map(|o| {
        let style = if allowed.contains(&o.origin) {
            styles::ok()
        } else if o.denied > 0 {
            styles::verdict(mcp_cors::Verdict::Deny)
        } else {
            styles::verdict(mcp_cors::Verdict::WouldDeny)
        };
        Row::new(vec![
            (o.denied + o.would_deny).to_string(),
            owned(&o.origin),
            clock::ago(app.now_ms, o.last_seen_ms),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(5),
        Constraint::Fill(1),
        Constraint::Length(7),
    ];
    let table = Table::new(rows, widths)
        .header(Row::new(vec!["count", "origin", "seen"]).style(styles::dim()))
        .row_highlight_style(styles::selected())
        .highlight_symbol("▶ ");
    let mut state = TableState::default().with_selected(focused.then_some(app.denied_selected));
    frame.render_stateful_widget(table, area, &mut state);
}
