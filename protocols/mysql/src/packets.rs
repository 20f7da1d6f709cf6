//! The generic response packets: OK, ERR and EOF — decoded to close a command's audit entry,
//! encoded for the gateway's own answers (a refusal is an ERR with a code and SQL state).

use crate::codec::{put_lenenc_int, Reader};
use crate::error::MysqlError;
use crate::handshake::caps;

/// Status flag: another result set follows.
pub const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;

/// Status flag: an execute opened a cursor; its rows are fetched with COM_STMT_FETCH.
pub const SERVER_STATUS_CURSOR_EXISTS: u16 = 0x0040;

/// An OK packet (or an EOF-replacing OK under `DEPRECATE_EOF`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ok {
    /// Rows affected.
    pub affected_rows: u64,
    /// Last insert id.
    pub last_insert_id: u64,
    /// Status flags.
    pub status: u16,
    /// Warnings.
    pub warnings: u16,
}

impl Ok {
    /// Decodes an OK payload (header 0x00, or 0xFE when it ends a result set).
    pub fn decode(payload: &[u8]) -> Result<Self, MysqlError> {
        let mut r = Reader::new(payload);
        let header = r.u8()?;
        if header != 0x00 && header != 0xFE {
            return Err(MysqlError::Malformed("not an OK packet"));
        }
        let affected_rows = r.lenenc_int()?.unwrap_or(0);
        let last_insert_id = r.lenenc_int()?.unwrap_or(0);
        let status = r.uint(2)? as u16;
        let warnings = r.uint(2)? as u16;
        Ok(Self {
            affected_rows,
            last_insert_id,
            status,
            warnings,
        })
    }

    /// Whether another result set follows.
    pub fn more_results(&self) -> bool {
        self.status & SERVER_MORE_RESULTS_EXISTS != 0
    }
}

/// An ERR packet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Err {
    /// The error code (e.g. 1045).
    pub code: u16,
    /// The SQL state (e.g. `28000`).
    pub state: String,
    /// The message.
    pub message: String,
}

impl Err {
    /// Decodes an ERR payload (header 0xFF).
    pub fn decode(payload: &[u8]) -> Result<Self, MysqlError> {
        let mut r = Reader::new(payload);
        if r.u8()? != 0xFF {
            return Err(MysqlError::Malformed("not an ERR packet"));
        }
        let code = r.uint(2)? as u16;
        let rest = r.rest();
        let (state, message) = match rest.split_first() {
            Some((b'#', tail)) if tail.len() >= 5 => (
                String::from_utf8_lossy(&tail[..5]).into_owned(),
                String::from_utf8_lossy(&tail[5..]).into_owned(),
            ),
            _ => (
                "HY000".to_owned(),
                String::from_utf8_lossy(rest).into_owned(),
            ),
        };
        Ok(Self {
            code,
            state,
            message,
        })
    }

    /// Encodes an ERR payload (protocol 4.1 form, with the SQL state).
    pub fn encode(&self) -> Vec<u8> {
        let mut out = vec![0xFF];
        out.extend_from_slice(&self.code.to_le_bytes());
        out.push(b'#');
        let mut state = self.state.as_bytes().to_vec();
        state.resize(5, b'0');
        out.extend_from_slice(&state);
        out.extend_from_slice(self.message.as_bytes());
        out
    }
}

/// An OK payload the gateway writes itself.
pub fn ok_payload(affected_rows: u64, status: u16) -> Vec<u8> {
    let mut out = vec![0x00];
    put_lenenc_int(&mut out, affected_rows);
    put_lenenc_int(&mut out, 0);
    out.extend_from_slice(&status.to_le_bytes());
    out.extend_from_slice(&[0, 0]);
    out
}

/// Whether a payload is an EOF packet (0xFE, shorter than 9 bytes) in a session without
/// `DEPRECATE_EOF`, or the OK packet that replaces it with.
pub fn is_eof(payload: &[u8], capabilities: u32) -> bool {
    match payload.first() {
        Some(0xFE) if capabilities & caps::DEPRECATE_EOF != 0 => payload.len() < 0xFF_FFFF,
        Some(0xFE) => payload.len() < 9,
        _ => false,
    }
}

/// The status flags of an EOF packet (`0xFE warnings status`) or of an EOF-replacing OK.
pub fn eof_status(payload: &[u8], capabilities: u32) -> Result<u16, MysqlError> {
    if capabilities & caps::DEPRECATE_EOF != 0 {
        return Ok::decode(payload).map(|ok| ok.status);
    }
    let mut r = Reader::new(payload);
    r.u8()?;
    r.uint(2)?;
    Ok(r.uint(2)? as u16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ok_and_err_round_trip() {
        let ok = Ok::decode(&ok_payload(300, SERVER_MORE_RESULTS_EXISTS | 2)).unwrap();
        assert_eq!(ok.affected_rows, 300);
        assert!(ok.more_results());
        let err = Err {
            code: 1142,
            state: "42000".into(),
            message: "refused by rule \"no-drops\"".into(),
        };
        assert_eq!(Err::decode(&err.encode()).unwrap(), err);
        let old = Err::decode(&[0xFF, 0x15, 0x04, b'n', b'o']).unwrap();
        assert_eq!(
            (old.code, old.state.as_str(), old.message.as_str()),
            (1045, "HY000", "no")
        );
        assert!(Ok::decode(&[0x01]).is_err());
        assert!(Err::decode(&[0xFF]).is_err());
    }

    #[test]
    fn eof_packets_are_told_from_rows() {
        let eof = [0xFE, 0, 0, 0x0A, 0];
        assert!(is_eof(&eof, 0));
        assert_eq!(eof_status(&eof, 0).unwrap(), 0x0A);
        // A row whose first value is 0xFE-prefixed (8-byte length) is longer than 9 bytes.
        assert!(!is_eof(&[0xFE, 1, 0, 0, 0, 0, 0, 0, 0, b'x'], 0));
        let ok_eof = {
            let mut p = ok_payload(0, 0x22);
            p[0] = 0xFE;
            p
        };
        assert!(is_eof(&ok_eof, caps::DEPRECATE_EOF));
        assert_eq!(eof_status(&ok_eof, caps::DEPRECATE_EOF).unwrap(), 0x22);
    }
}
