//! `origins|hosts list|add|remove --route NAME` against a real server (`McpCors::watched`
//! over a real admin socket) with the real binary: output, exit codes, the file, and what
//! requests to the route's paths and to `/mcp` get.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Output;
use std::time::Duration;

use common::{Server, run, s};

const DOCS: &str = "https://docs.example.com";

const POLICY: &str = "\
# Test policy.
allowed_origins = [\"https://app.example.com\"]  # the app

# OAuth discovery metadata.
[routes.meta]
paths = [\"/.well-known/*\"]
# Same origins as the app, for now.

[routes.health]
paths = [\"/health\"]
guard = false
";

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Status of a `POST path` with `Host: host` and, if given, `Origin: origin`.
fn post(addr: SocketAddr, path: &str, host: &str, origin: Option<&str>) -> u16 {
    let mut stream = TcpStream::connect(addr).expect("connect to the server");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let origin = origin.map_or(String::new(), |o| format!("Origin: {o}\r\n"));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: {host}\r\n{origin}Content-Length: 0\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).expect("send request");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read response");
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP response: {response:?}"))
}

const META: &str = "/.well-known/oauth-protected-resource";

#[test]
fn origins_with_route_list_add_and_remove_that_routes_list_only() {
    let server = Server::start(POLICY);
    let config = s(&server.config);
    let from = |path: &str, origin: &str| post(server.addr, path, "localhost", Some(origin));
    // The route inherits the top level's list, and lists it.
    assert_eq!(
        stdout(&run(&[
            "origins", "list", "--route", "meta", "--config", config
        ])),
        "https://app.example.com\n"
    );
    assert_eq!(from(META, DOCS), 403);

    let out = run(&[
        "origins", "add", DOCS, "--route", "meta", "--config", config,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("allowed {DOCS} (route meta)\n"));
    assert_eq!(from(META, DOCS), 200, "the reply comes once it serves");
    assert_eq!(
        from(META, "https://app.example.com"),
        200,
        "inherited, kept"
    );
    assert_eq!(from("/mcp", DOCS), 403, "the top level is unchanged");
    assert_eq!(
        server.policy_text(),
        POLICY.replace(
            "paths = [\"/.well-known/*\"]\n",
            "paths = [\"/.well-known/*\"]\nallowed_origins = [\"https://app.example.com\", \"https://docs.example.com\"]\n"
        ),
        "written in [routes.meta] after its last key, comments kept"
    );
    assert_eq!(
        stdout(&run(&[
            "origins", "list", "--route", "meta", "--config", config
        ])),
        "https://app.example.com\nhttps://docs.example.com\n"
    );
    assert_eq!(
        stdout(&run(&["origins", "list", "--config", config])),
        "https://app.example.com\n"
    );

    let out = run(&[
        "origins", "remove", DOCS, "--route", "meta", "--config", config,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), format!("removed {DOCS} (route meta)\n"));
    assert_eq!(from(META, DOCS), 403);
    let out = run(&[
        "origins", "remove", DOCS, "--route", "meta", "--config", config,
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("is not in routes.meta.allowed_origins"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn hosts_with_route_let_a_pod_ip_reach_that_route_only() {
    let server = Server::start(POLICY);
    let config = s(&server.config);
    let pod = format!("10.1.2.3:{}", server.addr.port());
    assert_eq!(post(server.addr, META, &pod, None), 403);
    let out = run(&[
        "hosts",
        "add",
        "10.0.0.0/8",
        "--route",
        "meta",
        "--config",
        config,
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    assert_eq!(stdout(&out), "allowed host 10.0.0.0/8 (route meta)\n");
    assert_eq!(post(server.addr, META, &pod, None), 200);
    assert_eq!(post(server.addr, "/mcp", &pod, None), 403);
    assert_eq!(
        stdout(&run(&[
            "hosts", "list", "--route", "meta", "--config", config
        ])),
        "localhost\n127.0.0.1\n[::1]\n10.0.0.0/8\n"
    );
    assert_eq!(
        stdout(&run(&["hosts", "list", "--config", config])),
        "localhost\n127.0.0.1\n[::1]\n"
    );
}

#[test]
fn an_unknown_or_unguarded_route_fails_saying_what_there_is() {
    let server = Server::start(POLICY);
    let config = s(&server.config);
    for args in [
        vec!["origins", "add", DOCS, "--route", "metadata"],
        vec!["origins", "list", "--route", "metadata"],
        vec!["hosts", "remove", "localhost", "--route", "metadata"],
    ] {
        let out = run(&[&args[..], &["--config", config]].concat());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("\"metadata\"") && stderr(&out).contains("health, meta"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    for args in [
        vec!["hosts", "add", "10.0.0.0/8", "--route", "health"],
        vec!["hosts", "list", "--route", "health"],
    ] {
        let out = run(&[&args[..], &["--config", config]].concat());
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).contains("guard = false"),
            "{args:?}: {}",
            stderr(&out)
        );
    }
    let out = run(&["origins", "add", "*", "--route", "meta", "--config", config]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("routes.meta.allowed_origins") && stderr(&out).contains("--force"),
        "{}",
        stderr(&out)
    );
    assert_eq!(server.policy_text(), POLICY, "nothing was written");
}
