//! Rendering snapshots: each screen state drawn on a `TestBackend`, compared as text.
//! Times come from the fixtures' fixed clock, so the screens are reproducible.

use std::time::Duration;

use mcp_cors::Verdict;
use ratatui::Terminal;
use ratatui::backend::TestBackend;
use ratatui::style::Color;

use super::render;
use crate::conn::NetMsg;
use crate::fixtures::{self, NOW, decision};
use crate::state::{Action, App, Msg};

const WIDTH: u16 = 120;
const HEIGHT: u16 = 24;

/// The screen as text, one line per row, trailing blanks trimmed.
fn screen(app: &App) -> String {
    screen_of(app, WIDTH)
}

/// [`screen`] on a terminal `width` columns wide.
fn screen_of(app: &App, width: u16) -> String {
    screen_sized(app, width, HEIGHT)
}

/// [`screen`] on a terminal of `width` × `height`.
fn screen_sized(app: &App, width: u16, height: u16) -> String {
    let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("test backend");
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
    app.update(Msg::Replica(
        0,
        NetMsg::Event(decision(1, Verdict::Deny, "https://late.example", "/mcp")),
    ));
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
    app.update(Msg::Replica(0, NetMsg::Stats(stats)));
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn no_policy_loaded_banner() {
    // A bad file at start-up: the server refuses every origin, with no previous policy.
    let mut app = fixtures::streaming_app();
    let mut stats = fixtures::stats();
    stats.loaded = false;
    stats.last_error = Some(fixtures::reload_error());
    app.update(Msg::Replica(0, NetMsg::Stats(stats)));
    let screen = screen(&app);
    assert!(
        screen.contains("no policy loaded: /etc/mcp/cors.toml:3:5: allowed_origins:"),
        "{screen}"
    );
    assert!(
        !screen.contains("previous policy keeps serving"),
        "{screen}"
    );
    insta::assert_snapshot!(screen);
}

#[test]
fn disconnected() {
    let mut app = fixtures::streaming_app();
    app.update(Msg::Replica(
        0,
        NetMsg::Disconnected {
            reason:
                "admin socket /etc/mcp/cors.sock: connection lost: the server closed the connection"
                    .into(),
            retry_in: Duration::from_millis(1600),
        },
    ));
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

/// The cells showing `part`, in the first row that shows `row` (searched from there).
fn cells_of(app: &App, row: &str, part: &str) -> Vec<(String, Color)> {
    let mut terminal = Terminal::new(TestBackend::new(WIDTH, HEIGHT)).expect("test backend");
    terminal
        .draw(|frame| render(frame, app))
        .expect("drawing on a test backend cannot fail");
    let buffer = terminal.backend().buffer();
    let find = |symbols: &[&str], text: &str, from: usize| {
        let wanted: Vec<String> = text.chars().map(String::from).collect();
        (from..symbols.len().saturating_sub(wanted.len() - 1))
            .find(|&x| (0..wanted.len()).all(|k| symbols[x + k] == wanted[k]))
    };
    for y in 0..buffer.area.height {
        let symbols: Vec<&str> = (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol())
            .collect();
        let Some(at) = find(&symbols, row, 0) else {
            continue;
        };
        let start = find(&symbols, part, at).expect("`part` after `row`");
        return (start..start + part.chars().count())
            .map(|x| {
                let cell = &buffer[(x as u16, y)];
                (cell.symbol().to_owned(), cell.fg)
            })
            .collect();
    }
    panic!("no row shows {row:?}");
}

#[test]
fn decisions_are_drawn_in_their_verdict_colour() {
    let app = fixtures::streaming_app();
    // In the tail: the verdict and the reason of a refusal are red, of a pass green.
    for (row, part, colour) in [
        ("DENY", "DENY", Color::Red),
        ("DENY", "origin not allowed", Color::Red),
        ("WOULD-DENY", "WOULD-DENY", Color::Yellow),
        ("ALLOW", "ALLOW", Color::Green),
    ] {
        let cells = cells_of(&app, row, part);
        assert!(
            cells.iter().all(|(_, fg)| *fg == colour),
            "{part:?} in the {row} row: {cells:?}"
        );
    }
    // In the denied panel: a refused origin's row is red.
    let cells = cells_of(&app, "5     https://evil.example", "https://evil.example");
    assert!(cells.iter().all(|(_, fg)| *fg == Color::Red), "{cells:?}");
}

#[test]
fn the_untracked_bucket_is_counted_but_not_offered() {
    let mut app = fixtures::streaming_app();
    app.update(Msg::Replica(
        0,
        NetMsg::Stats(fixtures::stats_with_untracked()),
    ));
    let text = screen(&app);
    assert!(
        !text.contains("(other)      "),
        "not a row of the table:\n{text}"
    );
    assert!(
        text.contains("(other) 900 refusals from untracked origins"),
        "{text}"
    );
}

#[test]
fn control_characters_from_a_request_are_shown_escaped() {
    // ESC [31m (C0), CSI as C1, DEL: a terminal would act on each if drawn raw.
    let hostile = "https://evil.example\x1b[31m\u{9b}2J\x7f";
    let mut app = fixtures::streaming_app();
    app.update(Msg::Replica(
        0,
        NetMsg::Event(decision(1, Verdict::Deny, hostile, "/mcp\u{85}x")),
    ));
    let mut stats = fixtures::stats();
    stats.origins[1].origin = hostile.into();
    stats.origins[1].last_reason = Some("header X-\x1b]0;pwned\x07 not allowed".into());
    app.update(Msg::Replica(0, NetMsg::Stats(stats)));
    act(&mut app, &[Action::FocusNext]);
    // Wide enough that the whole decision line shows.
    let text = screen_of(&app, 180);
    assert!(
        !text.chars().any(|c| c.is_control() && c != '\n'),
        "a raw control character reached the screen:\n{text:?}"
    );
    assert!(
        text.contains(r"https://evil.example\x1b[31m\u{9b}2J\x7f /mcp\u{85}x"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn denied_hosts_panel() {
    let mut app = fixtures::app_with_denied_hosts();
    act(
        &mut app,
        &[Action::FocusNext, Action::FocusNext, Action::Down],
    );
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn allow_host_confirmation() {
    let mut app = fixtures::app_with_denied_hosts();
    act(
        &mut app,
        &[Action::FocusNext, Action::FocusNext, Action::Allow],
    );
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn add_dialog_warns_that_a_star_opens_every_site() {
    let mut app = fixtures::streaming_app();
    act(&mut app, &[Action::AddOrigin]);
    typed(&mut app, "*");
    insta::assert_snapshot!(screen(&app));
}

#[test]
fn a_star_asks_for_an_explicit_second_confirmation() {
    let mut app = fixtures::streaming_app();
    act(&mut app, &[Action::AddOrigin]);
    typed(&mut app, "*");
    act(&mut app, &[Action::Submit]);
    insta::assert_snapshot!(screen(&app));
}

/// [`fixtures::routed_app`] after route `meta` refused `https://evil.example`.
fn routed_app_with_a_route_refusal() -> App {
    let mut app = fixtures::routed_app();
    let mut event = decision(1, Verdict::Deny, "https://evil.example", "/.well-known/x");
    if let mcp_cors::protocol::Event::Decision(d) = &mut event {
        d.route = Some("meta".into());
    }
    app.update(Msg::Replica(0, NetMsg::Event(event)));
    app
}

#[test]
fn policy_view_with_routes() {
    let mut app = fixtures::routed_app();
    act(&mut app, &[Action::FocusPrev]);
    let text = screen(&app);
    assert!(text.contains("route meta  /.well-known/*"), "{text}");
    assert!(text.contains("origins: https://docs.example.com"), "{text}");
    assert!(
        text.contains("route health  /health, /ready  guard off"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn event_tail_with_a_route_event() {
    let text = screen(&routed_app_with_a_route_refusal());
    let row = text
        .lines()
        .find(|l| l.contains("11:59:59"))
        .expect("the route's refusal is in the tail");
    // Time, verdict, route, client, method, origin, path, reason: in columns.
    let cells: Vec<&str> = row.trim_matches('│').split_whitespace().collect();
    assert_eq!(
        cells,
        [
            "11:59:59",
            "DENY",
            "meta",
            "203.0.113.66",
            "POST",
            "https://evil.example",
            "/.well-known/x",
            "origin",
            "not",
            "allowed"
        ],
        "{text}"
    );
    insta::assert_snapshot!(text);
}

#[test]
fn add_dialog_with_the_route_picker() {
    let mut app = routed_app_with_a_route_refusal();
    // `a` on the denied origin: filled in, on the route that refused it.
    act(&mut app, &[Action::FocusNext, Action::Allow]);
    let text = screen(&app);
    assert!(text.contains("route:   top level   [meta]"), "{text}");
    assert!(
        text.contains("✓ valid: adds https://evil.example to routes.meta.allowed_origins"),
        "{text}"
    );
    insta::assert_snapshot!(text);
}

/// [`fixtures::streaming_app`] with refusals from a long preview origin, through a
/// route, from an IPv6 client.
fn app_with_a_long_origin() -> App {
    let mut app = fixtures::routed_app();
    let mut event = decision(
        1,
        Verdict::Deny,
        "https://preview-1234.staging.apps.example.com:8443",
        "/.well-known/oauth-protected-resource",
    );
    if let mcp_cors::protocol::Event::Decision(d) = &mut event {
        d.route = Some("meta".into());
        d.client = Some("2001:db8::42".into());
    }
    app.update(Msg::Replica(0, NetMsg::Event(event)));
    app
}

#[test]
fn at_120_columns_the_longest_origin_is_shown_whole_with_route_and_client() {
    let text = screen_of(&app_with_a_long_origin(), 120);
    let row = text
        .lines()
        .find(|l| l.contains("11:59:59"))
        .expect("the refusal");
    for part in [
        "https://preview-1234.staging.apps.example.com:8443",
        "meta",
        "2001:db8::42",
        "origin not",
    ] {
        assert!(row.contains(part), "{part} in {row}");
    }
    insta::assert_snapshot!(text);
}

#[test]
fn at_80_columns_an_origin_too_long_is_elided_in_the_middle() {
    let text = screen_of(&app_with_a_long_origin(), 80);
    let row = text
        .lines()
        .find(|l| l.contains("11:59:59"))
        .expect("the refusal");
    // Its scheme and its end (domain and port) stay; the middle goes.
    assert!(row.contains("https://"), "{row}");
    assert!(row.contains("…"), "{row}");
    assert!(row.contains("com:8443"), "{row}");
    assert!(!row.contains("preview-1234.staging.apps"), "{row}");
    // Every line fits: nothing runs past the border.
    assert!(text.lines().all(|l| l.chars().count() <= 80), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn streaming_at_80_columns() {
    let text = screen_of(&fixtures::streaming_app(), 80);
    assert!(text.contains("https://app.example.com"), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn read_only_shows_no_edit_keys_and_says_so() {
    let mut app = fixtures::streaming_app();
    app.read_only = true;
    let text = screen(&app);
    assert!(text.contains("READ-ONLY: no edits"), "{text}");
    assert!(!text.contains("a allow"), "{text}");
    assert!(!text.contains("n: add"), "{text}");
    act(&mut app, &[Action::FocusNext, Action::Allow]);
    let text = screen(&app);
    assert!(text.contains(crate::state::READ_ONLY), "{text}");
    insta::assert_snapshot!(text);
}

#[test]
fn the_sparklines_draw_decisions_per_second() {
    let mut app = fixtures::streaming_app();
    // A burst of refusals 30 s ago and a steady trickle of allows since.
    for secs_ago in 0..30 {
        let event = fixtures::folded(
            decision(secs_ago, Verdict::Allow, "https://app.example.com", "/mcp"),
            10 + secs_ago,
        );
        app.update(Msg::Replica(0, NetMsg::Event(event)));
    }
    let burst = fixtures::folded(
        decision(30, Verdict::Deny, "https://evil.example", "/mcp"),
        80,
    );
    app.update(Msg::Replica(0, NetMsg::Event(burst)));
    let text = screen(&app);
    let allowed = text
        .lines()
        .find(|l| l.contains("allowed "))
        .expect("allowed row");
    let refused = text
        .lines()
        .find(|l| l.contains("denied "))
        .expect("refused row");
    // 2 s ago: the fixture's run of 40 and this trickle's 12.
    assert!(allowed.contains("peak 52/s"), "{allowed}");
    assert!(refused.contains("peak 80/s"), "{refused}");
    assert!(refused.contains('█'), "the burst is a full bar: {refused}");
    insta::assert_snapshot!(text);
}

/// [`screen_of`] with room for a fleet's replicas panel.
fn fleet_screen(app: &App, width: u16) -> String {
    screen_sized(app, width, 32)
}

#[test]
fn fleet_at_120_columns_labels_events_and_shows_each_replica_s_totals() {
    let app = fixtures::fleet_app();
    let screen = fleet_screen(&app, 120);
    // Every event is labelled with its replica; the down one says why.
    assert!(screen.contains("web-1:101"), "{screen}");
    assert!(screen.contains("web-2:202"), "{screen}");
    assert!(screen.contains("Connection refused"), "{screen}");
    insta::assert_snapshot!(screen);
}

#[test]
fn fleet_at_80_columns() {
    insta::assert_snapshot!(fleet_screen(&fixtures::fleet_app(), 80));
}

#[test]
fn fleet_whose_replicas_serve_different_policies_says_where_edits_go() {
    let mut app = fixtures::fleet_app();
    let mut other = fixtures::policy();
    other
        .settings
        .allowed_origins
        .push("https://new.example.com".into());
    app.update(Msg::Replica(1, NetMsg::Policy(other)));
    let screen = fleet_screen(&app, 120);
    assert!(
        screen.contains("policies differ: an edit goes to ▸ only"),
        "{screen}"
    );
}

#[test]
fn fleet_before_any_socket_matches() {
    let app = App::for_fleet("/run/mcp/*/cors.sock".into(), NOW);
    let screen = fleet_screen(&app, 100);
    assert!(screen.contains("no replica found yet"), "{screen}");
    assert!(
        screen.contains("replicas join as their sockets appear"),
        "{screen}"
    );
}
