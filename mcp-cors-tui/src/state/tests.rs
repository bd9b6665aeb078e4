//! Update logic, key by key, without a terminal.

use std::time::Duration;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use mcp_cors::Verdict;
use mcp_cors::protocol::{Event, Request};

use super::*;
use crate::fixtures::{self, NOW, decision};
use crate::input::map_key;

/// Presses `code` the way the run loop does: key → action (for the current mode) → update.
fn press(app: &mut App, code: KeyCode) -> Option<Effect> {
    let action = map_key(KeyEvent::new(code, KeyModifiers::NONE), app.input_mode())?;
    app.update(Msg::Action(action))
}

fn type_text(app: &mut App, text: &str) {
    for c in text.chars() {
        press(app, KeyCode::Char(c));
    }
}

fn origins(app: &App) -> Vec<String> {
    app.visible_events()
        .iter()
        .filter_map(|e| match &e.event {
            Event::Decision(d) => d.origin.clone(),
            _ => None,
        })
        .collect()
}

#[test]
fn slash_filters_the_tail_as_you_type_and_esc_clears() {
    let mut app = fixtures::streaming_app();
    assert_eq!(app.visible_events().len(), 5);
    press(&mut app, KeyCode::Char('/'));
    assert_eq!(app.input_mode(), InputMode::Filter);
    type_text(&mut app, "evil");
    assert_eq!(origins(&app), ["https://evil.example"]);
    press(&mut app, KeyCode::Enter);
    assert_eq!(app.input_mode(), InputMode::Normal);
    assert_eq!(app.filter.text, "evil", "Enter keeps the filter");
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.visible_events().len(), 5);
}

#[test]
fn filter_by_verdict_and_reload() {
    let mut app = fixtures::streaming_app();
    press(&mut app, KeyCode::Char('/'));
    type_text(&mut app, "would");
    assert_eq!(origins(&app), ["http://localhost:3000"]);
    for _ in 0..5 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "deny");
    assert_eq!(
        origins(&app),
        ["https://evil.example"],
        "deny is not would-deny"
    );
    for _ in 0..4 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "would");
    for _ in 0..5 {
        press(&mut app, KeyCode::Backspace);
    }
    type_text(&mut app, "reload");
    assert_eq!(app.visible_events().len(), 1);
}

#[test]
fn allowing_the_most_denied_origin_asks_then_sends_add_origin() {
    let mut app = fixtures::streaming_app();
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Denied);
    assert_eq!(
        press(&mut app, KeyCode::Char('a')),
        None,
        "nothing is sent before Enter"
    );
    assert!(
        matches!(&app.dialog, Some(Dialog::Add(p)) if p.input == "https://evil.example" && p.route.is_none() && p.list == List::Origins),
        "{:?}",
        app.dialog
    );
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Effect::Send(Request::AddOrigin {
            origin: "https://evil.example".into(),
            force: false,
            route: None,
        }))
    );
    assert_eq!(app.dialog, None);
}

#[test]
fn saying_no_sends_nothing() {
    let mut app = fixtures::streaming_app();
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('a'));
    assert!(matches!(&app.dialog, Some(Dialog::Add(p)) if p.input == "http://localhost:3000"));
    assert_eq!(press(&mut app, KeyCode::Esc), None);
    assert_eq!(app.dialog, None);
}

#[test]
fn removing_an_allowed_origin_asks_first() {
    let mut app = fixtures::streaming_app();
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.focus, Focus::Policy);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Down); // clamped to the last origin
    press(&mut app, KeyCode::Char('d'));
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Effect::Send(Request::RemoveOrigin {
            origin: "http://localhost:*".into(),
            route: None,
        }))
    );
}

#[test]
fn remove_outside_the_policy_panel_explains_instead() {
    let mut app = fixtures::streaming_app();
    assert_eq!(press(&mut app, KeyCode::Char('d')), None);
    assert_eq!(app.dialog, None);
    assert!(app.notice.as_ref().is_some_and(|n| n.error));
}

