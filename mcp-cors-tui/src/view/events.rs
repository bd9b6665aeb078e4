//! The live event tail, newest at the bottom.

use mcp_cors::protocol::Event;
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::styles;
use crate::clock;
use crate::escape::owned;
use crate::state::{App, Focus};

/// Draws the tail.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let visible = app.visible_events();
    let block = Block::bordered()
        .border_style(styles::border(app.focus == Focus::Events))
        .title(title(app, visible.len()));
    let height = usize::from(block.inner(area).height);
    let lines: Vec<Line> = if visible.is_empty() {
        vec![Line::styled(empty_text(app), styles::dim())]
    } else {
        // The window ends `scroll` lines before the newest and holds `height` lines.
        let end = visible.len().saturating_sub(app.scroll);
        let start = end.saturating_sub(height);
        visible[start..end].iter().map(|e| line(&e.event)).collect()
    };
    frame.render_widget(Paragraph::new(lines).block(block), area);
}

fn title(app: &App, shown: usize) -> Line<'static> {
    let held = app.events.len();
    let count = if shown == held {
        format!(" Events ({held}) ")
    } else {
        format!(" Events ({shown} of {held}) ")
    };
    let mut spans = vec![Span::raw(count)];
    if app.filter.is_active() {
        spans.push(Span::styled(
            format!("[filter: {}] ", owned(&app.filter.text)),
            styles::key(),
        ));
    }
    if app.paused_at.is_some() {
        let newer = app.events.last_seq() - app.paused_at.unwrap_or(0);
        spans.push(Span::styled(
            format!("[PAUSED, {newer} newer; End resumes] "),
            styles::warn(),
        ));
    }
    Line::from(spans)
}

fn empty_text(app: &App) -> &'static str {
    if app.filter.is_active() && !app.events.is_empty() {
        "no event matches the filter"
    } else {
        "waiting for events: requests that carry an Origin appear here"
    }
}

/// One event as a line: time, verdict, the route that decided (`[meta]`, none for the top
/// level), the reason, then what it is about. The reason
/// comes before method, origin and path because it is what the operator looks for and
/// it is the part a narrow panel would otherwise cut off; the origin is also in the
/// denied panel. What the request carried is escaped: it must not drive the terminal.
pub fn line(event: &Event) -> Line<'static> {
    match event {
        Event::Decision(d) => {
            let mut spans = vec![
                Span::styled(format!("{} ", clock::hms(d.at_ms)), styles::dim()),
                Span::styled(
                    format!("{:<10} ", d.verdict.to_string().to_uppercase()),
                    styles::verdict(d.verdict),
                ),
            ];
            if let Some(route) = &d.route {
                // The route whose policy decided; the top level's decisions carry none.
                spans.push(Span::styled(format!("[{}] ", owned(route)), styles::key()));
            }
            if let Some(reason) = &d.reason {
                spans.push(Span::styled(
                    format!("{}  ", owned(reason)),
                    styles::verdict(d.verdict),
                ));
            }
            spans.push(Span::raw(format!(
                "{} {} {}",
                owned(&d.method),
                owned(d.origin.as_deref().unwrap_or("(no origin)")),
                owned(&d.path)
            )));
            if d.count > 1 {
                // A run of identical decisions, folded by the server.
                spans.push(Span::styled(format!(" x{}", d.count), styles::dim()));
            }
            Line::from(spans)
        }
        Event::Reloaded { at_ms, diff } => Line::from(vec![
            Span::styled(format!("{} ", clock::hms(*at_ms)), styles::dim()),
            Span::styled(format!("{:<10} ", "RELOADED"), styles::reloaded()),
            Span::styled(owned(&diff.to_string()), styles::reloaded()),
        ]),
        Event::Audit(record) => Line::from(vec![
            Span::styled(format!("{} ", clock::hms(record.at_ms)), styles::dim()),
            Span::styled(format!("{:<10} ", "AUDIT"), styles::reloaded()),
            Span::styled(
                format!("{} {}", record.action, crate::cli::audit::details(record)),
                styles::reloaded(),
            ),
        ]),
        Event::ReloadRejected(error) => Line::from(vec![
            Span::styled(format!("{} ", clock::hms(error.at_ms)), styles::dim()),
            Span::styled(format!("{:<10} ", "REJECTED"), styles::rejected()),
            Span::styled(
                owned(error.message.lines().next().unwrap_or_default()),
                styles::rejected(),
            ),
        ]),
    }
}
