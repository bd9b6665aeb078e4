//! The etcd source (issue 15, SPEC §10) against a real etcd started by the test, and the
//! `PolicyBackend` trait with an in-memory store: values followed and applied whole,
//! invalid ones kept out, outages survived without slowing a request, the cache served
//! at a start during an outage, admin edits by compare-and-swap answered once served.

mod common;
#[path = "../../tests/support/etcd.rs"]
mod etcd;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::Method;
use futures_util::StreamExt;
use mcp_cors::protocol::{AuditAction, AuditRecord, AuditSource, Request, ServerLine};
use mcp_cors::{
    BackendError, BoxFuture, Change, ChangeStream, EtcdBackend, McpCors, PolicyBackend, Snapshot,
    Source,
};

use etcd::Etcd;

const A: &str = "https://a.example.com";
const B: &str = "https://b.example.com";
// Each test has a `KEY` of its own, so that their admin sockets (named after the key)
// differ.
/// How long a change may take to be served, on a loaded machine.
const BOUND: Duration = Duration::from_secs(5);

fn policy(origins: &[&str]) -> String {
    let list: Vec<String> = origins.iter().map(|o| format!("{o:?}")).collect();
    format!(
        "# the fleet's policy\nallowed_origins = [{}]\n",
        list.join(", ")
    )
}

