//! Models for unit and rendering tests: fixed times, fixed data.

use std::path::PathBuf;

use mcp_cors::protocol::{DecisionEvent, Event, HostStats, OriginStats, PolicyReply, Stats};
use mcp_cors::{PolicySettings, ReloadError, Verdict};

use crate::conn::NetMsg;
use crate::state::{App, Msg};

/// 2024-05-01T12:00:00Z: "now" in every test.
pub const NOW: u64 = 1_714_564_800_000;

/// A decision `secs_ago` seconds before [`NOW`].
pub fn decision(secs_ago: u64, verdict: Verdict, origin: &str, path: &str) -> Event {
    let reason = match verdict {
        Verdict::Allow => None,
        _ => Some("origin not allowed".to_owned()),
    };
    Event::Decision(DecisionEvent {
        at_ms: NOW - secs_ago * 1000,
        verdict,
        origin: Some(origin.to_owned()),
        method: "POST".to_owned(),
        path: path.to_owned(),
        preflight: false,
        reason,
        count: 1,
        route: None,
        client: Some(client_of(origin).to_owned()),
    })
}

/// The client address the fixtures' requests from `origin` come from.
fn client_of(origin: &str) -> &'static str {
    match origin {
        "https://evil.example" => "203.0.113.66",
        _ => "192.0.2.10",
    }
}

/// `event` as the server sends a run of `count` identical decisions.
pub fn folded(mut event: Event, count: u64) -> Event {
    if let Event::Decision(d) = &mut event {
        d.count = count;
    }
    event
}

/// Counters with two refused origins.
pub fn stats() -> Stats {
    Stats {
        allowed: 42,
        denied: 7,
        would_deny: 1,
        dropped_events: 3,
        listeners: 1,
        origins: vec![
            OriginStats {
                origin: "https://app.example.com".into(),
                allowed: 42,
                last_seen_ms: NOW - 1000,
                ..OriginStats::default()
            },
            OriginStats {
                origin: "https://evil.example".into(),
                denied: 5,
                last_seen_ms: NOW - 5000,
                last_reason: Some("origin not allowed".into()),
                ..OriginStats::default()
            },
            OriginStats {
                origin: "http://localhost:3000".into(),
                denied: 2,
                would_deny: 1,
                last_seen_ms: NOW - 120_000,
                last_reason: Some("header X-Debug not allowed".into()),
                ..OriginStats::default()
            },
        ],
        reloads: 2,
        loaded: true,
        ..Stats::default()
    }
}

/// [`stats`] with the server's catch-all bucket, the most refused of all.
pub fn stats_with_untracked() -> Stats {
    let mut stats = stats();
    stats.origins.push(OriginStats {
        origin: crate::state::UNTRACKED.into(),
        denied: 900,
        last_seen_ms: NOW - 1000,
        last_reason: Some("origin not allowed".into()),
        ..OriginStats::default()
    });
    stats
}

/// Two refused hosts: a rebinding attempt and a pod IP (a health check), plus the
/// server's catch-all bucket.
pub fn host_stats() -> Vec<HostStats> {
    vec![
        HostStats {
            host: "evil.example:8080".into(),
            denied: 3,
            would_deny: 0,
            last_seen_ms: NOW - 2000,
        },
        HostStats {
            host: "10.1.2.3:8080".into(),
            denied: 12,
            would_deny: 0,
            last_seen_ms: NOW - 1000,
        },
        HostStats {
            host: crate::state::UNTRACKED_HOST.into(),
            denied: 40,
            would_deny: 0,
            last_seen_ms: NOW - 1000,
        },
    ]
}

/// [`streaming_app`] after the server refused hosts.
pub fn app_with_denied_hosts() -> App {
    let mut app = streaming_app();
    let mut stats = stats();
    stats.hosts = host_stats();
    app.update(Msg::Replica(0, NetMsg::Stats(stats)));
    app
}

/// A policy allowing two origins.
pub fn policy() -> PolicyReply {
    PolicyReply {
        source: Some(PathBuf::from("/etc/mcp/cors.toml")),
        loaded: true,
        settings: PolicySettings {
            allowed_origins: vec![
                "https://app.example.com".into(),
                "http://localhost:*".into(),
            ],
            ..PolicySettings::default()
        },
    }
}

