//! A fleet's replicas, one row each: its label (host and pid), whether it is connected
//! (and if not, why and when it is tried again), and its own totals. The replica edits go
//! to is marked; replicas that serve different policies are called out, because an edit
//! then reaches only the marked one (replicas on files of their own).

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::{fit, styles};
use crate::escape::owned;
use crate::state::{App, ConnStatus, Replica};

/// The most replica rows shown; more are summed up in one line.
const MAX_ROWS: usize = 8;
/// Widest label column.
const MAX_LABEL: usize = 28;
/// The count columns: each as wide as its title, plus a space before it.
const COUNTS: [&str; 4] = ["allowed", "denied", "would-deny", "dropped"];

/// Rows the panel takes: none unless the UI shows a fleet.
pub fn height(app: &App) -> u16 {
    if !app.fleet.is_shown() {
        return 0;
    }
    let rows = app.fleet.replicas().len().clamp(1, MAX_ROWS + 1);
    // Borders and the heading, plus the rows (fits in u16 by the clamp).
    rows as u16 + 3
}

/// Draws the panel.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    if area.height == 0 {
        return;
    }
    let fleet = &app.fleet;
    let mut title = vec![Span::raw(format!(
        " Replicas ({} of {} connected) ",
        fleet.connected(),
        fleet.replicas().len()
    ))];
    if fleet.policies_differ() {
        title.push(Span::styled(
            "[policies differ: an edit goes to ▸ only] ",
            styles::warn(),
        ));
    }
    let block = Block::bordered()
        .border_style(styles::dim())
        .title(Line::from(title));
    let inner = block.inner(area);
    frame.render_widget(block, area);
    let width = usize::from(inner.width);
    let labels: Vec<String> = fleet.replicas().iter().map(|r| owned(&r.label())).collect();
    let label = labels
        .iter()
        .map(|l| l.chars().count())
        .max()
        .unwrap_or(0)
        .clamp("replica".len(), MAX_LABEL);
    let mut lines = vec![heading(label)];
    let editor = fleet.editor();
    for (i, replica) in fleet.replicas().iter().enumerate().take(MAX_ROWS) {
        let cells = (labels[i].as_str(), label, editor == Some(i));
        lines.push(row(replica, cells, app.now_ms, width));
    }
    if let Some(more) = fleet
        .replicas()
        .len()
        .checked_sub(MAX_ROWS)
        .filter(|&n| n > 0)
    {
        lines.push(Line::styled(
            format!("  … and {more} more replicas"),
            styles::dim(),
        ));
    }
    if fleet.replicas().is_empty() {
        lines.push(Line::styled(
            "  no admin socket matches yet: replicas join as their sockets appear",
            styles::dim(),
        ));
    }
    frame.render_widget(Paragraph::new(lines), inner);
}

fn heading(label: usize) -> Line<'static> {
    let mut text = format!("  {}", fit::pad("replica", label));
    for title in COUNTS {
        text.push_str(&format!(" {title}"));
    }
    text.push_str("  status");
    Line::styled(text, styles::dim())
}

/// One replica: marker, label, its counts, and its connection.
fn row(
    replica: &Replica,
    (label, label_width, edits): (&str, usize, bool),
    now_ms: u64,
    width: usize,
) -> Line<'static> {
    let marker = if edits { "▸ " } else { "  " };
    let shown = fit::pad(&fit::middle(label, label_width), label_width);
    let mut spans = vec![
        Span::styled(marker, styles::key()),
        Span::styled(shown, styles::key()),
    ];
    let (status, style) = status(replica, now_ms);
    if !replica.is_connected() {
        // Why it is down matters more than counts that no longer move: its status takes
        // the count columns (its last counts stay in the totals).
        let used = 2 + label_width + 2;
        spans.push(Span::styled(
            format!("  {}", fit::end(&status, width.saturating_sub(used))),
            style,
        ));
        return Line::from(spans);
    }
    let counts = replica.stats.as_ref().map(|s| {
        [
            s.allowed,
            s.denied,
            s.would_deny,
            s.dropped_events + replica.dropped_here,
        ]
    });
    for (n, title) in counts.unwrap_or_default().into_iter().zip(COUNTS) {
        let text = match counts {
            Some(_) => n.to_string(),
            None => "-".into(),
        };
        spans.push(Span::raw(format!(" {text:>w$}", w = title.len())));
    }
    let counts_width: usize = COUNTS.iter().map(|t| t.len() + 1).sum();
    let used = 2 + label_width + counts_width + 2;
    spans.push(Span::styled(
        format!("  {}", fit::end(&status, width.saturating_sub(used))),
        style,
    ));
    Line::from(spans)
}

/// The connection, in a few words; a replica that is down says why (without the socket
/// path the client's errors start with: the row is that replica's).
fn status(replica: &Replica, now_ms: u64) -> (String, ratatui::style::Style) {
    let why = |reason: &str| {
        let path = replica.socket.display();
        let connect = format!("cannot connect to the admin socket {path}: ");
        let other = format!("admin socket {path}: ");
        let short = match reason.strip_prefix(&connect) {
            Some(rest) => format!("cannot connect: {rest}"),
            None => reason.strip_prefix(&other).unwrap_or(reason).to_owned(),
        };
        owned(&short)
    };
    match &replica.conn {
        ConnStatus::Connecting => ("○ connecting…".into(), styles::warn()),
        ConnStatus::Connected { .. } => ("● connected".into(), styles::ok()),
        ConnStatus::Disconnected {
            reason,
            retry_at_ms,
        } => {
            let secs = retry_at_ms.saturating_sub(now_ms).div_ceil(1000);
            (
                format!("✕ down, retry in {secs}s: {}", why(reason)),
                styles::error(),
            )
        }
        ConnStatus::Failed { reason } => {
            (format!("✕ not retried: {}", why(reason)), styles::error())
        }
    }
}
