//! Rendering snapshots: each screen state drawn on a `TestBackend`, compared as text.
//! Times come from the fixtures' fixed clock, so the screens are reproducible.

use std::time::Duration;

use mcp_cors::Verdict;
use ratatui::Terminal;
use ratatui::backend::TestBackend;

use super::render;
use crate::conn::NetMsg;
use crate::fixtures::{self, NOW, decision};
use crate::state::{Action, App, Msg};

const WIDTH: u16 = 120;
const HEIGHT: u16 = 24;

/// The screen as text, one line per row, trailing blanks trimmed.
fn screen(app: &App) -> String {
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).expect("test backend");
    terminal
        .draw(|frame| render(frame, app))
        .expect("drawing on a test backend cannot fail");
    let buffer = terminal.backend().buffer();
    let mut text = String::new();
    for y in 0..buffer.area.height {
        let row: String = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol())
            .collect();
        text.push_str(row.trim_end());
        text.push('\n');
    }
    text
}

fn act(app: &mut App, actions: &[Action]) {
    for action in actions {
        app.update(Msg::Action(*action));
    }
}

fn typed(app: &mut App, text: &str) {
    for c in text.chars() {
        app.update(Msg::Action(Action::Char(c)));
    }
}

#[test]
fn empty() {
    let app = App::new("/etc/mcp/cors.sock".into(), NOW);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn streaming() {
    insta::assert_snapshot!(screen(&fixtures::streaming_app()));
}

#[test]
fn filtered() {
    let mut app = fixtures::streaming_app();
    act(&mut app, &[Action::StartFilter]);
    typed(&mut app, "example.com");
    act(&mut app, &[Action::Submit]);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn paused_with_newer_events() {
    let mut app = fixtures::streaming_app();
    act(&mut app, &[Action::TogglePause]);
    app.update(Msg::Net(NetMsg::Event(decision(
        1,
        Verdict::Deny,
        "https://late.example",
        "/mcp",
    ))));
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn denied_origins_panel() {
    let mut app = fixtures::streaming_app();
    act(&mut app, &[Action::FocusNext, Action::Down]);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn allow_confirmation() {
    let mut app = fixtures::streaming_app();
    act(&mut app, &[Action::FocusNext, Action::Allow]);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn add_dialog_with_a_validation_error() {
    let mut app = fixtures::streaming_app();
    act(&mut app, &[Action::AddOrigin]);
    typed(&mut app, "https://app.example.com/login");
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn add_dialog_with_a_valid_origin() {
    let mut app = fixtures::streaming_app();
    act(&mut app, &[Action::AddOrigin]);
    typed(&mut app, "HTTPS://Admin.Example.com:443");
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn reload_error_banner() {
    let mut app = fixtures::streaming_app();
    let mut stats = fixtures::stats();
    stats.last_error = Some(fixtures::reload_error());
    app.update(Msg::Net(NetMsg::Stats(stats)));
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn disconnected() {
    let mut app = fixtures::streaming_app();
    app.update(Msg::Net(NetMsg::Disconnected {
        reason:
            "admin socket /etc/mcp/cors.sock: connection lost: the server closed the connection"
                .into(),
        retry_in: Duration::from_millis(1600),
    }));
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn help() {
    let mut app = fixtures::streaming_app();
    act(&mut app, &[Action::ToggleHelp]);
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn verdicts_have_distinct_colours() {
    use super::styles;
    let colours: Vec<_> = [Verdict::Allow, Verdict::Deny, Verdict::WouldDeny]
        .into_iter()
        .map(|v| styles::verdict(v).fg)
        .chain([styles::reloaded().fg, styles::rejected().fg])
        .collect();
    for (i, a) in colours.iter().enumerate() {
        for b in &colours[i + 1..] {
            assert_ne!(a, b);
        }
    }
    assert_eq!(
        styles::verdict(Verdict::Allow).fg,
        Some(ratatui::style::Color::Green)
    );
    assert_eq!(
        styles::verdict(Verdict::Deny).fg,
        Some(ratatui::style::Color::Red)
    );
    assert_eq!(
        styles::verdict(Verdict::WouldDeny).fg,
        Some(ratatui::style::Color::Yellow)
    );
}
