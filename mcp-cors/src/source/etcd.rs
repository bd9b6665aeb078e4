//! The etcd v3 backend: a [`PolicyBackend`] over one key, through the `etcd-client` crate.
//!
//! Each read and each write connects afresh (edits are rare, and a connection made on one
//! thread's runtime is then never used from another's); a watch keeps its connection for
//! as long as its stream lives.

use std::time::Duration;

use etcd_client::{
    Certificate, Client, Compare, CompareOp, ConnectOptions, EventType, Identity, TlsOptions, Txn,
    TxnOp, WatchOptions,
};
use futures_util::StreamExt;

use super::backend::{BackendError, BoxFuture, Change, ChangeStream, PolicyBackend, Snapshot};
use super::spec::EtcdSource;
use super::tls::EtcdTls;

/// How long connecting to an endpoint may take before it counts as down.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// How long one read or transaction may take.
const CALL_TIMEOUT: Duration = Duration::from_secs(3);
/// HTTP/2 pings on a watch's connection, this often…
const KEEP_ALIVE: Duration = Duration::from_secs(5);
/// …each answered within this long: an etcd that vanished without closing the connection
/// (a partition) is noticed within about the sum. Generous, so that a loaded machine that
/// answers a ping late does not tear down a healthy watch (an etcd that was killed closes
/// the connection, and is noticed at once).
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(10);

/// The policy under one etcd key.
///
/// ```no_run
/// use std::sync::Arc;
/// use mcp_cors::{EtcdBackend, McpCors, Source};
///
/// let backend = EtcdBackend::new(Source::etcd(["127.0.0.1:2379"], "/mcp/cors"));
/// let cors = McpCors::from_source(Arc::new(backend))?;
/// # Ok::<(), mcp_cors::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct EtcdBackend {
    source: EtcdSource,
}

impl EtcdBackend {
    /// A backend for `source`; nothing is connected until it is used.
    pub fn new(source: EtcdSource) -> EtcdBackend {
        EtcdBackend { source }
    }

    /// What it reads and writes.
    pub fn source(&self) -> &EtcdSource {
        &self.source
    }

    async fn connect(&self) -> Result<Client, BackendError> {
        let mut options = ConnectOptions::new()
            .with_connect_timeout(CONNECT_TIMEOUT)
            .with_keep_alive(KEEP_ALIVE, KEEP_ALIVE_TIMEOUT)
            .with_keep_alive_while_idle(true);
        if let Some((user, password)) = self.source.user() {
            options = options.with_user(user, password);
        }
        if let Some(tls) = self.source.tls() {
            options = options.with_tls(tls_options(tls));
        }
        let connecting = Client::connect(self.source.endpoints(), Some(options));
        match tokio::time::timeout(CONNECT_TIMEOUT + CALL_TIMEOUT, connecting).await {
            Ok(Ok(client)) => Ok(client),
            Ok(Err(e)) => Err(self.error("cannot connect", e)),
            Err(elapsed) => Err(self.error("cannot connect", elapsed)),
        }
    }

