//! Loading `cors.toml`: defaults, normalisation, and errors that say what and where.

use mcp_cors::{Mode, Policy, PolicyError, PolicySettings};

fn errors(source: &str) -> Vec<mcp_cors::Diagnostic> {
    match Policy::from_toml_str(source) {
        Err(PolicyError::Invalid { diagnostics }) => diagnostics,
        Err(other) => panic!("unexpected error {other}"),
        Ok(_) => panic!("{source:?} should be refused"),
    }
}

fn single_error(source: &str) -> mcp_cors::Diagnostic {
    let mut all = errors(source);
    assert_eq!(all.len(), 1, "{all:?}");
    all.remove(0)
}

#[test]
fn a_one_line_file_gets_every_default() {
    let policy = Policy::from_toml_str(r#"allowed_origins = ["https://app.example.com"]"#).unwrap();
    let s = policy.settings();
    let defaults = PolicySettings::default();
    assert_eq!(s.allowed_origins, ["https://app.example.com"]);
    assert_eq!(s.allowed_hosts, ["localhost", "127.0.0.1", "[::1]"]);
    assert_eq!(s.allowed_methods, ["GET", "POST", "DELETE"]);
    assert_eq!(s.allowed_headers, defaults.allowed_headers);
    assert!(s.allowed_headers.iter().any(|h| h == "Mcp-Param-*"));
    assert_eq!(
        s.exposed_headers,
        [
            "Mcp-Session-Id",
            "Mcp-Protocol-Version",
            "WWW-Authenticate",
            "Last-Event-ID"
        ]
    );
    assert!(!s.allow_credentials && !s.allow_null_origin && !s.allow_private_network);
    assert_eq!(s.max_age, 600);
    assert_eq!(s.mode, Mode::Enforce);
    assert!(s.admin.enabled && s.admin.socket.is_none());
}

#[test]
fn wildcard_with_credentials_is_refused_and_explained() {
    let d = single_error(
        "allow_credentials = true\nallowed_origins = [\n  \"https://a.example.com\",\n  \"*\",\n]\n",
    );
    assert_eq!(d.key.as_deref(), Some("allowed_origins"));
    assert_eq!(d.value.as_deref(), Some("*"));
    assert_eq!((d.line, d.column), (Some(4), Some(3)));
    assert!(
        d.message.contains("wildcard + credentials"),
        "{}",
        d.message
    );
    assert!(d.message.contains("cookies"), "{}", d.message);
}

#[test]
fn each_kind_of_mistake_names_key_value_and_line() {
    let cases: &[(&str, &str, &str, &str)] = &[
        (
            "allowed_origins = [\"https://a.com?x=1\"]",
            "allowed_origins",
            "https://a.com?x=1",
            "query",
        ),
        (
            "allowed_origins = [\"https://u:p@a.com\"]",
            "allowed_origins",
            "https://u:p@a.com",
            "user name",
        ),
        (
            "allowed_origins = [\"ftp://a.com\"]",
            "allowed_origins",
            "ftp://a.com",
            "unknown scheme",
        ),
        (
            "allowed_origins = [\"https://a*b.com\"]",
            "allowed_origins",
            "https://a*b.com",
            "wildcard",
        ),
        (
            "allowed_origin_regexes = [\"https://(\"]",
            "allowed_origin_regexes",
            "https://(",
            "invalid regex",
        ),
        (
            "allowed_origin_regexes = [\".*\"]",
            "allowed_origin_regexes",
            ".*",
            "reflect",
        ),
        (
            "allowed_methods = [\"GET\", \"PO ST\"]",
            "allowed_methods",
            "PO ST",
            "method",
        ),
        (
            "allowed_headers = [\"X-Ok\", \"X Bad\"]",
            "allowed_headers",
            "X Bad",
            "header name",
        ),
        (
            "exposed_headers = [\"*\"]",
            "exposed_headers",
            "*",
            "wildcard",
        ),
        (
            "allowed_hosts = [\"https://a.com\"]",
            "allowed_hosts",
            "https://a.com",
            "not a URL",
        ),
    ];
    for (source, key, value, words) in cases {
        let d = single_error(source);
        assert_eq!(d.key.as_deref(), Some(*key), "{source}");
        assert_eq!(d.value.as_deref(), Some(*value), "{source}");
        assert_eq!(d.line, Some(1), "{source}");
        assert!(d.column.is_some(), "{source}");
        assert!(d.message.contains(words), "{source}: {}", d.message);
    }
}

#[test]
fn unknown_keys_and_wrong_types_are_refused_with_their_line() {
    let d = single_error("# comment\nallowed_origin = [\"https://a.com\"]\n");
    assert_eq!(d.line, Some(2));
    assert!(
        d.message.contains("unknown field `allowed_origin`"),
        "{}",
        d.message
    );
    assert_eq!(d.key.as_deref(), Some("allowed_origin"));

    let d = single_error("mode = \"enforcing\"\n");
    assert_eq!(d.line, Some(1));
    assert!(
        d.message.contains("enforcing") || d.message.contains("variant"),
        "{}",
        d.message
    );

    let d = single_error("max_age = -1\n");
    assert_eq!(d.line, Some(1));

    let d = single_error("[admin]\nsocket_path = \"x.sock\"\n");
    assert_eq!(d.line, Some(2));

    let d = single_error("allowed_origins = [\"https://a.com\"\n");
    assert!(d.line.is_some(), "{d}");
}

/// serde's type and enum errors do not say which key they were reading; the diagnostic
/// must still name it, with the value and where it was written.
#[test]
fn wrong_types_and_unknown_modes_name_key_value_line_and_column() {
    let cases = [
        ("max_age = -1", "max_age", "-1", 11),
        ("mode = \"enforcing\"", "mode", "\"enforcing\"", 8),
        ("allowed_origins = \"x\"", "allowed_origins", "\"x\"", 19),
        (
            "allow_credentials = \"yes\"",
            "allow_credentials",
            "\"yes\"",
            21,
        ),
        ("[admin]\nenabled = 1", "admin.enabled", "1", 11),
    ];
    for (line, key, value, column) in cases {
        // A line of something valid first, so the line number is not trivially 1.
        let source = format!("allowed_methods = [\"GET\"]\n\n{line}\n");
        let d = single_error(&source);
        assert_eq!(d.key.as_deref(), Some(key), "{source}: {d}");
        assert_eq!(d.value.as_deref(), Some(value), "{source}: {d}");
        let expected_line = if key.starts_with("admin.") { 4 } else { 3 };
        assert_eq!(
            (d.line, d.column),
            (Some(expected_line), Some(column)),
            "{source}: {d}"
        );
        let shown = d.to_string();
        assert!(
            shown.contains(key) && shown.contains(&format!("{value:?}")),
            "{shown}"
        );
    }
}

#[test]
fn every_mistake_is_reported_at_once_in_file_order() {
    let all = errors(
        "allowed_methods = [\"B AD\"]\nallowed_origins = [\"https://a.com/x\", \"https://ok.com\", \"gopher://b\"]\n",
    );
    let lines: Vec<_> = all.iter().map(|d| (d.line, d.column)).collect();
    assert_eq!(
        lines,
        [
            (Some(1), Some(20)),
            (Some(2), Some(20)),
            (Some(2), Some(57))
        ]
    );
}

#[test]
fn from_file_names_the_file_and_a_missing_file_is_a_read_error() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("cors.toml");
    std::fs::write(&path, "\n\nallowed_origins = [\"https://a.com/path\"]\n").unwrap();
    let err = Policy::from_file(&path).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "{}:3:20: allowed_origins: \"https://a.com/path\"",
            path.display()
        )),
        "{text}"
    );

    let err = Policy::from_file(dir.path().join("missing.toml")).unwrap_err();
    assert!(matches!(err, PolicyError::Read { .. }));
    assert!(err.to_string().contains("missing.toml"));
}

