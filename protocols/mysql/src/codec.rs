//! The protocol's basic types: length-encoded integers and strings, NUL-terminated strings,
//! and text-protocol result rows (each column a length-encoded string, or 0xFB for NULL).

use crate::error::MysqlError;

/// Reads a payload from the front; every read is bounds-checked.
#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    /// Reads from `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf }
    }

    /// Bytes left.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// What is left, without consuming it.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Takes `n` bytes.
    pub fn take(&mut self, n: usize) -> Result<&'a [u8], MysqlError> {
        if self.buf.len() < n {
            return Err(MysqlError::Malformed("truncated value"));
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// One byte.
    pub fn u8(&mut self) -> Result<u8, MysqlError> {
        Ok(self.take(1)?[0])
    }

    /// A little-endian integer of `n` bytes (1 to 8).
    pub fn uint(&mut self, n: usize) -> Result<u64, MysqlError> {
        let bytes = self.take(n)?;
        Ok(bytes
            .iter()
            .rev()
            .fold(0u64, |acc, b| (acc << 8) | u64::from(*b)))
    }

    /// A length-encoded integer; `None` for the NULL marker 0xFB.
    pub fn lenenc_int(&mut self) -> Result<Option<u64>, MysqlError> {
        match self.u8()? {
            n @ 0..=0xFA => Ok(Some(u64::from(n))),
            0xFB => Ok(None),
            0xFC => self.uint(2).map(Some),
            0xFD => self.uint(3).map(Some),
            0xFE => self.uint(8).map(Some),
            _ => Err(MysqlError::Malformed(
                "0xFF is not a length-encoded integer",
            )),
        }
    }

    /// A length-encoded string; `None` for NULL.
    pub fn lenenc_bytes(&mut self) -> Result<Option<&'a [u8]>, MysqlError> {
        match self.lenenc_int()? {
            None => Ok(None),
            Some(n) => {
                let n =
                    usize::try_from(n).map_err(|_| MysqlError::Malformed("length too large"))?;
                self.take(n).map(Some)
            }
        }
    }

    /// A NUL-terminated string.
    pub fn cstr(&mut self) -> Result<&'a [u8], MysqlError> {
        let end = self
            .buf
            .iter()
            .position(|b| *b == 0)
            .ok_or(MysqlError::Malformed("string without its terminating NUL"))?;
        let s = self.take(end)?;
        self.take(1)?;
        Ok(s)
    }
}

/// Appends a length-encoded integer.
pub fn put_lenenc_int(out: &mut Vec<u8>, n: u64) {
    match n {
        0..=0xFA => out.push(n as u8),
        0xFB..=0xFFFF => {
            out.push(0xFC);
            out.extend_from_slice(&(n as u16).to_le_bytes());
        }
        0x1_0000..=0xFF_FFFF => {
            out.push(0xFD);
            out.extend_from_slice(&(n as u32).to_le_bytes()[..3]);
        }
        _ => {
            out.push(0xFE);
            out.extend_from_slice(&n.to_le_bytes());
        }
    }
}

/// Appends a length-encoded string (`None`: the NULL marker).
pub fn put_lenenc_bytes(out: &mut Vec<u8>, value: Option<&[u8]>) {
    match value {
        None => out.push(0xFB),
        Some(v) => {
            put_lenenc_int(out, v.len() as u64);
            out.extend_from_slice(v);
        }
    }
}

/// The column values of a text-protocol row, decoded lazily.
#[derive(Debug, Clone)]
pub struct TextRow<'a> {
    reader: Reader<'a>,
}

impl<'a> TextRow<'a> {
    /// A row payload.
    pub fn new(payload: &'a [u8]) -> Self {
        Self {
            reader: Reader::new(payload),
        }
    }
}

impl<'a> Iterator for TextRow<'a> {
    type Item = Result<Option<&'a [u8]>, MysqlError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.reader.remaining() == 0 {
            return None;
        }
        Some(self.reader.lenenc_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lenenc_round_trips_at_every_width() {
        for n in [
            0,
            250,
            251,
            0xFFFF,
            0x1_0000,
            0xFF_FFFF,
            0x100_0000,
            u64::MAX,
        ] {
            let mut out = Vec::new();
            put_lenenc_int(&mut out, n);
            let mut r = Reader::new(&out);
            assert_eq!(r.lenenc_int().unwrap(), Some(n), "{n}");
            assert_eq!(r.remaining(), 0);
        }
        assert!(Reader::new(&[0xFF]).lenenc_int().is_err());
        assert!(Reader::new(&[0xFC, 1]).lenenc_int().is_err());
    }

    #[test]
    fn text_rows_decode_values_and_nulls_and_refuse_truncation() {
        let mut row = Vec::new();
        put_lenenc_bytes(&mut row, Some(b"ada"));
        put_lenenc_bytes(&mut row, None);
        put_lenenc_bytes(&mut row, Some(&[b'x'; 300]));
        let values: Vec<_> = TextRow::new(&row).collect::<Result<_, _>>().unwrap();
        assert_eq!(values[0], Some(&b"ada"[..]));
        assert_eq!(values[1], None);
        assert_eq!(values[2].map(<[u8]>::len), Some(300));
        let cut = &row[..row.len() - 1];
        assert!(TextRow::new(cut).collect::<Result<Vec<_>, _>>().is_err());
        let mut r = Reader::new(b"root\0rest");
        assert_eq!(r.cstr().unwrap(), b"root");
        assert_eq!(r.rest(), b"rest");
        assert!(Reader::new(b"no-nul").cstr().is_err());
    }
}
