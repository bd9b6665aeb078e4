//! The event bus, through its request-path and listener entry points.

use super::*;
use crate::counters::{MAX_HOST_TEXT, MAX_TRACKED_HOSTS, MAX_TRACKED_ORIGINS, OTHER};
use crate::decision::DenyReason;
use crate::protocol::MAX_REPLAY;
use fanout::event_cost;
use runs::{RUN_MAX_AGE_MS, push_folded};
use std::sync::atomic::Ordering;

fn origin_headers(origin: &HeaderValue) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(header::ORIGIN, origin.clone());
    headers
}

fn refuse() -> Decision {
    Decision::Refuse {
        reason: DenyReason::OriginNotAllowed,
        preflight: false,
        enforced: true,
    }
}

#[test]
fn origins_beyond_the_bound_are_counted_together() {
    let bus = EventBus::new();
    let w = bus.worker();
    for i in 0..MAX_TRACKED_ORIGINS + 10 {
        let origin = HeaderValue::from_str(&format!("https://o{i}.example")).unwrap();
        record_refusal(&bus, &w, &origin, "/mcp");
    }
    let stats = bus.origin_stats(usize::MAX);
    assert_eq!(stats.len(), MAX_TRACKED_ORIGINS + 1);
    assert_eq!(
        bus.origin_stats(MAX_REPORTED_ORIGINS).len(),
        MAX_REPORTED_ORIGINS
    );
    let other = stats.iter().find(|s| s.origin == OTHER).unwrap();
    assert_eq!(other.denied, 10);
    assert_eq!(bus.totals().1, (MAX_TRACKED_ORIGINS + 10) as u64);
}

fn refuse_host(bus: &EventBus, w: &WorkerEvents, host: &str, enforced: bool) {
    let decision = Decision::Refuse {
        reason: DenyReason::HostNotAllowed(host.to_owned()),
        preflight: false,
        enforced,
    };
    bus.record(w, &decision, None, &HeaderMap::new(), &Method::POST, "/mcp");
}

#[test]
fn host_refusals_are_counted_per_host_case_folded_and_bounded() {
    let bus = EventBus::new();
    let w = bus.worker();
    refuse_host(&bus, &w, "Evil.example:8080", true);
    refuse_host(&bus, &w, "evil.example:8080", true);
    refuse_host(&bus, &w, "evil.example:8080", false);
    refuse_host(&bus, &w, "10.1.2.3:8080", true);
    // A missing or malformed Host names no host: totals only.
    let missing = Decision::Refuse {
        reason: DenyReason::HostMissing,
        preflight: false,
        enforced: true,
    };
    bus.record(&w, &missing, None, &HeaderMap::new(), &Method::GET, "/");
    let stats = bus.host_stats(usize::MAX);
    assert_eq!(stats.len(), 2, "{stats:?}");
    assert_eq!(
        (stats[0].host.as_str(), stats[0].denied, stats[0].would_deny),
        ("evil.example:8080", 2, 1)
    );
    assert!(stats[0].last_seen_ms > 0);
    assert_eq!(
        (stats[1].host.as_str(), stats[1].denied),
        ("10.1.2.3:8080", 1)
    );
    assert_eq!(bus.totals().1, 4, "host refusals stay in the totals");
    assert!(
        bus.origin_stats(usize::MAX).is_empty(),
        "no origin was sent"
    );

    let huge = "h".repeat(10_000);
    refuse_host(&bus, &w, &huge, true);
    let clipped = bus.host_stats(usize::MAX);
    assert!(
        clipped
            .iter()
            .all(|s| s.host.len() <= MAX_HOST_TEXT + '…'.len_utf8())
    );

    for i in 0..MAX_TRACKED_HOSTS + 10 {
        refuse_host(&bus, &w, &format!("h{i}.example"), true);
    }
    let stats = bus.host_stats(usize::MAX);
    assert_eq!(stats.len(), MAX_TRACKED_HOSTS + 1, "the rest in one bucket");
    let other = stats
        .iter()
        .find(|s| s.host == crate::protocol::UNTRACKED_HOST)
        .unwrap();
    assert_eq!(other.denied, 10 + 3, "beyond the bound, counted together");
    assert_eq!(bus.host_stats(MAX_REPORTED_HOSTS).len(), MAX_REPORTED_HOSTS);
    // A tracked host keeps its own counter once the table is full.
    refuse_host(&bus, &w, "evil.example:8080", true);
    let evil = bus.host_stats(usize::MAX);
    assert_eq!(
        evil.iter()
            .find(|s| s.host == "evil.example:8080")
            .unwrap()
            .denied,
        3
    );
}

