//! Metrics (the `metrics` feature): the decision, reload and listener metrics counted
//! through a real actix app and rendered by `metrics-exporter-prometheus`, checked by
//! `promtool check metrics`; and the example server scraped by a real Prometheus server,
//! which sees the counters move. Both tools come from Debian's `prometheus` package: the
//! tests fail, not skip, without them.

use std::io::Write;
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use actix_web::{App, HttpResponse, test as actix_test, web};
use mcp_cors::McpCors;
use metrics_exporter_prometheus::PrometheusBuilder;

mod support;
use support::example::{Example, free_port};
use support::http::http;

const POLICY: &str = r#"
allowed_origins = ["https://app.example"]
[routes.meta]
paths = ["/meta/*"]
allowed_origins = ["*"]
"#;

/// The value of the series whose name and labels are exactly `series` in `text`.
fn value(text: &str, series: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        l.strip_prefix(series)?
            .strip_prefix(' ')?
            .trim()
            .parse()
            .ok()
    })
}

/// `promtool check metrics` on `text`: its exit status and what it said.
fn promtool_check(text: &str) -> (bool, String) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool (Debian package prometheus) must be installed");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("feed promtool");
    let out = child.wait_with_output().expect("promtool ran");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    (out.status.success(), said)
}

fn request(path: &str, origin: Option<&str>, host: &str) -> actix_test::TestRequest {
    let mut req = actix_test::TestRequest::post()
        .uri(path)
        .insert_header(("Host", host));
    if let Some(origin) = origin {
        req = req.insert_header(("Origin", origin));
    }
    req
}

