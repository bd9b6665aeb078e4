//! Decisions per second over the last minutes, drawn in the header: one sparkline for
//! allowed and one for refused, each after its total and with its own scale (a trickle
//! of refusals must show beside a flood of allows), its peak written out so the scale
//! is known. The newest second is at the right; quiet seconds are zeros, so the lines
//! move with time even when nothing happens.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Sparkline};

use super::styles;
use crate::state::App;
use crate::state::rate::Second;

/// ` peak 123456/s`.
const PEAK: u16 = 15;
/// The least time a sparkline covers, in seconds: on a narrow terminal a column stands
/// for several seconds (the busiest of them).
pub const SPAN: usize = 120;

/// Which count a row draws, and in which colour.
#[derive(Debug, Clone, Copy)]
pub enum Kind {
    /// Allowed decisions.
    Allowed,
    /// Refused decisions: denied and would-deny together.
    Refused,
}

impl Kind {
    fn count(self, second: &Second) -> u64 {
        match self {
            Kind::Allowed => second.allowed,
            Kind::Refused => second.refused,
        }
    }

    fn style(self) -> Style {
        match self {
            Kind::Allowed => styles::verdict(mcp_cors::Verdict::Allow),
            Kind::Refused => styles::verdict(mcp_cors::Verdict::Deny),
        }
    }
}

/// A row of `kind`: `label` (the totals, `label_width` wide), the sparkline, its peak.
pub fn render(
    frame: &mut Frame,
    area: Rect,
    app: &App,
    kind: Kind,
    (label, label_width): (Line<'static>, u16),
) {
    let seconds = seconds(area, label_width);
    let data: Vec<u64> = app
        .rate
        .columns(app.now_ms, seconds, SPAN)
        .iter()
        .map(|s| kind.count(s))
        .collect();
    row(frame, area, (label, label_width), &data, kind.style());
}

/// How many columns the sparkline of a row in `area` has.
fn seconds(area: Rect, label_width: u16) -> usize {
    usize::from(area.width.saturating_sub(label_width + PEAK))
}

fn row(
    frame: &mut Frame,
    area: Rect,
    (label, width): (Line<'static>, u16),
    data: &[u64],
    style: Style,
) {
    let [label_area, line, peak_area] = Layout::horizontal([
        Constraint::Length(width),
        Constraint::Fill(1),
        Constraint::Length(PEAK),
    ])
    .areas(area);
    frame.render_widget(Paragraph::new(label), label_area);
    let peak = data.iter().copied().max().unwrap_or(0);
    // The scale is the peak on screen; a quiet window keeps a scale of 1, not 0.
    let sparkline = Sparkline::default()
        .data(data)
        .max(peak.max(1))
        .style(style);
    frame.render_widget(sparkline, line);
    let peak_text = Line::from(vec![Span::styled(format!(" peak {peak}/s"), styles::dim())]);
    frame.render_widget(Paragraph::new(peak_text), peak_area);
}