fn decision(origin: &str, path: &str) -> Event {
    Event::Decision(DecisionEvent {
        at_ms: 1,
        verdict: Verdict::Allow,
        origin: Some(origin.into()),
        method: "POST".into(),
        path: path.into(),
        preflight: false,
        reason: None,
        count: 1,
        route: None,
        client: None,
    })
}

#[test]
fn runs_of_identical_decisions_are_folded_with_a_count() {
    let mut batch = Vec::new();
    for event in [
        decision("https://a.example", "/mcp"),
        decision("https://a.example", "/mcp"),
        decision("https://a.example", "/mcp"),
        decision("https://b.example", "/mcp"),
        decision("https://a.example", "/mcp"),
        decision("https://a.example", "/health"),
    ] {
        push_folded(&mut batch, &event);
    }
    let counts: Vec<(String, String, u64)> = batch
        .iter()
        .map(|e| match e {
            Event::Decision(d) => (d.origin.clone().unwrap(), d.path.clone(), d.count),
            other => panic!("not a decision: {other:?}"),
        })
        .collect();
    assert_eq!(
        counts,
        [
            ("https://a.example".into(), "/mcp".into(), 3),
            ("https://b.example".into(), "/mcp".into(), 1),
            ("https://a.example".into(), "/mcp".into(), 1),
            ("https://a.example".into(), "/health".into(), 1),
        ]
    );
}

#[test]
fn decisions_from_two_clients_are_not_folded() {
    let from = |client: &str| match decision("https://a.example", "/mcp") {
        Event::Decision(d) => Event::Decision(DecisionEvent {
            client: Some(client.into()),
            ..d
        }),
        other => other,
    };
    let mut batch = Vec::new();
    for event in [from("192.0.2.1"), from("192.0.2.1"), from("192.0.2.2")] {
        push_folded(&mut batch, &event);
    }
    let clients: Vec<(Option<&str>, u64)> = batch
        .iter()
        .map(|e| match e {
            Event::Decision(d) => (d.client.as_deref(), d.count),
            other => panic!("not a decision: {other:?}"),
        })
        .collect();
    assert_eq!(clients, [(Some("192.0.2.1"), 2), (Some("192.0.2.2"), 1)]);
}

/// Records `decision` on a POST from `origin` to `/mcp`, sent by `peer` with `headers`.
fn record_from(
    bus: &EventBus,
    w: &WorkerEvents,
    decision: &Decision,
    peer: Peer<'_>,
    mut headers: HeaderMap,
    origin: &HeaderValue,
) {
    headers.insert(header::ORIGIN, origin.clone());
    let (method, path) = (Method::POST, "/mcp");
    bus.record_routed(w, decision, None, &headers, &method, path, None, peer);
}

