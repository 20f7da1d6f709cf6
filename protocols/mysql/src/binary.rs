//! TEMPORARY (replaced by the mysql-binary branch).
#![allow(missing_docs)]

use gatehouse_core::mask::{MaskCounts, MaskPlan};

use crate::codec::Reader;
use crate::columns::Column;
use crate::error::MysqlError;

pub struct PrepareOk {
    pub statement_id: u32,
    pub columns: u16,
    pub params: u16,
}

impl PrepareOk {
    pub fn decode(payload: &[u8]) -> Result<Self, MysqlError> {
        let mut r = Reader::new(payload);
        r.u8()?;
        Ok(Self {
            statement_id: r.uint(4)? as u32,
            columns: r.uint(2)? as u16,
            params: r.uint(2)? as u16,
        })
    }
}

pub struct ExecuteHeader {
    pub statement_id: u32,
    pub flags: u8,
}

pub fn decode_execute(
    payload: &[u8],
    _param_count: usize,
    _types: &mut Vec<(u8, u8)>,
    _long_data: &[Option<Vec<u8>>],
) -> Result<(ExecuteHeader, Vec<Option<String>>), MysqlError> {
    let mut r = Reader::new(payload);
    r.u8()?;
    Ok((
        ExecuteHeader {
            statement_id: r.uint(4)? as u32,
            flags: r.u8()?,
        },
        Vec::new(),
    ))
}

pub fn decode_long_data(payload: &[u8]) -> Result<(u32, u16, &[u8]), MysqlError> {
    let mut r = Reader::new(payload);
    r.u8()?;
    let id = r.uint(4)? as u32;
    let p = r.uint(2)? as u16;
    Ok((id, p, r.rest()))
}

pub fn mask_binary_row(
    _plan: &MaskPlan,
    _columns: &[Column],
    _payload: &[u8],
    _counts: &mut MaskCounts,
) -> Result<Option<Vec<u8>>, MysqlError> {
    Err(MysqlError::Unsupported("binary masking".into()))
}
