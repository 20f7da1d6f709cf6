//! The binary protocol of prepared statements: COM_STMT_PREPARE's answer, COM_STMT_EXECUTE's
//! parameters rendered for the audit trail, COM_STMT_SEND_LONG_DATA, and binary result rows
//! rewritten by the mask plan. One decoder, [`Value::read`], knows where every type's value
//! ends, for parameters and rows alike.
//!
//! Assumes `CLIENT_QUERY_ATTRIBUTES` is not negotiated: with it, COM_STMT_EXECUTE carries a
//! parameter count and a name per parameter that this decoder does not read.

use std::fmt::{self, Write as _};

use gatehouse_core::mask::{MaskCounts, MaskPlan, Masked};

use crate::codec::{put_lenenc_bytes, Reader};
use crate::columns::Column;
use crate::error::MysqlError;

/// Command byte of COM_STMT_PREPARE.
pub const COM_STMT_PREPARE: u8 = 0x16;
/// Command byte of COM_STMT_EXECUTE.
pub const COM_STMT_EXECUTE: u8 = 0x17;
/// Command byte of COM_STMT_SEND_LONG_DATA.
pub const COM_STMT_SEND_LONG_DATA: u8 = 0x18;

/// Parameter flag (second byte of a parameter's type): the integer is unsigned.
pub const PARAM_UNSIGNED: u8 = 0x80;

/// MySQL type codes (`enum_field_types`), as column definitions and parameter types carry them.
pub mod field_type {
    /// DECIMAL (old): a length-encoded decimal string.
    pub const DECIMAL: u8 = 0;
    /// TINYINT: 1 byte.
    pub const TINY: u8 = 1;
    /// SMALLINT: 2 bytes.
    pub const SHORT: u8 = 2;
    /// INT: 4 bytes.
    pub const LONG: u8 = 3;
    /// FLOAT: 4 bytes.
    pub const FLOAT: u8 = 4;
    /// DOUBLE: 8 bytes.
    pub const DOUBLE: u8 = 5;
    /// NULL: no bytes.
    pub const NULL: u8 = 6;
    /// TIMESTAMP: a length byte then 0, 4, 7 or 11 bytes.
    pub const TIMESTAMP: u8 = 7;
    /// BIGINT: 8 bytes.
    pub const LONGLONG: u8 = 8;
    /// MEDIUMINT: 4 bytes in the binary protocol.
    pub const INT24: u8 = 9;
    /// DATE: a length byte then 0, 4, 7 or 11 bytes.
    pub const DATE: u8 = 10;
    /// TIME: a length byte then 0, 8 or 12 bytes.
    pub const TIME: u8 = 11;
    /// DATETIME: a length byte then 0, 4, 7 or 11 bytes.
    pub const DATETIME: u8 = 12;
    /// YEAR: 2 bytes.
    pub const YEAR: u8 = 13;
    /// NEWDATE (internal to the server; read as DATE should it appear).
    pub const NEWDATE: u8 = 14;
    /// VARCHAR: a length-encoded string.
    pub const VARCHAR: u8 = 15;
    /// BIT: length-encoded bytes.
    pub const BIT: u8 = 16;
    /// VECTOR (MySQL 9): length-encoded bytes.
    pub const VECTOR: u8 = 242;
    /// JSON: length-encoded JSON text.
    pub const JSON: u8 = 245;
    /// DECIMAL: a length-encoded decimal string.
    pub const NEWDECIMAL: u8 = 246;
    /// ENUM: a length-encoded string.
    pub const ENUM: u8 = 247;
    /// SET: a length-encoded string.
    pub const SET: u8 = 248;
    /// TINYBLOB/TINYTEXT: length-encoded bytes.
    pub const TINY_BLOB: u8 = 249;
    /// MEDIUMBLOB/MEDIUMTEXT: length-encoded bytes.
    pub const MEDIUM_BLOB: u8 = 250;
    /// LONGBLOB/LONGTEXT: length-encoded bytes.
    pub const LONG_BLOB: u8 = 251;
    /// BLOB/TEXT: length-encoded bytes.
    pub const BLOB: u8 = 252;
    /// VARCHAR/VARBINARY as results carry them: a length-encoded string.
    pub const VAR_STRING: u8 = 253;
    /// CHAR/BINARY: a length-encoded string.
    pub const STRING: u8 = 254;
    /// GEOMETRY: length-encoded bytes (WKB).
    pub const GEOMETRY: u8 = 255;