#[test]
fn a_worker_run_ends_when_the_client_changes_and_events_name_it() {
    let bus = EventBus::new();
    let w = bus.worker();
    let (_, mut sub) = bus.subscribe(0);
    let (allowed, app) = allow("https://app.example");
    let proxies = crate::forwarded::TrustedProxies::new(vec![
        crate::host::IpRange::parse_address_or_range("10.0.0.0/8").unwrap(),
    ]);
    let addr = |ip: &str| Some(std::net::SocketAddr::new(ip.parse().unwrap(), 5555));
    let forwarded = |client: &'static str| {
        let mut headers = HeaderMap::new();
        headers.insert(header::X_FORWARDED_FOR, HeaderValue::from_static(client));
        headers
    };
    let via_proxy = Peer::new(addr("10.0.0.1"), &proxies);
    for _ in 0..3 {
        record_from(
            &bus,
            &w,
            &allowed,
            via_proxy,
            forwarded("203.0.113.1"),
            &app,
        );
    }
    record_from(
        &bus,
        &w,
        &allowed,
        via_proxy,
        forwarded("203.0.113.2"),
        &app,
    );
    // Not a trusted proxy: its header is not believed.
    let direct = Peer::new(addr("198.51.100.7"), &proxies);
    record_from(&bus, &w, &refuse(), direct, forwarded("203.0.113.1"), &app);
    let batch = sub.queued(usize::MAX);
    let clients: Vec<(Verdict, Option<&str>, u64)> = batch
        .iter()
        .map(|e| match e {
            Event::Decision(d) => (d.verdict, d.client.as_deref(), d.count),
            other => panic!("not a decision: {other:?}"),
        })
        .collect();
    assert_eq!(
        clients,
        [
            (Verdict::Allow, Some("203.0.113.1"), 3),
            (Verdict::Allow, Some("203.0.113.2"), 1),
            (Verdict::Deny, Some("198.51.100.7"), 1),
        ]
    );
}

fn allow(origin: &'static str) -> (Decision, HeaderValue) {
    let value = HeaderValue::from_static(origin);
    (
        Decision::Allow {
            allow_origin: value.clone(),
        },
        value,
    )
}

/// Records an allowed request from `origin` (not bound to a listed counter).
fn record_allow(
    bus: &EventBus,
    w: &WorkerEvents,
    origin: &HeaderValue,
    method: Method,
    path: &str,
) {
    let decision = Decision::Allow {
        allow_origin: origin.clone(),
    };
    bus.record(w, &decision, None, &origin_headers(origin), &method, path);
}

/// Records a refused POST from `origin`.
fn record_refusal(bus: &EventBus, w: &WorkerEvents, origin: &HeaderValue, path: &str) {
    bus.record(
        w,
        &refuse(),
        None,
        &origin_headers(origin),
        &Method::POST,
        path,
    );
}

#[test]
fn allows_reach_listeners_raw_and_leave_as_folded_events() {
    let bus = EventBus::new();
    let w = bus.worker();
    let (_, mut sub) = bus.subscribe(0);
    let app = HeaderValue::from_static("https://app.example");
    for _ in 0..100 {
        record_allow(&bus, &w, &app, Method::POST, "/mcp");
    }
    record_refusal(
        &bus,
        &w,
        &HeaderValue::from_static("https://evil.example"),
        "/mcp",
    );
    record_allow(&bus, &w, &app, Method::GET, "/mcp");
    record_allow(&bus, &w, &app, Method::GET, "/mcp");
    let batch = sub.queued(usize::MAX);
    let summary: Vec<(Verdict, Option<&str>, &str, &str, u64)> = batch
        .iter()
        .map(|e| match e {
            Event::Decision(d) => (
                d.verdict,
                d.origin.as_deref(),
                d.method.as_str(),
                d.path.as_str(),
                d.count,
            ),
            other => panic!("not a decision: {other:?}"),
        })
        .collect();
    assert_eq!(
        summary,
        [
            (
                Verdict::Allow,
                Some("https://app.example"),
                "POST",
                "/mcp",
                100
            ),
            (
                Verdict::Deny,
                Some("https://evil.example"),
                "POST",
                "/mcp",
                1
            ),
            (
                Verdict::Allow,
                Some("https://app.example"),
                "GET",
                "/mcp",
                2
            ),
        ]
    );
    // Allows are counted per origin whether or not anyone listens.
    drop(sub);
    record_allow(&bus, &w, &app, Method::POST, "/mcp");
    let stats = bus.origin_stats(usize::MAX);
    let app_stats = stats
        .iter()
        .find(|s| s.origin == "https://app.example")
        .unwrap();
    assert_eq!(app_stats.allowed, 103);
    assert_eq!(bus.totals(), (103, 1, 0, 0));
}

