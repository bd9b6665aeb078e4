//! The audit trail: every change to the policy (an admin edit, with who made it; a reload
//! that changed the policy, with what changed), told three ways: an [`Event::Audit`] on
//! the event stream, an info line (target `mcp_cors::audit`), and a JSON line appended to
//! the `[admin] audit_log` file by one writer thread ([`writer`]).
//!
//! Recording never waits on the file: the record is handed to the writer, which appends
//! and fsyncs on its own thread; a write that fails is logged at error and the change it
//! records stands. The request path never records anything.

pub(crate) mod log;
#[cfg(feature = "server")]
mod trail;
#[cfg(feature = "server")]
mod writer;

#[cfg(feature = "server")]
pub(crate) use trail::AuditTrail;