fn origins(cors: &McpCors) -> Vec<String> {
    cors.policy().settings().allowed_origins.clone()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !done() {
        assert!(Instant::now() < deadline, "not within {BOUND:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn source(etcd: &Etcd, key: &str) -> Source {
    Source::parse(&etcd.uri(key)).expect("the URI parses")
}

#[test]
fn a_value_is_served_and_every_change_followed_and_an_invalid_one_kept_out() {
    const KEY: &str = "/mcp/a_value_is_served_and_every_change_follo";
    let etcd = Etcd::start();
    etcd.put(KEY, &policy(&[A]));
    let cors = McpCors::try_watched(source(&etcd, KEY)).expect("etcd is up and the value valid");
    assert_eq!(origins(&cors), [A]);
    assert_eq!(
        cors.status().source.as_deref(),
        Some(std::path::Path::new(&format!(
            "etcd://{}{KEY}",
            etcd.endpoint()
        )))
    );
    // Workers of one process share one follower.
    let again = McpCors::watched(source(&etcd, KEY));
    assert!(again.shares_policy_with(&cors));

    etcd.put(KEY, &policy(&[A, B]));
    wait_until("the new value serves", || origins(&cors) == [A, B]);

    etcd.put(KEY, "allowed_origins = [\"https://x.example/path\"]\n");
    wait_until("the invalid value is reported", || {
        cors.status().last_error.is_some()
    });
    let error = cors.status().last_error.unwrap();
    assert!(error.message.contains("etcd://"), "{}", error.message);
    assert_eq!(origins(&cors), [A, B], "the last good policy keeps serving");

    etcd.put(KEY, &policy(&[B]));
    wait_until("a valid value serves again", || origins(&cors) == [B]);
    assert!(cors.status().last_error.is_none());
}

#[test]
fn without_etcd_try_watched_names_the_endpoint_and_watched_fails_closed() {
    const KEY: &str = "/mcp/without_etcd_try_watched_names_the_endpo";
    let mut etcd = Etcd::start();
    etcd.kill();
    let error = McpCors::try_watched(source(&etcd, KEY)).expect_err("etcd is down, no cache");
    assert!(error.to_string().contains(&etcd.endpoint()), "{error}");

    let cors = McpCors::watched(source(&etcd, KEY));
    assert!(!cors.status().loaded);
    let reason = cors
        .status()
        .last_error
        .expect("the outage is reported")
        .message;
    assert!(reason.contains(&etcd.endpoint()), "{reason}");

    // It keeps trying: once etcd answers with a value, it serves.
    etcd.restart();
    etcd.put(KEY, &policy(&[A]));
    wait_until("the value serves once etcd is back", || {
        origins(&cors) == [A]
    });
    assert!(cors.status().loaded);
}

#[test]
fn a_start_during_an_outage_serves_the_cache_and_switches_to_etcd_when_it_answers() {
    const KEY: &str = "/mcp/a_start_during_an_outage_serves_the_cach";
    let mut etcd = Etcd::start();
    let cache = etcd.scratch().join("cache/cors.toml");
    let uri = format!("{}?cache={}", etcd.uri(KEY), cache.display());
    etcd.put(KEY, &policy(&[A]));
    {
        let cors = McpCors::try_watched(Source::parse(&uri).unwrap()).unwrap();
        assert_eq!(origins(&cors), [A]);
        wait_until("the cache is written", || {
            std::fs::read_to_string(&cache).is_ok_and(|c| c == policy(&[A]))
        });
    }
    etcd.kill();
    let cors = McpCors::try_watched(Source::parse(&uri).unwrap()).expect("the cache serves");
    assert_eq!(origins(&cors), [A]);
    let status = cors.status();
    assert_eq!(status.cached.as_deref(), Some(cache.as_path()));
    let said = status.last_error.expect("the outage is reported").message;
    assert!(said.contains("cached"), "{said}");

    etcd.restart();
    etcd.put(KEY, &policy(&[B]));
    wait_until("etcd's value replaces the cache's", || {
        origins(&cors) == [B]
    });
    assert_eq!(cors.status().cached, None);
}

#[test]
fn after_an_outage_the_watch_resumes_and_the_next_change_is_served_within_3s() {
    const KEY: &str = "/mcp/after_an_outage_the_watch_resumes_and_th";
    let mut etcd = Etcd::start();
    etcd.put(KEY, &policy(&[A]));
    let cors = McpCors::try_watched(source(&etcd, KEY)).unwrap();
    etcd.kill();
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(origins(&cors), [A], "an outage changes nothing");
    etcd.restart();
    let put = Instant::now();
    etcd.put(KEY, &policy(&[B]));
    wait_until("the change after the outage", || origins(&cors) == [B]);
    let took = put.elapsed();
    assert!(took < Duration::from_secs(3), "took {took:?}");
}

#[test]
fn a_compacted_revision_is_reported_by_the_etcd_backend() {
    const KEY: &str = "/mcp/a_compacted_revision_is_reported_by_the_";
    let etcd = Etcd::start();
    let first = etcd.put(KEY, &policy(&[A]));
    etcd.put(KEY, &policy(&[B]));
    let last = etcd.put(KEY, &policy(&[A, B]));
    etcd.compact(last);
    let backend = EtcdBackend::new(match source(&etcd, KEY) {
        Source::Etcd(e) => e,
        Source::File(_) => unreachable!(),
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let mut changes = backend.watch(first).await.expect("a watch");
        let change = tokio::time::timeout(BOUND, changes.next())
            .await
            .expect("an answer");
        assert!(matches!(change, Some(Ok(Change::Compacted))), "{change:?}");
        let snapshot = backend.read().await.unwrap();
        assert_eq!(snapshot.value.as_deref(), Some(policy(&[A, B]).as_bytes()));
        assert_eq!(snapshot.revision, last);
    });
}

#[test]
fn an_admin_edit_goes_to_etcd_keeps_comments_and_is_served_when_answered() {
    const KEY: &str = "/mcp/an_admin_edit_goes_to_etcd_keeps_comment";
    let etcd = Etcd::start();
    let socket = etcd.scratch().join("admin.sock");
    let value = format!(
        "# kept by the fleet team\nallowed_origins = [\n  {A:?}, # the app\n]\n\n[admin]\nsocket = {:?}\n",
        socket.display().to_string()
    );
    etcd.put(KEY, &value);
    let cors = McpCors::try_watched(source(&etcd, KEY)).unwrap();
    assert_eq!(cors.admin_socket().as_deref(), Some(socket.as_path()));
    actix_web::rt::System::new().block_on(async {
        let mut client = common::client::Client::connect(&socket).await;
        let reply = client
            .call(Request::AddOrigin {
                origin: B.into(),
                force: false,
                route: None,
            })
            .await;
        assert!(
            matches!(&reply, ServerLine::OriginChanged { changed: true, .. }),
            "{reply:?}"
        );
    });
    // Read-your-writes: served as soon as the reply came.
    assert_eq!(origins(&cors), [A, B]);
    let stored = etcd.get(KEY).unwrap();
    assert!(stored.contains("# kept by the fleet team"), "{stored}");
    assert!(stored.contains("# the app"), "{stored}");
}

#[test]
fn audit_an_admin_edit_once_with_its_peer_and_a_put_from_elsewhere_as_a_reload() {
    const KEY: &str = "/mcp/audit_an_admin_edit_once_with_its_peer_an";
    const C: &str = "https://c.example.com";
    let etcd = Etcd::start();
    let socket = etcd.scratch().join("audit.sock");
    let log = etcd.scratch().join("audit.jsonl");
    let value = |origins: &[&str]| {
        format!(
            "{}\n[admin]\nsocket = {:?}\naudit_log = {:?}\n",
            policy(origins),
            socket.display().to_string(),
            log.display().to_string()
        )
    };
    etcd.put(KEY, &value(&[A]));
    let cors = McpCors::try_watched(source(&etcd, KEY)).unwrap();
    let records = actix_web::rt::System::new().block_on(async {
        let mut client = common::client::Client::connect(&socket).await;
        let reply = client
            .call(Request::AddOrigin {
                origin: B.into(),
                force: false,
                route: None,
            })
            .await;
        assert!(
            matches!(&reply, ServerLine::OriginChanged { changed: true, .. }),
            "{reply:?}"
        );
        // Another writer (another replica, etcdctl) puts a new value.
        etcd.put(KEY, &value(&[A, B, C]));
        wait_until("the put serves", || origins(&cors) == [A, B, C]);
        match client.call(Request::Audit { limit: None }).await {
            ServerLine::Audit { records } => records,
            other => panic!("not an audit reply: {other:?}"),
        }
    });
    assert_eq!(
        records.len(),
        2,
        "the edit's own put is not a reload too: {records:#?}"
    );
    let (edit, reload) = (&records[0], &records[1]);
    assert_eq!(edit.action, AuditAction::AddOrigin);
    assert_eq!(edit.origin.as_deref(), Some(B));
    assert_eq!(
        edit.pid,
        Some(std::process::id()),
        "the peer is this test process"
    );
    assert!(edit.uid.is_some() && edit.diff.is_none());
    assert_eq!(reload.action, AuditAction::Reload);
    assert_eq!(reload.source, Some(AuditSource::Remote));
    let diff = reload.diff.as_ref().expect("a reload's diff");
    assert_eq!(diff.origins_added, [C]);
    assert!(reload.uid.is_none() && reload.pid.is_none());
    wait_until("both records in the file", || {
        std::fs::read_to_string(&log).is_ok_and(|t| t.lines().count() == 2)
    });
    let lines: Vec<AuditRecord> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines, records);
}

#[test]
fn concurrent_edits_by_compare_and_swap_never_lose_one_another() {
    const KEY: &str = "/mcp/concurrent_edits_by_compare_and_swap_nev";
    let etcd = Etcd::start();
    etcd.put(KEY, &policy(&[A]));
    let backend = Arc::new(EtcdBackend::new(match source(&etcd, KEY) {
        Source::Etcd(e) => e,
        Source::File(_) => unreachable!(),
    }));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let backend = Arc::clone(&backend);
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                for i in 0..20 {
                    let request = Request::AddOrigin {
                        origin: format!("https://w{w}-{i}.example.com"),
                        force: false,
                        route: None,
                    };
                    runtime
                        .block_on(mcp_cors::edit_remote(&*backend, &request))
                        .expect("the edit lands");
                }
            })
        })
        .collect();
    for writer in writers {
        writer.join().unwrap();
    }
    let stored = etcd.get(KEY).unwrap();
    let policy = mcp_cors::Policy::from_toml_str(&stored).unwrap();
    assert_eq!(policy.settings().allowed_origins.len(), 41, "{stored}");
    assert!(stored.starts_with("# the fleet's policy"), "{stored}");
}