#[test]
fn counters_of_origins_no_policy_lists_are_forgotten_unless_used() {
    let bus = EventBus::new();
    let w = bus.worker();
    let used = bus.listed_counter("https://used.example");
    let unused = bus.listed_counter("https://unused.example");
    let (allowed, origin) = allow("https://used.example");
    bus.record(
        &w,
        &allowed,
        Some(&used),
        &origin_headers(&origin),
        &Method::POST,
        "/",
    );
    // Still bound (held by a policy): kept, used or not.
    bus.counters.forget_unlisted();
    assert_eq!(bus.counters.kept().0, 2);
    // No policy holds them any more: the unused one goes, the used one's counts stay.
    drop((used, unused));
    bus.counters.forget_unlisted();
    assert_eq!(bus.counters.kept().0, 1);
    let stats = bus.origin_stats(usize::MAX);
    assert_eq!(
        (stats[0].origin.as_str(), stats[0].allowed),
        ("https://used.example", 1)
    );
    // Used but retired counters are bounded too.
    for i in 0..MAX_TRACKED_ORIGINS + 10 {
        let counter = bus.listed_counter(&format!("https://o{i}.example"));
        bus.record(
            &w,
            &allowed,
            Some(&counter),
            &origin_headers(&origin),
            &Method::POST,
            "/",
        );
    }
    bus.counters.forget_unlisted();
    assert_eq!(bus.counters.kept().0, MAX_TRACKED_ORIGINS);
}

/// What an allowed POST from `origin` to `path` costs a listener's share.
fn allow_cost(origin: &str, path: &str) -> usize {
    Allowed {
        at_ms: 0,
        origin: origin.into(),
        method: Method::POST,
        path: path.into(),
        preflight: false,
        route: None,
        client: None,
    }
    .cost()
}

#[test]
fn a_full_listener_misses_whole_runs_and_counts_their_decisions() {
    let bus = EventBus::new();
    let w = bus.worker();
    let (_, mut sub) = bus.subscribe(0);
    let (allowed, app) = allow("https://app.example");
    let headers = origin_headers(&app);
    // As many allows as one listener's share holds, the paths all the same length.
    let fits = queue::LISTENER_BYTES / allow_cost("https://app.example", "/a");
    // Alternating paths: every allow ends the run before it.
    for i in 0..fits {
        let path = if i % 2 == 0 { "/a" } else { "/b" };
        bus.record(&w, &allowed, None, &headers, &Method::POST, path);
    }
    // This run queues the last one, which fills the queue, and is pending itself.
    for _ in 0..5 {
        bus.record(&w, &allowed, None, &headers, &Method::POST, "/c");
    }
    assert_eq!(sub.take_dropped(), None);
    // A refusal queues the run before it: no room for either.
    record_refusal(&bus, &w, &app, "/c");
    assert_eq!(sub.take_dropped(), Some((6, 6)));
    let batch = sub.queued(usize::MAX);
    assert_eq!(batch.len(), fits);
    assert!(
        batch
            .iter()
            .all(|e| matches!(e, Event::Decision(d) if d.count == 1))
    );
}

#[test]
fn each_workers_run_reaches_listeners_and_none_is_lost_when_a_worker_goes() {
    let bus = EventBus::new();
    let (one, two) = (bus.worker(), bus.worker());
    let (_, mut sub) = bus.subscribe(0);
    let (allowed, app) = allow("https://app.example");
    let headers = origin_headers(&app);
    for _ in 0..300 {
        bus.record(&one, &allowed, None, &headers, &Method::POST, "/mcp");
        bus.record(&two, &allowed, None, &headers, &Method::POST, "/mcp");
    }
    // Worker two goes away with its run pending.
    drop(two);
    let _three = bus.worker();
    assert_eq!(
        lock(&bus.workers).len(),
        2,
        "the slot of a worker gone is dropped"
    );
    let total: u64 = sub
        .queued(usize::MAX)
        .iter()
        .map(|e| match e {
            Event::Decision(d) => d.count,
            other => panic!("not a decision: {other:?}"),
        })
        .sum();
    assert_eq!(total, 600);
}

