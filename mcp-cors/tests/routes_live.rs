//! Routes on a real server over a watched file: events name the route that decided,
//! `guard = false` requests are counted and not evented, and a route added and removed by
//! hot reload takes effect (with the reload's diff saying so).

mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::client::Client;
use common::server::setup;
use mcp_cors::protocol::{Event, Request};

const APP: &str = "https://app.example.com";
const ANY: &str = "https://any.example";
/// How long a save may take to be served (generous for a loaded CI machine).
const BOUND: Duration = Duration::from_secs(3);

const ROUTED: &str = r#"allowed_origins = ["https://app.example.com"]

[routes.meta]
paths = ["/meta", "/meta/*"]
allowed_origins = ["*"]

[routes.health]
paths = ["/health"]
guard = false
"#;

/// Status and ACAO of a GET to `path` from `origin`, with `host` as the `Host` header.
async fn get(
    addr: SocketAddr,
    path: &str,
    origin: &str,
    host: Option<&str>,
) -> (u16, Option<String>) {
    let mut req = awc::Client::new()
        .get(format!("http://{addr}{path}"))
        .insert_header(("origin", origin))
        .force_close();
    if let Some(host) = host {
        req = req.insert_header(("host", host));
    }
    let res = req.send().await.expect("the request is answered");
    let acao = res
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_owned());
    (res.status().as_u16(), acao)
}

async fn next_decision(client: &mut Client) -> mcp_cors::protocol::DecisionEvent {
    match client
        .expect_event(|e| matches!(e, Event::Decision(_)))
        .await
    {
        Event::Decision(d) => d,
        _ => unreachable!(),
    }
}

#[actix_web::test]
async fn events_name_the_route_and_unguarded_requests_are_only_counted() {
    let s = setup(ROUTED).await;
    let addr = s.server.addr;
    let mut client = Client::connect(&s.socket).await;
    client.call(Request::Subscribe { replay: 0 }).await;

    // Probes: no Host check, no Origin check, no event; counted.
    for _ in 0..3 {
        let probe = get(addr, "/health", ANY, Some("10.1.2.3:8080")).await;
        assert_eq!(probe, (200, None));
    }
    // A refusal by the top level, then an allow by the route.
    assert_eq!(get(addr, "/mcp", ANY, None).await.0, 403);
    let d = next_decision(&mut client).await;
    assert_eq!(
        (d.path.as_str(), d.route.as_deref()),
        ("/mcp", None),
        "{d:?}"
    );
    assert_eq!(
        get(addr, "/meta/x", ANY, None).await,
        (200, Some("*".into()))
    );
    // An allow is sent to listeners as part of a run; a refusal after it flushes the run.
    assert_eq!(get(addr, "/mcp", ANY, None).await.0, 403);
    let d = next_decision(&mut client).await;
    assert_eq!(
        (d.path.as_str(), d.route.as_deref(), d.verdict.to_string()),
        ("/meta/x", Some("meta"), "allow".to_owned()),
        "the probes must not have been evented: {d:?}"
    );
    let d = next_decision(&mut client).await;
    assert_eq!((d.path.as_str(), d.route.as_deref()), ("/mcp", None));

    let mut stats_client = Client::connect(&s.socket).await;
    let stats = stats_client.stats().await;
    assert_eq!(stats.unguarded, 3);
    // Refusals and allows are still counted as before (the route's allow included).
    assert_eq!((stats.allowed, stats.denied), (1, 2));
    s.server.handle.stop(false).await;
}

/// Polls `check` until it holds; fails past [`BOUND`].
async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !check().await {
        assert!(
            start.elapsed() < BOUND,
            "{what}: not served within {BOUND:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[actix_web::test]
async fn a_route_added_and_removed_by_hot_reload() {
    let top_only = "allowed_origins = [\"https://app.example.com\"]\n";
    let s = setup(top_only).await;
    let addr = s.server.addr;
    let mut client = Client::connect(&s.socket).await;
    client.call(Request::Subscribe { replay: 0 }).await;
    assert_eq!(get(addr, "/meta", ANY, None).await.0, 403);
    assert_eq!(get(addr, "/health", APP, Some("10.1.2.3")).await.0, 403);

    std::fs::write(&s.config, ROUTED).unwrap();
    eventually("the added routes", async || {
        get(addr, "/meta", ANY, None).await == (200, Some("*".into()))
    })
    .await;
    assert_eq!(
        get(addr, "/health", APP, Some("10.1.2.3")).await,
        (200, None)
    );
    assert_eq!(
        get(addr, "/mcp", ANY, None).await.0,
        403,
        "the top level is unchanged"
    );
    let reloaded = client
        .expect_event(|e| matches!(e, Event::Reloaded { .. }))
        .await;
    let Event::Reloaded { diff, .. } = reloaded else {
        unreachable!()
    };
    assert_eq!(diff.routes_added, ["health", "meta"]);

    // Remove one route, change the other.
    let fewer = ROUTED
        .replace(
            "[routes.health]\npaths = [\"/health\"]\nguard = false\n",
            "",
        )
        .replace("paths = [\"/meta\", \"/meta/*\"]", "paths = [\"/meta\"]");
    std::fs::write(&s.config, fewer).unwrap();
    eventually("the removed route", async || {
        get(addr, "/health", APP, Some("10.1.2.3")).await.0 == 403
    })
    .await;
    assert_eq!(get(addr, "/meta", ANY, None).await, (200, Some("*".into())));
    assert_eq!(get(addr, "/meta/x", ANY, None).await.0, 403);
    let reloaded = client
        .expect_event(|e| matches!(e, Event::Reloaded { .. }))
        .await;
    let Event::Reloaded { diff, .. } = reloaded else {
        unreachable!()
    };
    assert_eq!(
        (diff.routes_removed, diff.routes_changed),
        (vec!["health".to_owned()], vec!["meta".to_owned()])
    );

    // A bad route is refused and the last good policy keeps serving.
    std::fs::write(&s.config, "[routes.x]\nguard = false\n").unwrap();
    client
        .expect_event(|e| matches!(e, Event::ReloadRejected(_)))
        .await;
    assert_eq!(get(addr, "/meta", ANY, None).await, (200, Some("*".into())));
    s.server.handle.stop(false).await;
}
