//! The example MCP server (`examples/mcp_server.rs`, a real process over a real socket,
//! behind a copy of its shipped `examples/cors.toml`) as a container deploys it: probes
//! with a pod IP as `Host` pass the `health` route, the OAuth metadata is readable from any
//! origin through the `oauth-metadata` route, and `/mcp` stays strict.

mod support;
use support::example::Example;
use support::http::{header, http};

const ANY: &str = "https://any.example";

#[test]
fn probes_pass_metadata_is_public_and_mcp_stays_strict() {
    let example = Example::start();
    let addr = example.addr;
    let local = format!("127.0.0.1:{}", addr.port());

    // A Kubernetes probe: the pod IP as Host, no Origin.
    for path in ["/health", "/ready"] {
        let (status, headers, body) =
            http(addr, &format!("GET {path} HTTP/1.1\r\nHost: 10.1.2.3:8080"));
        assert_eq!(status, 200, "{path}: {body}");
        assert!(body.contains("\"status\""), "{path}: {body}");
        assert!(
            !headers
                .iter()
                .any(|(n, _)| n.starts_with("access-control-")),
            "{path}: {headers:?}"
        );
    }
    // The same pod IP anywhere else is refused by the Host guard.
    let (status, _, _) = http(addr, "GET /mcp HTTP/1.1\r\nHost: 10.1.2.3:8080");
    assert_eq!(status, 403);

    // The RFC 9728 document, readable by any origin.
    let (status, headers, body) = http(
        addr,
        &format!(
            "GET /.well-known/oauth-protected-resource HTTP/1.1\r\nHost: {local}\r\nOrigin: {ANY}"
        ),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(header(&headers, "access-control-allow-origin"), Some("*"));
    let doc: serde_json::Value = serde_json::from_str(&body).expect("JSON metadata");
    assert_eq!(doc["resource"], format!("http://{addr}/mcp"));
    assert!(
        doc["authorization_servers"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{doc}"
    );
    assert_eq!(
        doc["bearer_methods_supported"],
        serde_json::json!(["header"])
    );
    // Its path-suffixed form for `/mcp` (RFC 9728 §3.1) is under the route's prefix.
    let (status, headers, _) = http(
        addr,
        &format!(
            "GET /.well-known/oauth-protected-resource/mcp HTTP/1.1\r\nHost: {local}\r\nOrigin: {ANY}"
        ),
    );
    assert_eq!(
        (status, header(&headers, "access-control-allow-origin")),
        (200, Some("*"))
    );

    // `/mcp` from that origin: refused, with the JSON-RPC body.
    let (status, headers, body) = http(
        addr,
        &format!(
            "POST /mcp HTTP/1.1\r\nHost: {local}\r\nOrigin: {ANY}\r\nContent-Type: application/json"
        ),
    );
    assert_eq!(status, 403, "{body}");
    assert!(body.contains("Forbidden: origin not allowed"), "{body}");
    assert_eq!(header(&headers, "access-control-allow-origin"), None);
}
