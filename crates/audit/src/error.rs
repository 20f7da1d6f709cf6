//! Errors of the store.

use thiserror::Error;

/// What went wrong in the store.
#[derive(Debug, Error)]
pub enum AuditError {
    /// The database (SQLite or PostgreSQL) refused an operation or cannot be reached.
    #[error("audit database error: {0}")]
    Database(#[from] crate::db::DbError),
    /// A file (database directory, recording) could not be read or written.
    #[error("{what}: {source}")]
    Io {
        /// What was being done.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// Stored data could not be decoded.
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
    /// Something the caller asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// What the caller asked for clashes with what is stored (a key registered twice).
    #[error("{0}")]
    Conflict(String),
    /// A public key to register is not one.
    #[error(transparent)]
    PublicKey(#[from] gatehouse_core::PublicKeyError),
    /// The store is not usable (writer stopped, random source failed).
    #[error(transparent)]
    Store(#[from] gatehouse_core::StoreError),
}

impl From<AuditError> for gatehouse_core::StoreError {
    fn from(e: AuditError) -> Self {
        gatehouse_core::StoreError(e.to_string())
    }
}