    /// The type's name, for error messages (`unknown` for a code no server sends).
    pub fn name(code: u8) -> &'static str {
        match code {
            DECIMAL => "DECIMAL",
            TINY => "TINY",
            SHORT => "SHORT",
            LONG => "LONG",
            FLOAT => "FLOAT",
            DOUBLE => "DOUBLE",
            NULL => "NULL",
            TIMESTAMP => "TIMESTAMP",
            LONGLONG => "LONGLONG",
            INT24 => "INT24",
            DATE => "DATE",
            TIME => "TIME",
            DATETIME => "DATETIME",
            YEAR => "YEAR",
            NEWDATE => "NEWDATE",
            VARCHAR => "VARCHAR",
            BIT => "BIT",
            VECTOR => "VECTOR",
            JSON => "JSON",
            NEWDECIMAL => "NEWDECIMAL",
            ENUM => "ENUM",
            SET => "SET",
            TINY_BLOB => "TINY_BLOB",
            MEDIUM_BLOB => "MEDIUM_BLOB",
            LONG_BLOB => "LONG_BLOB",
            BLOB => "BLOB",
            VAR_STRING => "VAR_STRING",
            STRING => "STRING",
            GEOMETRY => "GEOMETRY",
            _ => "unknown",
        }
    }

    /// Whether the type's binary value is a length-encoded string.
    pub fn is_lenenc(code: u8) -> bool {
        matches!(
            code,
            DECIMAL
                | NEWDECIMAL
                | VARCHAR
                | BIT
                | VECTOR
                | JSON
                | ENUM
                | SET
                | TINY_BLOB
                | MEDIUM_BLOB
                | LONG_BLOB
                | BLOB
                | VAR_STRING
                | STRING
                | GEOMETRY
        )
    }

    /// Whether a mask (text) is a valid value of the type, so a replacement can be written in
    /// place: character and byte strings, JSON, ENUM and SET. Not numbers, dates, BIT,
    /// GEOMETRY or VECTOR, whose bytes a client parses.
    pub fn holds_text(code: u8) -> bool {
        matches!(
            code,
            VARCHAR
                | JSON
                | ENUM
                | SET
                | TINY_BLOB
                | MEDIUM_BLOB
                | LONG_BLOB
                | BLOB
                | VAR_STRING
                | STRING
        )
    }
}

/// COM_STMT_PREPARE_OK, the server's answer to a successful COM_STMT_PREPARE. The `params`
/// parameter definitions and then the `columns` column definitions follow as packets of
/// their own (each group closed by an EOF unless `DEPRECATE_EOF`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PrepareOk {
    /// The statement id later commands name it by.
    pub statement_id: u32,
    /// Columns of its result sets (0 for statements without rows).
    pub columns: u16,
    /// Its `?` placeholders: the parameter count of every COM_STMT_EXECUTE of it.
    pub params: u16,
}

/// The fixed part of a COM_STMT_EXECUTE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ExecuteHeader {
    /// The statement executed (MariaDB: 0xFFFFFFFF for the one prepared last).
    pub statement_id: u32,
    /// Cursor flags (0 for none).
    pub flags: u8,
}

/// One value of the binary protocol, borrowed from its packet.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    /// A value of type NULL (a parameter bound as NULL by type rather than by bitmap).
    Null,
    /// A signed integer (TINY, SHORT, YEAR, INT24, LONG, LONGLONG).
    Int(i64),
    /// An unsigned integer (the same types with the unsigned flag).
    UInt(u64),
    /// A FLOAT.
    Float(f32),
    /// A DOUBLE.
    Double(f64),
    /// The bytes of a length-encoded value: strings, blobs, decimals, JSON, ENUM, SET, BIT,
    /// GEOMETRY.
    Bytes(&'a [u8]),
    /// A DATE, DATETIME or TIMESTAMP.
    DateTime(DateTime),
    /// A TIME.
    Time(Time),
}