#[test]
fn saving_and_loading_gives_back_the_same_policy() {
    let policy = Policy::from_toml_str(
        r#"
        allowed_origins = ["https://App.example.com:443", "https://*.example.org:*", "http://localhost:*"]
        allowed_origin_regexes = ['https://pr-\d+\.preview\.example\.net']
        allowed_hosts = ["localhost", "MCP.example.com:8443", "*.tenants.example.com"]
        allowed_methods = ["get", "post", "PATCH"]
        allow_credentials = true
        max_age = 60
        mode = "report-only"
        [admin]
        socket = "admin/cors.sock"
        "#,
    )
    .unwrap();
    let s = policy.settings();
    assert_eq!(
        s.allowed_origins,
        [
            "https://app.example.com",
            "https://*.example.org:*",
            "http://localhost:*"
        ]
    );
    assert_eq!(
        s.allowed_hosts,
        ["localhost", "mcp.example.com:8443", "*.tenants.example.com"]
    );
    assert_eq!(s.allowed_methods, ["GET", "POST", "PATCH"]);
    let again = Policy::from_toml_str(&policy.to_toml_string()).unwrap();
    assert_eq!(policy, again);
}

#[test]
fn the_sample_file_is_valid() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../examples/cors.toml");
    let policy = Policy::from_file(path).unwrap();
    assert!(!policy.settings().allowed_origins.is_empty());
}