#[test]
fn the_add_prompt_validates_as_you_type_and_only_sends_a_valid_origin() {
    let mut app = fixtures::streaming_app();
    press(&mut app, KeyCode::Char('n'));
    assert_eq!(app.input_mode(), InputMode::Prompt);
    type_text(&mut app, "https://New.example.com/app");
    let Some(Dialog::Add(prompt)) = &app.dialog else {
        panic!("prompt closed")
    };
    assert!(matches!(&prompt.check, Validation::Invalid(m) if m.contains("path")));
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        None,
        "an invalid origin is not sent"
    );
    for _ in 0.."/app".len() {
        press(&mut app, KeyCode::Backspace);
    }
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Effect::Send(Request::AddOrigin {
            origin: "https://new.example.com".into(),
            force: false,
            route: None,
        }))
    );
    assert_eq!(app.dialog, None);
}

#[test]
fn escape_closes_the_prompt_without_sending() {
    let mut app = fixtures::streaming_app();
    press(&mut app, KeyCode::Char('n'));
    type_text(&mut app, "q");
    assert_eq!(press(&mut app, KeyCode::Esc), None);
    assert_eq!(app.dialog, None);
}

#[test]
fn pause_freezes_the_tail_and_end_resumes() {
    let mut app = fixtures::streaming_app();
    press(&mut app, KeyCode::Char(' '));
    app.update(Msg::Replica(
        0,
        NetMsg::Event(decision(0, Verdict::Deny, "https://late.example", "/mcp")),
    ));
    assert!(!origins(&app).contains(&"https://late.example".to_owned()));
    press(&mut app, KeyCode::End);
    assert_eq!(app.paused_at, None);
    assert_eq!(
        origins(&app).last().map(String::as_str),
        Some("https://late.example")
    );
}

#[test]
fn scrolling_back_pauses_and_is_bounded() {
    let mut app = fixtures::streaming_app();
    press(&mut app, KeyCode::Up);
    assert!(app.paused_at.is_some());
    assert_eq!(app.scroll, 1);
    press(&mut app, KeyCode::PageUp);
    assert_eq!(app.scroll, 4, "never past the oldest event");
    press(&mut app, KeyCode::PageDown);
    assert_eq!(app.scroll, 0);
}

#[test]
fn reload_events_raise_and_clear_the_banner() {
    let mut app = fixtures::streaming_app();
    let error = fixtures::reload_error();
    app.update(Msg::Replica(
        0,
        NetMsg::Event(Event::ReloadRejected(error.clone())),
    ));
    assert_eq!(app.reload_error, Some(error));
    app.update(Msg::Replica(
        0,
        NetMsg::Event(Event::Reloaded {
            at_ms: NOW,
            diff: Default::default(),
        }),
    ));
    assert_eq!(app.reload_error, None);
}

#[test]
fn a_disconnect_keeps_the_screen_and_a_reconnect_does_not_duplicate() {
    let mut app = fixtures::streaming_app();
    let before = app.events.len();
    app.update(Msg::Replica(
        0,
        NetMsg::Disconnected {
            reason: "connection lost".into(),
            retry_in: Duration::from_secs(2),
        },
    ));
    assert_eq!(
        *app.conn(),
        ConnStatus::Disconnected {
            reason: "connection lost".into(),
            retry_at_ms: NOW + 2000
        }
    );
    assert_eq!(app.events.len(), before);
    assert!(app.stats.is_some() && app.policy.is_some());
    let replay: Vec<Event> = app.events.iter().map(|e| e.event.clone()).collect();
    app.update(Msg::Replica(0, NetMsg::Replay(replay)));
    assert_eq!(app.events.len(), before);
}

#[test]
fn a_version_mismatch_quits() {
    let mut app = fixtures::streaming_app();
    let effect = app.update(Msg::Replica(0, NetMsg::Fatal("version 2 vs 1".into())));
    assert_eq!(effect, Some(Effect::Quit));
    assert_eq!(app.fatal.as_deref(), Some("version 2 vs 1"));
}

#[test]
fn help_opens_and_closes_and_q_quits() {
    let mut app = fixtures::streaming_app();
    press(&mut app, KeyCode::Char('?'));
    assert_eq!(app.input_mode(), InputMode::Help);
    press(&mut app, KeyCode::Esc);
    assert_eq!(app.input_mode(), InputMode::Normal);
    assert_eq!(press(&mut app, KeyCode::Char('q')), Some(Effect::Quit));
}

