//! Decoding of the messages the gateway inspects, and encoding of the ones it writes itself.
//!
//! Decoders borrow from the frame body and never panic on short or malformed input: every read
//! goes through [`Reader`], which answers a protocol error instead.

use std::borrow::Cow;

use bytes::{BufMut, Bytes, BytesMut};

use crate::encoding::ClientEncoding;
use crate::error::PgError;

/// Frontend (client → server) message tags.
pub mod frontend {
    /// Simple query.
    pub const QUERY: u8 = b'Q';
    /// Parse (prepare).
    pub const PARSE: u8 = b'P';
    /// Bind.
    pub const BIND: u8 = b'B';
    /// Execute.
    pub const EXECUTE: u8 = b'E';
    /// Describe.
    pub const DESCRIBE: u8 = b'D';
    /// Close.
    pub const CLOSE: u8 = b'C';
    /// Sync.
    pub const SYNC: u8 = b'S';
    /// Flush.
    pub const FLUSH: u8 = b'H';
    /// Function call (fast-path).
    pub const FUNCTION_CALL: u8 = b'F';
    /// Copy data.
    pub const COPY_DATA: u8 = b'd';
    /// Copy done.
    pub const COPY_DONE: u8 = b'c';
    /// Copy failed.
    pub const COPY_FAIL: u8 = b'f';
    /// Terminate.
    pub const TERMINATE: u8 = b'X';
    /// Password, SASL initial response or SASL response.
    pub const PASSWORD: u8 = b'p';
}

/// Backend (server → client) message tags.
pub mod backend {
    /// Authentication request or result.
    pub const AUTHENTICATION: u8 = b'R';
    /// Cancellation key.
    pub const BACKEND_KEY_DATA: u8 = b'K';
    /// Run-time parameter status.
    pub const PARAMETER_STATUS: u8 = b'S';
    /// Ready for query.
    pub const READY_FOR_QUERY: u8 = b'Z';
    /// Row description.
    pub const ROW_DESCRIPTION: u8 = b'T';
    /// Data row.
    pub const DATA_ROW: u8 = b'D';
    /// Command complete.
    pub const COMMAND_COMPLETE: u8 = b'C';
    /// Empty query response.
    pub const EMPTY_QUERY: u8 = b'I';
    /// Error.
    pub const ERROR_RESPONSE: u8 = b'E';
    /// Notice.
    pub const NOTICE_RESPONSE: u8 = b'N';
    /// Portal suspended (row limit reached).
    pub const PORTAL_SUSPENDED: u8 = b's';
    /// Parameter description.
    pub const PARAMETER_DESCRIPTION: u8 = b't';
    /// Copy data.
    pub const COPY_DATA: u8 = b'd';
    /// Negotiate protocol version.
    pub const NEGOTIATE_PROTOCOL_VERSION: u8 = b'v';
    /// Parse complete.
    pub const PARSE_COMPLETE: u8 = b'1';
    /// Bind complete.
    pub const BIND_COMPLETE: u8 = b'2';
    /// Close complete.
    pub const CLOSE_COMPLETE: u8 = b'3';
    /// Copy-in response (the server waits for CopyData).
    pub const COPY_IN_RESPONSE: u8 = b'G';
    /// Copy-out response (CopyData follows).
    pub const COPY_OUT_RESPONSE: u8 = b'H';
    /// Copy done (end of a COPY TO's data).
    pub const COPY_DONE: u8 = b'c';
    /// No data (a Describe of something that returns no rows).
    pub const NO_DATA: u8 = b'n';
    /// A LISTEN/NOTIFY notification.
    pub const NOTIFICATION_RESPONSE: u8 = b'A';
    /// The result of a FunctionCall.
    pub const FUNCTION_CALL_RESPONSE: u8 = b'V';
}

/// Startup-phase request codes (in place of the protocol version).
pub mod request_code {
    /// SSLRequest.
    pub const SSL: i32 = 80_877_103;
    /// GSSENCRequest.
    pub const GSSENC: i32 = 80_877_104;
    /// CancelRequest.
    pub const CANCEL: i32 = 80_877_102;
    /// Protocol 3.0.
    pub const PROTOCOL_3_0: i32 = 196_608;
}

