//! How reloads are logged, as an operator reads `kubectl logs`: a good reload at info, a
//! refused one at warn (the server keeps serving the last good policy: a warning, not an
//! error), each naming the file. The watcher logs from its own thread, so this binary
//! installs a global subscriber (one per process: this file holds one test).

mod common;

use common::log::Captured;
use mcp_cors::McpCors;

#[test]
fn a_reload_is_logged_at_info_and_a_refused_one_at_warn_naming_the_file() {
    let captured = Captured::default();
    tracing::subscriber::set_global_default(captured.subscriber(tracing::Level::INFO))
        .expect("the only subscriber of this test binary");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cors.toml");
    std::fs::write(&path, "allowed_origins = [\"https://a.example\"]\n").unwrap();
    let cors = McpCors::try_watched(path.as_path()).expect("a valid policy");

    std::fs::write(
        &path,
        "allowed_origins = [\"https://a.example\", \"https://b.example\"]\n",
    )
    .unwrap();
    let reloaded = captured.wait_for("policy reloaded");
    assert!(reloaded.contains(" INFO "), "{reloaded}");
    assert!(reloaded.contains("+https://b.example"), "{reloaded}");

    std::fs::write(&path, "allowed_origins = [\"https://c.example/path\"]\n").unwrap();
    let refused = captured.wait_for("policy file refused");
    assert!(refused.contains(" WARN "), "{refused}");
    assert!(refused.contains(&path.display().to_string()), "{refused}");
    assert!(refused.contains("an origin has no path"), "{refused}");
    assert_eq!(
        cors.policy().settings().allowed_origins,
        ["https://a.example", "https://b.example"],
        "the last good policy keeps serving"
    );
}