#[test]
fn the_event_buffer_is_bounded() {
    let mut app = App::new("/s".into(), NOW);
    for _ in 0..events::CAPACITY + 50 {
        app.update(Msg::Replica(
            0,
            NetMsg::Event(decision(0, Verdict::Allow, "https://a.example", "/")),
        ));
    }
    assert_eq!(app.events.len(), events::CAPACITY);
}

#[test]
fn the_untracked_bucket_is_never_offered_for_allowing() {
    let mut app = fixtures::streaming_app();
    app.update(Msg::Replica(
        0,
        NetMsg::Stats(fixtures::stats_with_untracked()),
    ));
    let offered: Vec<&str> = app
        .denied_origins()
        .iter()
        .map(|o| o.origin.as_str())
        .collect();
    assert_eq!(offered, ["https://evil.example", "http://localhost:3000"]);
    assert_eq!(app.untracked_refusals(), Some(900));
    press(&mut app, KeyCode::Tab);
    // Whatever row the selection reaches, `a` then Enter never asks to allow "(other)".
    for _ in 0..4 {
        press(&mut app, KeyCode::Char('a'));
        let sent = press(&mut app, KeyCode::Enter);
        assert!(
            matches!(&sent, Some(Effect::Send(Request::AddOrigin { origin, .. })) if origin != UNTRACKED),
            "{sent:?}"
        );
        press(&mut app, KeyCode::Down);
    }
}

#[test]
fn the_denied_hosts_panel_is_in_the_focus_cycle_only_once_a_host_was_refused() {
    let mut app = fixtures::streaming_app();
    for expected in [Focus::Denied, Focus::Policy, Focus::Events] {
        press(&mut app, KeyCode::Tab);
        assert_eq!(app.focus, expected);
    }
    press(&mut app, KeyCode::BackTab);
    assert_eq!(app.focus, Focus::Policy, "back past the hidden panel too");
    let mut app = fixtures::app_with_denied_hosts();
    for expected in [Focus::Denied, Focus::Hosts, Focus::Policy, Focus::Events] {
        press(&mut app, KeyCode::Tab);
        assert_eq!(app.focus, expected);
    }
}

#[test]
fn allowing_a_denied_host_asks_then_sends_add_host() {
    let mut app = fixtures::app_with_denied_hosts();
    let hosts: Vec<&str> = app.denied_hosts().iter().map(|h| h.host.as_str()).collect();
    assert_eq!(
        hosts,
        ["10.1.2.3:8080", "evil.example:8080"],
        "most refused first; the untracked bucket is not a host"
    );
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Hosts);
    press(&mut app, KeyCode::Down);
    assert_eq!(press(&mut app, KeyCode::Char('a')), None, "asks first");
    assert!(
        matches!(&app.dialog, Some(Dialog::Add(p)) if p.input == "evil.example:8080" && p.list == List::Hosts && p.place() == "allowed_hosts")
    );
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Effect::Send(Request::AddHost {
            host: "evil.example:8080".into(),
            force: false,
            route: None,
        }))
    );
    // The selection stays within the list when it shrinks.
    app.update(Msg::Replica(0, NetMsg::Stats(fixtures::stats())));
    assert_eq!(app.hosts_selected, 0);
    assert!(!app.shows_hosts());
    assert_eq!(
        app.focus,
        Focus::Policy,
        "the focus leaves a panel no longer shown"
    );
}