/// A DATE, DATETIME or TIMESTAMP value, with as much precision as its length byte gave.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    /// Year.
    pub year: u16,
    /// Month (1–12; 0 in a zero date).
    pub month: u8,
    /// Day (1–31; 0 in a zero date).
    pub day: u8,
    /// Hour.
    pub hour: u8,
    /// Minute.
    pub minute: u8,
    /// Second.
    pub second: u8,
    /// Whether a time of day is shown (a DATETIME or TIMESTAMP, unless only its date was sent).
    pub has_time: bool,
    /// Microseconds, when they were sent.
    pub micros: Option<u32>,
}

/// A TIME value: a signed duration of up to 838 hours.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Time {
    /// Whether it is negative.
    pub negative: bool,
    /// Whole days.
    pub days: u32,
    /// Hours beyond the days.
    pub hour: u8,
    /// Minute.
    pub minute: u8,
    /// Second.
    pub second: u8,
    /// Microseconds, when they were sent.
    pub micros: Option<u32>,
}

impl PrepareOk {
    /// Decodes a COM_STMT_PREPARE_OK payload (header 0x00). The filler and warning count that
    /// follow are not needed, and not every server sends the warnings.
    pub fn decode(payload: &[u8]) -> Result<Self, MysqlError> {
        let mut r = Reader::new(payload);
        if r.u8()? != 0x00 {
            return Err(MysqlError::Malformed("not a COM_STMT_PREPARE_OK packet"));
        }
        let truncated = |_| MysqlError::Malformed("COM_STMT_PREPARE_OK truncated");
        let statement_id = r.uint(4).map_err(truncated)? as u32;
        let columns = r.uint(2).map_err(truncated)? as u16;
        let params = r.uint(2).map_err(truncated)? as u16;
        Ok(Self {
            statement_id,
            columns,
            params,
        })
    }
}

impl<'a> Value<'a> {
    /// Reads one value of type `type_code` from the front of `r` (`unsigned` for integers).
    /// The one place that knows each type's layout. An unknown type is an error: where its
    /// value ends, and so where the next one starts, cannot be told.
    pub fn read(r: &mut Reader<'a>, type_code: u8, unsigned: bool) -> Result<Self, MysqlError> {
        use field_type as t;
        Ok(match type_code {
            t::NULL => Self::Null,
            t::TINY => int(r, 1, unsigned)?,
            t::SHORT | t::YEAR => int(r, 2, unsigned)?,
            t::LONG | t::INT24 => int(r, 4, unsigned)?,
            t::LONGLONG => int(r, 8, unsigned)?,
            t::FLOAT => Self::Float(f32::from_bits(r.uint(4)? as u32)),
            t::DOUBLE => Self::Double(f64::from_bits(r.uint(8)?)),
            t::DATE | t::NEWDATE | t::DATETIME | t::TIMESTAMP => {
                Self::DateTime(DateTime::read(r, type_code)?)
            }
            t::TIME => Self::Time(Time::read(r)?),
            _ if t::is_lenenc(type_code) => match r.lenenc_bytes()? {
                Some(bytes) => Self::Bytes(bytes),
                // NULL is in the bitmap; 0xFB here means the packet is not what it claims.
                None => {
                    return Err(MysqlError::Malformed(
                        "0xFB (NULL) where a value's length belongs",
                    ))
                }
            },
            _ => {
                return Err(MysqlError::Malformed(
                    "unknown type, so where its value ends cannot be told",
                ))
            }
        })
    }

    /// The value as the audit trail shows it, like a literal without quotes (`None` for NULL;
    /// bytes as [`render_bytes`] shows them).
    fn audit_text(&self, type_code: u8) -> Option<String> {
        match self {
            Self::Null => None,
            Self::Bytes(bytes) => Some(render_bytes(type_code, bytes)),
            other => Some(other.to_string()),
        }
    }
}

/// A little-endian integer of `n` bytes, sign-extended unless `unsigned`.
fn int<'a>(r: &mut Reader<'a>, n: usize, unsigned: bool) -> Result<Value<'a>, MysqlError> {
    let raw = r.uint(n)?;
    if unsigned {
        return Ok(Value::UInt(raw));
    }
    let shift = 64 - 8 * n as u32;
    Ok(Value::Int(((raw << shift) as i64) >> shift))
}

