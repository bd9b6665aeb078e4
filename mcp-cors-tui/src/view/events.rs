//! The live event tail, newest at the bottom: a table whose columns are sized from the
//! lines on screen, so that at 120 columns an origin is shown whole and at 80 it is
//! elided in the middle, never cut off at its end. A fleet's tail labels each event
//! with its replica.

use mcp_cors::protocol::{DecisionEvent, Event};
use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Paragraph};

use super::{fit, styles};
use crate::clock;
use crate::escape::owned;
use crate::state::{App, Entry, Focus};

/// `HH:MM:SS`.
const TIME: usize = 8;
/// `WOULD-DENY`, the longest verdict.
const VERDICT: usize = 10;
/// Widest route and client columns: a longer route name or an IPv6 address is elided.
const MAX_ROUTE: usize = 16;
const MAX_CLIENT: usize = 39;
const MAX_METHOD: usize = 7;
/// Widest replica label (`HOST:PID`): a longer host name is elided in the middle.
const MAX_REPLICA: usize = 24;

/// The origin is given this many characters before the client column gives way.
const MIN_ORIGIN: usize = 24;
/// Headings of the columns sized by their content.
const ROUTE: &str = "route";
const CLIENT: &str = "client";
const METHOD: &str = "method";
const REPLICA: &str = "replica";

