//! The SSH wire's errors.

use std::io;

/// What can go wrong on the SSH wire.
#[derive(Debug, thiserror::Error)]
pub enum SshError {
    /// A socket failed.
    #[error("i/o: {0}")]
    Io(#[from] io::Error),
    /// The SSH protocol failed (bad packet, key exchange, a peer that went away).
    #[error("ssh: {0}")]
    Protocol(#[from] russh::Error),
    /// A key could not be read or made.
    #[error("key: {0}")]
    Key(String),
    /// The connection's configuration cannot be used (no key, no pinned host key).
    #[error("connection \"{connection}\": {why}")]
    Config {
        /// The connection's name.
        connection: String,
        /// What is wrong, and what to set.
        why: String,
    },
    /// The upstream server could not be reached or refused the gateway.
    #[error("{0}")]
    Upstream(String),
}

impl From<russh::keys::Error> for SshError {
    fn from(e: russh::keys::Error) -> Self {
        Self::Key(e.to_string())
    }
}
