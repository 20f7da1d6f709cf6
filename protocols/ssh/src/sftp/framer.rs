//! Splitting one direction of an SFTP channel into whole packets.
//!
//! A packet is a uint32 length (counting what follows it) and that many bytes: a type byte
//! and the body. The framer keeps partial input in its own buffer, so bytes can be pushed in
//! whatever pieces the SSH channel delivers them; a whole packet is split off that buffer
//! without copying and returned with its length prefix, ready to be forwarded untouched.
//! Partial input is not an error: [`Framer::next_packet`] answers `Ok(None)` until the rest
//! arrives. The length is checked against the bound before anything is reserved for it.

use bytes::{Bytes, BytesMut};

use super::error::SftpError;

/// The largest packet length (type byte and body, the value of the length field) accepted:
/// OpenSSH's sftp-server and client both refuse longer ones (`SFTP_MAX_MSG_LENGTH`).
pub const MAX_PACKET: usize = 256 * 1024;

/// Bytes of the length prefix.
const PREFIX: usize = 4;

/// An incremental splitter of one direction of an SFTP stream.
///
/// Cancellation safety: it does no I/O; every byte pushed stays in the framer until a whole
/// packet is returned, so a relay may drop a pending read at any point without losing input.
#[derive(Debug)]
pub struct Framer {
    buf: BytesMut,
    max: usize,
}

impl Framer {
    /// A framer bounded by [`MAX_PACKET`].
    pub fn new() -> Self {
        Self::with_max(MAX_PACKET)
    }

    /// A framer that refuses packets whose length field exceeds `max`.
    pub fn with_max(max: usize) -> Self {
        Self {
            buf: BytesMut::new(),
            max,
        }
    }

    /// Appends bytes received from the peer. This is the one copy a packet's bytes undergo
    /// inside the decoder.
    pub fn push(&mut self, data: &[u8]) {
        self.buf.extend_from_slice(data);
    }

    /// Splits the next whole packet, length prefix included, off the buffer; `Ok(None)` if
    /// it has not fully arrived. A packet over the bound or of length zero is an error, and
    /// the stream cannot be followed past it.
    pub fn next_packet(&mut self) -> Result<Option<Bytes>, SftpError> {
        let Some(prefix) = self.buf.first_chunk::<PREFIX>() else {
            return Ok(None);
        };
        let len = u32::from_be_bytes(*prefix) as usize;
        if len > self.max {
            return Err(SftpError::TooLarge { len, max: self.max });
        }
        if len == 0 {
            return Err(SftpError::Empty);
        }
        let total = PREFIX + len;
        if self.buf.len() < total {
            // The length is bounded above, so reserving the rest of the packet at once is
            // safe, and spares a 32 KiB WRITE several doublings of the buffer.
            self.buf.reserve(total - self.buf.len());
            return Ok(None);
        }
        Ok(Some(self.buf.split_to(total).freeze()))
    }

    /// Bytes held that do not yet make a whole packet. Non-zero when the peer's stream ends
    /// means the last packet was cut short.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }
}

impl Default for Framer {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A packet of `len` body bytes: type 3, then zeros.
    fn packet(len: u32) -> Vec<u8> {
        let mut p = len.to_be_bytes().to_vec();
        p.push(3);
        p.resize(4 + len as usize, 0);
        p
    }

    #[test]
    fn whole_packets_come_out_with_their_prefix() {
        let mut f = Framer::new();
        let mut input = packet(5);
        input.extend(packet(9));
        f.push(&input);
        assert_eq!(f.next_packet().unwrap().unwrap().as_ref(), &packet(5)[..]);
        assert_eq!(f.next_packet().unwrap().unwrap().as_ref(), &packet(9)[..]);
        assert_eq!(f.next_packet().unwrap(), None);
        assert_eq!(f.buffered(), 0);
    }

    #[test]
    fn one_byte_at_a_time() {
        let mut f = Framer::new();
        let mut input = packet(40_000);
        input.extend(packet(1));
        let mut out = Vec::new();
        for b in &input {
            f.push(std::slice::from_ref(b));
            while let Some(p) = f.next_packet().unwrap() {
                out.push(p);
            }
        }
        assert_eq!(out.len(), 2);
        assert_eq!(out[0].as_ref(), &packet(40_000)[..]);
        assert_eq!(out[1].as_ref(), &packet(1)[..]);
    }

    #[test]
    fn a_cut_packet_waits_and_is_counted_as_buffered() {
        let mut f = Framer::new();
        let p = packet(10);
        f.push(&p[..3]);
        assert_eq!(f.next_packet().unwrap(), None);
        f.push(&p[3..8]);
        assert_eq!(f.next_packet().unwrap(), None);
        assert_eq!(f.buffered(), 8);
        f.push(&p[8..]);
        assert_eq!(f.next_packet().unwrap().unwrap().as_ref(), &p[..]);
    }

    #[test]
    fn the_bound_is_inclusive_and_checked_before_the_body_arrives() {
        let mut f = Framer::new();
        f.push(&packet(MAX_PACKET as u32));
        assert_eq!(f.next_packet().unwrap().unwrap().len(), 4 + MAX_PACKET);

        let mut f = Framer::with_max(100);
        f.push(&101u32.to_be_bytes());
        assert_eq!(
            f.next_packet(),
            Err(SftpError::TooLarge { len: 101, max: 100 })
        );

        let mut f = Framer::new();
        f.push(&u32::MAX.to_be_bytes());
        assert!(matches!(f.next_packet(), Err(SftpError::TooLarge { .. })));
    }

    #[test]
    fn a_zero_length_packet_is_refused() {
        let mut f = Framer::new();
        f.push(&[0, 0, 0, 0]);
        assert_eq!(f.next_packet(), Err(SftpError::Empty));
    }

    #[test]
    fn packets_are_slices_of_the_buffer_not_copies() {
        let mut f = Framer::new();
        let mut input = packet(100);
        input.extend(packet(100));
        f.push(&input);
        let a = f.next_packet().unwrap().unwrap();
        let b = f.next_packet().unwrap().unwrap();
        // Both were split off the same allocation, back to back.
        assert_eq!(a.as_ptr().wrapping_add(a.len()), b.as_ptr());
    }
}
