//! The `Host` values refused most often (the DNS-rebinding guard), beside the denied
//! origins, with one key to allow the selected one. Shown once the server refused one.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::{refused, styles};
use crate::state::{App, Focus, UNTRACKED_HOST};

/// Draws the panel: the table, then what allowing the selected host means (or that it is
/// allowed now) and the refusals counted together beyond the server's tracking limit.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let focused = app.focus == Focus::Hosts;
    let block = Block::bordered()
        .border_style(styles::border(focused))
        .title(" Denied hosts ")
        .title_bottom(Line::styled(
            if app.read_only {
                " read-only "
            } else {
                " a: allow selected host "
            },
            styles::dim(),
        ));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let notes = notes(app);
    let [table, notes_area] =
        Layout::vertical([Constraint::Min(1), Constraint::Length(notes.len() as u16)]).areas(inner);
    let refused = app.denied_hosts();
    if refused.is_empty() {
        let text = Line::styled("no host refused yet", styles::dim());
        frame.render_widget(Paragraph::new(text), table);
    } else {
        refused::render_table(
            frame,
            table,
            app.now_ms,
            (&refused, "host"),
            app.allowed_hosts(),
            focused.then_some(app.hosts_selected),
        );
    }
    frame.render_widget(Paragraph::new(notes), notes_area);
}

fn notes(app: &App) -> Vec<Line<'static>> {
    let mut lines = Vec::new();
    if let Some(selected) = app.denied_hosts().get(app.hosts_selected) {
        let text = if app.allowed_hosts().contains(&selected.host) {
            "allowed now; its refusals stay counted".to_owned()
        } else {
            "not in allowed_hosts".to_owned()
        };
        lines.push(Line::from(vec![
            Span::styled("why: ", styles::dim()),
            Span::raw(text),
        ]));
    }
    if let Some(count) = app.untracked_host_refusals() {
        lines.push(Line::styled(
            format!("{UNTRACKED_HOST} {count} refusals from untracked hosts"),
            styles::dim(),
        ));
    }
    lines
}
