//! The serving policy: allowed origins, with add and remove, then each route with its
//! paths and what it overrides.

use mcp_cors::RouteSettings;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState};

use super::{fit, styles};
use crate::escape::owned;
use crate::state::{App, Focus};

/// Draws the panel.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let focused = app.focus == Focus::Policy;
    let origins = app.allowed_origins();
    let routes = app.policy.as_ref().map_or(0, |p| p.settings.routes.len());
    let title = match routes {
        0 => format!(" Allowed origins ({}) ", origins.len()),
        n => format!(" Allowed origins ({}), routes ({n}) ", origins.len()),
    };
    let keys = if app.read_only {
        " read-only "
    } else {
        " n: add  h: host  d: remove "
    };
    let mut block = Block::bordered()
        .border_style(styles::border(focused))
        .title(title)
        .title_bottom(Line::styled(keys, styles::dim()));
    if let Some(source) = app.policy.as_ref().and_then(|p| p.source.as_ref()) {
        let source = format!(" {} ", owned(&source.display().to_string()));
        // Only where it fits beside the keys: on a narrow panel they matter more.
        let room = usize::from(area.width).saturating_sub(2 + keys.chars().count());
        if source.chars().count() < room {
            block = block.title_bottom(Line::styled(source, styles::dim()).right_aligned());
        }
    }
    // The highlight symbol and the borders take four columns.
    let width = usize::from(area.width).saturating_sub(4);
    let mut items: Vec<ListItem> = origins
        .iter()
        .map(|o| ListItem::new(fit::middle(&owned(o), width)))
        .collect();
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
    if let Some(policy) = &app.policy {
        for (name, route) in &policy.settings.routes {
            items.extend(route_lines(name, route).into_iter().map(ListItem::new));
        }
    }
    let list = List::new(items)
        .block(block)
        .highlight_style(styles::selected())
        .highlight_symbol("▶ ");
    let selected = (focused && !origins.is_empty()).then_some(app.policy_selected);
    let mut state = ListState::default().with_selected(selected);
    frame.render_stateful_widget(list, area, &mut state);
}

/// A route: its name and paths (and `guard off`), then what it overrides, its lists in
/// full; a route that overrides nothing says it inherits everything.
fn route_lines(name: &str, route: &RouteSettings) -> Vec<Line<'static>> {
    let mut head = vec![
        Span::styled(format!("route {}", owned(name)), styles::key()),
        Span::styled(
            format!("  {}", owned(&route.paths.join(", "))),
            styles::dim(),
        ),
    ];
    if !route.guard {
        head.push(Span::styled("  guard off", styles::warn()));
        return vec![Line::from(head)];
    }
    let mut lines = vec![Line::from(head)];
    let list = |label: &str, entries: &[String]| {
        let shown = if entries.is_empty() {
            "none".to_owned()
        } else {
            entries
                .iter()
                .map(|e| owned(e))
                .collect::<Vec<_>>()
                .join(", ")
        };
        Line::raw(format!("  {label}: {shown}"))
    };
    if let Some(origins) = &route.allowed_origins {
        lines.push(list("origins", origins));
    }
    if let Some(hosts) = &route.allowed_hosts {
        lines.push(list("hosts", hosts));
    }
    let others = other_overrides(route);
    if !others.is_empty() {
        lines.push(Line::styled(
            format!("  overrides {}", others.join(", ")),
            styles::dim(),
        ));
    } else if lines.len() == 1 {
        lines.push(Line::styled("  inherits everything", styles::dim()));
    }
    lines
}

/// The keys a route overrides besides its origins and hosts, as the file names them.
fn other_overrides(route: &RouteSettings) -> Vec<&'static str> {
    [
        (
            "allowed_origin_regexes",
            route.allowed_origin_regexes.is_some(),
        ),
        ("allow_null_origin", route.allow_null_origin.is_some()),
        ("allowed_methods", route.allowed_methods.is_some()),
        ("allowed_headers", route.allowed_headers.is_some()),
        ("exposed_headers", route.exposed_headers.is_some()),
        ("allow_credentials", route.allow_credentials.is_some()),
        ("max_age", route.max_age.is_some()),
        (
            "allow_private_network",
            route.allow_private_network.is_some(),
        ),
        ("allow_same_origin", route.allow_same_origin.is_some()),
        ("mode", route.mode.is_some()),
    ]
    .into_iter()
    .filter_map(|(key, set)| set.then_some(key))
    .collect()
}
