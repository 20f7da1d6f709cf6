//! Gatehouse's durable store: the SQLite audit sink and token registry (tokens and SSH keys;
//! the embedded default), and session recordings as JSON Lines files (with asciicasts of
//! terminal channels).
//!
//! The core defines the traits ([`gatehouse_core::store`]); this crate implements them. It never
//! sees wire bytes: only the typed events the core hands over.
//!
//! Layout:
//! - [`schema`]: the tables.
//! - `journal` and `writer`: the write path — an append-only journal written before a command
//!   runs (group commit led by the caller), applied to SQLite in batches by a ticker thread.
//! - [`sqlite`]: [`SqliteStore`] (reads, tokens) and [`AuditWriter`] (the core's audit sink).
//! - [`approvals`]: the approvals desk (held commands, decisions).
//! - [`chain`] and [`verify`]: the tamper-evident hash chain and its verification.
//! - [`tokens`]: issuing, listing and revoking service tokens (CLI and bootstrap).
//! - [`keys`]: SSH public keys registered to identities (rows of the same table).
//! - [`queries`]: listings of sessions and audit entries.
//! - [`export`]: audit entries streamed out as JSON Lines or CSV (`audit export`).
//! - [`recording`]: JSON Lines recordings, appended as sessions run.
//! - [`cast`]: terminal channels (SSH shells, exec) as asciicast v2 files beside them.

#![forbid(unsafe_code)]

pub mod approvals;
pub mod cast;
pub mod chain;
mod entry;
pub mod error;
pub mod events;
pub mod evidence;
pub mod export;
pub mod journal;
pub mod keys;
pub mod queries;
pub mod recording;
pub mod retention;
pub mod schema;
pub mod sqlite;
pub mod tokens;
pub mod verify;
mod writer;

pub use approvals::{ApprovalRow, SqliteApprovals};
pub use error::AuditError;
pub use evidence::PeriodCounts;
pub use export::{ExportFilter, ExportFormat};
pub use keys::KeyRow;
pub use queries::{AuditFilter, AuditRow, SessionRow};
pub use recording::{read_recording, FileRecordings};
pub use retention::PurgeReport;
pub use sqlite::{AuditWriter, SqliteStore};
pub use tokens::{CredentialKind, NewToken, TokenRow};
pub use verify::{verify, VerifyReport};
