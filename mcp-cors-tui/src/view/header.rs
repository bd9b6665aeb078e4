//! The header: the connection and mode, the totals each with its sparkline of decisions
//! per second, then the event stream's health and the reloads.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::{rate, styles};
use crate::escape::owned;
use crate::state::{App, ConnStatus};

/// Rows the header takes (four lines in a border).
pub const HEIGHT: u16 = 6;

/// Draws the header.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let block = Block::bordered()
        .border_style(styles::dim())
        .title(Line::styled(" mcp-cors ", styles::key()));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let [conn, allowed, refused, health] =
        Layout::vertical([Constraint::Length(1); 4]).areas(inner);
    frame.render_widget(Paragraph::new(connection(app)), conn);
    let (allow_label, refuse_label) = totals(app);
    let width = allow_label.width().max(refuse_label.width()) as u16 + 1;
    rate::render(
        frame,
        allowed,
        app,
        rate::Kind::Allowed,
        (allow_label, width),
    );
    rate::render(
        frame,
        refused,
        app,
        rate::Kind::Refused,
        (refuse_label, width),
    );
    frame.render_widget(Paragraph::new(stream(app)), health);
}

fn connection(app: &App) -> Line<'static> {
    let status = if app.fleet.is_shown() {
        fleet(app)
    } else {
        server(app)
    };
    let mut spans = vec![status];
    if let Some(stats) = &app.stats {
        let style = match stats.mode {
            mcp_cors::Mode::Enforce => styles::ok(),
            mcp_cors::Mode::ReportOnly => styles::warn(),
        };
        spans.push(Span::raw("  mode "));
        spans.push(Span::styled(stats.mode.as_str(), style));
    }
    let sockets = if app.fleet.is_shown() {
        "sockets"
    } else {
        "socket"
    };
    spans.push(Span::styled(
        format!("  {sockets} {}", owned(&app.socket.display().to_string())),
        styles::dim(),
    ));
    Line::from(spans)
}

/// A fleet's connection: how many replicas answer, and which one edits go to.
fn fleet(app: &App) -> Span<'static> {
    let (up, all) = (app.fleet.connected(), app.fleet.replicas().len());
    match app.fleet.editor() {
        Some(editor) => Span::styled(
            format!(
                "● {up} of {all} replicas connected, edits via {}",
                owned(&app.replica_label(editor))
            ),
            if up == all {
                styles::ok()
            } else {
                styles::warn()
            },
        ),
        None if all == 0 => Span::styled("○ no replica found yet", styles::warn()),
        None => Span::styled(
            format!("✕ none of {all} replicas connected"),
            styles::error(),
        ),
    }
}

/// A single server's connection.
fn server(app: &App) -> Span<'static> {
    match app.conn() {
        ConnStatus::Connecting => Span::styled("○ connecting…", styles::warn()),
        ConnStatus::Connected { server } => Span::styled(
            format!("● connected (server {})", owned(server)),
            styles::ok(),
        ),
        ConnStatus::Disconnected {
            reason,
            retry_at_ms,
        } => {
            let secs = retry_at_ms.saturating_sub(app.now_ms).div_ceil(1000);
            Span::styled(
                format!("✕ disconnected, retrying in {secs}s: {}", owned(reason)),
                styles::error(),
            )
        }
        ConnStatus::Failed { reason } => {
            Span::styled(format!("✕ {}", owned(reason)), styles::error())
        }
    }
}

/// The labels of the two sparklines: allowed, and refused (denied, would-deny).
fn totals(app: &App) -> (Line<'static>, Line<'static>) {
    let Some(stats) = &app.stats else {
        return (
            Line::styled("allowed -", styles::dim()),
            Line::styled("denied -", styles::dim()),
        );
    };
    let allowed = Line::from(vec![
        Span::raw("allowed "),
        Span::styled(
            stats.allowed.to_string(),
            styles::verdict(mcp_cors::Verdict::Allow),
        ),
    ]);
    let refused = Line::from(vec![
        Span::raw("denied "),
        Span::styled(
            stats.denied.to_string(),
            styles::verdict(mcp_cors::Verdict::Deny),
        ),
        Span::raw("  would-deny "),
        Span::styled(
            stats.would_deny.to_string(),
            styles::verdict(mcp_cors::Verdict::WouldDeny),
        ),
    ]);
    (allowed, refused)
}

/// Dropped events, listeners, reloads, and whether a policy is loaded at all.
fn stream(app: &App) -> Line<'static> {
    let Some(stats) = &app.stats else {
        return Line::styled("no counters yet", styles::dim());
    };
    let mut spans = vec![Span::raw(format!(
        "dropped {} (here {})   listeners {}   reloads {}",
        stats.dropped_events,
        app.dropped_here(),
        stats.listeners,
        stats.reloads
    ))];
    spans.push(Span::styled(
        format!("   graphs: last {} min", rate::SPAN / 60),
        styles::dim(),
    ));
    if !stats.loaded {
        spans.push(Span::styled(
            "   NO POLICY LOADED: failing closed",
            styles::error(),
        ));
    }
    Line::from(spans)
}
