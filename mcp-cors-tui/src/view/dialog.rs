//! Dialogs drawn over the panels: a confirmation, or the add prompt with its route
//! choice.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::{centered, styles};
use crate::escape::owned;
use crate::lists::List;
use crate::state::{AddEntry, Dialog, Validation};

/// Draws `dialog` centred on the screen.
pub fn render(frame: &mut Frame, dialog: &Dialog) {
    let full = frame.area();
    let width = (full.width * 7 / 10).max(40);
    let area = centered(full, width, 8);
    frame.render_widget(Clear, area);
    match dialog {
        Dialog::Confirm {
            question, explicit, ..
        } => confirm(frame, area, question, *explicit),
        Dialog::Add(prompt) => add(frame, area, prompt),
    }
}

/// A question; an `explicit` one (opening the server to every site) is drawn as a
/// warning and takes `y`, not Enter.
fn confirm(frame: &mut Frame, area: Rect, question: &str, explicit: bool) {
    let (style, title, yes) = if explicit {
        (
            styles::error(),
            " Warning: every site ",
            " yes, allow every origin    ",
        )
    } else {
        (styles::warn(), " Confirm ", " yes    ")
    };
    let block = Block::bordered().border_style(style).title(title);
    let question = if explicit {
        Line::styled(owned(question), style)
    } else {
        Line::raw(owned(question))
    };
    let text = vec![
        question,
        Line::raw(""),
        Line::from(vec![
            Span::styled("y", styles::key()),
            Span::raw(yes),
            Span::styled("n", styles::key()),
            Span::raw(" no"),
        ]),
    ];
    let body = Paragraph::new(text).block(block).wrap(Wrap { trim: false });
    frame.render_widget(body, area);
}

fn add(frame: &mut Frame, area: Rect, prompt: &AddEntry) {
    let (title, what, example) = match prompt.list {
        List::Origins => (
            " Add an allowed origin ",
            "origin: ",
            "e.g. https://app.example.com, https://*.example.com, http://localhost:*",
        ),
        List::Hosts => (
            " Add an allowed host ",
            "host:   ",
            "e.g. api.example.com, localhost:8080, *.example.com, 10.0.0.0/8",
        ),
    };
    let block = Block::bordered().border_style(styles::key()).title(title);
    let place = owned(&prompt.place());
    let check = match &prompt.check {
        Validation::Empty => Line::styled(example, styles::dim()),
        Validation::Valid {
            normalised,
            present: false,
        } if normalised == "*" => Line::styled(
            match prompt.list {
                List::Origins => {
                    format!("⚠ * in {place} opens it to every web site; Enter asks you to confirm")
                }
                List::Hosts => {
                    format!("⚠ * in {place} turns the Host guard off; Enter asks you to confirm")
                }
            },
            styles::error(),
        ),
        Validation::Valid {
            normalised,
            present: false,
        } => Line::styled(
            format!("✓ valid: adds {} to {place}", owned(normalised)),
            styles::ok(),
        ),
        Validation::Valid {
            normalised,
            present: true,
        } => Line::styled(
            format!("✓ {} is already in {place}", owned(normalised)),
            styles::warn(),
        ),
        Validation::Invalid(message) => {
            Line::styled(format!("✗ {}", owned(message)), styles::error())
        }
    };
    let text = vec![
        Line::from(vec![
            Span::styled(what, styles::dim()),
            Span::raw(format!("{}█", owned(&prompt.input))),
        ]),
        route_choice(prompt),
        check,
        Line::raw(""),
        Line::from(vec![
            Span::styled("Enter", styles::key()),
            Span::raw(" add (when valid)    "),
            Span::styled("Tab ←→", styles::key()),
            Span::raw(" route    "),
            Span::styled("Esc", styles::key()),
            Span::raw(" cancel"),
        ]),
    ];
    let body = Paragraph::new(text).block(block).wrap(Wrap { trim: false });
    frame.render_widget(body, area);
}

/// `route:  [top level]  meta  docs`: every choice, the chosen one bracketed (and
/// highlighted), so the choice is visible without colours too.
fn route_choice(prompt: &AddEntry) -> Line<'static> {
    let mut spans = vec![Span::styled("route:  ", styles::dim())];
    let choices = std::iter::once(None).chain(prompt.routes.iter().map(Some));
    for (i, choice) in choices.enumerate() {
        if i > 0 {
            spans.push(Span::raw("  "));
        }
        let name = choice.map_or_else(|| "top level".to_owned(), |r| owned(r));
        if choice.map(String::as_str) == prompt.route.as_deref() {
            spans.push(Span::styled(format!("[{name}]"), styles::selected()));
        } else {
            spans.push(Span::raw(format!(" {name} ")));
        }
    }
    if prompt.routes.is_empty() {
        spans.push(Span::styled("  (the policy has no route)", styles::dim()));
    }
    Line::from(spans)
}