#[test]
fn a_malformed_cidr_range_in_allowed_hosts_is_refused_naming_it() {
    for (bad, says) in [
        ("10.0.0.0/33", "prefix length 33"),
        ("fd00::/129", "prefix length 129"),
        ("10.1.0.0/8", "10.0.0.0/8"),
        ("010.0.0.0/8", "not an IP address"),
        ("example.com/8", "not an IP address"),
        ("10.0.0.0/x", "prefix length"),
    ] {
        let d = single_error(&format!("allowed_hosts = [\"localhost\", {bad:?}]\n"));
        assert_eq!(d.key.as_deref(), Some("allowed_hosts"), "{bad}");
        assert_eq!(d.value.as_deref(), Some(bad));
        assert_eq!(d.line, Some(1));
        assert!(d.message.contains(says), "{bad}: {}", d.message);
        assert!(!d.message.contains("not a URL"), "{bad}: {}", d.message);
    }
    let policy =
        Policy::from_toml_str("allowed_hosts = [\"10.0.0.0/8\", \"[fd00::]/8\", \"fd00::/8\"]\n")
            .unwrap();
    assert_eq!(
        policy.settings().allowed_hosts,
        ["10.0.0.0/8", "fd00::/8", "fd00::/8"]
    );
}

#[test]
fn trusted_proxies_are_ranges_or_addresses_and_a_bad_one_is_named() {
    let policy = Policy::from_toml_str(
        "allowed_origins = []\ntrusted_proxies = [\"10.0.0.0/8\", \"192.0.2.7\", \"[fd00::]/8\", \"2001:db8::7\"]\n",
    )
    .unwrap();
    // Stored normalised: a single address is its one-address range.
    assert_eq!(
        policy.settings().trusted_proxies,
        ["10.0.0.0/8", "192.0.2.7/32", "fd00::/8", "2001:db8::7/128"]
    );
    assert!(PolicySettings::default().trusted_proxies.is_empty());
    for (bad, says) in [
        ("10.0.0.0/33", "prefix length 33"),
        ("fd00::/129", "prefix length 129"),
        ("10.1.0.0/8", "10.0.0.0/8"),
        ("proxy.internal", "not an IP address"),
        ("010.0.0.1", "not an IP address"),
        ("", "not an IP address"),
    ] {
        let d = single_error(&format!(
            "max_age = 60\ntrusted_proxies = [\"10.0.0.1\", {bad:?}]\n"
        ));
        assert_eq!(d.key.as_deref(), Some("trusted_proxies"), "{bad}");
        assert_eq!(d.value.as_deref(), Some(bad));
        assert_eq!(d.line, Some(2));
        assert!(d.message.contains(says), "{bad}: {}", d.message);
    }
    // A list, not a string.
    let d = single_error("trusted_proxies = \"10.0.0.0/8\"\n");
    assert_eq!(d.key.as_deref(), Some("trusted_proxies"));
}

#[test]
fn trusted_proxies_is_a_top_level_key_that_routes_inherit() {
    let d = single_error(
        "trusted_proxies = [\"10.0.0.0/8\"]\n[routes.api]\npaths = [\"/api/*\"]\ntrusted_proxies = [\"192.0.2.1\"]\n",
    );
    assert_eq!(d.key.as_deref(), Some("routes.api.trusted_proxies"));
    assert_eq!(d.line, Some(4));
    let policy = Policy::from_toml_str(
        "trusted_proxies = [\"10.0.0.0/8\"]\n[routes.api]\npaths = [\"/api/*\"]\n",
    )
    .unwrap();
    let route = policy.route_policy("api").unwrap();
    assert_eq!(route.settings().trusted_proxies, ["10.0.0.0/8"]);
    // Saved and loaded back, it is the same policy.
    let again = Policy::from_toml_str(&policy.to_toml_string()).unwrap();
    assert_eq!(policy.settings(), again.settings());
}
