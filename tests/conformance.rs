//! The official MCP conformance suite (`@modelcontextprotocol/conformance` 0.1.16, run
//! with Node 22 through `npx`) against the example server, as a user starts it: the real
//! `mcp_server` binary with the repository's own `examples/cors.toml`.
//!
//! It needs `npx` (Node.js and npm) and the npm registry the first time (npx caches the
//! packages). Without `npx` the test fails, naming what to install: it never skips.

mod support;

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use support::example::Example;

/// The scenarios the example server must pass (issue 14).
const SCENARIOS: &[&str] = &[
    "dns-rebinding-protection",
    "server-initialize",
    "ping",
    "tools-list",
    "server-sse-multiple-streams",
];
/// The suite's version, pinned so that a new release cannot change what passes.
const SUITE: &str = "@modelcontextprotocol/conformance@0.1.16";
/// One scenario, the first run's download of Node 22 and the suite included.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(300);

/// The outcome of one scenario: whether it passed, and everything the suite printed.
struct Outcome {
    passed: bool,
    output: String,
}

/// Runs one scenario with `npx -y -p node@22 -p SUITE -- conformance server …`.
fn run_scenario(url: &str, scenario: &str) -> Outcome {
    let mut child = match Command::new("npx")
        .args(["-y", "-p", "node@22", "-p", SUITE, "--"])
        .args([
            "conformance",
            "server",
            "--url",
            url,
            "--scenario",
            scenario,
        ])
        .env("NO_COLOR", "1")
        .env("npm_config_update_notifier", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    {
        Ok(child) => child,
        Err(e) => panic!(
            "cannot run npx ({e}): the MCP conformance suite needs Node.js and npm \
             (Debian: apt-get install nodejs npm); .ci/run installs them"
        ),
    };
    // Read both pipes as the suite writes, so that it never blocks on a full pipe.
    let readers: Vec<_> = [
        child
            .stdout
            .take()
            .map(|o| Box::new(o) as Box<dyn Read + Send>),
        child
            .stderr
            .take()
            .map(|e| Box::new(e) as Box<dyn Read + Send>),
    ]
    .into_iter()
    .flatten()
    .map(|mut pipe| {
        thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    })
    .collect();
    let start = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for npx") {
            break Some(status);
        }
        if start.elapsed() > SCENARIO_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(100));
    };
    let output: String = readers
        .into_iter()
        .map(|r| r.join().unwrap_or_default())
        .collect();
    let passed = status.is_some_and(|s| s.success());
    let output = match status {
        Some(status) => format!("{status}\n{output}"),
        None => format!("timed out after {SCENARIO_TIMEOUT:?}\n{output}"),
    };
    Outcome { passed, output }
}

#[test]
fn the_example_server_passes_the_official_mcp_conformance_scenarios() {
    let mut server = Example::start_logged();
    let url = server.url();
    let mut failed = Vec::new();
    for scenario in SCENARIOS {
        let outcome = run_scenario(&url, scenario);
        // The suite exits 0 only when every check of the scenario passed; its summary
        // line is checked too, so that a suite that ran nothing does not pass.
        if outcome.passed && outcome.output.contains(", 0 failed") {
            eprintln!("conformance {scenario}: passed");
        } else {
            failed.push(format!("== {scenario}\n{}", outcome.output));
        }
    }
    if !failed.is_empty() {
        panic!(
            "{} of {} conformance scenarios failed against {url}:\n{}\n== the example server's log\n{}",
            failed.len(),
            SCENARIOS.len(),
            failed.join("\n"),
            server.log()
        );
    }
}
