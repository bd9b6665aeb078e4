//! Measures hot-reload latency: from the moment a policy file is written to the first
//! request served under the new policy, over 100 reloads. Prints median, p90 and worst.
//!
//! ```sh
//! cargo run --release --example reload_latency -- [RELOADS]
//! ```

use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::{App, HttpResponse, test, web};
use mcp_cors::McpCors;

fn policy(origin: &str) -> String {
    format!("# reload latency run\nallowed_origins = [{origin:?}]\n")
}

#[actix_web::main]
async fn main() {
    let reloads: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100);
    let dir = tempfile::tempdir().expect("a temporary folder");
    let path = dir.path().join("cors.toml");
    std::fs::write(&path, policy("https://gen-start.example.com")).expect("write the policy");
    let cors = McpCors::try_watched(&path).expect("a valid policy");
    let app = test::init_service(
        App::new()
            .wrap(cors.clone())
            .default_service(web::to(HttpResponse::Ok)),
    )
    .await;

    let mut latencies = Vec::with_capacity(reloads);
    for i in 0..reloads {
        let origin = format!("https://gen-{i}.example.com");
        let written = Instant::now();
        std::fs::write(&path, policy(&origin)).expect("write the policy");
        loop {
            let req = test::TestRequest::post()
                .uri("/mcp")
                .insert_header(("host", "localhost"))
                .insert_header(("origin", origin.as_str()))
                .to_request();
            if test::call_service(&app, req).await.status() == StatusCode::OK {
                break;
            }
            assert!(
                written.elapsed() < Duration::from_secs(5),
                "reload {i} never served"
            );
            actix_web::rt::time::sleep(Duration::from_micros(200)).await;
        }
        latencies.push(written.elapsed());
        // Let the folder go quiet, so each write is its own reload.
        actix_web::rt::time::sleep(Duration::from_millis(60)).await;
    }
    latencies.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q).round() as usize];
    println!(
        "reloads: {reloads} (swaps counted by the store: {})",
        cors.status().reloads
    );
    println!("write -> first request served under the new policy:");
    println!(
        "  min {:.1} ms  median {:.1} ms  p90 {:.1} ms  worst {:.1} ms",
        ms(latencies[0]),
        ms(at(0.5)),
        ms(at(0.9)),
        ms(latencies[latencies.len() - 1])
    );
}
