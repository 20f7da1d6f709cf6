//! MySQL packets: a 3-byte little-endian payload length, a 1-byte sequence id, the payload.
//! A payload of exactly 0xFFFFFF bytes is continued by the next packet (messages of 16 MiB
//! and more); a message ends with a packet shorter than that, possibly empty.
//!
//! Packets are split off the read buffer without copying; only a message that spans several
//! packets is joined.

use bytes::{Bytes, BytesMut};

use crate::error::MysqlError;

/// The largest payload one packet carries; a packet this full is continued by the next.
pub const MAX_PAYLOAD: usize = 0xFF_FFFF;

/// Bytes of a packet header.
pub const HEADER: usize = 4;

/// The length and sequence id of the packet at the front of `buf`, if its header is there.
pub fn peek_header(buf: &[u8]) -> Option<(usize, u8)> {
    let h = buf.get(..HEADER)?;
    let len = usize::from(h[0]) | usize::from(h[1]) << 8 | usize::from(h[2]) << 16;
    Some((len, h[3]))
}

/// A whole message: its first packet's sequence id, the last one's, and the joined payload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// The first packet's sequence id.
    pub first_seq: u8,
    /// The last packet's sequence id (the next packet of the exchange follows it).
    pub last_seq: u8,
    /// The payload, joined across continuation packets.
    pub payload: Bytes,
    /// The packets as received, headers included.
    pub raw: Bytes,
}

/// Splits one whole message (one or more packets) off the front of `buf`, or `None` if it
/// has not fully arrived. Continuation packets must carry consecutive sequence ids; the
/// joined payload may not exceed `max`.
pub fn split_message(buf: &mut BytesMut, max: usize) -> Result<Option<Message>, MysqlError> {
    // Find the end first, so nothing is consumed until the message is complete.
    let mut at = 0;
    let mut total = 0;
    let mut packets = 0;
    let mut first_seq = 0u8;
    let mut want = 0u8;
    loop {
        let Some((len, seq)) = peek_header(buf.get(at..).unwrap_or_default()) else {
            return Ok(None);
        };
        if packets == 0 {
            first_seq = seq;
        } else if seq != want {
            return Err(MysqlError::Sequence { got: seq, want });
        }
        total += len;
        if total > max {
            return Err(MysqlError::TooLarge { len: total, max });
        }
        if buf.len() < at + HEADER + len {
            return Ok(None);
        }
        at += HEADER + len;
        packets += 1;
        want = seq.wrapping_add(1);
        if len < MAX_PAYLOAD {
            break;
        }
    }
    let last_seq = want.wrapping_sub(1);
    // The packets as they came, headers included: forwarded untouched when nothing in them
    // changes (zero-copy; the payload of a single packet is a slice of the same bytes).
    let raw = buf.split_to(at).freeze();
    let payload = if packets == 1 {
        raw.slice(HEADER..)
    } else {
        let mut joined = BytesMut::with_capacity(total);
        let mut rest = &raw[..];
        while let Some((len, _)) = peek_header(rest) {
            let end = (HEADER + len).min(rest.len());
            joined.extend_from_slice(&rest[HEADER.min(end)..end]);
            rest = &rest[end..];
        }
        joined.freeze()
    };
    Ok(Some(Message {
        first_seq,
        last_seq,
        payload,
        raw,
    }))
}

/// Encodes a message as packets starting at sequence id `seq` (split at [`MAX_PAYLOAD`],
/// with an empty closing packet when the payload is an exact multiple of it). Returns the
/// bytes and the next sequence id.
pub fn encode_message(payload: &[u8], mut seq: u8) -> (BytesMut, u8) {
    let mut out =
        BytesMut::with_capacity(payload.len() + HEADER * (payload.len() / MAX_PAYLOAD + 1));
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_PAYLOAD);
        out.extend_from_slice(&[
            (n & 0xFF) as u8,
            (n >> 8 & 0xFF) as u8,
            (n >> 16) as u8,
            seq,
        ]);
        out.extend_from_slice(&rest[..n]);
        seq = seq.wrapping_add(1);
        rest = &rest[n..];
        if n < MAX_PAYLOAD {
            return (out, seq);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_split_only_when_whole() {
        let mut buf = BytesMut::from(&[3, 0, 0, 7, b'a', b'b'][..]);
        assert_eq!(split_message(&mut buf, 1 << 20).unwrap(), None);
        buf.extend_from_slice(b"c\x01\x00\x00\x08z");
        let m = split_message(&mut buf, 1 << 20).unwrap().unwrap();
        assert_eq!((m.first_seq, &m.payload[..]), (7, &b"abc"[..]));
        assert_eq!(&m.raw[..], &[3, 0, 0, 7, b'a', b'b', b'c'][..]);
        let m = split_message(&mut buf, 1 << 20).unwrap().unwrap();
        assert_eq!((m.first_seq, &m.payload[..]), (8, &b"z"[..]));
        assert!(buf.is_empty());
    }

    #[test]
    fn messages_of_16_mib_and_more_round_trip() {
        for size in [
            0,
            5,
            MAX_PAYLOAD - 1,
            MAX_PAYLOAD,
            MAX_PAYLOAD + 10,
            2 * MAX_PAYLOAD,
        ] {
            let payload: Vec<u8> = (0..size).map(|i| (i % 251) as u8).collect();
            let (mut wire, next) = encode_message(&payload, 3);
            let packets = size / MAX_PAYLOAD + 1;
            assert_eq!(next, 3 + packets as u8, "{size}");
            // Arriving in pieces: nothing is taken until the whole message is there.
            let tail = wire.split_off(wire.len() / 2);
            let before = wire.len();
            if size > 0 {
                assert_eq!(split_message(&mut wire, 64 << 20).unwrap(), None);
                assert_eq!(wire.len(), before);
            }
            wire.unsplit(tail);
            let m = split_message(&mut wire, 64 << 20).unwrap().unwrap();
            assert_eq!((m.first_seq, m.last_seq), (3, 3 + packets as u8 - 1));
            assert_eq!(m.payload.len(), size);
            assert!(m.payload[..] == payload[..]);
            assert!(wire.is_empty());
        }
    }

    #[test]
    fn bad_sequences_and_oversized_messages_are_refused() {
        let (mut wire, _) = encode_message(&vec![0; MAX_PAYLOAD + 1], 0);
        wire[HEADER + MAX_PAYLOAD + 3] = 9; // the continuation's sequence id
        assert!(matches!(
            split_message(&mut wire, 64 << 20),
            Err(MysqlError::Sequence { got: 9, want: 1 })
        ));
        let (mut wire, _) = encode_message(&[0; 100], 0);
        assert!(matches!(
            split_message(&mut wire, 10),
            Err(MysqlError::TooLarge { len: 100, max: 10 })
        ));
    }
}
