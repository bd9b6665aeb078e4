//! The admin socket end to end: a real server, a real Unix socket, real requests.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::client::Client;
use common::server::{Setup, post, setup, start, wait_for_socket};
use mcp_cors::McpCors;
use mcp_cors::client::ClientError;
use mcp_cors::protocol::{ErrorCode, Event, MAX_LINE, Request, ServerLine};

const A: &str = "https://a.example.com";
const B: &str = "https://b.example.com";
const EVIL: &str = "https://evil.example";

const POLICY: &str = "\
# Production policy. Owner: platform team.
allowed_origins = [
  \"https://a.example.com\",  # the web UI
]

# Keep preflights cached for ten minutes.
max_age = 600
";

#[actix_web::test]
async fn subscribers_see_allow_and_deny_events_for_real_requests() {
    let s = setup(POLICY).await;
    let mut client = Client::connect(&s.socket).await;
    assert_eq!(
        client.call(Request::Subscribe { replay: 0 }).await,
        ServerLine::Subscribed { replayed: 0 }
    );

    assert_eq!(post(s.server.addr, A).await.0, 200);
    assert_eq!(post(s.server.addr, EVIL).await.0, 403);
    let Event::Decision(allow) = client
        .expect_event(|e| matches!(e, Event::Decision(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(allow.verdict, mcp_cors::Verdict::Allow);
    assert_eq!(allow.origin.as_deref(), Some(A));
    assert_eq!(
        (allow.method.as_str(), allow.path.as_str(), allow.preflight),
        ("POST", "/mcp", false)
    );
    let Event::Decision(deny) = client
        .expect_event(|e| matches!(e, Event::Decision(_)))
        .await
    else {
        unreachable!()
    };
    assert_eq!(deny.verdict, mcp_cors::Verdict::Deny);
    assert_eq!(deny.origin.as_deref(), Some(EVIL));
    assert_eq!(deny.reason.as_deref(), Some("origin not allowed"));

    // A later subscriber gets the refusal replayed (allows go to live listeners only);
    // counters are kept per origin.
    let mut late = Client::connect(&s.socket).await;
    assert_eq!(
        late.call(Request::Subscribe { replay: 10 }).await,
        ServerLine::Subscribed { replayed: 1 }
    );
    assert_eq!(
        late.recv().await,
        Some(ServerLine::Event(Event::Decision(deny)))
    );
    let stats = Client::connect(&s.socket).await.stats().await;
    assert_eq!((stats.allowed, stats.denied), (1, 1));
    assert_eq!(stats.origins[0].origin, EVIL);
    assert_eq!(
        stats.origins[0].last_reason.as_deref(),
        Some("origin not allowed")
    );
    let a = stats.origins.iter().find(|o| o.origin == A).unwrap();
    assert_eq!((a.allowed, a.denied), (1, 0));
    s.server.handle.stop(true).await;
}

#[actix_web::test]
async fn an_origins_counts_add_up_across_reloads_and_before_it_was_listed() {
    let s = setup(POLICY).await;
    let mut client = Client::connect(&s.socket).await;
    // Refused while not listed, allowed once listed (its counter is then bound into the
    // policy), and the listed origin's counts survive the reload that listed the other.
    assert_eq!(post(s.server.addr, B).await.0, 403);
    assert_eq!(post(s.server.addr, A).await.0, 200);
    let reply = client
        .call(Request::AddOrigin {
            origin: B.into(),
            force: false,
            route: None,
        })
        .await;
    assert!(
        matches!(reply, ServerLine::OriginChanged { changed: true, .. }),
        "{reply:?}"
    );
    for _ in 0..3 {
        assert_eq!(post(s.server.addr, B).await.0, 200);
        assert_eq!(post(s.server.addr, A).await.0, 200);
    }
    let stats = client.stats().await;
    let counts = |origin: &str| {
        let o = stats.origins.iter().find(|o| o.origin == origin).unwrap();
        (
            o.allowed,
            o.denied,
            o.last_reason.clone(),
            o.last_seen_ms > 0,
        )
    };
    assert_eq!(counts(B), (3, 1, Some("origin not allowed".into()), true));
    assert_eq!(counts(A), (4, 0, None, true));
    assert_eq!(stats.origins.len(), 2, "{:?}", stats.origins);
    s.server.handle.stop(true).await;
}

#[actix_web::test]
async fn reloads_and_rejections_are_events() {
    let s = setup(POLICY).await;
    let mut client = Client::connect(&s.socket).await;
    client.call(Request::Subscribe { replay: 0 }).await;
    fs::write(&s.config, POLICY.replace(A, B)).unwrap();
    let Event::Reloaded { diff, .. } = client
        .expect_event(|e| matches!(e, Event::Reloaded { .. }))
        .await
    else {
        unreachable!()
    };
    assert_eq!(
        (diff.origins_added, diff.origins_removed),
        (vec![B.to_owned()], vec![A.to_owned()])
    );

    fs::write(
        &s.config,
        "allowed_origins = [\"https://x.example/path\"]\n",
    )
    .unwrap();
    let (raw, error) = loop {
        match client.recv_raw().await {
            Some((raw, ServerLine::Event(Event::ReloadRejected(error)))) => break (raw, error),
            Some(_) => continue,
            None => panic!("connection closed while waiting for the rejection"),
        }
    };
    assert_eq!(error.diagnostics[0].line, Some(1));
    assert_recent(error.at_ms);
    // On the wire the time is there once, as Unix ms, like every other time.
    let wire: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(wire["kind"], "reload_rejected");
    assert_eq!(wire["at_ms"].as_u64(), Some(error.at_ms), "{raw}");
    assert_eq!(raw.matches("\"at").count(), 1, "{raw}");
    assert!(wire.get("error").is_none(), "{raw}");
    client.send(&Request::Stats).await;
    let (raw, stats) = client.recv_raw().await.expect("a stats reply");
    let ServerLine::Stats(stats) = stats else {
        panic!("expected stats, got {raw}");
    };
    assert_eq!(stats.last_error, Some(error.clone()));
    let wire: serde_json::Value = serde_json::from_str(&raw).unwrap();
    assert_eq!(
        wire["last_error"]["at_ms"].as_u64(),
        Some(error.at_ms),
        "{raw}"
    );
    s.server.handle.stop(true).await;
}

#[actix_web::test]
async fn add_and_remove_persist_with_comments_and_serve_before_the_reply() {
    let s = setup(POLICY).await;
    let mut client = Client::connect(&s.socket).await;
    assert_eq!(post(s.server.addr, B).await.0, 403);

    let reply = client
        .call(Request::AddOrigin {
            origin: "https://B.example.com:443/".into(),
            force: false,
            route: None,
        })
        .await;
    assert_eq!(
        reply,
        ServerLine::OriginChanged {
            origin: B.into(),
            changed: true,
            route: None,
        }
    );
    // Read-your-writes: no waiting, the very next request passes.
    assert_eq!(post(s.server.addr, B).await, (200, Some(B.to_owned())));
    let on_disk = fs::read_to_string(&s.config).unwrap();
    assert_eq!(
        on_disk,
        POLICY.replace(
            "  # the web UI\n",
            "  # the web UI\n  \"https://b.example.com\",\n"
        ),
        "comments, order and layout are kept"
    );
    assert_eq!(
        client
            .call(Request::AddOrigin {
                origin: B.into(),
                force: false,
                route: None,
            })
            .await,
        ServerLine::OriginChanged {
            origin: B.into(),
            changed: false,
            route: None,
        }
    );

    // Our own write's watcher event applies nothing twice.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(client.stats().await.reloads, 1);

    let reply = client
        .call(Request::RemoveOrigin {
            origin: B.into(),
            route: None,
        })
        .await;
    assert_eq!(
        reply,
        ServerLine::OriginChanged {
            origin: B.into(),
            changed: true,
            route: None,
        }
    );
    assert_eq!(post(s.server.addr, B).await.0, 403);
    assert_eq!(fs::read_to_string(&s.config).unwrap(), POLICY);

    let reply = client
        .call(Request::RemoveOrigin {
            origin: B.into(),
            route: None,
        })
        .await;
    assert!(
        matches!(
            reply,
            ServerLine::Error {
                code: ErrorCode::NotFound,
                ..
            }
        ),
        "{reply:?}"
    );
    let reply = client
        .call(Request::AddOrigin {
            origin: "https://x.example/path".into(),
            force: false,
            route: None,
        })
        .await;
    assert!(
        matches!(
            reply,
            ServerLine::Error {
                code: ErrorCode::InvalidOrigin,
                ..
            }
        ),
        "{reply:?}"
    );
    s.server.handle.stop(true).await;
}

#[actix_web::test]
async fn concurrent_adds_from_two_clients_both_land() {
    let s = setup(POLICY).await;
    let mut one = Client::connect(&s.socket).await;
    let mut two = Client::connect(&s.socket).await;
    for round in 0..5 {
        let (x, y) = (
            format!("https://one-{round}.example"),
            format!("https://two-{round}.example"),
        );
        let (r1, r2) = tokio::join!(
            one.call(Request::AddOrigin {
                origin: x.clone(),
                force: false,
                route: None,
            }),
            two.call(Request::AddOrigin {
                origin: y.clone(),
                force: false,
                route: None,
            })
        );
        assert!(
            matches!(r1, ServerLine::OriginChanged { changed: true, .. }),
            "{r1:?}"
        );
        assert!(
            matches!(r2, ServerLine::OriginChanged { changed: true, .. }),
            "{r2:?}"
        );
    }
    let on_disk = fs::read_to_string(&s.config).unwrap();
    for round in 0..5 {
        assert!(on_disk.contains(&format!("https://one-{round}.example")));
        assert!(on_disk.contains(&format!("https://two-{round}.example")));
        assert_eq!(
            post(s.server.addr, &format!("https://two-{round}.example"))
                .await
                .0,
            200
        );
    }
    s.server.handle.stop(true).await;
}

#[actix_web::test]
async fn an_edit_by_hand_is_kept_by_the_next_add() {
    let s = setup(POLICY).await;
    let mut client = Client::connect(&s.socket).await;
    fs::write(&s.config, POLICY.replace("max_age = 600", "max_age = 60")).unwrap();
    client
        .call(Request::AddOrigin {
            origin: B.into(),
            force: false,
            route: None,
        })
        .await;
    let on_disk = fs::read_to_string(&s.config).unwrap();
    assert!(
        on_disk.contains("max_age = 60\n") && on_disk.contains(B),
        "{on_disk}"
    );
    s.server.handle.stop(true).await;
}

#[actix_web::test]
async fn a_symlinked_config_is_managed_elsewhere() {
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("source")).unwrap();
    fs::write(dir.path().join("source/cors.toml"), POLICY).unwrap();
    let config = dir.path().join("cors.toml");
    std::os::unix::fs::symlink("source/cors.toml", &config).unwrap();
    let server = start(&config, 1);
    let socket = dir.path().join("cors.sock");
    wait_for_socket(&socket).await;
    let mut client = Client::connect(&socket).await;
    match client
        .call(Request::AddOrigin {
            origin: B.into(),
            force: false,
            route: None,
        })
        .await
    {
        ServerLine::Error {
            code: ErrorCode::Conflict,
            message,
        } => assert!(message.contains("managed elsewhere"), "{message}"),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(
        fs::read_to_string(dir.path().join("source/cors.toml")).unwrap(),
        POLICY
    );
    server.handle.stop(true).await;
}

#[actix_web::test]
async fn the_socket_is_0600_and_removed_on_shutdown() {
    let s = setup(POLICY).await;
    let mode = fs::metadata(&s.socket).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let Setup {
        server,
        socket,
        _dir,
        ..
    } = s;
    server.handle.stop(true).await;
    drop(server.made); // the middlewares the test kept
    let start = Instant::now();
    while socket.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "socket file left behind"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[actix_web::test]
async fn a_stale_socket_is_replaced_and_a_live_one_is_not_stolen() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cors.toml");
    let socket = dir.path().join("cors.sock");
    fs::write(&config, POLICY).unwrap();

    // Stale: a socket file nobody listens on (a crashed process).
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    let cors = McpCors::try_watched(&config).expect("a stale socket is replaced");
    assert_eq!(cors.admin_socket().as_deref(), Some(socket.as_path()));
    Client::connect(&socket).await;
    drop(cors);
    assert!(!socket.exists());

    // Live: another process answers on it.
    let other = std::os::unix::net::UnixListener::bind(&socket).unwrap();
    let err = McpCors::try_watched(&config).unwrap_err();
    assert!(
        err.to_string().contains("in use by another live process"),
        "{err}"
    );
    let cors = McpCors::watched(&config); // serves requests, without an admin socket
    assert!(cors.admin_socket().is_none());
    assert!(
        cors.policy()
            .settings()
            .allowed_origins
            .contains(&A.to_owned())
    );
    let _peer = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    other
        .accept()
        .expect("the other process still owns its socket");
}

#[actix_web::test]
async fn bad_input_gets_an_error_or_a_clean_close_and_harms_nothing() {
    let s = setup(POLICY).await;

    let mut client = Client::connect(&s.socket).await;
    client.send_raw(b"{not json\n").await.unwrap();
    assert!(matches!(
        client.recv().await,
        Some(ServerLine::Error {
            code: ErrorCode::BadRequest,
            ..
        })
    ));
    client
        .send_raw(b"{\"cmd\":\"format_disk\"}\n")
        .await
        .unwrap();
    assert!(matches!(
        client.recv().await,
        Some(ServerLine::Error {
            code: ErrorCode::BadRequest,
            ..
        })
    ));
    client.send_raw(b"\n\n").await.unwrap();
    assert_eq!(
        client.call(Request::Hello { version: 99 }).await,
        ServerLine::Error {
            code: ErrorCode::UnsupportedVersion,
            message: format!(
                "this server speaks admin protocol version {}; the client speaks 99: use a matching mcp-cors-tui",
                mcp_cors::protocol::VERSION
            ),
        }
    );
    let _ = client.stats().await; // still usable

    // Over the size limit: an error, then the connection is closed.
    let mut big = Client::connect(&s.socket).await;
    let _ = big.send_raw(&vec![b'x'; MAX_LINE + 10]).await;
    let _ = big.send_raw(b"\n").await;
    assert!(matches!(
        big.recv().await,
        Some(ServerLine::Error {
            code: ErrorCode::LineTooLong,
            ..
        })
    ));
    assert_eq!(big.recv().await, None);

    // Binary garbage: closed, with a reason when it gets that far.
    let mut garbage = Client::connect(&s.socket).await;
    let _ = garbage.send_raw(&[0xff, 0xfe, 0x00, 0x80, b'\n']).await;
    match garbage.recv().await {
        None
        | Some(ServerLine::Error {
            code: ErrorCode::BadRequest,
            ..
        }) => {}
        other => panic!("{other:?}"),
    }

    // A half-sent line, then gone; a subscriber that disconnects mid-stream.
    let mut half = Client::connect(&s.socket).await;
    half.send_raw(b"{\"cmd\":\"sta").await.unwrap();
    drop(half);
    let mut gone = Client::connect(&s.socket).await;
    gone.call(Request::Subscribe { replay: 0 }).await;
    drop(gone);
    for _ in 0..20 {
        assert_eq!(post(s.server.addr, EVIL).await.0, 403);
    }

    // Requests were never affected; other clients still work; the gone listener is gone.
    assert_eq!(post(s.server.addr, A).await.0, 200);
    let stats = client.stats().await;
    assert_eq!(stats.listeners, 0);
    assert_eq!(stats.denied, 20);
    s.server.handle.stop(true).await;
}

/// Requests per second for `n` keep-alive requests from `A` over 4 connections, each to
/// its own path, so that no two events are alike (the server folds runs of identical
/// decisions, which would hide a stuck listener's backlog).
async fn throughput(addr: std::net::SocketAddr, n: usize) -> f64 {
    let start = Instant::now();
    let tasks: Vec<_> = (0..4)
        .map(|t| {
            actix_web::rt::spawn(async move {
                let client = awc::Client::new();
                for i in 0..n / 4 {
                    let res = client
                        .post(format!("http://{addr}/mcp/{t}/{i}"))
                        .insert_header(("origin", A))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status().as_u16(), 200);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    n as f64 / start.elapsed().as_secs_f64()
}

#[actix_web::test]
async fn a_listener_that_never_reads_does_not_slow_requests_and_its_drops_are_counted() {
    let s = setup(POLICY).await;
    const N: usize = 6000;
    throughput(s.server.addr, 400).await; // warm up
    let without = throughput(s.server.addr, N).await;

    let mut stuck = Client::connect(&s.socket).await;
    stuck.send(&Request::Subscribe { replay: 0 }).await; // and never read again
    let with = throughput(s.server.addr, N).await;

    let mut observer = Client::connect(&s.socket).await;
    let stats = observer.stats().await;
    println!(
        "throughput without a listener {without:.0} req/s, with a stuck one {with:.0} req/s (ratio {:.2}); dropped {}",
        with / without,
        stats.dropped_events
    );
    assert!(
        with >= 0.5 * without,
        "a stuck listener slowed requests: {with:.0} vs {without:.0} req/s"
    );
    assert!(
        stats.dropped_events > 0,
        "events for the stuck listener must be dropped and counted"
    );
    assert_eq!(stats.listeners, 1);
    drop(stuck);
    s.server.handle.stop(true).await;
}

#[actix_web::test]
async fn a_client_from_another_user_is_refused() {
    let s = setup(POLICY).await;
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        println!("skipped: not root, so no other uid can be taken to connect with");
        return;
    }
    // Let the other user reach the socket at all: the file mode is not what is under test here.
    let dir = s.socket.parent().unwrap();
    fs::set_permissions(dir, fs::Permissions::from_mode(0o755)).unwrap();
    fs::set_permissions(&s.socket, fs::Permissions::from_mode(0o666)).unwrap();
    // This test binary, run again as uid 65534, is the other user's client.
    use std::os::unix::process::CommandExt;
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "peer_client", "--nocapture", "--test-threads=1"])
        .env("MCP_CORS_PEER_SOCKET", &s.socket)
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(line) = stdout
        .lines()
        .find_map(|l| l.split_once("PEER_REPLY: ").map(|(_, reply)| reply))
    else {
        panic!(
            "no reply seen by the other user: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let reply: ServerLine = serde_json::from_str(line).unwrap();
    assert!(
        matches!(
            reply,
            ServerLine::Error {
                code: ErrorCode::Forbidden,
                ..
            }
        ),
        "{reply:?}"
    );
    // The server's own user still gets in.
    Client::connect(&s.socket).await;
    s.server.handle.stop(true).await;
}

/// Not a test on its own: the client `a_client_from_another_user_is_refused` runs as
/// another user. Prints the server's first line.
#[test]
fn peer_client() {
    let Some(path) = std::env::var_os("MCP_CORS_PEER_SOCKET") else {
        return;
    };
    use std::io::BufRead;
    let stream = std::os::unix::net::UnixStream::connect(path).expect("connect as the other user");
    let mut line = String::new();
    std::io::BufReader::new(stream)
        .read_line(&mut line)
        .unwrap();
    println!("PEER_REPLY: {}", line.trim_end());
}

#[actix_web::test]
async fn a_second_process_on_the_same_config_gets_a_clear_error_not_the_socket() {
    let s = setup(POLICY).await;
    // This test binary, run again, is the second server process on the same file.
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "second_server_process",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("MCP_CORS_SECOND_CONFIG", &s.config)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let Some(error) = stdout
        .lines()
        .find_map(|l| l.split_once("SECOND: ").map(|(_, e)| e.to_owned()))
    else {
        panic!(
            "the second process said nothing: {stdout} {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    assert!(error.contains("in use by another live process"), "{error}");
    assert!(
        error.contains("cors.sock"),
        "the error names the socket: {error}"
    );
    // The first process still owns and serves its socket.
    let mut client = Client::connect(&s.socket).await;
    let _ = client.stats().await;
    s.server.handle.stop(true).await;
}

/// Not a test on its own: the second server process of the test above. Prints what
/// `McpCors::try_watched` says about the config another process already serves.
#[test]
fn second_server_process() {
    let Some(config) = std::env::var_os("MCP_CORS_SECOND_CONFIG") else {
        return;
    };
    match McpCors::try_watched(config) {
        Ok(_) => println!("SECOND: started (the socket was taken over!)"),
        Err(e) => println!("SECOND: {e}"),
    }
}

#[actix_web::test]
async fn admin_edits_racing_the_watcher_never_make_the_policy_go_back() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    let s = setup(POLICY).await;
    let cors = s.server.made.lock().unwrap()[0].clone();
    let done = Arc::new(AtomicBool::new(false));
    // Makes the watcher reread the file all the time, without changing it: open for
    // writing and close (an inotify close-write event).
    let toucher = std::thread::spawn({
        let (config, done) = (s.config.clone(), Arc::clone(&done));
        move || {
            while !done.load(Ordering::SeqCst) {
                drop(fs::OpenOptions::new().append(true).open(&config).unwrap());
                std::thread::sleep(Duration::from_millis(2));
            }
        }
    });
    // Once an origin serves, it must serve for good: every add only adds.
    let monitor = std::thread::spawn({
        let (cors, done) = (cors.clone(), Arc::clone(&done));
        move || {
            let mut seen = std::collections::BTreeSet::new();
            while !done.load(Ordering::SeqCst) {
                let policy = cors.policy();
                let now = &policy.settings().allowed_origins;
                if let Some(gone) = seen.iter().find(|o| !now.contains(o)) {
                    return Err(format!("{gone} served, then no longer: {now:?}"));
                }
                seen.extend(now.iter().cloned());
            }
            Ok(seen.len())
        }
    });
    let mut client = Client::connect(&s.socket).await;
    for i in 0..60 {
        let origin = format!("https://race-{i}.example");
        let reply = client
            .call(Request::AddOrigin {
                origin: origin.clone(),
                force: false,
                route: None,
            })
            .await;
        assert!(
            matches!(reply, ServerLine::OriginChanged { changed: true, .. }),
            "{reply:?}"
        );
        // Read-your-writes, and it stays.
        assert!(cors.policy().settings().allowed_origins.contains(&origin));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    done.store(true, Ordering::SeqCst);
    toucher.join().unwrap();
    let seen = monitor.join().unwrap().unwrap();
    assert_eq!(seen, 61);
    assert_eq!(cors.policy().settings().allowed_origins.len(), 61);
    s.server.handle.stop(true).await;
}

#[actix_web::test]
async fn an_add_over_an_empty_file_is_refused_and_the_file_left_alone() {
    let s = setup(POLICY).await;
    let mut client = Client::connect(&s.socket).await;
    fs::write(&s.config, "").unwrap(); // an editor that truncated, and has not written yet
    match client
        .call(Request::AddOrigin {
            origin: B.into(),
            force: false,
            route: None,
        })
        .await
    {
        ServerLine::Error {
            code: ErrorCode::Conflict,
            message,
        } => assert!(
            message.starts_with("the file is being changed or is invalid: ")
                && message.contains("empty"),
            "{message}"
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
    assert_eq!(fs::read(&s.config).unwrap(), b"", "never written over");
    assert_eq!(
        post(s.server.addr, A).await.0,
        200,
        "the last good policy serves"
    );
    assert_eq!(post(s.server.addr, B).await.0, 403);
    s.server.handle.stop(true).await;
}

/// Sends `method /mcp` with `headers` on a new connection; returns the status.
async fn send(addr: std::net::SocketAddr, method: &str, headers: &[(&str, &str)]) -> u16 {
    let method = actix_web::http::Method::from_bytes(method.as_bytes()).unwrap();
    let mut req = awc::Client::new()
        .request(method, format!("http://{addr}/mcp"))
        .force_close();
    for &(name, value) in headers {
        req = req.insert_header((name, value));
    }
    req.send().await.expect("answered").status().as_u16()
}

/// The next decision event.
async fn next_decision(client: &mut Client) -> mcp_cors::protocol::DecisionEvent {
    match client
        .expect_event(|e| matches!(e, Event::Decision(_)))
        .await
    {
        Event::Decision(d) => d,
        _ => unreachable!(),
    }
}

/// Asserts that `at_ms` is within a few seconds of now.
fn assert_recent(at_ms: u64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    assert!(
        now.abs_diff(at_ms) < 5_000,
        "event time {at_ms} is not about now ({now})"
    );
}

#[actix_web::test]
async fn preflights_and_host_refusals_are_events_with_the_time_they_happened() {
    let s = setup(POLICY).await;
    let mut client = Client::connect(&s.socket).await;
    client.call(Request::Subscribe { replay: 0 }).await;

    let preflight = [("origin", A), ("access-control-request-method", "POST")];
    assert_eq!(send(s.server.addr, "OPTIONS", &preflight).await, 204);
    let event = next_decision(&mut client).await;
    assert_eq!(event.verdict, mcp_cors::Verdict::Allow);
    assert_eq!(event.origin.as_deref(), Some(A));
    assert!(event.preflight, "{event:?}");
    assert_eq!(event.method, "OPTIONS");
    assert_recent(event.at_ms);

    let refused = [("origin", EVIL), ("access-control-request-method", "POST")];
    assert_eq!(send(s.server.addr, "OPTIONS", &refused).await, 403);
    let event = next_decision(&mut client).await;
    assert_eq!(event.verdict, mcp_cors::Verdict::Deny);
    assert!(event.preflight, "{event:?}");

    // DNS rebinding: a request without Origin, for a host that is not allowed.
    assert_eq!(
        send(s.server.addr, "POST", &[("host", "rebind.evil.example")]).await,
        403
    );
    let event = next_decision(&mut client).await;
    assert_eq!(event.verdict, mcp_cors::Verdict::Deny);
    assert_eq!(event.origin, None);
    assert!(!event.preflight);
    let reason = event.reason.unwrap_or_default();
    assert!(
        reason.starts_with("host ") && reason.ends_with(" not allowed"),
        "{reason}"
    );
    assert!(reason.contains("rebind.evil.example"), "{reason}");
    assert_recent(event.at_ms);
    s.server.handle.stop(true).await;
}

#[actix_web::test]
async fn report_only_refusals_are_would_deny_events_and_pass() {
    let s = setup(&format!("mode = \"report-only\"\n{POLICY}")).await;
    let mut client = Client::connect(&s.socket).await;
    client.call(Request::Subscribe { replay: 0 }).await;
    assert_eq!(
        post(s.server.addr, EVIL).await.0,
        200,
        "reported, not blocked"
    );
    let event = next_decision(&mut client).await;
    assert_eq!(event.verdict, mcp_cors::Verdict::WouldDeny);
    assert_eq!(event.origin.as_deref(), Some(EVIL));
    assert_eq!(event.reason.as_deref(), Some("origin not allowed"));
    assert_recent(event.at_ms);
    let stats = client.stats().await;
    assert_eq!((stats.would_deny, stats.denied), (1, 0));
    s.server.handle.stop(true).await;
}

#[actix_web::test]
async fn a_stuck_listener_that_reads_again_is_told_how_many_events_it_missed() {
    let s = setup(POLICY).await;
    let mut stuck = Client::connect(&s.socket).await;
    assert_eq!(
        stuck.call(Request::Subscribe { replay: 0 }).await,
        ServerLine::Subscribed { replayed: 0 }
    );
    // Far more events than its queue and the socket's buffer hold, while it does not read.
    let mut observer = Client::connect(&s.socket).await;
    let mut sent = 0;
    while observer.stats().await.dropped_events == 0 {
        assert!(sent < 40_000, "no event was dropped after {sent} requests");
        throughput(s.server.addr, 400).await;
        sent += 400;
    }
    // It reads again: a `dropped` line comes, then events keep coming.
    let (mut dropped, mut events) = (0, 0);
    loop {
        match stuck.recv().await {
            Some(ServerLine::Dropped { count, total }) => {
                assert!(count > 0 && total >= count, "{count} of {total}");
                dropped += count;
                break;
            }
            Some(ServerLine::Event(_)) => events += 1,
            other => panic!("expected events then a dropped line, got {other:?}"),
        }
    }
    assert!(events > 0, "the events before the drops arrive first");
    assert_eq!(post(s.server.addr, EVIL).await.0, 403);
    let event = stuck
        .expect_event(|e| matches!(e, Event::Decision(d) if d.verdict == mcp_cors::Verdict::Deny))
        .await;
    assert!(matches!(event, Event::Decision(_)));
    assert!(observer.stats().await.dropped_events >= dropped);
    s.server.handle.stop(true).await;
}

#[actix_web::test]
async fn an_edit_keeps_the_files_mode() {
    let s = setup(POLICY).await;
    fs::set_permissions(&s.config, fs::Permissions::from_mode(0o640)).unwrap();
    let mut client = Client::connect(&s.socket).await;
    assert!(matches!(
        client
            .call(Request::AddOrigin {
                origin: B.into(),
                force: false,
                route: None,
            })
            .await,
        ServerLine::OriginChanged { changed: true, .. }
    ));
    assert!(fs::read_to_string(&s.config).unwrap().contains(B));
    let mode = fs::metadata(&s.config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
    s.server.handle.stop(true).await;
}

#[actix_web::test]
async fn past_the_connection_limit_a_client_is_told_busy_and_others_keep_working() {
    /// The server's limit (`admin::MAX_CONNECTIONS`).
    const LIMIT: usize = 1024;
    let s = setup(POLICY).await;
    let mut held = Vec::with_capacity(LIMIT);
    for _ in 0..LIMIT {
        held.push(Client::connect(&s.socket).await); // each got its hello: it counts
    }
    // The client is refused with the server's reason ...
    match mcp_cors::client::Client::connect(&s.socket).await {
        Err(ClientError::Refused {
            code: ErrorCode::Busy,
            message,
        }) => assert!(message.contains(&format!("limit {LIMIT}")), "{message}"),
        other => panic!("expected busy, got {other:?}"),
    }
    // ... which is all the server sends before it closes.
    let mut extra = std::os::unix::net::UnixStream::connect(&s.socket).unwrap();
    extra
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut said = String::new();
    std::io::Read::read_to_string(&mut extra, &mut said).expect("closed within 10 s");
    match serde_json::from_str(said.trim_end()) {
        Ok(ServerLine::Error {
            code: ErrorCode::Busy,
            ..
        }) => {}
        other => panic!("expected one busy line, then the end: {said:?} {other:?}"),
    }
    // A held connection still works; once one closes, a new client gets in.
    let _ = held[0].stats().await;
    drop(held.pop());
    let start = Instant::now();
    loop {
        match mcp_cors::client::Client::connect(&s.socket).await {
            Ok(_) => break,
            Err(ClientError::Refused {
                code: ErrorCode::Busy,
                ..
            }) => assert!(start.elapsed() < Duration::from_secs(5), "still busy"),
            Err(other) => panic!("{other}"),
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    s.server.handle.stop(true).await;
}
