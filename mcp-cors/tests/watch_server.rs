//! Hot reload in a real `HttpServer` over real sockets: several workers sharing one
//! policy, load during a rewrite storm, and streams that survive a reload.

mod common;

use common::server::{post, start};

use std::fs;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use futures_util::StreamExt;

const A: &str = "https://a.example.com";
const B: &str = "https://b.example.com";
const BOUND: Duration = Duration::from_millis(1500);

fn policy(origins: &[&str]) -> String {
    let quoted: Vec<String> = origins.iter().map(|o| format!("{o:?}")).collect();
    format!("allowed_origins = [{}]\n", quoted.join(", "))
}

async fn wait_until_allowed(addr: SocketAddr, origin: &str) {
    let start = Instant::now();
    while post(addr, origin).await.0 != 200 {
        assert!(
            start.elapsed() < BOUND,
            "{origin} not allowed within {BOUND:?}"
        );
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
}

#[actix_web::test]
async fn all_workers_share_one_policy_and_one_watcher() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cors.toml");
    fs::write(&path, policy(&[A])).unwrap();
    let server = start(&path, 4);

    let start_time = Instant::now();
    while server.made.lock().unwrap().len() < 4 {
        assert!(start_time.elapsed() < BOUND, "workers did not start");
        actix_web::rt::time::sleep(Duration::from_millis(5)).await;
    }
    {
        let made = server.made.lock().unwrap();
        assert!(
            made.iter().all(|m| m.shares_policy_with(&made[0])),
            "one store for every worker"
        );
    }
    assert_eq!(
        common::inotify::watches_on(dir.path()),
        1,
        "one watcher for every worker"
    );

    for _ in 0..16 {
        assert_eq!(post(server.addr, A).await, (200, Some(A.to_owned())));
    }
    fs::write(&path, policy(&[B])).unwrap();
    wait_until_allowed(server.addr, B).await;
    // Every worker serves the new policy: many fresh connections, none disagrees.
    for _ in 0..32 {
        assert_eq!(post(server.addr, B).await.0, 200);
        assert_eq!(post(server.addr, A).await.0, 403);
    }
    server.handle.stop(true).await;
}

#[actix_web::test]
async fn requests_keep_succeeding_while_the_file_is_rewritten_100_times() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cors.toml");
    fs::write(&path, policy(&[A])).unwrap();
    let server = start(&path, 2);
    wait_until_allowed(server.addr, A).await;

    let writer = std::thread::spawn({
        let path = path.clone();
        move || {
            for i in 0..100 {
                // Every version allows A and differs from the others, so each one that
                // lands is a real swap.
                let extra = format!("https://gen-{i}.example.com");
                fs::write(&path, policy(&[A, &extra])).unwrap();
                std::thread::sleep(Duration::from_millis(15));
            }
        }
    });

    let client = awc::Client::builder()
        .timeout(Duration::from_secs(5))
        .finish();
    let clients: Vec<_> = (0..8)
        .map(|_| {
            let client = client.clone();
            let url = format!("http://{}/mcp", server.addr);
            actix_web::rt::spawn(async move {
                let mut answered = 0u32;
                let deadline = Instant::now() + Duration::from_millis(1800);
                while Instant::now() < deadline {
                    let res = client.post(&url).insert_header(("origin", A)).send().await;
                    let res = res.unwrap_or_else(|e| panic!("request failed during reloads: {e}"));
                    assert_eq!(
                        res.status().as_u16(),
                        200,
                        "a request failed during reloads"
                    );
                    assert_eq!(res.headers().get("access-control-allow-origin").unwrap(), A);
                    answered += 1;
                }
                answered
            })
        })
        .collect();
    let mut total = 0;
    for c in clients {
        total += c.await.unwrap();
    }
    writer.join().unwrap();
    assert!(total > 100, "only {total} requests were answered");
    let reloads = server.made.lock().unwrap()[0].status().reloads;
    assert!(
        reloads >= 5,
        "the storm should have swapped the policy many times, saw {reloads}"
    );
    server.handle.stop(true).await;
}

#[actix_web::test]
async fn an_open_stream_survives_a_reload_that_removes_its_origin() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cors.toml");
    fs::write(&path, policy(&[A])).unwrap();
    let server = start(&path, 1);
    wait_until_allowed(server.addr, A).await;

    let mut res = awc::Client::new()
        .get(format!("http://{}/events", server.addr))
        .insert_header(("origin", A))
        .send()
        .await
        .unwrap();
    assert_eq!(res.headers().get("access-control-allow-origin").unwrap(), A);
    let mut body = Vec::new();
    while !String::from_utf8_lossy(&body).contains("data: 2\n") {
        body.extend_from_slice(&res.next().await.unwrap().unwrap());
    }
    fs::write(&path, policy(&[B])).unwrap();
    wait_until_allowed(server.addr, B).await;
    assert_eq!(
        post(server.addr, A).await.0,
        403,
        "new requests see the new policy"
    );

    // The stream decided under the old policy runs to its end.
    while let Some(chunk) = res.next().await {
        body.extend_from_slice(&chunk.unwrap());
    }
    assert!(String::from_utf8_lossy(&body).ends_with("data: 19\n\n"));
    server.handle.stop(true).await;
}
