//! The table both denied panels draw (origins and hosts): count, what was refused, last
//! seen; the most refused first, coloured by whether it is allowed now.

use ratatui::Frame;
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Row, Table, TableState};

use super::{fit, styles};
use crate::clock;
use crate::escape::owned;
use crate::state::Refused;

/// Draws `items` with `column` as the heading of what was refused; `allowed` are the
/// entries the policy lists now; `selected` is highlighted when the panel has the focus.
pub fn render_table<T: Refused>(
    frame: &mut Frame,
    area: Rect,
    now_ms: u64,
    (items, column): (&[&T], &'static str),
    allowed: &[String],
    selected: Option<usize>,
) {
    // What was refused is elided in the middle to its column: count, seen, the
    // highlight symbol and the spaces between columns take the rest.
    let key_width = usize::from(area.width).saturating_sub(5 + 7 + 2 + 2);
    let rows = items.iter().map(|item| {
        let (denied, would_deny) = item.refusals();
        let style = if allowed.iter().any(|a| a == item.key()) {
            styles::ok()
        } else if denied > 0 {
            styles::verdict(mcp_cors::Verdict::Deny)
        } else {
            styles::verdict(mcp_cors::Verdict::WouldDeny)
        };
        Row::new(vec![
            (denied + would_deny).to_string(),
            fit::middle(&owned(item.key()), key_width),
            clock::ago(now_ms, item.last_seen_ms()),
        ])
        .style(style)
    });
    let widths = [
        Constraint::Length(5),
        Constraint::Fill(1),
        Constraint::Length(7),
    ];
    let table = Table::new(rows, widths)
        .header(Row::new(vec!["count", column, "seen"]).style(styles::dim()))
        .row_highlight_style(styles::selected())
        .highlight_symbol("▶ ");
    let mut state = TableState::default().with_selected(selected);
    frame.render_stateful_widget(table, area, &mut state);
}