/// Draws the tail.
pub fn render(frame: &mut Frame, area: Rect, app: &App) {
    let visible = app.visible_events();
    let block = Block::bordered()
        .border_style(styles::border(app.focus == Focus::Events))
        .title(title(app, visible.len()));
    let inner = block.inner(area);
    let lines: Vec<Line> = if visible.is_empty() {
        vec![Line::styled(empty_text(app), styles::dim())]
    } else {
        // One row is the heading; the window ends `scroll` lines before the newest.
        let height = usize::from(inner.height).saturating_sub(1);
        let end = visible.len().saturating_sub(app.scroll);
        let window = &visible[end.saturating_sub(height)..end];
        let labels = Labels::of(app, window);
        let columns = Columns::fit(window, &labels, usize::from(inner.width));
        let mut lines = vec![columns.heading()];
        lines.extend(
            window
                .iter()
                .map(|e| columns.line(labels.of_entry(e), &e.event)),
        );
        lines
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

/// The replica labels of a fleet's tail (none for a single server), escaped: a host
/// name comes from the server.
struct Labels(Option<Vec<String>>);

impl Labels {
    fn of(app: &App, window: &[&Entry]) -> Labels {
        if !app.fleet.is_shown() {
            return Labels(None);
        }
        let last = window.iter().map(|e| e.replica).max().unwrap_or(0);
        Labels(Some(
            (0..=last).map(|i| owned(&app.replica_label(i))).collect(),
        ))
    }

    fn of_entry(&self, entry: &Entry) -> Option<&str> {
        let labels = self.0.as_ref()?;
        Some(labels.get(entry.replica).map_or("", String::as_str))
    }

    /// The replica column's width: its longest label, 0 without a fleet.
    fn width(&self, window: &[&Entry]) -> usize {
        let longest = window
            .iter()
            .filter_map(|e| self.of_entry(e))
            .map(|l| l.chars().count())
            .max();
        longest.map_or(0, |w| w.clamp(REPLICA.len(), MAX_REPLICA))
    }
}

/// The widths of the columns after time and verdict; 0 = the column is not shown (no
/// line on screen has a route or a client, or the client gave way to the origin).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Columns {
    /// A fleet's replica label, right after the time.
    replica: usize,
    route: usize,
    client: usize,
    method: usize,
    origin: usize,
    path: usize,
    /// The reason, and a folded run's `×N` after it.
    reason: usize,
}

impl Columns {
    /// What the columns would take to show every line of `window` whole.
    fn wanted(window: &[&Entry], labels: &Labels) -> Columns {
        let decisions: Vec<&DecisionEvent> = window
            .iter()
            .filter_map(|e| match &e.event {
                Event::Decision(d) => Some(d),
                _ => None,
            })
            .collect();
        let longest =
            |f: &dyn Fn(&DecisionEvent) -> usize| decisions.iter().map(|d| f(d)).max().unwrap_or(0);
        let chars = |s: &str| owned(s).chars().count();
        // A column shown is at least as wide as its heading.
        let titled = |width: usize, title: &str| {
            if width == 0 {
                0
            } else {
                width.max(title.len())
            }
        };
        let route = longest(&|d| d.route.as_deref().map_or(0, chars)).min(MAX_ROUTE);
        let client = longest(&|d| d.client.as_deref().map_or(0, chars)).min(MAX_CLIENT);
        Columns {
            replica: labels.width(window),
            route: titled(route, ROUTE),
            client: titled(client, CLIENT),
            method: titled(longest(&|d| chars(&d.method)).min(MAX_METHOD), METHOD),
            origin: longest(&|d| chars(d.origin.as_deref().unwrap_or(NO_ORIGIN))),
            path: longest(&|d| chars(&d.path)),
            reason: longest(&|d| chars(&reason_text(d))),
        }
    }

    /// Widths for `window` in `width` characters. Route, client and method take what
    /// their longest entry needs; origin, path and reason share the rest, the origin
    /// first (what the operator acts on), then the reason (why), then the path. On a
    /// narrow terminal the client column gives way when the origin would be cut short.
    fn fit(window: &[&Entry], labels: &Labels, width: usize) -> Columns {
        let wanted = Columns::wanted(window, labels);
        let with_client = Columns::share(&wanted, wanted.client, width);
        let enough = wanted.origin.min(MIN_ORIGIN);
        if with_client.origin >= enough || wanted.client == 0 {
            return with_client;
        }
        Columns::share(&wanted, 0, width)
    }

    /// `wanted` with origin, path and reason shared out in `width`, and `client` as the
    /// client column's width.
    fn share(wanted: &Columns, client: usize, width: usize) -> Columns {
        let fixed = [
            TIME,
            wanted.replica,
            VERDICT,
            wanted.route,
            client,
            wanted.method,
        ]
        .iter()
        .filter(|&&w| w > 0)
        .map(|w| w + 1)
        .sum::<usize>();
        // Two separators between origin, path and reason.
        let rest = width.saturating_sub(fixed + 2);
        let (origin, path, reason) = share(rest, wanted.origin, wanted.path, wanted.reason);
        Columns {
            replica: wanted.replica,
            route: wanted.route,
            client,
            method: wanted.method,
            origin,
            path,
            reason,
        }
    }

    /// The dim heading row.
    fn heading(&self) -> Line<'static> {
        let mut text = format!("{} ", fit::pad("time", TIME));
        if self.replica > 0 {
            text.push_str(&format!("{} ", fit::pad(REPLICA, self.replica)));
        }
        text.push_str(&format!("{} ", fit::pad("verdict", VERDICT)));
        for (title, width) in [
            (ROUTE, self.route),
            (CLIENT, self.client),
            (METHOD, self.method),
            ("origin", self.origin),
            ("path", self.path),
        ] {
            if width > 0 {
                text.push_str(&fit::pad(&fit::end(title, width), width));
                text.push(' ');
            }
        }
        text.push_str(&fit::end("reason", self.reason));
        Line::styled(text.trim_end().to_owned(), styles::dim())
    }

    /// One event as a row, after its replica's `label` in a fleet. What the request
    /// carried is escaped: it must not drive the terminal.
    fn line(&self, label: Option<&str>, event: &Event) -> Line<'static> {
        let mut line = self.row(event);
        if let Some(label) = label.filter(|_| self.replica > 0) {
            let cell = format!(
                "{} ",
                fit::pad(&fit::middle(label, self.replica), self.replica)
            );
            line.spans.insert(1, Span::styled(cell, styles::key()));
        }
        line
    }

    fn row(&self, event: &Event) -> Line<'static> {
        match event {
            Event::Decision(d) => self.decision(d),
            Event::Reloaded { at_ms, diff } => {
                self.note(*at_ms, "RELOADED", &diff.to_string(), styles::reloaded())
            }
            Event::ReloadRejected(error) => self.note(
                error.at_ms,
                "REJECTED",
                error.message.lines().next().unwrap_or_default(),
                styles::rejected(),
            ),
            Event::Audit(record) => self.note(
                record.at_ms,
                "AUDIT",
                &format!("{} {}", record.action, crate::cli::audit::details(record)),
                styles::reloaded(),
            ),
        }
    }

    fn decision(&self, d: &DecisionEvent) -> Line<'static> {
        let verdict = styles::verdict(d.verdict);
        let mut spans = vec![
            Span::styled(format!("{} ", clock::hms(d.at_ms)), styles::dim()),
            Span::styled(
                format!(
                    "{} ",
                    fit::pad(&d.verdict.to_string().to_uppercase(), VERDICT)
                ),
                verdict,
            ),
        ];
        let cells = [
            (d.route.as_deref(), self.route, styles::key(), true),
            (d.client.as_deref(), self.client, styles::dim(), true),
            (Some(d.method.as_str()), self.method, styles::plain(), false),
            (
                Some(d.origin.as_deref().unwrap_or(NO_ORIGIN)),
                self.origin,
                styles::plain(),
                true,
            ),
            (Some(d.path.as_str()), self.path, styles::plain(), false),
        ];
        for (text, width, style, middle) in cells {
            if width == 0 {
                continue;
            }
            let text = owned(text.unwrap_or_default());
            let shown = if middle {
                fit::middle(&text, width)
            } else {
                fit::end(&text, width)
            };
            spans.push(Span::styled(format!("{} ", fit::pad(&shown, width)), style));
        }
        if let Some(reason) = &d.reason {
            spans.push(Span::styled(fit::end(&owned(reason), self.reason), verdict));
        }
        if d.count > 1 {
            // A run of identical decisions, folded by the server: after the reason, in
            // what is left of its column.
            let used = d
                .reason
                .as_deref()
                .map_or(0, |r| owned(r).chars().count() + 1);
            let runs = format!("×{}", d.count);
            if used + runs.chars().count() <= self.reason {
                let gap = if d.reason.is_some() { " " } else { "" };
                spans.push(Span::styled(format!("{gap}{runs}"), styles::dim()));
            }
        }
        Line::from(spans)
    }

    /// A policy event: its label in the verdict column, its text across the rest.
    fn note(
        &self,
        at_ms: u64,
        label: &str,
        text: &str,
        style: ratatui::style::Style,
    ) -> Line<'static> {
        let replica = if self.replica > 0 {
            self.replica + 1
        } else {
            0
        };
        let width = self.total().saturating_sub(TIME + replica + VERDICT + 2);
        Line::from(vec![
            Span::styled(format!("{} ", clock::hms(at_ms)), styles::dim()),
            Span::styled(format!("{} ", fit::pad(label, VERDICT)), style),
            Span::styled(fit::end(&owned(text), width), style),
        ])
    }

    /// The width of a whole row.
    fn total(&self) -> usize {
        let columns = [
            self.replica,
            self.route,
            self.client,
            self.method,
            self.origin,
            self.path,
        ];
        TIME + 1
            + VERDICT
            + 1
            + columns
                .iter()
                .filter(|&&w| w > 0)
                .map(|w| w + 1)
                .sum::<usize>()
            + self.reason
    }
}