/// A bounds-checked cursor over a message body.
#[derive(Debug)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads `buf` from the start.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, PgError> {
        let (&b, rest) = self.buf.split_first().ok_or_else(short)?;
        self.buf = rest;
        Ok(b)
    }

    /// A big-endian i16.
    pub fn i16(&mut self) -> Result<i16, PgError> {
        let b = self.take(2)?.try_into().map_err(|_| short())?;
        Ok(i16::from_be_bytes(b))
    }

    /// A big-endian i32.
    pub fn i32(&mut self) -> Result<i32, PgError> {
        let b = self.take(4)?.try_into().map_err(|_| short())?;
        Ok(i32::from_be_bytes(b))
    }

    /// A count (i16) that must not be negative.
    pub fn count16(&mut self) -> Result<usize, PgError> {
        usize::try_from(self.i16()?).map_err(|_| PgError::Protocol("negative count".into()))
    }

    /// Exactly `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], PgError> {
        if self.buf.len() < n {
            return Err(short());
        }
        let (head, rest) = self.buf.split_at(n);
        self.buf = rest;
        Ok(head)
    }

    /// A NUL-terminated string (UTF-8 checked): for what the protocol keeps ASCII or UTF-8
    /// (tags, setting names, the gateway's own logins). Text in the session's client encoding
    /// is read with [`text`](Self::text).
    pub fn cstr(&mut self) -> Result<&'a str, PgError> {
        let s = self.cbytes()?;
        std::str::from_utf8(s).map_err(|_| PgError::Protocol("string is not valid UTF-8".into()))
    }

    /// A NUL-terminated string's bytes, as sent.
    pub fn cbytes(&mut self) -> Result<&'a [u8], PgError> {
        let end = self
            .buf
            .iter()
            .position(|&b| b == 0)
            .ok_or_else(|| PgError::Protocol("string is not NUL-terminated".into()))?;
        let (s, rest) = self.buf.split_at(end);
        self.buf = rest.get(1..).unwrap_or_default();
        Ok(s)
    }

    /// A statement or portal name in the session's client encoding, decoded exactly: the
    /// gateway keys what it knows by these, so two names the server tells apart must never
    /// decode alike. One that is not valid in the encoding (the server would reject it too)
    /// is a protocol error.
    pub fn name(&mut self, encoding: ClientEncoding) -> Result<Cow<'a, str>, PgError> {
        let bytes = self.cbytes()?;
        encoding.decode_exact(bytes).ok_or_else(|| {
            PgError::Protocol(format!(
                "a statement or portal name is not valid in the session's client encoding \
                 ({encoding:?}): {bytes:x?}"
            ))
        })
    }

    /// A NUL-terminated string in the session's client encoding, decoded for the gateway's
    /// reading (borrowed for UTF-8).
    pub fn text(&mut self, encoding: ClientEncoding) -> Result<Cow<'a, str>, PgError> {
        Ok(encoding.decode(self.cbytes()?))
    }

    /// A length-prefixed (i32) value; `None` for -1 (SQL NULL).
    pub fn value(&mut self) -> Result<Option<&'a [u8]>, PgError> {
        match self.i32()? {
            -1 => Ok(None),
            n if n < 0 => Err(PgError::Protocol(format!("invalid value length {n}"))),
            n => self.take(n as usize).map(Some),
        }
    }
}

fn short() -> PgError {
    PgError::Protocol("message is shorter than its contents".into())
}

/// A decoded Parse.
#[derive(Debug, PartialEq, Eq)]
pub struct Parse<'a> {
    /// Prepared statement name (empty: unnamed).
    pub statement: Cow<'a, str>,
    /// The SQL text's bytes, as sent: the relay decodes them once, in the session's client
    /// encoding, and checks the reading is certain.
    pub query_bytes: &'a [u8],
    /// Parameter type OIDs the client specified (0: unspecified).
    pub param_types: Vec<u32>,
}

impl<'a> Parse<'a> {
    /// Decodes a Parse body, its name in the session's client encoding.
    pub fn decode(body: &'a [u8], encoding: ClientEncoding) -> Result<Self, PgError> {
        let mut r = Reader::new(body);
        let statement = r.name(encoding)?;
        let query_bytes = r.cbytes()?;
        let n = r.count16()?;
        let mut param_types = Vec::with_capacity(n.min(r.remaining() / 4));
        for _ in 0..n {
            param_types.push(r.i32()? as u32);
        }
        Ok(Self {
            statement,
            query_bytes,
            param_types,
        })
    }
}