#[test]
fn a_star_needs_a_second_explicit_yes_and_is_then_sent_forced() {
    let mut app = fixtures::streaming_app();
    press(&mut app, KeyCode::Char('n'));
    type_text(&mut app, "*");
    assert_eq!(press(&mut app, KeyCode::Enter), None, "Enter only asks");
    assert!(
        matches!(&app.dialog, Some(Dialog::Confirm { explicit: true, question, .. }) if question == STAR_WARNING)
    );
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        None,
        "Enter is not an explicit yes"
    );
    assert!(app.dialog.is_some());
    assert!(
        app.notice
            .as_ref()
            .is_some_and(|n| n.text.contains("press y"))
    );
    assert_eq!(press(&mut app, KeyCode::Char('n')), None);
    assert_eq!(app.dialog, None, "n cancels: nothing sent");
    press(&mut app, KeyCode::Char('n'));
    type_text(&mut app, "*");
    press(&mut app, KeyCode::Enter);
    assert_eq!(
        press(&mut app, KeyCode::Char('y')),
        Some(Effect::Send(Request::AddOrigin {
            origin: "*".into(),
            force: true,
            route: None,
        }))
    );
}

/// A deny by route `route` of `origin`, or of `Host: host` when `host` is given.
fn refused_on(route: &str, origin: &str, host: Option<&str>) -> Event {
    let mut event = decision(1, Verdict::Deny, origin, "/.well-known/x");
    if let Event::Decision(d) = &mut event {
        d.route = Some(route.to_owned());
        if let Some(host) = host {
            d.reason = Some(format!("host {host} not allowed"));
        }
    }
    event
}

#[test]
fn allowing_a_denied_origin_preselects_the_route_that_refused_it_and_tab_changes_it() {
    let mut app = fixtures::routed_app();
    app.update(Msg::Replica(
        0,
        NetMsg::Event(refused_on("meta", "https://evil.example", None)),
    ));
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Char('a'));
    let Some(Dialog::Add(prompt)) = &app.dialog else {
        panic!("{:?}", app.dialog)
    };
    assert_eq!(prompt.route.as_deref(), Some("meta"));
    assert_eq!(
        prompt.routes,
        ["meta"],
        "guard = false routes are not offered"
    );
    assert_eq!(prompt.place(), "routes.meta.allowed_origins");
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Effect::Send(Request::AddOrigin {
            origin: "https://evil.example".into(),
            force: false,
            route: Some("meta".into()),
        }))
    );
    // The same, moved to the top level with Tab first.
    press(&mut app, KeyCode::Char('a'));
    press(&mut app, KeyCode::Tab);
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Effect::Send(Request::AddOrigin {
            origin: "https://evil.example".into(),
            force: false,
            route: None,
        }))
    );
}

#[test]
fn allowing_a_denied_host_preselects_the_route_whose_guard_refused_it() {
    let mut app = fixtures::routed_app();
    let mut stats = fixtures::stats();
    stats.hosts = fixtures::host_stats();
    app.update(Msg::Replica(0, NetMsg::Stats(stats)));
    // An origin refusal on another route does not count for the host.
    app.update(Msg::Replica(
        0,
        NetMsg::Event(refused_on(
            "meta",
            "https://x.example",
            Some("10.1.2.3:8080"),
        )),
    ));
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    assert_eq!(app.focus, Focus::Hosts);
    press(&mut app, KeyCode::Char('a'));
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Effect::Send(Request::AddHost {
            host: "10.1.2.3:8080".into(),
            force: false,
            route: Some("meta".into()),
        }))
    );
    // A host refused at the top level (no event names a route) goes there.
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('a'));
    assert!(
        matches!(&app.dialog, Some(Dialog::Add(p)) if p.input == "evil.example:8080" && p.route.is_none())
    );
}

#[test]
fn a_host_refused_as_sent_in_capitals_is_matched_to_its_lower_cased_counter() {
    let mut app = fixtures::routed_app();
    let mut stats = fixtures::stats();
    stats.hosts = fixtures::host_stats();
    app.update(Msg::Replica(0, NetMsg::Stats(stats)));
    app.update(Msg::Replica(
        0,
        NetMsg::Event(refused_on(
            "meta",
            "https://x.example",
            Some("EVIL.Example:8080"),
        )),
    ));
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Tab);
    press(&mut app, KeyCode::Down);
    press(&mut app, KeyCode::Char('a'));
    assert!(
        matches!(&app.dialog, Some(Dialog::Add(p)) if p.input == "evil.example:8080" && p.route.as_deref() == Some("meta")),
        "{:?}",
        app.dialog
    );
}

