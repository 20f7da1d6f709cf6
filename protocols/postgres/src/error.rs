//! Errors of the PostgreSQL wire, each mapped to the SQLSTATE the client sees.

use thiserror::Error;

/// What went wrong on a PostgreSQL session.
#[derive(Debug, Error)]
pub enum PgError {
    /// A peer broke the protocol (bad length, unknown message, truncated field).
    #[error("protocol violation: {0}")]
    Protocol(String),
    /// A frame exceeded the configured cap.
    #[error("message {:?} of {len} bytes is too large (limit {max} bytes)", char::from(*tag))]
    TooLarge {
        /// Message tag.
        tag: u8,
        /// Its length.
        len: usize,
        /// The cap.
        max: usize,
    },
    /// Reading or writing a socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// TLS setup failed.
    #[error("tls: {0}")]
    Tls(String),
    /// The upstream server could not be reached or refused the gateway.
    #[error("{0}")]
    Upstream(String),
    /// The peer closed the connection.
    #[error("connection closed by {0}")]
    Closed(&'static str),
    /// The server would now read SQL text differently from the gateway (a lexing setting
    /// changed), so the session cannot go on.
    #[error("{0}")]
    Unreadable(String),
}

impl PgError {
    /// The SQLSTATE a client is told.
    pub fn sqlstate(&self) -> &'static str {
        match self {
            Self::Protocol(_) | Self::TooLarge { .. } => "08P01",
            Self::Upstream(_) => "08006",
            Self::Io(_) | Self::Tls(_) | Self::Closed(_) => "08006",
            Self::Unreadable(_) => "0A000",
        }
    }
}