/// A decoded Bind.
#[derive(Debug, PartialEq, Eq)]
pub struct Bind<'a> {
    /// Destination portal.
    pub portal: Cow<'a, str>,
    /// Source prepared statement.
    pub statement: Cow<'a, str>,
    /// Parameter format codes (0 text, 1 binary): none means all text, one means all alike.
    pub formats: Vec<i16>,
    /// Parameter values (`None`: NULL).
    pub values: Vec<Option<&'a [u8]>>,
    /// Result column format codes (none: all text; one: all alike; else per column).
    pub result_formats: Vec<i16>,
}

impl<'a> Bind<'a> {
    /// Decodes a Bind body, its names in the session's client encoding.
    pub fn decode(body: &'a [u8], encoding: ClientEncoding) -> Result<Self, PgError> {
        let mut r = Reader::new(body);
        let portal = r.name(encoding)?;
        let statement = r.name(encoding)?;
        let nf = r.count16()?;
        let mut formats = Vec::with_capacity(nf.min(r.remaining() / 2));
        for _ in 0..nf {
            formats.push(r.i16()?);
        }
        let nv = r.count16()?;
        let mut values = Vec::with_capacity(nv.min(r.remaining() / 4));
        for _ in 0..nv {
            values.push(r.value()?);
        }
        let nr = r.count16()?;
        let mut result_formats = Vec::with_capacity(nr.min(r.remaining() / 2));
        for _ in 0..nr {
            result_formats.push(r.i16()?);
        }
        Ok(Self {
            portal,
            statement,
            formats,
            values,
            result_formats,
        })
    }

    /// The format code of parameter `i`.
    pub fn format_of(&self, i: usize) -> i16 {
        match self.formats.as_slice() {
            [] => 0,
            [one] => *one,
            many => many.get(i).copied().unwrap_or(0),
        }
    }
}

/// A decoded Execute: the portal and the row limit (0: all).
pub fn decode_execute(
    body: &[u8],
    encoding: ClientEncoding,
) -> Result<(Cow<'_, str>, i32), PgError> {
    let mut r = Reader::new(body);
    Ok((r.name(encoding)?, r.i32()?))
}

/// A decoded Describe or Close: `'S'` statement or `'P'` portal, and its name.
pub fn decode_target(body: &[u8], encoding: ClientEncoding) -> Result<(u8, Cow<'_, str>), PgError> {
    let mut r = Reader::new(body);
    Ok((r.u8()?, r.name(encoding)?))
}

/// A decoded simple Query's text, in the session's client encoding.
pub fn decode_query(body: &[u8], encoding: ClientEncoding) -> Result<Cow<'_, str>, PgError> {
    Reader::new(body).text(encoding)
}

/// A decoded FunctionCall: the function OID and its arguments (format codes, values).
#[derive(Debug)]
pub struct FunctionCall<'a> {
    /// Function OID.
    pub oid: u32,
    /// Argument format codes.
    pub formats: Vec<i16>,
    /// Argument values.
    pub args: Vec<Option<&'a [u8]>>,
}

impl<'a> FunctionCall<'a> {
    /// Decodes a FunctionCall body.
    pub fn decode(body: &'a [u8]) -> Result<Self, PgError> {
        let mut r = Reader::new(body);
        let oid = r.i32()? as u32;
        let nf = r.count16()?;
        let mut formats = Vec::with_capacity(nf.min(r.remaining() / 2));
        for _ in 0..nf {
            formats.push(r.i16()?);
        }
        let na = r.count16()?;
        let mut args = Vec::with_capacity(na.min(r.remaining() / 4));
        for _ in 0..na {
            args.push(r.value()?);
        }
        Ok(Self { oid, formats, args })
    }
}

/// A DataRow's column values, decoded lazily: iterate to get each value (`None` for NULL).
/// Only rows a mask plan names need this; the relay otherwise counts rows by header alone.
#[derive(Debug)]
pub struct DataRow<'a> {
    reader: Reader<'a>,
    left: usize,
}

impl<'a> DataRow<'a> {
    /// Starts decoding a DataRow body.
    pub fn decode(body: &'a [u8]) -> Result<Self, PgError> {
        let mut reader = Reader::new(body);
        let left = reader.count16()?;
        Ok(Self { reader, left })
    }

    /// Number of columns not yet read.
    pub fn remaining(&self) -> usize {
        self.left
    }
}

impl<'a> Iterator for DataRow<'a> {
    type Item = Result<Option<&'a [u8]>, PgError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        Some(self.reader.value())
    }
}

