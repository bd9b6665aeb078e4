//! The subcommands against a policy kept in etcd (`--source etcd://…`), with no server
//! needed: `origins|hosts list|add|remove` read and edit the value directly (a
//! compare-and-swap on its revision, retried on conflict, comments kept: the library's
//! [`mcp_cors::edit_remote`]), `check` validates it exactly as the servers will, and
//! `status` asks the local server's admin socket when one runs, else reports the value.

use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use mcp_cors::protocol::Request;
use mcp_cors::{EtcdBackend, EtcdSource, Policy, PolicyBackend, Snapshot};

use super::CliError;
use super::origins::List;
use crate::escape::escaped;

/// Reads the value, or says why it cannot be read.
async fn read(backend: &EtcdBackend) -> Result<Snapshot, CliError> {
    backend
        .read()
        .await
        .map_err(|e| CliError::Source(format!("{}: {}", backend.name(), e.chain())))
}

/// The value parsed as the servers parse it.
fn parse(backend: &EtcdBackend, snapshot: &Snapshot) -> Result<Policy, CliError> {
    let Some(value) = &snapshot.value else {
        return Err(CliError::Source(format!(
            "{}: the key has no value; put a policy there (`origins add` writes a first one)",
            backend.name()
        )));
    };
    let text = std::str::from_utf8(value)
        .map_err(|e| CliError::Source(format!("{}: not UTF-8 text: {e}", backend.name())))?;
    Policy::from_toml_str(text)
        .map_err(|e| CliError::Source(format!("{}: invalid policy:\n{e}", backend.name())))
}

/// Prints the entries requests get under `route` (`None`: the top level), one per line.
pub async fn list(etcd: &EtcdSource, which: List, route: Option<&str>) -> Result<(), CliError> {
    let backend = EtcdBackend::new(etcd.clone());
    let policy = parse(&backend, &read(&backend).await?)?;
    let entries = which.serving(policy.settings(), route)?;
    let mut out = std::io::stdout().lock();
    for entry in entries {
        writeln!(out, "{}", escaped(entry))?;
    }
    Ok(())
}

/// Makes the edit `request` asks for on the value, by compare-and-swap.
pub async fn change(etcd: &EtcdSource, request: Request) -> Result<(), CliError> {
    let backend = EtcdBackend::new(etcd.clone());
    let done = mcp_cors::edit_remote(&backend, &request).await?;
    let message = crate::conn::describe(&request, &escaped(&done.entry), done.changed);
    let revision = done
        .revision
        .map_or(String::new(), |r| format!(" (revision {r})"));
    writeln!(std::io::stdout().lock(), "{message}{revision}")?;
    Ok(())
}

/// The local server's status when its admin socket answers; otherwise the value's (as
/// `key: value` lines, or one JSON document with `json`).
pub async fn status(etcd: &EtcdSource, socket: &Path, json: bool) -> Result<(), CliError> {
    if mcp_cors::client::Client::connect(socket).await.is_ok() {
        return super::status::run(socket, json).await;
    }
    let backend = EtcdBackend::new(etcd.clone());
    let snapshot = read(&backend).await?;
    let status = super::status::Offline {
        policy: backend.name(),
        revision: Some(snapshot.mod_revision),
        parsed: parse(&backend, &snapshot).map_err(|e| e.to_string()),
        socket,
    };
    super::status::offline(&status, json)
}

/// `check` of the value: exit 0 when the servers would accept it, 1 otherwise.
pub async fn check(etcd: &EtcdSource) -> Result<ExitCode, CliError> {
    let backend = EtcdBackend::new(etcd.clone());
    let snapshot = read(&backend).await?;
    match parse(&backend, &snapshot) {
        Ok(policy) => {
            let s = policy.settings();
            println!(
                "{} (revision {}): ok ({} allowed origin entries, {} regexes, mode {})",
                backend.name(),
                snapshot.mod_revision,
                s.allowed_origins.len(),
                s.allowed_origin_regexes.len(),
                s.mode
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("{}", escaped(&e.to_string()));
            eprintln!("{}: invalid", backend.name());
            Ok(ExitCode::FAILURE)
        }
    }
}

/// The admin socket of the server following `etcd`, by the library's rule: the value's
/// `[admin] socket` when it can be read, the default location otherwise.
pub async fn socket(etcd: &EtcdSource) -> std::path::PathBuf {
    let backend = EtcdBackend::new(etcd.clone());
    let settings = match backend.read().await {
        Ok(Snapshot {
            value: Some(value), ..
        }) => crate::conn::lenient_admin(&String::from_utf8_lossy(&value)),
        _ => mcp_cors::AdminSettings::default(),
    };
    etcd.admin_socket(&settings)
}
