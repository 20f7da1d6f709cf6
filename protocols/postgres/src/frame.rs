//! Frame splitting on the read buffer.
//!
//! A PostgreSQL message is a one-byte tag, a big-endian `i32` length that counts itself, and a
//! body. Startup-phase messages have no tag. Splitting never copies: a complete frame is split
//! off the buffer as a [`Bytes`] slice that is forwarded as it is. Partial input is not an error:
//! the splitter answers `Ok(None)` and waits for more. Lengths are checked (sign, minimum and a
//! cap) before anything is reserved, so a hostile length cannot make the gateway allocate.

use bytes::{Buf, Bytes, BytesMut};

use crate::error::PgError;

/// Largest startup packet accepted (PostgreSQL's own limit).
pub const MAX_STARTUP_LEN: usize = 10_000;

/// Largest frame accepted from a client before authentication.
pub const MAX_PREAUTH_FRAME: usize = 64 * 1024;

/// A tagged frame: the whole message (tag, length, body) as one slice.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    bytes: Bytes,
}

impl Frame {
    /// The message type byte.
    pub fn tag(&self) -> u8 {
        self.bytes.first().copied().unwrap_or(0)
    }

    /// The body after tag and length.
    pub fn body(&self) -> &[u8] {
        self.bytes.get(5..).unwrap_or_default()
    }

    /// The whole frame, to forward unchanged.
    pub fn bytes(&self) -> &Bytes {
        &self.bytes
    }
}

/// The header of the tagged frame at the start of `buf`, if at least five bytes are there:
/// its tag and total length (tag included). Checks the length before anything else.
pub fn peek_header(buf: &[u8], max: usize) -> Result<Option<(u8, usize)>, PgError> {
    let Some(&[tag, a, b, c, d]) = buf.first_chunk::<5>() else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([a, b, c, d]);
    if len < 4 {
        return Err(PgError::Protocol(format!(
            "message {:?} has an invalid length {len}",
            char::from(tag)
        )));
    }
    let total = len as usize + 1;
    if total > max {
        return Err(PgError::TooLarge {
            tag,
            len: total,
            max,
        });
    }
    Ok(Some((tag, total)))
}

/// Splits the next complete tagged frame off `buf`, or `Ok(None)` if it is not all there yet.
pub fn split_frame(buf: &mut BytesMut, max: usize) -> Result<Option<Frame>, PgError> {
    match peek_header(buf, max)? {
        Some((_, total)) if buf.len() >= total => Ok(Some(Frame {
            bytes: buf.split_to(total).freeze(),
        })),
        Some((_, total)) => {
            buf.reserve(total - buf.len());
            Ok(None)
        }
        None => Ok(None),
    }
}

/// Splits the next complete untagged startup-phase packet (length-prefixed) off `buf`; returns
/// its body after the length.
pub fn split_startup(buf: &mut BytesMut) -> Result<Option<Bytes>, PgError> {
    let Some(&header) = buf.first_chunk::<4>() else {
        return Ok(None);
    };
    let len = i32::from_be_bytes(header);
    if !(8..=MAX_STARTUP_LEN as i32).contains(&len) {
        return Err(PgError::Protocol(format!(
            "startup packet has an invalid length {len}"
        )));
    }
    let len = len as usize;
    if buf.len() < len {
        buf.reserve(len - buf.len());
        return Ok(None);
    }
    let mut packet = buf.split_to(len);
    packet.advance(4);
    Ok(Some(packet.freeze()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut v = vec![tag];
        v.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
        v.extend_from_slice(body);
        v
    }

    #[test]
    fn splits_complete_frames_and_waits_for_partial_ones() {
        let mut wire = frame(b'Q', b"SELECT 1\0");
        wire.extend(frame(b'X', b""));
        let mut buf = BytesMut::new();
        for (i, byte) in wire.iter().enumerate() {
            buf.extend_from_slice(&[*byte]);
            let got = split_frame(&mut buf, 1024);
            let got = got.unwrap_or_else(|e| panic!("{e}"));
            if i == 13 {
                let f = got.unwrap_or_else(|| panic!("frame expected at byte {i}"));
                assert_eq!(f.tag(), b'Q');
                assert_eq!(f.body(), b"SELECT 1\0");
            } else if i == 18 {
                assert_eq!(got.map(|f| f.tag()), Some(b'X'));
            } else {
                assert!(got.is_none(), "no frame expected at byte {i}");
            }
        }
        assert!(buf.is_empty());
    }

    #[test]
    fn refuses_bad_lengths_before_reserving() {
        let cases: [(&[u8], &str); 3] = [
            (&[b'Q', 0, 0, 0, 3], "invalid length 3"),
            (&[b'Q', 0xff, 0xff, 0xff, 0xff], "invalid length -1"),
            (&[b'Q', 0x7f, 0, 0, 0], "too large"),
        ];
        for (bytes, want) in cases {
            let mut buf = BytesMut::from(bytes);
            let err = split_frame(&mut buf, 1 << 20)
                .err()
                .unwrap_or_else(|| panic!("error expected for {bytes:?}"));
            assert!(err.to_string().contains(want), "{err}");
            assert!(buf.capacity() < 1 << 20);
        }
    }

    #[test]
    fn startup_packets_are_bounded() {
        let mut buf = BytesMut::from(&[0u8, 0, 0, 8, 4, 210, 22, 47][..]);
        let body = split_startup(&mut buf).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(body.as_deref(), Some(&[4u8, 210, 22, 47][..]));
        let mut huge = BytesMut::from(&[0u8, 1, 0, 0][..]);
        assert!(split_startup(&mut huge).is_err());
    }
}
