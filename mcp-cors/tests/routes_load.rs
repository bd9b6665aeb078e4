//! Route tables at load (SPEC §3): each refused case names `routes.NAME.key` and its line,
//! everything top-level validation refuses is refused inside a route too, and `check`'s
//! reader (`Policy::from_file`) agrees.

use mcp_cors::{Diagnostic, Policy, PolicyDiff};

/// The diagnostics for `source`, which must be refused.
fn refused(source: &str) -> Vec<Diagnostic> {
    match Policy::from_toml_str(source) {
        Ok(p) => panic!("accepted: {:?}", p.settings()),
        Err(e) => e.diagnostics().to_vec(),
    }
}

/// (key, line) of each diagnostic.
fn located(source: &str) -> Vec<(String, Option<usize>)> {
    refused(source)
        .into_iter()
        .map(|d| (d.key.unwrap_or_default(), d.line))
        .collect()
}

fn at(key: &str, line: usize) -> (String, Option<usize>) {
    (key.to_owned(), Some(line))
}

#[test]
fn a_route_without_paths_is_refused_at_its_table() {
    let src = "allowed_origins = []\n\n[routes.health]\nguard = false\n";
    assert_eq!(located(src), [at("routes.health", 3)]);
    let d = &refused(src)[0];
    assert!(d.message.contains("needs `paths`"), "{d}");
    let empty = "[routes.health]\npaths = []\n";
    assert_eq!(located(empty), [at("routes.health", 1)]);
}

#[test]
fn every_unknown_key_inside_a_route_is_reported() {
    let src = "[routes.meta]\npaths = [\"/x\"]\nallowed_origin = [\"*\"]\nmaxage = 5\n\
               [routes.b]\npaths = [\"/y\"]\nadmin = 1\n";
    assert_eq!(
        located(src),
        [
            at("routes.meta.allowed_origin", 3),
            at("routes.meta.maxage", 4),
            at("routes.b.admin", 7)
        ]
    );
}

#[test]
fn a_path_claimed_by_two_routes_is_refused_where_it_is_claimed_again() {
    let src =
        "[routes.a]\npaths = [\"/x\", \"/y/*\"]\n\n[routes.b]\npaths = [\"/z\",\n  \"/y/*\"]\n";
    assert_eq!(located(src), [at("routes.b.paths", 6)]);
    let d = &refused(src)[0];
    assert_eq!(d.value.as_deref(), Some("/y/*"));
    assert!(d.message.contains("claimed by route `a`"), "{d}");
    // The same path twice in one route is harmless; exact and prefix are different paths.
    Policy::from_toml_str("[routes.a]\npaths = [\"/x\", \"/x\", \"/x/*\"]\n").unwrap();
}

#[test]
fn bad_paths_are_refused_each_with_its_line() {
    let src = "[routes.a]\npaths = [\n  \"health\",\n  \"/a*b\",\n  \"/a/*/b\",\n  \"/%6dcp\",\n  \"/ok/*\",\n  \"/q?x=1\",\n]\n";
    assert_eq!(
        located(src),
        [
            at("routes.a.paths", 3),
            at("routes.a.paths", 4),
            at("routes.a.paths", 5),
            at("routes.a.paths", 6),
            at("routes.a.paths", 8),
        ]
    );
    assert!(refused(src)[0].message.contains("absolute"));
}

#[test]
fn wildcard_and_credentials_are_refused_inside_a_route_overridden_or_inherited() {
    // The route overrides the origins; credentials are inherited.
    let src = "allowed_origins = [\"https://a.example\"]\nallow_credentials = true\n\
               [routes.meta]\npaths = [\"/m\"]\nallowed_origins = [\"*\"]\n";
    assert_eq!(located(src), [at("routes.meta.allowed_origins", 5)]);
    assert!(refused(src)[0].message.contains("wildcard + credentials"));
    // The route overrides credentials; the `*` is inherited from the top level, which is
    // valid alone: the error names the route, at the inherited value's line.
    let src = "allowed_origins = [\"*\"]\n[routes.login]\npaths = [\"/login\"]\nallow_credentials = true\n";
    assert_eq!(located(src), [at("routes.login.allowed_origins", 1)]);
    let d = &refused(src)[0];
    assert!(
        d.message
            .contains("inherited from the top-level `allowed_origins`"),
        "{d}"
    );
}

