//! Dialogs drawn over the panels: a confirmation, or the add-origin prompt.

use ratatui::Frame;
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Clear, Paragraph, Wrap};

use super::{centered, styles};
use crate::escape::owned;
use crate::state::{AddOrigin, Dialog, Validation};

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
        Dialog::AddOrigin(prompt) => add_origin(frame, area, prompt),
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

fn add_origin(frame: &mut Frame, area: Rect, prompt: &AddOrigin) {
    let block = Block::bordered()
        .border_style(styles::key())
        .title(" Add an allowed origin ");
    let check = match &prompt.check {
        Validation::Empty => Line::styled(
            "e.g. https://app.example.com, https://*.example.com, http://localhost:*",
            styles::dim(),
        ),
        Validation::Valid {
            normalised,
            present: false,
        } if normalised == "*" => Line::styled(
            "⚠ * opens this server to every web site; Enter asks you to confirm",
            styles::error(),
        ),
        Validation::Valid {
            normalised,
            present: false,
        } => Line::styled(format!("✓ valid: adds {}", owned(normalised)), styles::ok()),
        Validation::Valid {
            normalised,
            present: true,
        } => Line::styled(
            format!("✓ {} is already allowed", owned(normalised)),
            styles::warn(),
        ),
        Validation::Invalid(message) => {
            Line::styled(format!("✗ {}", owned(message)), styles::error())
        }
    };
    let text = vec![
        Line::from(vec![
            Span::styled("origin: ", styles::dim()),
            Span::raw(format!("{}█", owned(&prompt.input))),
        ]),
        check,
        Line::raw(""),
        Line::from(vec![
            Span::styled("Enter", styles::key()),
            Span::raw(" add (when valid)    "),
            Span::styled("Esc", styles::key()),
            Span::raw(" cancel"),
        ]),
    ];
    let body = Paragraph::new(text).block(block).wrap(Wrap { trim: false });
    frame.render_widget(body, area);
}