/// [`policy`] with routes: `meta` (its own origins, a host and a `max_age`) and `health`
/// (`guard = false`).
pub fn routed_policy() -> PolicyReply {
    let toml = "allowed_origins = [\"https://app.example.com\", \"http://localhost:*\"]\n\
                [routes.meta]\npaths = [\"/.well-known/*\"]\n\
                allowed_origins = [\"https://docs.example.com\"]\nmax_age = 60\n\
                [routes.health]\npaths = [\"/health\", \"/ready\"]\nguard = false\n";
    let settings = mcp_cors::Policy::from_toml_str(toml)
        .expect("the fixture's policy is valid")
        .settings()
        .clone();
    PolicyReply {
        settings,
        ..policy()
    }
}

/// [`streaming_app`] serving [`routed_policy`].
pub fn routed_app() -> App {
    let mut app = streaming_app();
    app.update(Msg::Replica(0, NetMsg::Policy(routed_policy())));
    app
}

/// A refused reload, 30 s before [`NOW`].
pub fn reload_error() -> ReloadError {
    ReloadError {
        at_ms: NOW - 30_000,
        message:
            "/etc/mcp/cors.toml:3:5: allowed_origins: \"https://a.com/x\": an origin has no path"
                .into(),
        diagnostics: Vec::new(),
    }
}

/// A connected app with counters, policy and a few events.
pub fn streaming_app() -> App {
    let mut app = App::new(PathBuf::from("/etc/mcp/cors.sock"), NOW);
    for msg in [
        NetMsg::Connected {
            server: "0.1.0".into(),
            replica: mcp_cors::protocol::ReplicaId::default(),
        },
        NetMsg::Replay(vec![
            decision(9, Verdict::Allow, "https://app.example.com", "/mcp"),
            decision(8, Verdict::Deny, "https://evil.example", "/mcp"),
        ]),
        NetMsg::Event(decision(
            6,
            Verdict::WouldDeny,
            "http://localhost:3000",
            "/sse",
        )),
        NetMsg::Event(Event::Reloaded {
            at_ms: NOW - 4000,
            diff: mcp_cors::PolicyDiff {
                origins_added: vec!["http://localhost:*".into()],
                ..Default::default()
            },
        }),
        NetMsg::Event(folded(
            decision(2, Verdict::Allow, "https://app.example.com", "/mcp"),
            40,
        )),
        NetMsg::Stats(stats()),
        NetMsg::Policy(policy()),
    ] {
        app.update(Msg::Replica(0, msg));
    }
    app
}

/// A fleet of three replicas found by a pattern: `web-1:101` and `web-2:202` connected,
/// each with its own counters and events, and the third down since its socket refused.
pub fn fleet_app() -> App {
    use mcp_cors::protocol::ReplicaId;
    let mut app = App::for_fleet(PathBuf::from("/run/mcp/*/cors.sock"), NOW);
    for r in ["r1", "r2", "r3"] {
        app.join(PathBuf::from(format!("/run/mcp/{r}/cors.sock")));
    }
    let hello = |host: &str, pid: u32| NetMsg::Connected {
        server: "0.1.0".into(),
        replica: ReplicaId {
            hostname: Some(host.into()),
            pid: Some(pid),
        },
    };
    let mut second = stats();
    second.allowed = 8;
    second.origins.truncate(2);
    second.origins[1].denied = 2;
    let msgs = [
        (0, hello("web-1", 101)),
        (1, hello("web-2", 202)),
        (
            2,
            NetMsg::Disconnected {
                reason:
                    "admin socket /run/mcp/r3/cors.sock: connect: Connection refused (os error 111)"
                        .into(),
                retry_in: std::time::Duration::from_millis(3500),
            },
        ),
        (
            0,
            NetMsg::Replay(vec![
                decision(9, Verdict::Allow, "https://app.example.com", "/mcp"),
                decision(8, Verdict::Deny, "https://evil.example", "/mcp"),
            ]),
        ),
        (
            1,
            NetMsg::Replay(vec![decision(
                7,
                Verdict::Deny,
                "https://evil.example",
                "/mcp",
            )]),
        ),
        (
            0,
            NetMsg::Event(decision(
                3,
                Verdict::WouldDeny,
                "http://localhost:3000",
                "/sse",
            )),
        ),
        (
            1,
            NetMsg::Event(decision(
                2,
                Verdict::Allow,
                "https://app.example.com",
                "/mcp",
            )),
        ),
        (0, NetMsg::Stats(stats())),
        (1, NetMsg::Stats(second)),
        (0, NetMsg::Policy(policy())),
        (1, NetMsg::Policy(policy())),
    ];
    for (replica, msg) in msgs {
        app.update(Msg::Replica(replica, msg));
    }
    app
}