#[test]
fn h_opens_the_host_prompt_which_validates_hosts() {
    let mut app = fixtures::routed_app();
    press(&mut app, KeyCode::Char('h'));
    type_text(&mut app, "10.0.0.0/33");
    assert!(
        matches!(&app.dialog, Some(Dialog::Add(p)) if p.list == List::Hosts && matches!(p.check, Validation::Invalid(_)))
    );
    assert_eq!(press(&mut app, KeyCode::Enter), None, "invalid: not sent");
    press(&mut app, KeyCode::Backspace);
    press(&mut app, KeyCode::Backspace);
    type_text(&mut app, "8");
    press(&mut app, KeyCode::Right);
    assert_eq!(
        press(&mut app, KeyCode::Enter),
        Some(Effect::Send(Request::AddHost {
            host: "10.0.0.0/8".into(),
            force: false,
            route: Some("meta".into()),
        }))
    );
}

#[test]
fn a_star_on_a_route_still_needs_the_explicit_yes_and_names_the_route() {
    let mut app = fixtures::routed_app();
    press(&mut app, KeyCode::Char('n'));
    press(&mut app, KeyCode::Tab);
    type_text(&mut app, "*");
    assert_eq!(press(&mut app, KeyCode::Enter), None);
    let warning = star_warning(List::Origins, Some("meta"));
    assert!(warning.contains("route meta") && warning.contains("every web site"));
    assert!(
        matches!(&app.dialog, Some(Dialog::Confirm { explicit: true, question, .. }) if *question == warning)
    );
    assert_eq!(press(&mut app, KeyCode::Enter), None, "Enter is not a yes");
    assert_eq!(
        press(&mut app, KeyCode::Char('y')),
        Some(Effect::Send(Request::AddOrigin {
            origin: "*".into(),
            force: true,
            route: Some("meta".into()),
        }))
    );
}

/// [`fixtures::streaming_app`] whose counters were read at [`NOW`], as a server that
/// stamps them sends them.
fn app_with_stamped_counters() -> App {
    let mut app = fixtures::streaming_app();
    let mut stats = fixtures::stats();
    stats.at_ms = Some(NOW);
    app.update(Msg::Replica(0, NetMsg::Stats(stats)));
    app
}

fn after_now(event: Event, ms: u64) -> Event {
    match event {
        Event::Decision(mut d) => {
            d.at_ms = NOW + ms;
            Event::Decision(d)
        }
        other => other,
    }
}

#[test]
fn the_counters_move_with_each_decision_not_a_poll_later() {
    let mut app = app_with_stamped_counters();
    let stats = |app: &App| app.stats.clone().expect("counters");
    assert_eq!((stats(&app).allowed, stats(&app).denied), (42, 7));
    let run = fixtures::folded(
        decision(0, Verdict::Allow, "https://app.example.com", "/mcp"),
        3,
    );
    app.update(Msg::Replica(0, NetMsg::Event(after_now(run, 5))));
    let refusal = decision(0, Verdict::Deny, "https://new.example", "/mcp");
    app.update(Msg::Replica(0, NetMsg::Event(after_now(refusal, 6))));
    assert_eq!((stats(&app).allowed, stats(&app).denied), (45, 8));
    // The new refused origin is in the denied panel at once.
    let denied: Vec<_> = app
        .denied_origins()
        .iter()
        .map(|o| o.origin.clone())
        .collect();
    assert!(
        denied.contains(&"https://new.example".to_owned()),
        "{denied:?}"
    );
    // A decision the counters already held (stamped before they were read) is not
    // counted twice.
    let old = decision(1, Verdict::Deny, "https://evil.example", "/mcp");
    app.update(Msg::Replica(0, NetMsg::Event(old)));
    assert_eq!(stats(&app).denied, 8);
    // The next poll's numbers replace the sum.
    let mut polled = fixtures::stats();
    polled.allowed = 50;
    polled.at_ms = Some(NOW + 1000);
    app.update(Msg::Replica(0, NetMsg::Stats(polled)));
    assert_eq!(stats(&app).allowed, 50);
}