impl DateTime {
    /// A length byte, then nothing (a zero value), the date (4), the date and time (7), or
    /// the date, time and microseconds (11).
    fn read(r: &mut Reader<'_>, type_code: u8) -> Result<Self, MysqlError> {
        let len = r.u8()?;
        if !matches!(len, 0 | 4 | 7 | 11) {
            return Err(MysqlError::Malformed(
                "a date's length byte is not 0, 4, 7 or 11",
            ));
        }
        let mut v = Self {
            year: 0,
            month: 0,
            day: 0,
            hour: 0,
            minute: 0,
            second: 0,
            // A zero DATETIME is shown whole; a DATE never has a time.
            has_time: len >= 7 || (len == 0 && type_code != field_type::DATE),
            micros: None,
        };
        if len >= 4 {
            v.year = r.uint(2)? as u16;
            v.month = r.u8()?;
            v.day = r.u8()?;
        }
        if len >= 7 {
            v.hour = r.u8()?;
            v.minute = r.u8()?;
            v.second = r.u8()?;
        }
        if len == 11 {
            v.micros = Some(r.uint(4)? as u32);
        }
        Ok(v)
    }
}

impl Time {
    /// A length byte, then nothing (zero), sign, days, hour, minute, second (8), and
    /// microseconds (12).
    fn read(r: &mut Reader<'_>) -> Result<Self, MysqlError> {
        let len = r.u8()?;
        let mut v = Self {
            negative: false,
            days: 0,
            hour: 0,
            minute: 0,
            second: 0,
            micros: None,
        };
        match len {
            0 => return Ok(v),
            8 | 12 => {}
            _ => {
                return Err(MysqlError::Malformed(
                    "a time's length byte is not 0, 8 or 12",
                ))
            }
        }
        v.negative = r.u8()? != 0;
        v.days = r.uint(4)? as u32;
        v.hour = r.u8()?;
        v.minute = r.u8()?;
        v.second = r.u8()?;
        if len == 12 {
            v.micros = Some(r.uint(4)? as u32);
        }
        Ok(v)
    }
}

impl Value<'_> {
    /// Appends the value as a client would write it as a literal, without quotes: what the
    /// text protocol would have sent, so text and binary results are masked alike.
    fn write_text(&self, out: &mut Text) {
        match self {
            Self::Null => out.extend(b"NULL"),
            Self::Int(n) => {
                if *n < 0 {
                    out.push(b'-');
                }
                out.number(n.unsigned_abs(), 1);
            }
            Self::UInt(n) => out.number(*n, 1),
            // Shortest round-trip form, all digits shown: a card number stored in a DOUBLE
            // stays visible to the detectors. (Writing to a Text cannot fail.)
            Self::Float(x) => {
                let _ = write!(out, "{x}");
            }
            Self::Double(x) => {
                let _ = write!(out, "{x}");
            }
            Self::Bytes(bytes) => out.extend(bytes),
            Self::DateTime(v) => v.write_text(out),
            Self::Time(v) => v.write_text(out),
        }
    }
}

impl DateTime {
    /// `YYYY-MM-DD[ hh:mm:ss[.ffffff]]`.
    fn write_text(&self, out: &mut Text) {
        out.number(u64::from(self.year), 4);
        out.push(b'-');
        out.number(u64::from(self.month), 2);
        out.push(b'-');
        out.number(u64::from(self.day), 2);
        if self.has_time {
            out.push(b' ');
            out.clock(u64::from(self.hour), self.minute, self.second);
        }
        out.micros(self.micros);
    }
}

impl Time {
    /// `[-]hh:mm:ss[.ffffff]`, days folded into the hours as MySQL shows them (`-838:59:59`).
    fn write_text(&self, out: &mut Text) {
        if self.negative {
            out.push(b'-');
        }
        let hours = u64::from(self.days) * 24 + u64::from(self.hour);
        out.clock(hours, self.minute, self.second);
        out.micros(self.micros);
    }
}

impl fmt::Display for Value<'_> {
    /// The value as a client would write it as a literal, without quotes (bytes lossily).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut text = Text::new();
        self.write_text(&mut text);
        f.write_str(&String::from_utf8_lossy(text.as_bytes()))
    }
}

impl fmt::Display for DateTime {
    /// `YYYY-MM-DD[ hh:mm:ss[.ffffff]]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Value::DateTime(*self).fmt(f)
    }
}

impl fmt::Display for Time {
    /// `[-]hh:mm:ss[.ffffff]`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Value::Time(*self).fmt(f)
    }
}

