//! The serving policy: allowed origins, with add and remove.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::Line;
use ratatui::widgets::{Block, List, ListItem, ListState};

use super::styles;
use crate::escape::owned;
use crate::state::{App, Focus};

/// Draws the panel.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let focused = app.focus == Focus::Policy;
    let origins = app.allowed_origins();
    let mut block = Block::bordered()
        .border_style(styles::border(focused))
        .title(format!(" Allowed origins ({}) ", origins.len()))
        .title_bottom(Line::styled(" n: add  d: remove ", styles::dim()));
    if let Some(source) = app.policy.as_ref().and_then(|p| p.source.as_ref()) {
        block = block.title_bottom(
            Line::styled(
                format!(" {} ", owned(&source.display().to_string())),
                styles::dim(),
            )
            .right_aligned(),
        );
    }
    let mut items: Vec<ListItem> = origins.iter().map(|o| ListItem::new(owned(o))).collect();
    if let Some(policy) = &app.policy {
        items.extend(
            policy
                .settings
                .allowed_origin_regexes
                .iter()
                .map(|r| ListItem::new(Line::styled(format!("regex {}", owned(r)), styles::dim()))),
        );
    }
    if origins.is_empty() {
        let text = match app.policy {
            None => "no policy received yet",
            Some(_) => "no origin allowed: every cross-origin request is refused",
        };
        items.insert(0, ListItem::new(Line::styled(text, styles::dim())));
    }
    let list = List::new(items)
        .block(block)
        .highlight_style(styles::selected())
        .highlight_symbol("▶ ");
    let selected = (focused && !origins.is_empty()).then_some(app.policy_selected);
    let mut state = ListState::default().with_selected(selected);
    frame.render_stateful_widget(list, area, &mut state);
}