/// The fields of an ErrorResponse or NoticeResponse that the gateway uses.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ServerNotice {
    /// Severity (`ERROR`, `FATAL`, ...), non-localised when the server sent it.
    pub severity: String,
    /// SQLSTATE.
    pub code: String,
    /// Primary message.
    pub message: String,
}

impl ServerNotice {
    /// Decodes an ErrorResponse/NoticeResponse body, its texts in the session's client
    /// encoding (a server's messages are translated into it, and may be in any language).
    pub fn decode(body: &[u8], encoding: ClientEncoding) -> Result<Self, PgError> {
        let mut r = Reader::new(body);
        let mut out = Self::default();
        loop {
            let field = r.u8()?;
            if field == 0 {
                return Ok(out);
            }
            let value = r.text(encoding)?;
            match field {
                b'V' => out.severity = value.into_owned(),
                b'S' if out.severity.is_empty() => out.severity = value.into_owned(),
                b'C' => out.code = value.into_owned(),
                b'M' => out.message = value.into_owned(),
                _ => {}
            }
        }
    }
}

/// The row count a CommandComplete tag reports (`SELECT 5`, `INSERT 0 3`, `COPY 7`), if any.
pub fn tag_rows(tag: &str) -> Option<u64> {
    let mut words = tag.split(' ');
    let verb = words.next()?;
    let last = tag.rsplit(' ').next()?;
    match verb {
        "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "COPY" | "FETCH" | "MOVE" => {
            last.parse().ok()
        }
        _ => None,
    }
}

/// Builds backend/frontend messages: tag, length filled in at the end, body.
#[derive(Debug)]
pub struct MessageBuilder {
    buf: BytesMut,
    start: usize,
}

impl MessageBuilder {
    /// Starts a tagged message.
    pub fn new(tag: u8) -> Self {
        let mut buf = BytesMut::with_capacity(64);
        buf.put_u8(tag);
        buf.put_i32(0);
        Self { buf, start: 1 }
    }

    /// Starts an untagged startup-phase message.
    pub fn untagged() -> Self {
        let mut buf = BytesMut::with_capacity(64);
        buf.put_i32(0);
        Self { buf, start: 0 }
    }

    /// Appends an i32.
    pub fn i32(mut self, v: i32) -> Self {
        self.buf.put_i32(v);
        self
    }

    /// Appends an i16.
    pub fn i16(mut self, v: i16) -> Self {
        self.buf.put_i16(v);
        self
    }

    /// Appends a NUL-terminated string.
    pub fn cstr(mut self, s: &str) -> Self {
        self.buf.put_slice(s.as_bytes());
        self.buf.put_u8(0);
        self
    }

    /// Appends raw bytes.
    pub fn bytes(mut self, b: &[u8]) -> Self {
        self.buf.put_slice(b);
        self
    }

    /// Appends one byte.
    pub fn u8(mut self, b: u8) -> Self {
        self.buf.put_u8(b);
        self
    }

    /// Finishes the message, writing its length.
    pub fn finish(mut self) -> Bytes {
        let len = (self.buf.len() - self.start) as i32;
        let at = self.start;
        if let Some(slot) = self.buf.get_mut(at..at + 4) {
            slot.copy_from_slice(&len.to_be_bytes());
        }
        self.buf.freeze()
    }
}

/// Severity of a message the gateway writes itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    /// The statement failed; the session goes on.
    Error,
    /// The session ends.
    Fatal,
    /// Information only (NoticeResponse).
    Notice,
}

impl Severity {
    fn as_str(self) -> &'static str {
        match self {
            Self::Error => "ERROR",
            Self::Fatal => "FATAL",
            Self::Notice => "NOTICE",
        }
    }
}

/// An ErrorResponse (or a NoticeResponse for [`Severity::Notice`]) written by the gateway.
/// The message says what happened; the hint, if any, what to do.
pub fn error_response(severity: Severity, code: &str, message: &str, hint: Option<&str>) -> Bytes {
    let tag = if severity == Severity::Notice {
        backend::NOTICE_RESPONSE
    } else {
        backend::ERROR_RESPONSE
    };
    let mut m = MessageBuilder::new(tag)
        .u8(b'S')
        .cstr(severity.as_str())
        .u8(b'V')
        .cstr(severity.as_str())
        .u8(b'C')
        .cstr(code)
        .u8(b'M')
        .cstr(message);
    if let Some(hint) = hint {
        m = m.u8(b'H').cstr(hint);
    }
    m.u8(0).finish()
}

