//! Errors of the MySQL wire.

use thiserror::Error;

/// What went wrong on the wire; each maps to a MySQL error packet for the client.
#[derive(Debug, Error)]
pub enum MysqlError {
    /// A packet or a message inside one is malformed.
    #[error("malformed packet: {0}")]
    Malformed(&'static str),
    /// A message is larger than the gateway accepts.
    #[error("message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Its length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// A packet arrived out of sequence.
    #[error("packet sequence id {got} where {want} was expected")]
    Sequence {
        /// The id it carried.
        got: u8,
        /// The id expected.
        want: u8,
    },
}
