//! The workspace's binaries, built with cargo (once per test binary) so that a test never
//! runs a stale one: `target/<profile>/…` beside the running test's `deps/`.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

/// `target/<profile>`, where the running test binary's `deps/` is.
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>")
        .to_path_buf()
}

/// Runs `cargo build ARGS` in the workspace, in the running test's profile.
fn cargo_build(args: &[&str]) {
    let mut build = Command::new(env!("CARGO"));
    build
        .arg("build")
        .arg("-q")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"));
    if profile_dir().file_name().is_some_and(|n| n == "release") {
        build.arg("--release");
    }
    let status = build.status().expect("run cargo build");
    assert!(status.success(), "cargo build {args:?} failed");
}

fn built(cell: &'static OnceLock<PathBuf>, args: &[&str], path: &str) -> PathBuf {
    cell.get_or_init(|| {
        cargo_build(args);
        let binary = profile_dir().join(path);
        assert!(binary.exists(), "no binary at {}", binary.display());
        binary
    })
    .clone()
}

/// `mcp-cors-tui`, whose `probe` subcommand the tests run as a user does.
pub fn probe_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    built(
        &BINARY,
        &["-p", "mcp-cors-tui", "--bin", "mcp-cors-tui"],
        "mcp-cors-tui",
    )
}

/// The example MCP server, `examples/mcp_server.rs`.
pub fn mcp_server_binary() -> PathBuf {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    built(&BINARY, &["--example", "mcp_server"], "examples/mcp_server")
}
