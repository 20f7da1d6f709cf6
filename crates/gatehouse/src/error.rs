//! The binary's error type: what the user is told when a command fails.

use thiserror::Error;

/// A failed command.
#[derive(Debug, Error)]
pub enum CliError {
    /// The configuration is missing or wrong.
    #[error("configuration: {0}")]
    Config(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] gatehouse_audit::AuditError),
    /// The core refused the setup.
    #[error(transparent)]
    Core(#[from] gatehouse_core::CoreError),
    /// A listener could not be started.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address.
        addr: String,
        /// Why.
        source: std::io::Error,
    },
    /// TLS material could not be loaded or made.
    #[error("tls: {0}")]
    Tls(String),
    /// The admin API refused or could not be reached.
    #[error("{0}")]
    Remote(String),
    /// `audit verify` found problems (already printed).
    #[error("audit verify found {0} problem(s): the evidence was altered, removed or inserted")]
    Verify(usize),
    /// A command-line value is wrong.
    #[error("{0}")]
    Usage(String),
}