/// Requests through a real actix app cost the same while etcd is down as while it is up:
/// the request path reads the store only.
#[test]
fn an_etcd_outage_does_not_slow_a_request() {
    const KEY: &str = "/mcp/an_etcd_outage_does_not_slow_a_request";
    let mut etcd = Etcd::start();
    etcd.put(KEY, &policy(&[A]));
    let cors = McpCors::try_watched(source(&etcd, KEY)).unwrap();
    actix_web::rt::System::new().block_on(async {
        let (app, _) = common::service_with(cors).await;
        let time = |n: usize| {
            let app = &app;
            async move {
                let start = Instant::now();
                for _ in 0..n {
                    let req = common::request(Method::POST, "/mcp")
                        .insert_header(("origin", A))
                        .to_request();
                    let res = actix_web::test::call_service(app, req).await;
                    assert_eq!(res.status(), 200);
                }
                start.elapsed()
            }
        };
        time(500).await;
        // Alternated, so that neither state gets the warmer (or quieter) machine.
        let (mut up, mut down) = (Duration::MAX, Duration::MAX);
        for _ in 0..3 {
            for _ in 0..2 {
                up = up.min(time(5000).await);
            }
            etcd.kill();
            for _ in 0..2 {
                down = down.min(time(5000).await);
            }
            etcd.restart();
        }
        let ratio = down.as_secs_f64() / up.as_secs_f64();
        println!("5000 requests (best of 6, alternated): etcd up {up:?}, etcd down {down:?}, ratio {ratio:.2}");
        // Other tests of this file run beside this one, on a machine of two cores, so
        // the best of six still moves by up to 1.6× either way (0.71 and 1.59 were both
        // seen with no change to the request path). A request that waited on etcd would
        // be slower by its connect timeout, many times over, not by a fraction.
        assert!(ratio < 2.0, "etcd down made requests {ratio:.2}× slower");
    });
}