#[test]
fn only_allows_nobody_listens_to_are_counted_quietly_and_into_the_right_counter() {
    let bus = Arc::new(EventBus::new());
    let w = bus.worker();
    let listed = bus.listed_counter("https://listed.example");
    let (allow_a, a) = allow("https://a.example");
    let (allow_b, _) = allow("https://b.example");
    // A listed origin's counter is at hand.
    assert!(bus.counted_quietly(&w, &allow_a, Some(&listed)));
    // An unlisted one is not, until the worker remembers it (the full path does that).
    assert!(!bus.counted_quietly(&w, &allow_a, None));
    record_allow(&bus, &w, &a, Method::POST, "/mcp");
    assert!(bus.counted_quietly(&w, &allow_a, None));
    assert!(!bus.counted_quietly(&w, &allow_b, None));
    // Refusals always go the full way (a log line, an event).
    assert!(!bus.counted_quietly(&w, &refuse(), None));
    assert!(!bus.counted_quietly(&w, &refuse(), Some(&listed)));
    // So do allows while someone listens: they are events then.
    let (_replay, _subscription) = bus.subscribe(0);
    assert!(!bus.counted_quietly(&w, &allow_a, Some(&listed)));
    assert!(!bus.counted_quietly(&w, &allow_a, None));
    let stats = bus.origin_stats(usize::MAX);
    let allowed = |o: &str| stats.iter().find(|s| s.origin == o).map(|s| s.allowed);
    assert_eq!(
        (
            allowed("https://listed.example"),
            allowed("https://a.example")
        ),
        (Some(1), Some(2))
    );
}

#[test]
fn a_worker_remembers_the_counter_of_the_last_unlisted_origin_and_counts_stay_exact() {
    let bus = EventBus::new();
    let (one, two) = (bus.worker(), bus.worker());
    let a = HeaderValue::from_static("https://a.example");
    let b = HeaderValue::from_static("https://b.example");
    for _ in 0..3 {
        record_allow(&bus, &one, &a, Method::POST, "/mcp");
        record_allow(&bus, &two, &a, Method::POST, "/mcp");
    }
    record_allow(&bus, &one, &b, Method::POST, "/mcp");
    record_allow(&bus, &two, &a, Method::POST, "/mcp");
    let remembered = |w: &WorkerEvents| w.last_seen().as_ref().map(|c| c.origin.clone());
    assert_eq!(remembered(&one).as_deref(), Some("https://b.example"));
    assert_eq!(remembered(&two).as_deref(), Some("https://a.example"));
    // Both workers count into the one counter of each origin.
    let stats = bus.origin_stats(usize::MAX);
    let allowed = |o: &str| stats.iter().find(|s| s.origin == o).map(|s| s.allowed);
    assert_eq!(
        (allowed("https://a.example"), allowed("https://b.example")),
        (Some(7), Some(1))
    );
    assert_eq!(bus.counters.kept().1, 2);
}

#[test]
fn an_old_run_is_queued_by_the_next_request_without_a_poll() {
    let bus = EventBus::new();
    let w = bus.worker();
    let (_, sub) = bus.subscribe(0);
    let (allowed, app) = allow("https://app.example");
    let headers = origin_headers(&app);
    bus.record(&w, &allowed, None, &headers, &Method::POST, "/mcp");
    bus.record(&w, &allowed, None, &headers, &Method::POST, "/mcp");
    assert_eq!(sub.listener.queue.len(), 0, "a young run is still folding");
    std::thread::sleep(Duration::from_millis(RUN_MAX_AGE_MS * 3));
    bus.record(&w, &allowed, None, &headers, &Method::POST, "/mcp");
    assert_eq!(
        sub.listener.queue.len(),
        1,
        "the old run is queued, the new one folds"
    );
    let Some((Item::Allowed(_, count), _)) = sub.listener.queue.pop() else {
        panic!("a run of allows expected")
    };
    assert_eq!(count, 2);
}

