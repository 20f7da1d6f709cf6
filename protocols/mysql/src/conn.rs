//! A MySQL peer (client or upstream server) as a stream of whole messages: reads fill one
//! buffer and messages are split off it; writes are queued and sent in one go. The stream is
//! plain TCP or TLS on either side, behind one boxed type.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use crate::error::MysqlError;
use crate::frame::{encode_message, peek_header, split_message, Message, HEADER};

/// Anything a MySQL session runs over: TCP, or TLS over TCP.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// A boxed stream toward a client or a server.
pub type Stream = Box<dyn Io>;

/// One side of a session: its stream, what was read but not consumed, what waits to be
/// written.
pub struct Conn {
    /// The stream.
    pub stream: Stream,
    /// Bytes read and not yet split into messages.
    pub buf: BytesMut,
    /// Bytes to write at the next [`Conn::flush`].
    pub out: BytesMut,
    /// Which side this is, for error messages (`client`, `server`).
    pub side: &'static str,
    /// Bytes read in all.
    pub read_total: u64,
}

impl Conn {
    /// Wraps a stream.
    pub fn new(stream: Stream, side: &'static str) -> Self {
        Self {
            stream,
            buf: BytesMut::with_capacity(16 << 10),
            out: BytesMut::with_capacity(16 << 10),
            side,
            read_total: 0,
        }
    }

    /// The next whole message, reading as needed.
    pub async fn next(&mut self, max: usize) -> Result<Message, MysqlError> {
        loop {
            if let Some(m) = split_message(&mut self.buf, max)? {
                return Ok(m);
            }
            self.fill().await?;
        }
    }

    /// A message already in the buffer, if one is whole.
    pub fn buffered(&mut self, max: usize) -> Result<Option<Message>, MysqlError> {
        split_message(&mut self.buf, max)
    }

    /// Reads once more into the buffer; the peer closing is an error.
    pub async fn fill(&mut self) -> Result<(), MysqlError> {
        if self.buf.capacity() - self.buf.len() < 4096 {
            self.buf.reserve(16 << 10);
        }
        // A TLS peer that hangs up without close_notify is a peer that hung up.
        let side = self.side;
        let n = self
            .stream
            .read_buf(&mut self.buf)
            .await
            .map_err(|e| closed(e, side))?;
        if n == 0 {
            return Err(MysqlError::Closed(self.side));
        }
        self.read_total += n as u64;
        Ok(())
    }

    /// Queues a payload of ours as packets from sequence id `seq`; returns the next id.
    pub fn queue(&mut self, payload: &[u8], seq: u8) -> u8 {
        let (bytes, next) = encode_message(payload, seq);
        self.out.extend_from_slice(&bytes);
        next
    }

    /// Queues bytes exactly as they are (a message forwarded untouched).
    pub fn queue_raw(&mut self, raw: &[u8]) {
        self.out.extend_from_slice(raw);
    }

    /// Writes everything queued.
    pub async fn flush(&mut self) -> Result<(), MysqlError> {
        if !self.out.is_empty() {
            self.stream.write_all(&self.out).await?;
            self.out.clear();
        }
        self.stream.flush().await?;
        Ok(())
    }
}

/// Reads exactly one packet and nothing past it: during the handshake a client sends its
/// TLS hello right behind its SSLRequest, and those bytes belong to the TLS layer.
pub async fn read_packet_exact<S: AsyncRead + Unpin>(
    stream: &mut S,
    max: usize,
    side: &'static str,
) -> Result<(u8, Vec<u8>), MysqlError> {
    let mut header = [0u8; HEADER];
    stream
        .read_exact(&mut header)
        .await
        .map_err(|e| closed(e, side))?;
    let (len, seq) = peek_header(&header).ok_or(MysqlError::Malformed("short header"))?;
    if len > max {
        return Err(MysqlError::TooLarge { len, max });
    }
    let mut payload = vec![0u8; len];
    stream
        .read_exact(&mut payload)
        .await
        .map_err(|e| closed(e, side))?;
    Ok((seq, payload))
}

/// Writes one message of ours and flushes it.
pub async fn write_message<S: AsyncWrite + Unpin>(
    stream: &mut S,
    payload: &[u8],
    seq: u8,
) -> Result<u8, MysqlError> {
    let (bytes, next) = encode_message(payload, seq);
    stream.write_all(&bytes).await?;
    stream.flush().await?;
    Ok(next)
}

fn closed(e: std::io::Error, side: &'static str) -> MysqlError {
    if e.kind() == std::io::ErrorKind::UnexpectedEof {
        MysqlError::Closed(side)
    } else {
        MysqlError::Io(e)
    }
}