/// A store in memory: the trait is enough to plug one in.
#[derive(Debug)]
struct Memory {
    state: Mutex<(Vec<u8>, u64)>,
    changes: tokio::sync::broadcast::Sender<Result<Change, String>>,
}

impl Memory {
    fn new(text: &str) -> Arc<Memory> {
        Arc::new(Memory {
            state: Mutex::new((text.as_bytes().to_vec(), 1)),
            changes: tokio::sync::broadcast::channel(64).0,
        })
    }

    fn put(&self, text: &str) {
        let mut state = self.state.lock().unwrap();
        *state = (text.as_bytes().to_vec(), state.1 + 1);
        let _ = self.changes.send(Ok(Change::Put {
            value: state.0.clone(),
            revision: state.1,
        }));
    }

    fn compact(&self) {
        let _ = self.changes.send(Ok(Change::Compacted));
    }
}

impl PolicyBackend for Memory {
    fn name(&self) -> String {
        format!("memory://{:p}", self)
    }

    fn read(&self) -> BoxFuture<'_, Result<Snapshot, BackendError>> {
        let (value, revision) = self.state.lock().unwrap().clone();
        Box::pin(async move {
            Ok(Snapshot {
                value: Some(value),
                mod_revision: revision,
                revision,
            })
        })
    }

    fn watch(&self, from: u64) -> BoxFuture<'_, Result<ChangeStream, BackendError>> {
        // Subscribed under the lock: a put is either in the state seen here or sent later.
        let state = self.state.lock().unwrap();
        let rx = self.changes.subscribe();
        let missed = (state.1 >= from).then(|| {
            Ok(Change::Put {
                value: state.0.clone(),
                revision: state.1,
            })
        });
        Box::pin(async move {
            let later = futures_util::stream::unfold(rx, |mut rx| async move {
                let next = rx.recv().await.ok()?;
                Some((next.map_err(BackendError::message), rx))
            });
            Ok(Box::pin(futures_util::stream::iter(missed).chain(later)) as ChangeStream)
        })
    }

    fn compare_and_swap(
        &self,
        value: Vec<u8>,
        expected: u64,
    ) -> BoxFuture<'_, Result<Option<u64>, BackendError>> {
        let mut state = self.state.lock().unwrap();
        let done = (state.1 == expected).then(|| {
            *state = (value, state.1 + 1);
            let _ = self.changes.send(Ok(Change::Put {
                value: state.0.clone(),
                revision: state.1,
            }));
            state.1
        });
        Box::pin(async move { Ok(done) })
    }
}

#[test]
fn a_custom_backend_is_followed_and_read_again_after_a_compaction() {
    let memory = Memory::new(&policy(&[A]));
    let cors = McpCors::from_source(memory.clone()).expect("a valid value");
    assert_eq!(origins(&cors), [A]);
    memory.put(&policy(&[B]));
    wait_until("the put serves", || origins(&cors) == [B]);
    memory.put("mode = \"sometimes\"\n");
    wait_until("the invalid put is refused", || {
        cors.status().last_error.is_some()
    });
    assert_eq!(origins(&cors), [B]);
    // Changed without a watch event, then compacted: only a new read finds it.
    *memory.state.lock().unwrap() = (policy(&[A, B]).into_bytes(), 10);
    memory.compact();
    wait_until("the value read again after the compaction", || {
        origins(&cors) == [A, B]
    });
    let edited = actix_web::rt::System::new().block_on(mcp_cors::edit_remote(
        &*memory,
        &Request::RemoveOrigin {
            origin: A.into(),
            route: None,
        },
    ));
    assert!(edited.unwrap().changed);
    wait_until("the edit serves", || origins(&cors) == [B]);
}