#[test]
fn a_denied_origin_leaves_the_panel_once_allowed_and_comes_back_if_refused_again() {
    let mut app = app_with_stamped_counters();
    let denied = |app: &App| -> Vec<String> {
        app.denied_origins()
            .iter()
            .map(|o| o.origin.clone())
            .collect()
    };
    assert_eq!(
        denied(&app),
        ["https://evil.example", "http://localhost:3000"]
    );
    // A request from it passes (someone allowed it, here or elsewhere).
    let allowed = decision(0, Verdict::Allow, "https://evil.example", "/mcp");
    app.update(Msg::Replica(0, NetMsg::Event(after_now(allowed, 10))));
    assert_eq!(denied(&app), ["http://localhost:3000"]);
    // Refused again later (removed from the policy): back in the panel.
    let refused = decision(0, Verdict::Deny, "https://evil.example", "/mcp");
    app.update(Msg::Replica(0, NetMsg::Event(after_now(refused, 20))));
    assert_eq!(
        denied(&app),
        ["https://evil.example", "http://localhost:3000"]
    );
}

#[test]
fn an_origin_refused_for_not_being_listed_leaves_the_panel_once_listed() {
    let mut app = app_with_stamped_counters();
    let mut policy = fixtures::policy();
    policy
        .settings
        .allowed_origins
        .push("https://evil.example".into());
    app.update(Msg::Replica(0, NetMsg::Policy(policy)));
    let denied: Vec<_> = app
        .denied_origins()
        .iter()
        .map(|o| o.origin.clone())
        .collect();
    assert_eq!(denied, ["http://localhost:3000"]);
}

#[test]
fn read_only_refuses_every_edit_and_sends_nothing() {
    let mut app = fixtures::streaming_app();
    app.read_only = true;
    press(&mut app, KeyCode::Tab); // the denied panel
    for key in ['a', 'n', 'h'] {
        assert_eq!(press(&mut app, KeyCode::Char(key)), None);
        assert!(app.dialog.is_none(), "{key} opened no dialog");
        let notice = app.notice.clone().expect("a notice");
        assert_eq!((notice.text.as_str(), notice.error), (READ_ONLY, true));
    }
    press(&mut app, KeyCode::Tab); // the policy panel
    assert_eq!(app.focus, Focus::Policy);
    assert_eq!(press(&mut app, KeyCode::Char('d')), None);
    assert!(app.dialog.is_none());
    // Browsing still works.
    press(&mut app, KeyCode::Char('/'));
    assert_eq!(app.input_mode(), InputMode::Filter);
}

mod fleet {
    use super::*;
    use mcp_cors::protocol::ReplicaId;

    fn from(app: &mut App, replica: usize, msg: NetMsg) -> Option<Effect> {
        app.update(Msg::Replica(replica, msg))
    }

    fn at(at_ms: u64, mut event: Event) -> Event {
        if let Event::Decision(d) = &mut event {
            d.at_ms = at_ms;
        }
        event
    }

    #[test]
    fn events_are_tagged_with_their_replica_and_the_labels_come_from_the_hello() {
        let app = fixtures::fleet_app();
        let tags: Vec<(usize, String)> = app
            .events
            .iter()
            .map(|e| (e.replica, app.replica_label(e.replica)))
            .collect();
        assert_eq!(tags[0], (0, "web-1:101".to_owned()));
        assert_eq!(tags[2], (1, "web-2:202".to_owned()));
        assert_eq!(app.replica_label(2), "/run/mcp/r3/cors.sock");
        assert_eq!(tags.len(), 5);
    }

    #[test]
    fn the_totals_are_the_sum_of_the_replicas_and_a_live_decision_moves_both() {
        let mut app = fixtures::fleet_app();
        let totals = app.stats.clone().expect("totals");
        assert_eq!(totals.allowed, 42 + 8);
        let mut stats = fixtures::stats();
        stats.at_ms = Some(NOW);
        from(&mut app, 1, NetMsg::Stats(stats));
        let before = app.stats.as_ref().map(|s| s.denied).unwrap_or_default();
        let refused = at(
            NOW + 1,
            decision(0, Verdict::Deny, "https://x.example", "/mcp"),
        );
        from(&mut app, 1, NetMsg::Event(refused.clone()));
        let own = app
            .fleet
            .get(1)
            .and_then(|r| r.stats.as_ref())
            .map(|s| s.denied);
        assert_eq!(own, Some(8), "the replica's own counters moved");
        assert_eq!(app.stats.as_ref().map(|s| s.denied), Some(before + 1));
        // Replica 0 never stamped its counters: its decisions wait for its next poll,
        // and are not counted in the totals twice when it comes.
        from(&mut app, 0, NetMsg::Event(refused));
        assert_eq!(app.stats.as_ref().map(|s| s.denied), Some(before + 1));
    }