#[test]
fn huge_origins_and_paths_are_clipped_in_events_and_counters() {
    let bus = EventBus::new();
    let w = bus.worker();
    let (_, mut sub) = bus.subscribe(0);
    let origin =
        HeaderValue::from_str(&format!("https://{}.example", "a".repeat(100_000))).unwrap();
    let path = format!("/{}", "p".repeat(100_000));
    record_refusal(&bus, &w, &origin, &path);
    let batch = sub.queued(10);
    let [event] = batch.as_slice() else {
        panic!("one event expected: {batch:?}")
    };
    let Event::Decision(d) = event else {
        panic!("not a decision")
    };
    let origin = d.origin.as_deref().unwrap();
    assert!(origin.len() <= MAX_ORIGIN_TEXT + '…'.len_utf8() && origin.ends_with('…'));
    assert!(d.path.len() <= MAX_PATH_TEXT + '…'.len_utf8() && d.path.ends_with('…'));
    let stats = bus.origin_stats(usize::MAX);
    assert!(stats[0].origin.len() <= MAX_ORIGIN_TEXT + '…'.len_utf8());
    // A whole event line stays far below the protocol's line limit.
    let line = serde_json::to_string(&crate::protocol::ServerLine::Event(event.clone())).unwrap();
    assert!(
        line.len() < crate::protocol::MAX_LINE / 16,
        "{} bytes",
        line.len()
    );
}

#[test]
fn a_full_listener_drops_and_counts_and_the_ring_is_bounded() {
    let bus = EventBus::new();
    let w = bus.worker();
    let (_, mut sub) = bus.subscribe(0);
    let event = Event::Decision(DecisionEvent {
        at_ms: 0,
        verdict: Verdict::Deny,
        origin: None,
        method: "GET".into(),
        path: "/".into(),
        preflight: false,
        reason: refuse().reason().map(|r| r.to_string()),
        count: 1,
        route: None,
        client: None,
    });
    let fits = queue::LISTENER_BYTES / event_cost(&event);
    for _ in 0..fits + 5 {
        bus.record(&w, &refuse(), None, &HeaderMap::new(), &Method::GET, "/");
    }
    assert_eq!(sub.take_dropped(), Some((5, 5)));
    assert_eq!(sub.take_dropped(), None);
    // Refusals without an origin (Host refusals) are in the totals all the same.
    assert_eq!(bus.totals(), (0, fits as u64 + 5, 0, 5));
    let (replay, _second) = bus.subscribe(10_000);
    assert_eq!(replay.len(), MAX_REPLAY);
    drop(sub);
    assert_eq!(bus.listener_count(), 1);
}

/// A refused request from a different long origin each time, to a long path.
fn record_long_refusal(bus: &EventBus, w: &WorkerEvents, n: usize) {
    let origin =
        HeaderValue::from_str(&format!("https://{}{n}.evil.example", "x".repeat(200))).unwrap();
    record_refusal(bus, w, &origin, &format!("/mcp/{}", "p".repeat(300)));
}

/// An allowed request from a different origin each time, so that each ends the run
/// before it.
fn record_distinct_allow(bus: &EventBus, w: &WorkerEvents, n: usize) {
    let origin = HeaderValue::from_str(&format!("https://app{n}.example")).unwrap();
    record_allow(bus, w, &origin, Method::POST, "/mcp");
}

