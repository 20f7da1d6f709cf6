//! Gatehouse's durable store: the SQLite audit sink and token registry (the embedded default),
//! and session recordings as JSON Lines files.
//!
//! The core defines the traits ([`gatehouse_core::store`]); this crate implements them. It never
//! sees wire bytes: only the typed events the core hands over.
//!
//! Layout:
//! - [`schema`]: the tables.
//! - [`writer`]: group commit, led by whichever caller finds the connection free.
//! - [`sqlite`]: [`SqliteStore`], the trait implementations and the read side.
//! - [`tokens`]: issuing, listing and revoking service tokens (CLI and bootstrap).
//! - [`queries`]: listings of sessions and audit entries.
//! - [`recording`]: JSON Lines recordings, written by their own thread.

#![forbid(unsafe_code)]

pub mod error;
pub mod queries;
pub mod recording;
pub mod schema;
pub mod sqlite;
pub mod tokens;
pub mod writer;

pub use error::AuditError;
pub use queries::{AuditFilter, AuditRow, SessionRow};
pub use recording::{read_recording, FileRecordings};
pub use sqlite::SqliteStore;
pub use tokens::{NewToken, TokenRow};