/// Room for any value's text but the longest doubles.
const TEXT_CAP: usize = 48;

/// A value's text, built on the stack: masking renders the numbers and dates of every touched
/// column of every row, where the formatting machinery and an allocation per value would
/// cost more than the scan that follows.
struct Text {
    buf: [u8; TEXT_CAP],
    len: usize,
    /// Everything, once `buf` overflowed (a double can print 300-odd digits).
    spill: Vec<u8>,
}

impl Text {
    fn new() -> Self {
        Self {
            buf: [0; TEXT_CAP],
            len: 0,
            spill: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.len = 0;
        self.spill.clear();
    }

    fn as_bytes(&self) -> &[u8] {
        if self.spill.is_empty() {
            self.buf.get(..self.len).unwrap_or_default()
        } else {
            &self.spill
        }
    }

    fn push(&mut self, b: u8) {
        if self.spill.is_empty() {
            if let Some(slot) = self.buf.get_mut(self.len) {
                *slot = b;
                self.len += 1;
                return;
            }
        }
        self.extend(&[b]);
    }

    fn extend(&mut self, bytes: &[u8]) {
        if self.spill.is_empty() {
            let end = self.len + bytes.len();
            if let Some(room) = self.buf.get_mut(self.len..end) {
                room.copy_from_slice(bytes);
                self.len = end;
                return;
            }
            self.spill
                .extend_from_slice(self.buf.get(..self.len).unwrap_or_default());
        }
        self.spill.extend_from_slice(bytes);
    }

    /// `n` in decimal, zero-padded to at least `width` digits.
    fn number(&mut self, mut n: u64, width: usize) {
        let mut digits = [b'0'; 20];
        let mut start = digits.len();
        while n > 0 || digits.len() - start < width.min(digits.len()) {
            start -= 1;
            if let Some(slot) = digits.get_mut(start) {
                *slot = b'0' + (n % 10) as u8;
            }
            n /= 10;
        }
        self.extend(digits.get(start..).unwrap_or_default());
    }

    /// `hh:mm:ss`, the hours two digits or more.
    fn clock(&mut self, hours: u64, minute: u8, second: u8) {
        self.number(hours, 2);
        self.push(b':');
        self.number(u64::from(minute), 2);
        self.push(b':');
        self.number(u64::from(second), 2);
    }

    /// `.ffffff` when there are microseconds.
    fn micros(&mut self, micros: Option<u32>) {
        if let Some(us) = micros {
            self.push(b'.');
            self.number(u64::from(us), 6);
        }
    }
}

impl fmt::Write for Text {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.extend(s.as_bytes());
        Ok(())
    }
}

/// Bytes for the audit trail, as PostgreSQL parameters are shown: BIT, GEOMETRY and VECTOR
/// (bytes a client parses, never text) as `\x` hex like bytea; other values as text when
/// they are UTF-8; otherwise blobs as hex and strings (text in another character set) lossily,
/// so their ASCII, card numbers included, stays visible to the detectors.
fn render_bytes(type_code: u8, bytes: &[u8]) -> String {
    use field_type as t;
    let hex = || format!("\\x{}", gatehouse_core::identity::hex(bytes));
    if matches!(type_code, t::BIT | t::GEOMETRY | t::VECTOR) {
        return hex();
    }
    match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_)
            if matches!(
                type_code,
                t::TINY_BLOB | t::MEDIUM_BLOB | t::LONG_BLOB | t::BLOB
            ) =>
        {
            hex()
        }
        Err(_) => String::from_utf8_lossy(bytes).into_owned(),
    }
}

/// Whether bit `bit` of a NULL bitmap is set (bits past its end are not).
fn null_bit(bitmap: &[u8], bit: usize) -> bool {
    bitmap
        .get(bit / 8)
        .is_some_and(|b| b & (1 << (bit % 8)) != 0)
}

/// Wraps a value's decoding error with where it happened.
fn bad_value(
    place: &'static str,
    index: usize,
    type_code: u8,
) -> impl Fn(MysqlError) -> MysqlError {
    move |e| MysqlError::BadValue {
        place,
        index,
        type_code,
        reason: match e {
            MysqlError::Malformed(reason) => reason,
            _ => "malformed value",
        },
    }
}

