//! Admin edits of a remote policy (etcd): read the value and its `mod_revision`, make the
//! change in its TOML text (comments and layout kept, the same text edit as for a file),
//! validate the result, and write it only if the value is still at that revision. Another
//! write in between (an operator, another replica) makes it read and try again, so
//! concurrent edits never lose one another.

use std::path::Path;
use std::time::Duration;

use super::backend::PolicyBackend;
use crate::change::{self, Edit, EditError, EditOutcome, EditRefused, refuse};
use crate::policy::{Policy, file};
use crate::protocol::{ErrorCode, Request};

/// Compare-and-swap attempts before an edit gives up (each lost one means another write
/// landed in between, so this takes a storm of concurrent edits).
const ATTEMPTS: u32 = 200;

/// Makes the edit `request` asks for (`add_origin`, `remove_origin`, `add_host`,
/// `remove_host`) on the policy in `backend`, by compare-and-swap, retried on conflict.
/// This is what `mcp-cors-tui --source URI origins add …` does with no server running.
///
/// ```no_run
/// # #[cfg(feature = "etcd")] mod example {
/// use mcp_cors::{EtcdBackend, Source, protocol::Request};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let backend = EtcdBackend::new(Source::etcd(["127.0.0.1:2379"], "/mcp/cors"));
/// let request = Request::AddOrigin {
///     origin: "https://app.example.com".into(),
///     force: false,
///     route: None,
/// };
/// let done = mcp_cors::edit_remote(&backend, &request).await?;
/// assert_eq!(done.entry, "https://app.example.com");
/// # Ok(()) }
/// # }
/// ```
pub async fn edit_remote(
    backend: &dyn PolicyBackend,
    request: &Request,
) -> Result<EditOutcome, EditRefused> {
    let edit = Edit::from_request(request)?;
    Ok(edit_list(backend, edit).await?)
}

/// [`edit_remote`] for an [`Edit`] already made (the admin socket's).
pub(crate) async fn edit_list(
    backend: &dyn PolicyBackend,
    edit: Edit<'_>,
) -> Result<EditOutcome, EditError> {
    let wanted = edit.wanted()?;
    let name = backend.name();
    let unreachable = |e: super::BackendError| {
        refuse(
            ErrorCode::Conflict,
            format!("{name}: {}; nothing was changed", e.chain()),
        )
    };
    for attempt in 0..ATTEMPTS {
        let snapshot = backend.read().await.map_err(unreachable)?;
        let (text, policy) = match &snapshot.value {
            Some(value) => current(value, &name)?,
            // A key never written: the edit writes the first policy.
            None => (String::new(), Policy::default()),
        };
        let Some(new_text) = change::edited(&text, &policy, edit, &wanted, &name)? else {
            return Ok(EditOutcome {
                entry: wanted,
                changed: false,
                revision: None,
            });
        };
        // Validated exactly as the server will: a refused value never reaches the key.
        file::parse(new_text.as_bytes(), Path::new(&name)).map_err(|e| {
            refuse(
                ErrorCode::Conflict,
                format!("the edited policy is refused: {e}"),
            )
        })?;
        match backend
            .compare_and_swap(new_text.into_bytes(), snapshot.mod_revision)
            .await
            .map_err(unreachable)?
        {
            Some(revision) => {
                return Ok(EditOutcome {
                    entry: wanted,
                    changed: true,
                    revision: Some(revision),
                });
            }
            None => {
                tracing::debug!(source = %name, attempt, "the value changed while being edited; reading it again");
                tokio::time::sleep(jitter(attempt)).await;
            }
        }
    }
    Err(refuse(
        ErrorCode::Conflict,
        format!("{name}: the value kept changing during {ATTEMPTS} attempts; try again"),
    ))
}

/// The value as text and as a policy, or why it cannot be edited.
fn current(value: &[u8], name: &str) -> Result<(String, Policy), EditError> {
    let policy = file::parse(value, Path::new(name)).map_err(|e| {
        refuse(
            ErrorCode::Conflict,
            format!("the policy at {name} is not valid, so it is not edited (fix it first): {e}"),
        )
    })?;
    // `parse` succeeded, so the bytes are UTF-8.
    let text = String::from_utf8_lossy(value).into_owned();
    Ok((text, policy))
}

/// A short wait before trying again, different for each attempt and process, so that
/// writers that collided do not collide again in lockstep.
fn jitter(attempt: u32) -> Duration {
    if attempt == 0 {
        return Duration::ZERO;
    }
    let seed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos())
        ^ std::process::id().wrapping_mul(2_654_435_761);
    Duration::from_micros(u64::from(seed % (1000 * attempt.min(20))))
}
