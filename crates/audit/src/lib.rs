//! Gatehouse's durable store: the audit sink, token registry (tokens and SSH keys) and
//! approvals desk over SQLite (the embedded default) or PostgreSQL (several gateways, one
//! store), and session recordings as JSON Lines files (with asciicasts of terminal channels).
//!
//! The core defines the traits ([`gatehouse_core::store`]); this crate implements them. It never
//! sees wire bytes: only the typed events the core hands over.
//!
//! Layout:
//! - [`schema`]: the tables.
//! - [`db`]: the one seam to a database — SQLite or PostgreSQL, the same SQL.
//! - [`store`]: [`Store`], opened from `[gateway] state` (reads, administration, the writer).
//! - `journal` and [`writer`]: the write path — an append-only journal written before a
//!   command runs (group commit led by the caller), applied to the database in batches by a
//!   ticker thread; [`AuditWriter`] is the core's audit sink.
//! - [`approvals`]: the approvals desk (held commands, decisions).
//! - [`chain`] and [`verify`]: the tamper-evident hash chain and its verification.
//! - [`tokens`]: issuing, listing and revoking service tokens (CLI and bootstrap).
//! - [`keys`]: SSH public keys registered to identities (rows of the same table).
//! - [`queries`]: listings of sessions and audit entries.
//! - [`export`]: audit entries streamed out as JSON Lines or CSV (`audit export`).
//! - [`recording`]: JSON Lines recordings, appended as sessions run.
//! - [`cast`]: terminal channels (SSH shells, exec) as asciicast v2 files beside them.
//! - [`console`]: the web console's sign-ins (a cookie's hash and its sealed token).

#![forbid(unsafe_code)]

pub mod approvals;
mod batch;
pub mod cast;
pub mod chain;
pub mod console;
pub mod db;
mod entry;
pub mod error;
pub mod events;
pub mod evidence;
pub mod export;
pub mod journal;
pub mod keys;
mod links;
pub mod queries;
pub mod recording;
mod recording_file;
pub mod retention;
pub mod schema;
pub mod store;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tokens;
pub mod verify;
pub mod writer;

pub use approvals::{ApprovalEvent, ApprovalRow, Approvals};
pub use error::AuditError;
pub use evidence::PeriodCounts;
pub use export::{ExportFilter, ExportFormat};
pub use keys::KeyRow;
pub use queries::{AuditFilter, AuditRow, SessionFilter, SessionRow};
pub use recording::{read_recording, FileRecordings};
pub use retention::PurgeReport;
pub use store::{Location, Store, StoreOptions};
pub use tokens::{CredentialKind, NewToken, TokenRow};
pub use verify::VerifyReport;
pub use writer::{AuditWriter, Health};

/// Opens the store `[gateway] state` names (`sqlite:PATH`, relative to `base`, or
/// `postgres://…`): everything the gateway and the CLI read and write goes through it (its
/// writer, [`Approvals`], the listings, exports and administration).
pub fn open(
    state: &str,
    base: &std::path::Path,
    options: &StoreOptions,
) -> Result<Store, AuditError> {
    Store::open(Location::parse(state, base)?, options)
}
