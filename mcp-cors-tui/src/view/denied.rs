//! The origins denied most often, with one key to allow the selected one.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table, TableState};

use super::styles;
use crate::clock;
use crate::state::{App, Focus};

/// Draws the panel.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let focused = app.focus == Focus::Denied;
    let block = Block::bordered()
        .border_style(styles::border(focused))
        .title(" Denied origins ")
        .title_bottom(Line::styled(" a: allow selected ", styles::dim()));
    let denied = app.denied_origins();
    if denied.is_empty() {
        let text = Line::styled("no origin refused yet", styles::dim());
        frame.render_widget(Paragraph::new(text).block(block), area);
        return;
    }
    let allowed = app.allowed_origins();
    let rows = denied.iter().map(|o| {
        // An origin allowed since its refusals keeps its counts; say so, so nobody
        // allows it twice.
        let reason = if allowed.contains(&o.origin) {
            "(allowed now)".to_owned()
        } else {
            o.last_reason.clone().unwrap_or_default()
        };
        Row::new(vec![
            (o.denied + o.would_deny).to_string(),
            o.origin.clone(),
            clock::ago(app.now_ms, o.last_seen_ms),
            reason,
        ])
        .style(styles::verdict(if o.denied > 0 {
            mcp_cors::Verdict::Deny
        } else {
            mcp_cors::Verdict::WouldDeny
        }))
    });
    let widths = [
        Constraint::Length(5),
        Constraint::Fill(2),
        Constraint::Length(7),
        Constraint::Fill(1),
    ];
    let table = Table::new(rows, widths)
        .header(Row::new(vec!["count", "origin", "seen", "last reason"]).style(styles::dim()))
        .block(block)
        .row_highlight_style(styles::selected())
        .highlight_symbol("▶ ");
    let mut state = TableState::default().with_selected(focused.then_some(app.denied_selected));
    frame.render_stateful_widget(table, area, &mut state);
}
