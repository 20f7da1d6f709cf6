//! Error types of the core: store failures and refusals a wire turns into native errors.

use thiserror::Error;

/// The audit/registry store could not do what was asked.
///
/// The core fails closed on it: a command whose entry cannot be stored does not run.
#[derive(Debug, Clone, Error)]
#[error("audit store unavailable: {0}")]
pub struct StoreError(pub String);

/// Why a session was not opened. Each variant maps to one native error per wire.
#[derive(Debug, Clone, Error)]
pub enum Refusal {
    /// The token is unknown, malformed, expired or revoked. Deliberately one variant: the
    /// client learns nothing about which.
    #[error("authentication failed: the token is not valid (unknown, expired or revoked)")]
    BadToken,
    /// The connection does not exist or the identity may not open it. One variant for both so a
    /// refusal does not reveal whether the connection exists.
    #[error("connection \"{0}\" does not exist or you are not allowed to open it")]
    Forbidden(String),
    /// The audit store cannot record the session; nothing may run without evidence.
    #[error("the gateway cannot record this session right now, try again later ({0})")]
    StoreUnavailable(StoreError),
}

/// Errors of core helpers that are not refusals (configuration-level problems).
#[derive(Debug, Error)]
pub enum CoreError {
    /// A secret reference could not be resolved.
    #[error("secret {what} could not be read: {why}")]
    Secret {
        /// Which secret (e.g. `env PAYMENTS_PG_PASSWORD`).
        what: String,
        /// What went wrong.
        why: String,
    },
    /// Two connections share a name.
    #[error("connection \"{0}\" is defined twice; connection names must be unique")]
    DuplicateConnection(String),
}

/// Why an SSH public key line cannot be registered.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum PublicKeyError {
    /// Not `TYPE BASE64 [COMMENT]`, not base64, or the data is not a key of the named type.
    #[error("not an OpenSSH public key: {0} (give the .pub file ssh-keygen wrote)")]
    Malformed(String),
    /// A key type the gateway does not take.
    #[error(
        "key type {0} is not supported (use ssh-ed25519, ssh-rsa, ecdsa-sha2-nistp256/384/521 or a security key; not a certificate)"
    )]
    UnsupportedType(String),
    /// A private key was given where the public one belongs.
    #[error("this is a private key: give its public half (the .pub file), and keep the private key to yourself")]
    NotPublic,
    /// More than one line: an `authorized_keys` file, or two keys pasted together.
    #[error("give exactly one key per file (one line)")]
    SeveralLines,
    /// Longer than any real key.
    #[error("the key line is longer than {0} bytes; that is not a public key")]
    TooLong(usize),
}
