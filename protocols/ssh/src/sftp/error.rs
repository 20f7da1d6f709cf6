//! Errors of the SFTP decoder and tracker. Each one means the stream can no longer be
//! followed faithfully, so the relay ends the subsystem channel rather than guess.

use thiserror::Error;

/// What went wrong while splitting, decoding or following an SFTP stream.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SftpError {
    /// A packet's length field exceeds the bound (OpenSSH allows 256 KiB).
    #[error("sftp packet of {len} bytes exceeds the limit of {max} bytes; end the channel")]
    TooLarge {
        /// The length the packet announced (its type byte and body).
        len: usize,
        /// The bound in force.
        max: usize,
    },
    /// A packet announced a length of zero: it has no type byte.
    #[error("sftp packet of length 0 has no type byte; end the channel")]
    Empty,
    /// A packet's length prefix does not match the bytes handed to the decoder.
    #[error("sftp packet length prefix says {said} bytes but {got} follow; pass whole packets")]
    LengthMismatch {
        /// The length the prefix announced.
        said: usize,
        /// The bytes that followed it.
        got: usize,
    },
    /// A field runs past the end of its packet.
    #[error("sftp {packet} packet is truncated; end the channel")]
    Truncated {
        /// The packet type's name (`SSH_FXP_OPEN`).
        packet: &'static str,
    },
    /// The client sent a request id that is still waiting for its answer, so the two answers
    /// could not be told apart.
    #[error("the client reused request id {id} before it was answered; end the channel")]
    DuplicateRequestId {
        /// The request id.
        id: u32,
    },
    /// The client has more requests in flight than the tracker follows.
    #[error("the client has more than {max} sftp requests in flight; end the channel")]
    TooManyPending {
        /// The bound in force.
        max: usize,
    },
    /// The server answered a request id that is not in flight.
    #[error("the server answered request id {id}, which is not in flight; end the channel")]
    UnknownResponseId {
        /// The request id.
        id: u32,
    },
    /// The server answered a request with a packet of the wrong kind.
    #[error("the server answered a {request} request with {response}; end the channel")]
    UnexpectedResponse {
        /// What the request was (`open`, `read`).
        request: &'static str,
        /// The response's packet type name.
        response: &'static str,
    },
    /// The server returned a handle that is already open.
    #[error("the server returned a handle that is already open; end the channel")]
    HandleReused,
}