/// Decodes a COM_STMT_EXECUTE payload (command byte 0x17 first) of a statement with
/// `param_count` parameters, rendering each parameter for the audit trail (`None` for NULL).
///
/// `types` holds the statement's parameter types `(type, flags)` across executes: a packet
/// that binds new types replaces them, one that does not reuses them. They are replaced as
/// soon as they are read, even if a value later fails, since the client will not send them
/// again. `long_data[i]` is parameter `i`'s data sent by COM_STMT_SEND_LONG_DATA since the
/// last execute: such a parameter has no value in the packet and its long data is shown
/// (as the server does, it wins over the NULL bitmap).
pub fn decode_execute(
    payload: &[u8],
    param_count: usize,
    types: &mut Vec<(u8, u8)>,
    long_data: &[Option<Vec<u8>>],
) -> Result<(ExecuteHeader, Vec<Option<String>>), MysqlError> {
    let mut r = Reader::new(payload);
    if r.u8()? != COM_STMT_EXECUTE {
        return Err(MysqlError::Malformed("not a COM_STMT_EXECUTE packet"));
    }
    let truncated = |_| MysqlError::Malformed("COM_STMT_EXECUTE truncated in its header");
    let statement_id = r.uint(4).map_err(truncated)? as u32;
    let flags = r.u8().map_err(truncated)?;
    r.uint(4).map_err(truncated)?; // iteration count, always 1
    let header = ExecuteHeader {
        statement_id,
        flags,
    };
    if param_count == 0 {
        if r.remaining() != 0 {
            return Err(MysqlError::Malformed(
                "COM_STMT_EXECUTE carries bytes after its header, yet its statement has no \
                 parameters",
            ));
        }
        return Ok((header, Vec::new()));
    }
    let nulls = r
        .take(param_count.div_ceil(8))
        .map_err(|_| MysqlError::Malformed("COM_STMT_EXECUTE truncated in its NULL bitmap"))?;
    let truncated_types = |_| MysqlError::Malformed("COM_STMT_EXECUTE truncated in its types");
    match r.u8().map_err(truncated_types)? {
        0 if types.len() == param_count => {}
        0 => {
            return Err(MysqlError::Malformed(
                "COM_STMT_EXECUTE reuses parameter types that were never sent",
            ))
        }
        1 => {
            let len = param_count
                .checked_mul(2)
                .ok_or(MysqlError::Malformed("parameter count too large"))?;
            let raw = r.take(len).map_err(truncated_types)?;
            types.clear();
            types.extend(raw.chunks_exact(2).filter_map(|pair| match pair {
                [type_code, flags] => Some((*type_code, *flags)),
                _ => None,
            }));
        }
        _ => {
            return Err(MysqlError::Malformed(
                "COM_STMT_EXECUTE's new-parameters-bound flag is neither 0 nor 1",
            ))
        }
    }
    let mut params = Vec::with_capacity(param_count);
    for (i, &(type_code, param_flags)) in types.iter().enumerate().take(param_count) {
        if let Some(Some(data)) = long_data.get(i) {
            params.push(Some(render_bytes(type_code, data)));
        } else if null_bit(nulls, i) {
            params.push(None);
        } else {
            let value = Value::read(&mut r, type_code, param_flags & PARAM_UNSIGNED != 0)
                .map_err(bad_value("parameter", i, type_code))?;
            params.push(value.audit_text(type_code));
        }
    }
    if r.remaining() != 0 {
        return Err(MysqlError::Malformed(
            "COM_STMT_EXECUTE carries bytes after its last parameter",
        ));
    }
    Ok((header, params))
}

/// Decodes a COM_STMT_SEND_LONG_DATA payload (command byte 0x18 first): the statement id, the
/// 0-based parameter, and this piece of its data. The server appends the pieces until the
/// next COM_STMT_EXECUTE (or COM_STMT_RESET) of the statement, and so must the caller.
pub fn decode_long_data(payload: &[u8]) -> Result<(u32, u16, &[u8]), MysqlError> {
    let mut r = Reader::new(payload);
    if r.u8()? != COM_STMT_SEND_LONG_DATA {
        return Err(MysqlError::Malformed(
            "not a COM_STMT_SEND_LONG_DATA packet",
        ));
    }
    let truncated = |_| MysqlError::Malformed("COM_STMT_SEND_LONG_DATA truncated in its header");
    let statement_id = r.uint(4).map_err(truncated)? as u32;
    let param = r.uint(2).map_err(truncated)? as u16;
    Ok((statement_id, param, r.rest()))
}