    fn error(
        &self,
        what: &str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> BackendError {
        BackendError::new(
            format!("{what} (etcd {})", self.source.endpoints().join(",")),
            source,
        )
    }

    async fn call<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, etcd_client::Error>>,
    ) -> Result<T, BackendError> {
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) => Err(self.error(what, e)),
            Err(elapsed) => Err(self.error(what, elapsed)),
        }
    }

    async fn read_now(&self) -> Result<Snapshot, BackendError> {
        let mut client = self.connect().await?;
        let key = self.source.key();
        let answer = self
            .call("cannot read the key", client.get(key, None))
            .await?;
        let revision = answer.header().map_or(0, |h| h.revision());
        let kv = answer.kvs().first();
        Ok(Snapshot {
            value: kv.map(|kv| kv.value().to_vec()),
            mod_revision: kv.map_or(0, |kv| kv.mod_revision()).max(0) as u64,
            revision: revision.max(0) as u64,
        })
    }

    async fn watch_now(&self, from: u64) -> Result<ChangeStream, BackendError> {
        let mut client = self.connect().await?;
        let options = WatchOptions::new().with_start_revision(from as i64);
        let stream = self
            .call(
                "cannot watch the key",
                client.watch(self.source.key(), Some(options)),
            )
            .await?;
        let me = self.clone();
        // The client goes with the stream: its connection lives as long as the watch.
        let changes = futures_util::stream::unfold(
            (stream, client, Vec::<Change>::new(), false),
            move |(mut stream, client, mut pending, done)| {
                let me = me.clone();
                async move {
                    loop {
                        if let Some(change) = pending.pop() {
                            return Some((Ok(change), (stream, client, pending, done)));
                        }
                        if done {
                            return None;
                        }
                        match stream.message().await {
                            Ok(Some(answer)) => match changes_in(&answer) {
                                Some(mut changes) => {
                                    changes.reverse();
                                    pending = changes;
                                }
                                None => {
                                    return Some((
                                        Ok(Change::Compacted),
                                        (stream, client, pending, true),
                                    ));
                                }
                            },
                            Ok(None) => return None,
                            Err(e) => {
                                let error = me.error("the watch ended", e);
                                return Some((Err(error), (stream, client, pending, true)));
                            }
                        }
                    }
                }
            },
        );
        Ok(Box::pin(changes.fuse()))
    }

    async fn cas_now(&self, value: Vec<u8>, expected: u64) -> Result<Option<u64>, BackendError> {
        let mut client = self.connect().await?;
        let key = self.source.key();
        let txn = Txn::new()
            .when([Compare::mod_revision(
                key,
                CompareOp::Equal,
                expected as i64,
            )])
            .and_then([TxnOp::put(key, value, None)]);
        let answer = self.call("cannot write the key", client.txn(txn)).await?;
        if !answer.succeeded() {
            return Ok(None);
        }
        let revision = answer.header().map_or(0, |h| h.revision());
        Ok(Some(revision.max(0) as u64))
    }
}

/// The client's TLS options for `tls`: a CA of its own replaces the system's roots (a
/// private CA must not be widened to every public one).
fn tls_options(tls: &EtcdTls) -> TlsOptions {
    let mut options = match tls.ca_pem() {
        Some(pem) => TlsOptions::new().ca_certificate(Certificate::from_pem(pem)),
        None => TlsOptions::new().with_native_roots(),
    };
    if let Some((cert, key)) = tls.identity() {
        options = options.identity(Identity::from_pem(cert, key));
    }
    if let Some(name) = tls.server_name() {
        options = options.domain_name(name);
    }
    options
}

/// The changes in one watch answer; `None` when the watch was cancelled because the
/// revision asked for was compacted (or for any other reason: reading again is right).
fn changes_in(answer: &etcd_client::WatchResponse) -> Option<Vec<Change>> {
    if answer.canceled() || answer.compact_revision() > 0 {
        return None;
    }
    let changes = answer
        .events()
        .iter()
        .filter_map(|event| {
            let kv = event.kv()?;
            let revision = kv.mod_revision().max(0) as u64;
            Some(match event.event_type() {
                EventType::Put => Change::Put {
                    value: kv.value().to_vec(),
                    revision,
                },
                EventType::Delete => Change::Deleted { revision },
            })
        })
        .collect();
    Some(changes)
}

impl PolicyBackend for EtcdBackend {
    fn name(&self) -> String {
        self.source.name()
    }

    fn read(&self) -> BoxFuture<'_, Result<Snapshot, BackendError>> {
        Box::pin(self.read_now())
    }

    fn watch(&self, from: u64) -> BoxFuture<'_, Result<ChangeStream, BackendError>> {
        Box::pin(self.watch_now(from))
    }

    fn compare_and_swap(
        &self,
        value: Vec<u8>,
        expected: u64,
    ) -> BoxFuture<'_, Result<Option<u64>, BackendError>> {
        Box::pin(self.cas_now(value, expected))
    }
}
