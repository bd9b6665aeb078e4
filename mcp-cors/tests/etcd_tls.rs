//! The etcd source over TLS against a real etcd serving TLS, with certificates the test
//! makes (a CA, a server certificate for 127.0.0.1 and localhost, a client certificate):
//! a value served and its changes followed; a certificate of a CA not trusted, or not
//! for the name verified, refused with an error naming the endpoint; a TLS source never
//! falling back to plain text; an etcd with `--client-cert-auth` refusing a source
//! without the client identity and serving (and taking edits from) one with it.

#[path = "../../tests/support/etcd.rs"]
mod etcd;

use std::time::{Duration, Instant};

use mcp_cors::{BackendError, EtcdBackend, EtcdSource, McpCors, PolicyBackend, Snapshot, Source};

use etcd::Etcd;

const A: &str = "https://a.example.com";
const B: &str = "https://b.example.com";
/// How long a change may take to be served, on a loaded machine.
const BOUND: Duration = Duration::from_secs(5);

fn policy(origins: &[&str]) -> String {
    let list: Vec<String> = origins.iter().map(|o| format!("{o:?}")).collect();
    format!("allowed_origins = [{}]\n", list.join(", "))
}

fn origins(cors: &McpCors) -> Vec<String> {
    cors.policy().settings().allowed_origins.clone()
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + BOUND;
    while !done() {
        assert!(Instant::now() < deadline, "not within {BOUND:?}: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn etcd_source(uri: &str) -> EtcdSource {
    match Source::parse(uri) {
        Ok(Source::Etcd(source)) => source,
        other => panic!("{uri}: {other:?}"),
    }
}

fn block_on<T>(work: impl Future<Output = T>) -> T {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime")
        .block_on(work)
}

/// Reads the key through the etcd backend of `source`.
fn read(source: EtcdSource) -> Result<Snapshot, BackendError> {
    block_on(EtcdBackend::new(source).read())
}

/// Asserts that reading with `uri` is refused, with an error naming the endpoint; the
/// error's whole chain.
fn refused(etcd: &Etcd, uri: &str) -> String {
    let error = read(etcd_source(uri)).expect_err(uri);
    let chain = error.chain();
    assert!(
        error
            .to_string()
            .contains(&format!("https://{}", etcd.endpoint())),
        "{uri}: {chain}"
    );
    chain
}

#[test]
fn over_tls_a_value_is_served_and_every_change_followed() {
    const KEY: &str = "/mcp/over_tls_a_value_is_served";
    let etcd = Etcd::start_tls(false);
    etcd.put(KEY, &policy(&[A]));
    let uri = etcd.uri(KEY);
    assert!(uri.contains("ca_file="), "{uri}");
    let cors = McpCors::try_watched(Source::parse(&uri).unwrap()).expect("etcd serves TLS");
    assert_eq!(origins(&cors), [A]);
    // Operators see that it speaks TLS, and never the options.
    let name = format!("etcds://{}{KEY}", etcd.endpoint());
    assert_eq!(
        cors.status().source.as_deref(),
        Some(std::path::Path::new(&name))
    );

    etcd.put(KEY, &policy(&[A, B]));
    wait_until("the change is served over TLS", || origins(&cors) == [A, B]);
    assert!(cors.status().last_error.is_none());
}

#[test]
fn a_certificate_not_trusted_or_not_for_the_name_is_refused_naming_the_endpoint() {
    const KEY: &str = "/mcp/a_certificate_not_trusted";
    let etcd = Etcd::start_tls(false);
    etcd.put(KEY, &policy(&[A]));
    let base = format!("etcd://{}{KEY}", etcd.endpoint());
    let ca = etcd.pki().file("ca.crt").display().to_string();
    let other_ca = etcd.pki().file("other-ca.crt").display().to_string();

    // A CA that did not sign the server's certificate.
    let chain = refused(&etcd, &format!("{base}?ca_file={other_ca}"));
    assert!(chain.contains("certificate"), "{chain}");
    // The system's roots do not know the test's CA: `etcds://` alone trusts only them.
    refused(&etcd, &format!("etcds://{}{KEY}", etcd.endpoint()));
    // The right CA, but a name the certificate is not for.
    let chain = refused(
        &etcd,
        &format!("{base}?ca_file={ca}&server_name=etcd.example.com"),
    );
    assert!(chain.contains("certificate"), "{chain}");
    // A name it is for (DNS:localhost), the endpoint being an address.
    let snapshot = read(etcd_source(&format!(
        "{base}?ca_file={ca}&server_name=localhost"
    )))
    .expect("the certificate is for localhost");
    assert_eq!(snapshot.value.as_deref(), Some(policy(&[A]).as_bytes()));

    // A server refuses to start on it, naming the endpoint.
    let error = McpCors::try_watched(Source::parse(&format!("{base}?ca_file={other_ca}")).unwrap())
        .expect_err("a CA not trusted");
    assert!(error.to_string().contains(&etcd.endpoint()), "{error}");
}

#[test]
fn a_tls_source_never_falls_back_to_plain_text() {
    const KEY: &str = "/mcp/a_tls_source_never_falls_back";
    let etcd = Etcd::start();
    etcd.put(KEY, &policy(&[A]));
    // The same etcd answers in plain text…
    read(etcd_source(&etcd.uri(KEY))).expect("plain text to a plain etcd");
    // …but a source that asks for TLS does not talk to it.
    refused(&etcd, &format!("etcds://{}{KEY}", etcd.endpoint()));
    let ca_file = etcd.scratch().join("ca.crt");
    std::fs::write(
        &ca_file,
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
    )
    .unwrap();
    refused(
        &etcd,
        &format!("{}?ca_file={}", etcd.uri(KEY), ca_file.display()),
    );
    let error =
        McpCors::try_watched(Source::parse(&format!("etcds://{}{KEY}", etcd.endpoint())).unwrap())
            .expect_err("no plain text");
    assert!(error.to_string().contains(&etcd.endpoint()), "{error}");
}

#[test]
fn with_client_cert_auth_only_a_source_with_the_client_identity_is_served() {
    const KEY: &str = "/mcp/with_client_cert_auth";
    let etcd = Etcd::start_tls(true);
    etcd.put(KEY, &policy(&[A]));
    let ca = etcd.pki().file("ca.crt");
    let without = format!("etcd://{}{KEY}?ca_file={}", etcd.endpoint(), ca.display());
    refused(&etcd, &without);
    let error =
        McpCors::try_watched(Source::parse(&without).unwrap()).expect_err("no client certificate");
    assert!(error.to_string().contains(&etcd.endpoint()), "{error}");

    // The URI's identity: served, and its changes followed.
    let cors = McpCors::try_watched(Source::parse(&etcd.uri(KEY)).unwrap())
        .expect("the client certificate is accepted");
    assert_eq!(origins(&cors), [A]);
    etcd.put(KEY, &policy(&[B]));
    wait_until("the change is served over mutual TLS", || {
        origins(&cors) == [B]
    });

    // The builder's identity: reads and writes by compare-and-swap.
    let file = |name: &str| std::fs::read(etcd.pki().file(name)).expect("a PEM file");
    let built = Source::etcd([etcd.endpoint()], KEY)
        .with_ca_pem(file("ca.crt"))
        .with_client_identity(file("client.crt"), file("client.key"));
    let backend = EtcdBackend::new(built);
    block_on(async {
        let snapshot = backend.read().await.expect("read over mutual TLS");
        assert_eq!(snapshot.value.as_deref(), Some(policy(&[B]).as_bytes()));
        let written = backend
            .compare_and_swap(policy(&[A, B]).into_bytes(), snapshot.mod_revision)
            .await
            .expect("written over mutual TLS");
        assert!(written.is_some(), "the revision was current");
    });
    assert_eq!(etcd.get(KEY), Some(policy(&[A, B])));
    wait_until("the write is served", || origins(&cors) == [A, B]);
}
