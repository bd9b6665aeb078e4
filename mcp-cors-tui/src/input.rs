//! Keys to actions. Which keys mean what depends on where input goes (a prompt takes
//! letters literally), so the mapping takes the [`InputMode`].

use crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::state::{Action, InputMode};

/// The action for `key` in `mode`, if any.
pub fn map_key(key: KeyEvent, mode: InputMode) -> Option<Action> {
    // Key releases and repeats are reported on some terminals; only presses act.
    if key.kind == KeyEventKind::Release {
        return None;
    }
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return match key.code {
            KeyCode::Char('c') => Some(Action::Quit),
            _ => None,
        };
    }
    match mode {
        InputMode::Filter | InputMode::Prompt => text(key.code),
        InputMode::Confirm => confirm(key.code),
        InputMode::Help => help(key.code),
        InputMode::Normal => normal(key.code),
    }
}

fn text(code: KeyCode) -> Option<Action> {
    match code {
        KeyCode::Char(c) => Some(Action::Char(c)),
        KeyCode::Backspace => Some(Action::Backspace),
        KeyCode::Enter => Some(Action::Submit),
        KeyCode::Esc => Some(Action::Cancel),
        _ => None,
    }
}

fn confirm(code: KeyCode) -> Option<Action> {
    match code {
        KeyCode::Char('y' | 'Y') | KeyCode::Enter => Some(Action::Submit),
        KeyCode::Char('n' | 'N') | KeyCode::Esc => Some(Action::Cancel),
        _ => None,
    }
}

fn help(code: KeyCode) -> Option<Action> {
    match code {
        KeyCode::Char('?') => Some(Action::ToggleHelp),
        KeyCode::Esc => Some(Action::Cancel),
        KeyCode::Char('q') => Some(Action::Quit),
        _ => None,
    }
}

fn normal(code: KeyCode) -> Option<Action> {
    let action = match code {
        KeyCode::Char('q') => Action::Quit,
        KeyCode::Char('?') => Action::ToggleHelp,
        KeyCode::Tab => Action::FocusNext,
        KeyCode::BackTab => Action::FocusPrev,
        KeyCode::Up | KeyCode::Char('k') => Action::Up,
        KeyCode::Down | KeyCode::Char('j') => Action::Down,
        KeyCode::PageUp => Action::PageUp,
        KeyCode::PageDown => Action::PageDown,
        KeyCode::Home | KeyCode::Char('g') => Action::Top,
        KeyCode::End | KeyCode::Char('G') => Action::Bottom,
        KeyCode::Char(' ' | 'p') => Action::TogglePause,
        KeyCode::Char('/') => Action::StartFilter,
        KeyCode::Esc => Action::ClearFilter,
        KeyCode::Char('a') | KeyCode::Enter => Action::Allow,
        KeyCode::Char('n') => Action::AddOrigin,
        KeyCode::Char('d') | KeyCode::Delete => Action::Remove,
        _ => return None,
    };
    Some(action)
}

/// Every key, for the help screen: (keys, what they do). Kept next to the mapping so the
/// two cannot drift apart unnoticed.
pub const KEYS: &[(&str, &str)] = &[
    ("q, Ctrl-C", "quit"),
    ("?", "show / hide this help"),
    ("Tab, Shift-Tab", "focus the next / previous panel"),
    ("↑ k, ↓ j", "move the selection; scroll the event tail"),
    ("PgUp, PgDn", "move by a page"),
    ("Home g, End G", "first / last; End resumes the live tail"),
    ("Space, p", "pause / resume the event tail"),
    (
        "/",
        "filter events by origin, path or verdict (Enter keeps, Esc clears)",
    ),
    ("Esc", "clear the filter; close a dialog"),
    (
        "a, Enter",
        "denied panel: allow the selected origin (asks first)",
    ),
    ("n", "add an origin (validated as you type)"),
    (
        "d, Delete",
        "policy panel: remove the selected origin (asks first)",
    ),
    ("y, n", "answer a confirmation"),
];

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn letters_are_text_in_prompts_and_commands_elsewhere() {
        let q = key(KeyCode::Char('q'));
        assert_eq!(map_key(q, InputMode::Normal), Some(Action::Quit));
        assert_eq!(map_key(q, InputMode::Filter), Some(Action::Char('q')));
        assert_eq!(map_key(q, InputMode::Prompt), Some(Action::Char('q')));
        assert_eq!(map_key(q, InputMode::Confirm), None);
    }

    #[test]
    fn ctrl_c_quits_everywhere() {
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        for mode in [
            InputMode::Normal,
            InputMode::Help,
            InputMode::Filter,
            InputMode::Prompt,
            InputMode::Confirm,
        ] {
            assert_eq!(map_key(ctrl_c, mode), Some(Action::Quit), "{mode:?}");
        }
    }

    #[test]
    fn releases_are_ignored() {
        let mut release = key(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        assert_eq!(map_key(release, InputMode::Normal), None);
    }
}
