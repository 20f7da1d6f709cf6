//! Errors of the MySQL wire, each mapped to the error packet (code and SQL state) a client
//! is told.

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
    /// Reading or writing a socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
    /// The peer closed the connection.
    #[error("connection closed by {0}")]
    Closed(&'static str),
    /// TLS with the client could not be set up.
    #[error("tls: {0}")]
    Tls(String),
    /// The upstream server could not be reached, or refused the gateway's login.
    #[error("{0}")]
    Upstream(String),
    /// The gateway ended the session (revoked or expired token, shutdown) while a command
    /// was running.
    #[error("{0}")]
    Ended(gatehouse_core::EndReason),
    /// Something the gateway cannot do on this wire (a protocol feature it does not relay).
    #[error("{0}")]
    Unsupported(String),
    /// The server asks for an authentication plugin the gateway cannot answer.
    #[error(
        "the server asks for authentication plugin {0:?}, which the gateway does not speak \
         (it speaks mysql_native_password, caching_sha2_password, mysql_clear_password and \
         client_ed25519); give the upstream user one of these"
    )]
    UnsupportedAuthPlugin(String),
    /// A plugin's challenge from the server is not of the length the plugin defines.
    #[error("the server's {plugin} challenge is {len} bytes where {want} were expected")]
    AuthChallenge {
        /// The plugin.
        plugin: &'static str,
        /// Its length.
        len: usize,
        /// The length the plugin defines.
        want: usize,
    },
    /// The server's RSA public key cannot be used.
    #[error(
        "the server's RSA public key is unusable ({0}); check the key the server sends, or \
         connect to the server over TLS instead"
    )]
    PublicKey(&'static str),
    /// The password does not fit the server's RSA key.
    #[error(
        "the password of {len} bytes is too long for the server's RSA key (at most {max} bytes); \
         connect to the server over TLS instead"
    )]
    PasswordTooLong {
        /// Its length.
        len: usize,
        /// The most the key takes.
        max: usize,
    },
    /// RSA encryption of the password failed.
    #[error("RSA encryption of the password failed; connect to the server over TLS instead")]
    Encryption,
    /// A value of the binary protocol (a COM_STMT_EXECUTE parameter, a column of a binary
    /// row) cannot be decoded; the whole packet is refused, since where the next value starts
    /// is not known.
    #[error(
        "{place} {index} (0-based) of type {type_code} ({}): {reason}",
        crate::binary::field_type::name(*.type_code)
    )]
    BadValue {
        /// `parameter` or `column`.
        place: &'static str,
        /// Its 0-based position, as the protocol numbers parameters.
        index: usize,
        /// Its MySQL type code.
        type_code: u8,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// The error code for "the upstream cannot be reached or refused the gateway"
/// (ER_CONNECT_TO_FOREIGN_DATA_SOURCE: a server-range code clients accept).
pub const UPSTREAM_UNAVAILABLE: u16 = 1429;

impl MysqlError {
    /// The error code and SQL state a client is told.
    pub fn code(&self) -> (u16, &'static str) {
        match self {
            // ER_NET_PACKETS_OUT_OF_ORDER, ER_NET_PACKET_TOO_LARGE, ER_MALFORMED_PACKET
            Self::Sequence { .. } => (1156, "08S01"),
            Self::TooLarge { .. } => (1153, "08S01"),
            Self::Malformed(_) | Self::BadValue { .. } => (1835, "HY000"),
            // Codes from 2000 up are the client library's own: libmariadb calls an ERR
            // carrying one a malformed packet. ER_CONNECT_TO_FOREIGN_DATA_SOURCE says it.
            Self::Upstream(_) => (UPSTREAM_UNAVAILABLE, "HY000"),
            Self::Unsupported(_) | Self::UnsupportedAuthPlugin(_) => (1235, "42000"),
            // The gateway cannot log in upstream: as a refused login.
            Self::AuthChallenge { .. }
            | Self::PublicKey(_)
            | Self::PasswordTooLong { .. }
            | Self::Encryption => (UPSTREAM_UNAVAILABLE, "HY000"),
            // ER_NET_READ_ERROR
            Self::Io(_) | Self::Closed(_) | Self::Tls(_) => (1158, "08S01"),
            // ER_CONNECTION_KILLED
            Self::Ended(_) => (1927, "70100"),
        }
    }
}