    #[test]
    fn edits_go_to_the_first_connected_replica_and_follow_it_when_it_goes() {
        let mut app = fixtures::fleet_app();
        assert_eq!(app.edit_target(), 0);
        let down = NetMsg::Disconnected {
            reason: "gone".into(),
            retry_in: Duration::from_secs(1),
        };
        from(&mut app, 0, down);
        assert_eq!(app.edit_target(), 1);
        assert!(
            matches!(app.conn(), ConnStatus::Connected { .. }),
            "{:?}",
            app.conn()
        );
        // The policy panel shows the policy replica 1 serves.
        let mut other = fixtures::policy();
        other.settings.allowed_origins = vec!["https://only-on-2.example".into()];
        from(&mut app, 1, NetMsg::Policy(other));
        assert_eq!(app.allowed_origins(), ["https://only-on-2.example"]);
        // The outcome of an edit names the replica that made it.
        from(
            &mut app,
            1,
            NetMsg::CommandDone(Ok("allowed https://b.example".into())),
        );
        let notice = app.notice.clone().expect("a notice");
        assert_eq!(notice.text, "web-2:202: allowed https://b.example");
    }

    #[test]
    fn a_replica_of_another_version_is_marked_and_the_ui_goes_on() {
        let mut app = fixtures::fleet_app();
        let effect = from(&mut app, 2, NetMsg::Fatal("speaks version 5".into()));
        assert_eq!(effect, None, "the fleet view stays up");
        assert!(app.fatal.is_none());
        let r = app.fleet.get(2).expect("replica 2");
        assert_eq!(
            r.conn,
            ConnStatus::Failed {
                reason: "speaks version 5".into()
            }
        );
        // A single server of another version still stops the UI.
        let mut single = fixtures::streaming_app();
        let effect = from(&mut single, 0, NetMsg::Fatal("speaks version 5".into()));
        assert_eq!(effect, Some(Effect::Quit));
    }

    #[test]
    fn a_restarted_replica_replaces_its_counters_in_the_totals() {
        let mut app = fixtures::fleet_app();
        let allowed = |app: &App| app.stats.as_ref().map(|s| s.allowed);
        assert_eq!(allowed(&app), Some(50));
        from(
            &mut app,
            1,
            NetMsg::Connected {
                server: "0.1.0".into(),
                replica: ReplicaId {
                    hostname: Some("web-2".into()),
                    pid: Some(303),
                },
            },
        );
        from(&mut app, 1, NetMsg::Stats(Stats::default()));
        assert_eq!(allowed(&app), Some(42));
        assert_eq!(app.replica_label(1), "web-2:303");
    }

    #[test]
    fn the_filter_picks_one_replica_by_its_label() {
        let mut app = fixtures::fleet_app();
        press(&mut app, KeyCode::Char('/'));
        type_text(&mut app, "web-2");
        let from: Vec<usize> = app.visible_events().iter().map(|e| e.replica).collect();
        assert_eq!(from, [1, 1]);
        // Its pid alone does as well; and what an event holds still matches.
        app.filter.text = ":101".into();
        assert_eq!(app.visible_events().len(), 3);
        app.filter.text = "localhost:3000".into();
        assert_eq!(app.visible_events().len(), 1);
    }

    #[test]
    fn a_message_for_a_replica_that_never_joined_is_ignored() {
        let mut app = fixtures::fleet_app();
        let before = app.events.len();
        from(
            &mut app,
            9,
            NetMsg::Event(decision(1, Verdict::Deny, "https://x", "/")),
        );
        assert_eq!(app.events.len(), before);
    }
}
