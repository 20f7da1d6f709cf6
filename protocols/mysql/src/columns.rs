//! Result metadata and text rows for masking: a ColumnDefinition41 gives the core the source
//! table and column (so an alias hides nothing) and a type; a text-protocol row is rewritten
//! where the plan says.

use gatehouse_core::mask::{ColumnMeta, MaskCounts, MaskPlan, Masked, Masker};

use crate::codec::{put_lenenc_bytes, Reader, TextRow};
use crate::error::MysqlError;

/// Column flag: an integer column holds unsigned values.
pub const UNSIGNED_FLAG: u16 = 0x0020;

/// One column of a result set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Column {
    /// The schema of its source table.
    pub schema: String,
    /// The source table (`org_table`; empty for expressions).
    pub table: String,
    /// The source column (`org_name`), or the name shown when there is none.
    pub name: String,
    /// The MySQL type code.
    pub type_code: u8,
    /// The column flags (`UNSIGNED_FLAG`, `BINARY_FLAG`, ...): binary rows need the sign to
    /// read an integer.
    pub flags: u16,
}

impl Column {
    /// Decodes a ColumnDefinition41 payload.
    pub fn decode(payload: &[u8]) -> Result<Self, MysqlError> {
        let mut r = Reader::new(payload);
        let mut text = || -> Result<String, MysqlError> {
            Ok(String::from_utf8_lossy(r.lenenc_bytes()?.unwrap_or_default()).into_owned())
        };
        let _catalog = text()?;
        let schema = text()?;
        let _table = text()?;
        let org_table = text()?;
        let name = text()?;
        let org_name = text()?;
        r.lenenc_int()?; // length of the fixed fields (0x0c)
        r.uint(2)?; // character set
        r.uint(4)?; // column length
        let type_code = r.u8()?;
        let flags = r.uint(2)? as u16;
        Ok(Self {
            schema,
            table: org_table,
            name: if org_name.is_empty() { name } else { org_name },
            type_code,
            flags,
        })
    }

    /// Whether an integer column is unsigned (`UNSIGNED_FLAG`).
    pub fn unsigned(&self) -> bool {
        self.flags & UNSIGNED_FLAG != 0
    }

    /// The equivalent PostgreSQL type OID the masking engine knows (text rows carry every
    /// value as text; numbers and dates are told apart so a mask never lands in one).
    pub fn type_oid(&self) -> u32 {
        match self.type_code {
            1..=3 | 8 | 9 => 20,      // TINY, SHORT, LONG, LONGLONG, INT24
            0 | 246 => 1700,          // DECIMAL, NEWDECIMAL
            4 | 5 => 701,             // FLOAT, DOUBLE
            7 | 10..=12 | 14 => 1114, // TIMESTAMP, DATE, TIME, DATETIME, NEWDATE
            13 => 20,                 // YEAR: a number, so a mask makes it NULL
            16 | 255 => 17,           // BIT, GEOMETRY: bytes a mask cannot be written into
            245 => 114,               // JSON
            _ => 25,                  // strings, blobs, enums, sets: text
        }
    }
}

/// The plan of a result set with these columns.
pub fn plan(masker: &Masker, columns: &[Column]) -> MaskPlan {
    let metas: Vec<ColumnMeta<'_>> = columns
        .iter()
        .map(|c| ColumnMeta {
            table: (!c.table.is_empty()).then_some(c.table.as_str()),
            name: &c.name,
            type_oid: c.type_oid(),
            binary: false,
        })
        .collect();
    masker.plan(&metas)
}

/// A text-protocol row with the plan applied; `None` when nothing changed.
pub fn mask_text_row(
    plan: &MaskPlan,
    payload: &[u8],
    counts: &mut MaskCounts,
) -> Result<Option<Vec<u8>>, MysqlError> {
    let values = TextRow::new(payload).collect::<Result<Vec<_>, _>>()?;
    let masked: Vec<Masked> = values
        .iter()
        .enumerate()
        .map(|(i, v)| plan.apply(i, *v, counts))
        .collect();
    if masked.iter().all(|m| matches!(m, Masked::Unchanged)) {
        return Ok(None);
    }
    let mut out = Vec::with_capacity(payload.len());
    for (value, m) in values.iter().zip(&masked) {
        match m {
            Masked::Unchanged => put_lenenc_bytes(&mut out, *value),
            Masked::Replaced(bytes) => put_lenenc_bytes(&mut out, Some(bytes)),
            Masked::Null => put_lenenc_bytes(&mut out, None),
        }
    }
    Ok(Some(out))
}

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::mask::{MaskPolicy, MaskSpec};

    fn column(table: &str, name: &str, org_name: &str, type_code: u8) -> Vec<u8> {
        let mut p = Vec::new();
        for s in ["def", "shop", table, table, name, org_name] {
            put_lenenc_bytes(&mut p, Some(s.as_bytes()));
        }
        p.extend_from_slice(&[0x0c, 45, 0, 0, 1, 0, 0, type_code, 0, 0, 0, 0, 0]);
        p
    }

    #[test]
    fn aliased_columns_and_card_numbers_are_masked_in_text_rows() {
        let specs: Vec<MaskSpec> = vec![
            toml::from_str("name = \"pan\"\ndetect = \"pan\"\nstyle = \"keep-last-4\"").unwrap(),
            toml::from_str("name = \"notes\"\ncolumns = [\"customers.secret_note\"]").unwrap(),
        ];
        let masker = MaskPolicy::new(specs, vec![1; 32]).unwrap().for_groups(&[]);
        let columns = [
            Column::decode(&column("customers", "n", "name", 253)).unwrap(),
            Column::decode(&column("customers", "x", "secret_note", 253)).unwrap(),
            Column::decode(&column("customers", "c", "card_big", 8)).unwrap(),
        ];
        assert_eq!(
            columns[1].name, "secret_note",
            "the source name, not the alias"
        );
        let plan = plan(&masker, &columns);
        let mut row = Vec::new();
        put_lenenc_bytes(&mut row, Some(b"Ada 4111 1111 1111 1111"));
        put_lenenc_bytes(&mut row, Some(b"likes tea"));
        put_lenenc_bytes(&mut row, Some(b"4111111111111111"));
        let mut counts = MaskCounts::new();
        let masked = mask_text_row(&plan, &row, &mut counts).unwrap().unwrap();
        let values: Vec<_> = TextRow::new(&masked).collect::<Result<_, _>>().unwrap();
        assert_eq!(values[0], Some(&b"Ada **** **** **** 1111"[..]));
        assert_ne!(values[1], Some(&b"likes tea"[..]));
        assert_eq!(values[2], None, "a number cannot hold a mask");
        assert_eq!(counts.total(), 3);
        let mut clean = Vec::new();
        put_lenenc_bytes(&mut clean, Some(b"Bob"));
        put_lenenc_bytes(&mut clean, None);
        put_lenenc_bytes(&mut clean, Some(b"7"));
        let plan_without_notes = {
            let specs: Vec<MaskSpec> =
                vec![toml::from_str("name = \"pan\"\ndetect = \"pan\"").unwrap()];
            let m = MaskPolicy::new(specs, vec![1; 32]).unwrap().for_groups(&[]);
            super::plan(&m, &columns)
        };
        assert_eq!(
            mask_text_row(&plan_without_notes, &clean, &mut counts).unwrap(),
            None
        );
    }
}