#[test]
fn top_level_rules_apply_inside_a_route() {
    let src = "[routes.r]\npaths = [\"/r\"]\nallowed_origins = [\"https://a.com/x\"]\n\
               allowed_hosts = [\"10.0.0.0/33\"]\nallowed_methods = [\"GE T\"]\n\
               allowed_origin_regexes = [\"(\"]\nmode = \"loud\"\n";
    // `mode` is a type error, found before any value is checked.
    assert_eq!(located(src), [at("routes.r.mode", 7)]);
    let src = src.replace("mode = \"loud\"\n", "");
    assert_eq!(
        located(&src),
        [
            at("routes.r.allowed_origins", 3),
            at("routes.r.allowed_hosts", 4),
            at("routes.r.allowed_methods", 5),
            at("routes.r.allowed_origin_regexes", 6),
        ]
    );
    let wrong_type = "[routes.r]\npaths = [\"/r\"]\nguard = \"no\"\n";
    assert_eq!(located(wrong_type), [at("routes.r.guard", 3)]);
    let bad_name = "[routes.\"a b\"]\npaths = [\"/r\"]\n";
    assert_eq!(located(bad_name), [at("routes.a b", 1)]);
}

#[test]
fn an_inherited_mistake_is_reported_once() {
    let src = "allowed_origins = [\"https://a.com/x\"]\n[routes.r]\npaths = [\"/r\"]\n";
    assert_eq!(located(src), [at("allowed_origins", 1)]);
}

#[test]
fn routes_round_trip_normalised_and_diff_by_name() {
    let src = "allowed_origins = [\"https://a.example\"]\n\
               [routes.meta]\npaths = [\"/m\", \"/m/*\"]\nallowed_origins = [\"HTTPS://Docs.Example:443/\"]\n\
               [routes.health]\npaths = [\"/health\"]\nguard = false\n";
    let policy = Policy::from_toml_str(src).unwrap();
    let meta = &policy.settings().routes["meta"];
    assert_eq!(
        meta.allowed_origins.as_deref(),
        Some(&["https://docs.example".to_owned()][..])
    );
    assert!(!policy.settings().routes["health"].guard);
    let again = Policy::from_toml_str(&policy.to_toml_string()).unwrap();
    assert_eq!(policy.settings(), again.settings());
    assert_eq!(
        policy
            .route_policy("meta")
            .unwrap()
            .settings()
            .allowed_origins,
        ["https://docs.example"]
    );

    let changed = src.replace("Docs.Example", "other.example").replace(
        "[routes.health]",
        "[routes.ready]\npaths = [\"/ready\"]\n[routes.health]",
    );
    let without = "allowed_origins = [\"https://a.example\"]\n[routes.health]\npaths = [\"/health\"]\nguard = false\n";
    let new = Policy::from_toml_str(&changed).unwrap();
    let diff = PolicyDiff::between(policy.settings(), new.settings());
    assert_eq!(diff.routes_added, ["ready"]);
    assert_eq!(diff.routes_changed, ["meta"]);
    assert!(
        diff.routes_removed.is_empty() && diff.keys_changed.is_empty(),
        "{diff}"
    );
    let gone = Policy::from_toml_str(without).unwrap();
    let diff = PolicyDiff::between(policy.settings(), gone.settings());
    assert_eq!(diff.routes_removed, ["meta"]);
    assert_eq!(diff.to_string(), "route removed meta");
}

#[test]
fn the_file_reader_check_uses_refuses_routes_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cors.toml");
    std::fs::write(&path, "[routes.a]\npaths = [\"a\"]\n").unwrap();
    let err = Policy::from_file(&path).unwrap_err();
    let text = err.diagnostics()[0].to_string();
    assert!(
        text.starts_with(&format!("{}:2:", path.display())),
        "{text}"
    );
    assert!(text.contains("routes.a.paths"), "{text}");
}
