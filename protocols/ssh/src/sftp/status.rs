//! SSH_FXP_STATUS codes, their names, and the STATUS packet the gateway writes to a client
//! in place of a request it refused.

use std::fmt;

use bytes::{BufMut, Bytes, BytesMut};

use super::packet::SSH_FXP_STATUS;

/// The longest message the gateway puts in a STATUS packet it writes, so that a long denial
/// reason cannot push the packet past what the client accepts.
pub const MAX_STATUS_MESSAGE: usize = 1024;

/// An SSH_FXP_STATUS error code (draft-ietf-secsh-filexfer-02, section 7).
///
/// A newtype rather than an enum: a server may send codes from later drafts, and those are
/// carried and reported as they came.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct StatusCode(pub u32);

impl StatusCode {
    /// The request succeeded.
    pub const OK: Self = Self(0);
    /// End of file (READ past the end) or of a directory listing.
    pub const EOF: Self = Self(1);
    /// The path does not exist.
    pub const NO_SUCH_FILE: Self = Self(2);
    /// The user may not do this; also what the gateway answers for a refused request.
    pub const PERMISSION_DENIED: Self = Self(3);
    /// A failure with no more specific code.
    pub const FAILURE: Self = Self(4);
    /// The packet was malformed.
    pub const BAD_MESSAGE: Self = Self(5);
    /// No connection to the server (client-side code).
    pub const NO_CONNECTION: Self = Self(6);
    /// The connection was lost (client-side code).
    pub const CONNECTION_LOST: Self = Self(7);
    /// The server does not support the operation.
    pub const OP_UNSUPPORTED: Self = Self(8);

    /// The draft's name of the code (`SSH_FX_NO_SUCH_FILE`), or `None` for a code it does not
    /// define.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0 => "SSH_FX_OK",
            1 => "SSH_FX_EOF",
            2 => "SSH_FX_NO_SUCH_FILE",
            3 => "SSH_FX_PERMISSION_DENIED",
            4 => "SSH_FX_FAILURE",
            5 => "SSH_FX_BAD_MESSAGE",
            6 => "SSH_FX_NO_CONNECTION",
            7 => "SSH_FX_CONNECTION_LOST",
            8 => "SSH_FX_OP_UNSUPPORTED",
            _ => return None,
        })
    }

    /// Whether the code is `SSH_FX_OK`.
    pub fn is_ok(self) -> bool {
        self == Self::OK
    }
}

impl fmt::Display for StatusCode {
    /// The draft's name, or `SSH_FX_<n>` for a code it does not define.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "SSH_FX_{}", self.0),
        }
    }
}

/// Encodes a whole SSH_FXP_STATUS packet (length prefix included) answering request `id`
/// with `code` and `message`, language tag empty. The message is cut at a character
/// boundary to [`MAX_STATUS_MESSAGE`] bytes.
pub fn status_packet(id: u32, code: StatusCode, message: &str) -> Bytes {
    let message = cut(message, MAX_STATUS_MESSAGE);
    // type, id, code, message string, empty language string.
    let body = 1 + 4 + 4 + 4 + message.len() + 4;
    let mut out = BytesMut::with_capacity(4 + body);
    // The cut above bounds `body` far below u32::MAX.
    out.put_u32(u32::try_from(body).unwrap_or(u32::MAX));
    out.put_u8(SSH_FXP_STATUS);
    out.put_u32(id);
    out.put_u32(code.0);
    out.put_u32(u32::try_from(message.len()).unwrap_or(u32::MAX));
    out.put_slice(message.as_bytes());
    out.put_u32(0);
    out.freeze()
}

/// The STATUS packet refusing request `id` with SSH_FX_PERMISSION_DENIED and `reason`.
pub fn denied_packet(id: u32, reason: &str) -> Bytes {
    status_packet(id, StatusCode::PERMISSION_DENIED, reason)
}

/// `text` cut to at most `max` bytes, at a character boundary.
fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text.get(..end).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sftp::packet::Response;

    #[test]
    fn names() {
        assert_eq!(StatusCode::OK.to_string(), "SSH_FX_OK");
        assert_eq!(
            StatusCode::PERMISSION_DENIED.to_string(),
            "SSH_FX_PERMISSION_DENIED"
        );
        assert_eq!(
            StatusCode::OP_UNSUPPORTED.name(),
            Some("SSH_FX_OP_UNSUPPORTED")
        );
        assert_eq!(StatusCode(42).name(), None);
        assert_eq!(StatusCode(42).to_string(), "SSH_FX_42");
    }

    #[test]
    fn the_encoding_is_exact() {
        let p = status_packet(7, StatusCode::PERMISSION_DENIED, "no");
        let want: &[u8] = &[
            0, 0, 0, 19,  // length
            101, // SSH_FXP_STATUS
            0, 0, 0, 7, // id
            0, 0, 0, 3, // code
            0, 0, 0, 2, b'n', b'o', // message
            0, 0, 0, 0, // language
        ];
        assert_eq!(p.as_ref(), want);
    }

    #[test]
    fn a_denial_round_trips_through_the_parser() {
        let p = denied_packet(0xdead_beef, "denied by rule no-rm: ask the data owner");
        assert_eq!(
            Response::parse(&p),
            Ok(Response::Status {
                id: 0xdead_beef,
                code: StatusCode::PERMISSION_DENIED,
                message: b"denied by rule no-rm: ask the data owner",
            })
        );
    }

    #[test]
    fn a_long_message_is_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_STATUS_MESSAGE);
        let p = status_packet(1, StatusCode::FAILURE, &long);
        let Ok(Response::Status { message, .. }) = Response::parse(&p) else {
            panic!("not a status");
        };
        assert_eq!(message.len(), MAX_STATUS_MESSAGE);
        assert!(std::str::from_utf8(message).is_ok());

        let odd = format!("a{}", "é".repeat(MAX_STATUS_MESSAGE));
        let p = status_packet(1, StatusCode::FAILURE, &odd);
        let Ok(Response::Status { message, .. }) = Response::parse(&p) else {
            panic!("not a status");
        };
        assert_eq!(message.len(), MAX_STATUS_MESSAGE - 1);
        assert!(std::str::from_utf8(message).is_ok());
    }
}
