//! The header: connection, mode and totals.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::styles;
use crate::escape::owned;
use crate::state::{App, ConnStatus};

/// Rows the header takes (two lines in a border).
pub const HEIGHT: u16 = 4;

/// Draws the header.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let block = Block::bordered()
        .border_style(styles::dim())
        .title(Line::styled(" mcp-cors ", styles::key()));
    let text = vec![connection(app), totals(app)];
    frame.render_widget(Paragraph::new(text).block(block), area);
}

fn connection(app: &App) -> Line<'static> {
    let status = match &app.conn {
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
    };
    Line::from(vec![
        status,
        Span::styled(
            format!("  socket {}", owned(&app.socket.display().to_string())),
            styles::dim(),
        ),
    ])
}

fn totals(app: &App) -> Line<'static> {
    let Some(stats) = &app.stats else {
        return Line::styled("no counters yet", styles::dim());
    };
    let style = match stats.mode {
        mcp_cors::Mode::Enforce => styles::ok(),
        mcp_cors::Mode::ReportOnly => styles::warn(),
    };
    let mode = Span::styled(stats.mode.as_str(), style);
    let mut spans = vec![
        Span::raw("mode "),
        mode,
        Span::raw("   allowed "),
        Span::styled(
            stats.allowed.to_string(),
            styles::verdict(mcp_cors::Verdict::Allow),
        ),
        Span::raw("   denied "),
        Span::styled(
            stats.denied.to_string(),
            styles::verdict(mcp_cors::Verdict::Deny),
        ),
        Span::raw("   would-deny "),
        Span::styled(
            stats.would_deny.to_string(),
            styles::verdict(mcp_cors::Verdict::WouldDeny),
        ),
        Span::raw(format!(
            "   dropped {} (here {})   listeners {}   reloads {}",
            stats.dropped_events, app.dropped_here, stats.listeners, stats.reloads
        )),
    ];
    if !stats.loaded {
        spans.push(Span::styled(
            "   NO POLICY LOADED: failing closed",
            styles::error(),
        ));
    }
    Line::from(spans)
}