/// The reason column's text: the reason, then a folded run's `×N`.
fn reason_text(d: &DecisionEvent) -> String {
    match (&d.reason, d.count > 1) {
        (Some(reason), true) => format!("{reason} ×{}", d.count),
        (Some(reason), false) => reason.clone(),
        (None, true) => format!("×{}", d.count),
        (None, false) => String::new(),
    }
}

/// What the origin column shows for a decision without one (a `Host` refusal).
const NO_ORIGIN: &str = "(no origin)";

/// Shares `width` between origin, path and reason, which would take `origin`, `path`
/// and `reason` characters whole. When all fit, the reason takes what is left over (it
/// is last); otherwise each gets a floor (two fifths, a fifth, a quarter of the width,
/// or less if it needs less), and the origin, then the reason, then the path get what
/// the others leave.
fn share(width: usize, origin: usize, path: usize, reason: usize) -> (usize, usize, usize) {
    if origin + path + reason <= width {
        return (origin, path, width - origin - path);
    }
    let floor_path = path.min(FLOOR_PATH);
    let floor_reason = reason.min(FLOOR_REASON);
    let origin = origin.min(
        width
            .saturating_sub(floor_path + floor_reason)
            .max(width * 2 / 5),
    );
    let left = width.saturating_sub(origin);
    let reason = reason.min(left.saturating_sub(floor_path).max(floor_reason.min(left)));
    let path = left.saturating_sub(reason).min(path);
    (origin, path, width.saturating_sub(origin + path))
}

/// What path and reason keep at least (when they need it) before the origin is cut.
const FLOOR_PATH: usize = 8;
const FLOOR_REASON: usize = 12;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_path_and_reason_share_the_width_origin_first() {
        // All fit: whole, and the reason gets the rest.
        assert_eq!(share(80, 23, 4, 18), (23, 4, 53));
        // Short: the path whole, origin and reason cut to their floors.
        assert_eq!(share(36, 23, 4, 18), (20, 4, 12));
        // A long origin yields to the floors of the others.
        assert_eq!(share(40, 60, 10, 30), (20, 8, 12));
        // Never wider than the width, even when it is nothing.
        for width in 0..50 {
            let (o, p, r) = share(width, 45, 12, 30);
            assert!(o + p + r <= width, "{width}: {o} {p} {r}");
        }
    }
}