#[test]
fn listeners_together_never_hold_more_than_the_cap_however_many_attach() {
    const CAP: usize = 64 * 1024;
    let bus = EventBus::with_budget(CAP);
    let held =
        |subs: &[Subscription]| -> usize { subs.iter().map(|s| s.listener.queue.held()).sum() };
    let mut subs: Vec<Subscription> = (0..8).map(|_| bus.subscribe(0).1).collect();
    // Two workers on two threads flood never-reading listeners with large events
    // while a third thread checks what the listeners hold.
    let flood = |subs: &[Subscription], from: usize| {
        let done = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            for t in 0..2 {
                let (bus, done) = (&bus, &done);
                scope.spawn(move || {
                    let w = bus.worker();
                    for i in 0..2_000 {
                        let n = from + t * 10_000 + i;
                        record_long_refusal(bus, &w, n);
                        record_distinct_allow(bus, &w, n);
                    }
                    bus.queue_worker_runs();
                    done.store(true, Ordering::Relaxed);
                });
            }
            while !done.load(Ordering::Relaxed) {
                assert!(held(subs) <= CAP, "{} bytes held", held(subs));
                std::thread::yield_now();
            }
        });
        assert!(held(subs) <= CAP && bus.fanout.budget.used() == held(subs));
    };
    flood(&subs, 0);
    // Each took its share of the cap: together they hold nearly all of it.
    let share = bus.fanout.budget.share(8);
    assert_eq!(share, CAP / 8);
    for sub in &subs {
        let held = sub.listener.queue.held();
        assert!(held <= share && held > share - 1024, "{held} of {share}");
    }
    // More attach: each one's share shrinks, and all of them still share one cap.
    subs.extend((0..24).map(|_| bus.subscribe(0).1));
    assert_eq!(bus.fanout.budget.share(32), CAP / 32);
    flood(&subs, 100_000);
    // One reads: what it held goes back, and its share of new events fits again.
    let before = held(&subs);
    let mut batch = subs[0].queued(usize::MAX);
    while !batch.is_empty() {
        batch = subs[0].queued(usize::MAX);
    }
    assert_eq!(subs[0].listener.queue.held(), 0);
    assert!(held(&subs) < before);
    let w = bus.worker();
    record_long_refusal(&bus, &w, 999_999);
    assert_eq!(subs[0].queued(10).len(), 1);
    // All gone: nothing is held any more, queued or in flight.
    drop(subs);
    assert_eq!(bus.fanout.budget.used(), 0);
}

#[test]
fn a_slow_listener_is_told_how_many_decisions_it_missed_and_a_reading_one_misses_none() {
    let bus = EventBus::with_budget(32 * 1024);
    let w = bus.worker();
    let (_, mut slow) = bus.subscribe(0);
    let (_, mut reading) = bus.subscribe(0);
    let decisions = |batch: &[Event]| -> u64 {
        batch
            .iter()
            .map(|e| match e {
                Event::Decision(d) => d.count,
                other => panic!("not a decision: {other:?}"),
            })
            .sum()
    };
    let app = HeaderValue::from_static("https://app.example");
    let (mut sent, mut read) = (0u64, 0u64);
    for round in 0..200 {
        // A run of allows, then a refusal that ends it.
        for _ in 0..round % 7 + 1 {
            record_allow(&bus, &w, &app, Method::POST, "/mcp");
            sent += 1;
        }
        record_long_refusal(&bus, &w, round);
        sent += 1;
        let batch = reading.queued(usize::MAX);
        // Taken but not yet written: still held against the share.
        assert!(reading.listener.queue.held() > 0);
        read += decisions(&batch);
    }
    bus.queue_worker_runs();
    read += decisions(&reading.queued(usize::MAX));
    assert_eq!((read, reading.take_dropped()), (sent, None));
    let (missed, total) = slow.take_dropped().expect("the slow listener missed some");
    assert_eq!(missed, total);
    let mut kept = 0;
    loop {
        let batch = slow.queued(usize::MAX);
        if batch.is_empty() {
            break;
        }
        kept += decisions(&batch);
    }
    assert!(kept > 0, "it kept what fitted");
    // Every decision reached the slow listener or was counted as missed.
    assert_eq!(kept + missed, sent);
    assert_eq!(bus.totals().3, missed);
}
