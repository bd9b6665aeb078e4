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
        InputMode::Filter => text(key.code),
        InputMode::Prompt => prompt(key.code),
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

/// The add prompt: text, and the route choice on Tab / Shift-Tab and ← →.
fn prompt(code: KeyCode) -> Option<Action> {
    match code {
        KeyCode::Tab | KeyCode::Right => Some(Action::RouteNext),
        KeyCode::BackTab | KeyCode::Left => Some(Action::RoutePrev),
        other => text(other),
    }
}

fn confirm(code: KeyCode) -> Option<Action> {
    match code {
        KeyCode::Char('y' | 'Y') => Some(Action::Yes),
        KeyCode::Enter => Some(Action::Submit),
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
        KeyCode::Char('h') => Action::AddHost,
        KeyCode::Char('d') | KeyCode::Delete => Action::Remove,
        _ => return None,
    };
    Some(action)
}

/// Every key, for the help screen: (keys, what they do). Kept next to the mapping, and a
/// test checks that every key the mapping acts on is named here.
pub const KEYS: &[(&str, &str)] = &[
    ("q, Ctrl-C", "quit (Ctrl-C also from a prompt)"),
    ("?", "show / hide this help"),
    (
        "Tab, Shift-Tab",
        "focus the next / previous panel; in the add prompt: the route",
    ),
    ("↑ k, ↓ j", "move the selection; scroll the event tail"),
    ("PgUp, PgDn", "move by a page"),
    ("Home g, End G", "first / last; End resumes the live tail"),
    ("Space, p", "pause / resume the event tail"),
    (
        "/",
        "filter by origin, path, client, route, verdict (deny…) or replica",
    ),
    ("Esc", "clear the filter; close the help"),
    (
        "a, Enter",
        "allow the selected denied origin / host (on its route); policy: add",
    ),
    ("n", "add an origin (validated as you type)"),
    ("h", "add a host (validated as you type)"),
    (
        "← →",
        "in the add prompt: choose the route (top level or a [routes.NAME])",
    ),
    (
        "d, Delete",
        "policy panel: remove the selected origin (asks first)",
    ),
    ("Enter, Esc", "in a prompt (filter, add): apply / cancel"),
    ("Backspace", "in a prompt: delete the last character"),
    (
        "y Y, n N",
        "answer a question (Enter is yes, Esc no; allowing * takes y)",
    ),
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
    fn tab_and_arrows_choose_the_route_in_the_add_prompt_only() {
        for (code, action) in [
            (KeyCode::Tab, Action::RouteNext),
            (KeyCode::Right, Action::RouteNext),
            (KeyCode::BackTab, Action::RoutePrev),
            (KeyCode::Left, Action::RoutePrev),
        ] {
            assert_eq!(map_key(key(code), InputMode::Prompt), Some(action));
            assert_eq!(map_key(key(code), InputMode::Filter), None);
        }
        assert_eq!(
            map_key(key(KeyCode::Tab), InputMode::Normal),
            Some(Action::FocusNext)
        );
        let h = key(KeyCode::Char('h'));
        assert_eq!(map_key(h, InputMode::Normal), Some(Action::AddHost));
        assert_eq!(map_key(h, InputMode::Prompt), Some(Action::Char('h')));
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

    /// How [`KEYS`] names a key.
    fn name(key: KeyEvent) -> String {
        if key.modifiers.contains(KeyModifiers::CONTROL) {
            if let KeyCode::Char(c) = key.code {
                return format!("Ctrl-{}", c.to_ascii_uppercase());
            }
        }
        match key.code {
            KeyCode::Char(' ') => "Space".into(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::Up => "↑".into(),
            KeyCode::Down => "↓".into(),
            KeyCode::Left => "←".into(),
            KeyCode::Right => "→".into(),
            KeyCode::PageUp => "PgUp".into(),
            KeyCode::PageDown => "PgDn".into(),
            KeyCode::BackTab => "Shift-Tab".into(),
            KeyCode::Delete => "Delete".into(),
            other => format!("{other:?}"),
        }
    }

    /// Every key a terminal may send that the UI could plausibly use.
    fn candidate_keys() -> Vec<KeyEvent> {
        let mut codes: Vec<KeyCode> = (' '..='~').map(KeyCode::Char).collect();
        codes.extend([
            KeyCode::Tab,
            KeyCode::BackTab,
            KeyCode::Up,
            KeyCode::Down,
            KeyCode::Left,
            KeyCode::Right,
            KeyCode::PageUp,
            KeyCode::PageDown,
            KeyCode::Home,
            KeyCode::End,
            KeyCode::Enter,
            KeyCode::Esc,
            KeyCode::Backspace,
            KeyCode::Delete,
            KeyCode::Insert,
        ]);
        codes.extend((1..=12).map(KeyCode::F));
        let plain = codes.iter().map(|&c| key(c));
        let ctrl = codes
            .iter()
            .map(|&c| KeyEvent::new(c, KeyModifiers::CONTROL));
        plain.chain(ctrl).collect()
    }

    fn help_tokens() -> Vec<&'static str> {
        KEYS.iter()
            .flat_map(|(keys, _)| keys.split([',', ' ']))
            .filter(|t| !t.is_empty())
            .collect()
    }

    const MODES: [InputMode; 5] = [
        InputMode::Normal,
        InputMode::Help,
        InputMode::Filter,
        InputMode::Prompt,
        InputMode::Confirm,
    ];

    #[test]
    fn the_help_names_every_key_the_mapping_acts_on() {
        let tokens = help_tokens();
        for mode in MODES {
            for k in candidate_keys() {
                match map_key(k, mode) {
                    // Typing into a prompt is not a key binding.
                    None | Some(Action::Char(_)) => {}
                    Some(action) => assert!(
                        tokens.contains(&name(k).as_str()),
                        "{} ({action:?} in {mode:?}) is missing from the help (KEYS)",
                        name(k)
                    ),
                }
            }
        }
    }

    #[test]
    fn the_help_names_no_key_that_does_nothing() {
        for token in help_tokens() {
            let used = MODES.iter().any(|&mode| {
                candidate_keys().into_iter().any(|k| {
                    name(k) == token
                        && map_key(k, mode).is_some_and(|a| !matches!(a, Action::Char(_)))
                })
            });
            assert!(used, "the help lists {token:?}, which no mode acts on");
        }
    }

    #[test]
    fn releases_are_ignored() {
        let mut release = key(KeyCode::Char('q'));
        release.kind = KeyEventKind::Release;
        assert_eq!(map_key(release, InputMode::Normal), None);
    }
}