/// AuthenticationOk, AuthenticationCleartextPassword and friends: `R` with a code.
pub fn authentication(code: i32) -> Bytes {
    MessageBuilder::new(backend::AUTHENTICATION)
        .i32(code)
        .finish()
}

/// BackendKeyData with the gateway's own key.
pub fn backend_key_data(pid: i32, secret: i32) -> Bytes {
    MessageBuilder::new(backend::BACKEND_KEY_DATA)
        .i32(pid)
        .i32(secret)
        .finish()
}

/// ReadyForQuery with a transaction status (`I`, `T`, `E`).
pub fn ready_for_query(status: u8) -> Bytes {
    MessageBuilder::new(backend::READY_FOR_QUERY)
        .u8(status)
        .finish()
}

/// An Execute of a portal, with no row limit.
pub fn execute(portal: &str) -> Bytes {
    MessageBuilder::new(frontend::EXECUTE)
        .cstr(portal)
        .i32(0)
        .finish()
}

/// Sync.
pub fn sync() -> Bytes {
    MessageBuilder::new(frontend::SYNC).finish()
}

/// Terminate.
pub fn terminate() -> Bytes {
    MessageBuilder::new(frontend::TERMINATE).finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_bind_with_nulls_and_formats() {
        let body = MessageBuilder::untagged()
            .cstr("p1")
            .cstr("s1")
            .i16(1)
            .i16(1)
            .i16(2)
            .i32(4)
            .bytes(&7i32.to_be_bytes())
            .i32(-1)
            .i16(0)
            .finish();
        let bind = Bind::decode(&body[4..], ClientEncoding::Utf8).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(bind.portal, "p1");
        assert_eq!(bind.statement, "s1");
        assert_eq!(bind.format_of(1), 1);
        assert_eq!(bind.values, vec![Some(&7i32.to_be_bytes()[..]), None]);
    }

    #[test]
    fn truncated_messages_are_errors_not_panics() {
        let bodies: [&[u8]; 5] = [
            b"",
            b"p1",
            b"p1\0s1\0\x00",
            b"p1\0s1\0\x00\x00\x00\x01\x00\x00\x00\x09ab",
            b"\xff\xff",
        ];
        for body in bodies {
            assert!(
                Bind::decode(body, ClientEncoding::Utf8).is_err(),
                "{body:?}"
            );
        }
        assert!(Parse::decode(b"s\0q", ClientEncoding::Utf8).is_err());
        assert!(Parse::decode(b"s\0q\0\x00\x05", ClientEncoding::Utf8).is_err());
        assert!(decode_execute(b"p\0\x00", ClientEncoding::Utf8).is_err());
        assert!(ServerNotice::decode(b"SERROR\0C4200", ClientEncoding::Utf8).is_err());
    }

    #[test]
    fn decodes_data_rows_and_rejects_lies() {
        let body = MessageBuilder::untagged()
            .i16(3)
            .i32(2)
            .bytes(b"hi")
            .i32(-1)
            .i32(0)
            .finish();
        let values: Vec<_> = DataRow::decode(&body[4..])
            .unwrap_or_else(|e| panic!("{e}"))
            .collect::<Result<_, _>>()
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(values, vec![Some(&b"hi"[..]), None, Some(&b""[..])]);
        let lying = [0u8, 2, 0, 0, 0, 9, b'x'];
        let result: Result<Vec<_>, _> = DataRow::decode(&lying)
            .unwrap_or_else(|e| panic!("{e}"))
            .collect();
        assert!(result.is_err());
    }

    #[test]
    fn reads_error_fields_and_tags() {
        let e = error_response(
            Severity::Error,
            "42P01",
            "relation \"t\" does not exist",
            None,
        );
        let n =
            ServerNotice::decode(&e[5..], ClientEncoding::Utf8).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.code, "42P01");
        assert_eq!(n.severity, "ERROR");
        assert_eq!(n.message, "relation \"t\" does not exist");
        // A server's message in the session's encoding (LATIN9 here) is read, not refused.
        let latin9 = ClientEncoding::from_name("LATIN9");
        let n = ServerNotice::decode(b"SERREUR\0C22012\0Mdivision par z\xe9ro\0\0", latin9)
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(n.message, "division par zéro");
        assert_eq!(tag_rows("SELECT 5"), Some(5));
        assert_eq!(tag_rows("INSERT 0 3"), Some(3));
        assert_eq!(tag_rows("COPY 7"), Some(7));
        assert_eq!(tag_rows("BEGIN"), None);
        assert_eq!(tag_rows("CREATE TABLE"), None);
    }
}