#[actix_web::test]
async fn decisions_reloads_and_listeners_are_counted_with_closed_labels() {
    let handle = PrometheusBuilder::new()
        .install_recorder()
        .expect("the only recorder of this test binary");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("cors.toml");
    std::fs::write(&file, POLICY).unwrap();
    let cors = McpCors::try_watched(&file).expect("the policy loads");
    let app = actix_test::init_service(
        App::new()
            .default_service(web::to(HttpResponse::Ok))
            .wrap(cors.clone()),
    )
    .await;
    let send = |req: actix_test::TestRequest| actix_test::call_service(&app, req.to_request());
    for _ in 0..3 {
        assert_eq!(
            send(request("/mcp", Some("https://app.example"), "localhost"))
                .await
                .status(),
            200
        );
    }
    for _ in 0..2 {
        assert_eq!(
            send(request("/mcp", Some("https://evil.example"), "localhost"))
                .await
                .status(),
            403
        );
    }
    assert_eq!(
        send(request("/mcp", None, "evil.example")).await.status(),
        403
    );
    assert_eq!(
        send(request(
            "/mcp",
            Some("https://evil.example:99999"),
            "localhost"
        ))
        .await
        .status(),
        403
    );
    assert_eq!(
        send(request(
            "/meta/doc",
            Some("https://any.example"),
            "localhost"
        ))
        .await
        .status(),
        200
    );
    let preflight = actix_test::TestRequest::default()
        .method(actix_web::http::Method::OPTIONS)
        .uri("/mcp")
        .insert_header(("Host", "localhost"))
        .insert_header(("Origin", "https://app.example"))
        .insert_header(("Access-Control-Request-Method", "PUT"));
    assert_eq!(send(preflight).await.status(), 403);

    // A refused edit, then a good one: both reloads are counted, and the last one's result
    // is the gauge.
    std::fs::write(&file, "allowed_origins = [\"not an origin\"]\n").unwrap();
    let waited = Instant::now();
    while cors.status().last_error.is_none() {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "the bad edit is never refused"
        );
        thread::sleep(Duration::from_millis(20));
    }
    let rejected = handle.render();
    std::fs::write(&file, POLICY.replace("app.example", "app2.example")).unwrap();
    while cors.policy().settings().allowed_origins != ["https://app2.example"] {
        assert!(
            waited.elapsed() < Duration::from_secs(10),
            "the good edit never applies"
        );
        thread::sleep(Duration::from_millis(20));
    }

    let text = handle.render();
    let decisions = |labels: &str| value(&text, &format!("mcp_cors_decisions_total{{{labels}}}"));
    assert_eq!(
        decisions(r#"verdict="allow",reason="none",route="""#),
        Some(3.0),
        "{text}"
    );
    assert_eq!(
        decisions(r#"verdict="deny",reason="origin",route="""#),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        decisions(r#"verdict="deny",reason="host",route="""#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        decisions(r#"verdict="deny",reason="malformed",route="""#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        decisions(r#"verdict="deny",reason="method",route="""#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        decisions(r#"verdict="allow",reason="none",route="meta""#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, "mcp_cors_preflights_total"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"mcp_cors_policy_reloads_total{result="ok"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"mcp_cors_policy_reloads_total{result="rejected"}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&rejected, "mcp_cors_policy_last_reload_success"),
        Some(0.0),
        "{rejected}"
    );
    assert_eq!(
        value(&text, "mcp_cors_policy_last_reload_success"),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"mcp_cors_policy_origins{route=""}"#),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        value(&text, r#"mcp_cors_policy_origins{route="meta"}"#),
        Some(1.0),
        "{text}"
    );
    let stamp = value(&text, "mcp_cors_policy_last_reload_timestamp_seconds").unwrap_or(0.0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert!(
        (now - 60.0..=now + 1.0).contains(&stamp),
        "{stamp} vs {now}"
    );
    // No raw origin, host or path in any label: the set of series is bounded.
    for leak in ["evil.example", "app.example", "/mcp", "99999"] {
        assert!(
            !text.contains(leak),
            "{leak} leaked into the metrics:\n{text}"
        );
    }
    let (ok, said) = promtool_check(&text);
    assert!(ok, "promtool refused the metrics: {said}\n{text}");
}

/// A Prometheus server scraping `target` every second, on its own port and storage.
struct Prometheus {
    child: Child,
    addr: SocketAddr,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    fn start(target: SocketAddr) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("prometheus.yml");
        std::fs::write(
            &config,
            format!(
                "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\nscrape_configs:\n  \
                 - job_name: mcp\n    static_configs:\n      - targets: ['{target}']\n"
            ),
        )
        .unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let child = Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("prometheus (Debian package prometheus) must be installed");
        Prometheus {
            child,
            addr,
            _dir: dir,
        }
    }

    /// The value of the instant query `query` (a single number), if it has one yet.
    fn query(&self, query: &str) -> Option<f64> {
        let encoded: String = query
            .bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'_' => (b as char).to_string(),
                _ => format!("%{b:02X}"),
            })
            .collect();
        let head = format!(
            "GET /api/v1/query?query={encoded} HTTP/1.1\r\nHost: {}",
            self.addr
        );
        let (status, _, body) = std::panic::catch_unwind(|| http(self.addr, &head)).ok()?;
        if status != 200 {
            return None;
        }
        let json: serde_json::Value = serde_json::from_str(&body).ok()?;
        json["data"]["result"][0]["value"][1].as_str()?.parse().ok()
    }

    /// Waits (up to 60 s) for `query` to reach at least `at_least`.
    fn wait_for(&self, query: &str, at_least: f64) -> f64 {
        let start = Instant::now();
        loop {
            match self.query(query) {
                Some(v) if v >= at_least => return v,
                seen => assert!(
                    start.elapsed() < Duration::from_secs(60),
                    "Prometheus never saw {query} >= {at_least} (last: {seen:?})"
                ),
            }
            thread::sleep(Duration::from_millis(250));
        }
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_real_prometheus_scrapes_the_example_server_and_sees_refusals_counted() {
    let example = Example::start();
    let addr = example.addr;
    // Scraped as Prometheus does, with the pod's address as Host: the `metrics` route.
    let (status, _, body) = http(
        addr,
        &format!("GET /metrics HTTP/1.1\r\nHost: 10.1.2.3:{}", addr.port()),
    );
    assert_eq!(status, 200, "{body}");
    let (ok, said) = promtool_check(&body);
    assert!(ok, "promtool refused the example's metrics: {said}\n{body}");

    let refuse = |n: usize| {
        for _ in 0..n {
            let head = format!(
                "POST /mcp HTTP/1.1\r\nHost: localhost:{}\r\nOrigin: https://evil.example",
                addr.port()
            );
            assert_eq!(http(addr, &head).0, 403);
        }
    };
    let prometheus = Prometheus::start(addr);
    let query = r#"sum(mcp_cors_decisions_total{verdict="deny",reason="origin"})"#;
    refuse(5);
    prometheus.wait_for(query, 5.0);
    refuse(7);
    let seen = prometheus.wait_for(query, 12.0);
    assert_eq!(seen, 12.0, "exactly the refusals sent");
    assert_eq!(prometheus.query("up"), Some(1.0), "the scrape target is up");
}
