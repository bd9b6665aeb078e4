//! The `?` screen: every key.

use ratatui::Frame;
use ratatui::layout::Constraint;
use ratatui::text::Line;
use ratatui::widgets::{Block, Clear, Row, Table};

use super::{centered, styles};
use crate::input::KEYS;

/// Draws the help over the panels.
pub fn render(frame: &mut Frame) {
    // Every key, plus the borders and a blank line.
    let height = KEYS.len() as u16 + 4;
    let area = centered(frame.area(), 90, height);
    frame.render_widget(Clear, area);
    let rows = KEYS
        .iter()
        .map(|(keys, what)| Row::new(vec![Line::styled(*keys, styles::key()), Line::raw(*what)]));
    let table = Table::new(rows, [Constraint::Length(16), Constraint::Fill(1)]).block(
        Block::bordered()
            .border_style(styles::key())
            .title(" Keys ")
            .title_bottom(Line::styled(" ? or Esc closes ", styles::dim())),
    );
    frame.render_widget(table, area);
}
