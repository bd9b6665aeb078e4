//! Colours and emphasis, in one place so every panel speaks the same visual language.

use mcp_cors::Verdict;
use ratatui::style::{Color, Modifier, Style};

/// The style of a verdict: allow green, deny red, would-deny yellow.
pub fn verdict(verdict: Verdict) -> Style {
    match verdict {
        Verdict::Allow => Style::new().fg(Color::Green),
        Verdict::Deny => Style::new().fg(Color::Red).add_modifier(Modifier::BOLD),
        Verdict::WouldDeny => Style::new().fg(Color::Yellow),
    }
}

/// A policy that now serves.
pub fn reloaded() -> Style {
    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
}

/// A policy file that was refused.
pub fn rejected() -> Style {
    Style::new().fg(Color::Magenta).add_modifier(Modifier::BOLD)
}

/// Secondary text: times, hints.
pub fn dim() -> Style {
    Style::new().fg(Color::DarkGray)
}

/// Something that went wrong.
pub fn error() -> Style {
    Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
}

/// Something that went right.
pub fn ok() -> Style {
    Style::new().fg(Color::Green)
}

/// A warning.
pub fn warn() -> Style {
    Style::new().fg(Color::Yellow)
}

/// A panel's border: bright when it has the focus.
pub fn border(focused: bool) -> Style {
    if focused {
        Style::new().fg(Color::Cyan)
    } else {
        Style::new().fg(Color::DarkGray)
    }
}

/// The selected row of the focused panel.
pub fn selected() -> Style {
    Style::new().add_modifier(Modifier::REVERSED)
}

/// Keys in hints and help.
pub fn key() -> Style {
    Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD)
}

/// Text drawn as the terminal draws it.
pub fn plain() -> Style {
    Style::default()
}