/// What to do with one column's value in the rewritten row.
struct Edit {
    /// The column.
    column: usize,
    /// Where its value starts and ends in the payload.
    start: usize,
    end: usize,
    /// The replacement (a text type), or `None`: NULL.
    with: Option<Vec<u8>>,
}

/// A binary result row (header 0x00, NULL bitmap offset by two bits, the values of non-NULL
/// columns) with the plan applied; `None` when nothing changed, so the row goes out as it came.
///
/// The plan is [`crate::columns::plan`]'s, the same as for text rows: each touched column's
/// value is handed to it as the text the text protocol would have sent (string bytes as they
/// are, numbers and dates rendered), so a value is masked alike whichever protocol carried it.
/// Two renderings differ on purpose or by necessity: a DOUBLE shows all its digits where MySQL
/// may print an exponent (a card number in it stays visible to the detectors), and a
/// fractional-seconds value whose microseconds are zero shows none (the binary value carries
/// none). `ColumnMeta::binary` stays `false` for the same reason: the plan sees text, not the
/// PostgreSQL binary layouts that flag announces.
/// A replacement is written in place into a column whose type holds text
/// ([`field_type::holds_text`]); any other column that must be masked becomes NULL. Columns
/// not touched are copied byte for byte. A row that does not decode against `columns` (short,
/// long, an unknown type) is an error: it cannot be forwarded unchecked.
pub fn mask_binary_row(
    plan: &MaskPlan,
    columns: &[Column],
    payload: &[u8],
    counts: &mut MaskCounts,
) -> Result<Option<Vec<u8>>, MysqlError> {
    if plan.is_noop() {
        return Ok(None);
    }
    let mut r = Reader::new(payload);
    if r.u8()? != 0x00 {
        return Err(MysqlError::Malformed("binary row without its 0x00 header"));
    }
    let bitmap_len = (columns.len() + 9) / 8;
    let bitmap = r
        .take(bitmap_len)
        .map_err(|_| MysqlError::Malformed("binary row truncated in its NULL bitmap"))?;
    let mut edits: Vec<Edit> = Vec::new();
    let mut text = Text::new();
    for (i, column) in columns.iter().enumerate() {
        if null_bit(bitmap, i + 2) {
            continue;
        }
        let start = payload.len() - r.remaining();
        let value = Value::read(&mut r, column.type_code, column.unsigned()).map_err(bad_value(
            "column",
            i,
            column.type_code,
        ))?;
        if !plan.touches(i) {
            continue;
        }
        let text: &[u8] = match value {
            Value::Bytes(bytes) => bytes,
            Value::Null => continue,
            other => {
                text.clear();
                other.write_text(&mut text);
                text.as_bytes()
            }
        };
        let with = match plan.apply(i, Some(text), counts) {
            Masked::Unchanged => continue,
            Masked::Replaced(new) if field_type::holds_text(column.type_code) => Some(new),
            Masked::Replaced(_) | Masked::Null => None,
        };
        edits.push(Edit {
            column: i,
            start,
            end: payload.len() - r.remaining(),
            with,
        });
    }
    if r.remaining() != 0 {
        return Err(MysqlError::Malformed(
            "binary row carries bytes after its last column",
        ));
    }
    if edits.is_empty() {
        return Ok(None);
    }
    let grown: usize = edits
        .iter()
        .filter_map(|e| e.with.as_ref().map(|w| w.len() + 9))
        .sum();
    let mut out = Vec::with_capacity(payload.len() + grown);
    out.push(0x00);
    out.extend_from_slice(bitmap);
    let mut at = 1 + bitmap_len;
    for edit in &edits {
        out.extend_from_slice(payload.get(at..edit.start).unwrap_or_default());
        match &edit.with {
            Some(new) => put_lenenc_bytes(&mut out, Some(new)),
            None => {
                let bit = edit.column + 2;
                if let Some(byte) = out.get_mut(1 + bit / 8) {
                    *byte |= 1 << (bit % 8);
                }
            }
        }
        at = edit.end;
    }
    out.extend_from_slice(payload.get(at..).unwrap_or_default());
    Ok(Some(out))
}

#[cfg(test)]
mod tests;
