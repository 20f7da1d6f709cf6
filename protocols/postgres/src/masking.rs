//! Masking on the PostgreSQL wire: result metadata for the core's [`MaskPlan`], and the
//! messages rewritten with it (DataRow, CopyData, ErrorResponse, NoticeResponse).
//!
//! Column rules name `table.column`. RowDescription gives each column's table OID and
//! attribute number, not names; the [`Catalog`] (read once per masked session over a second
//! upstream connection) turns them into the *source* table and column names, so an alias
//! (`SELECT card_number AS x`) does not hide a column. Expressions, function results and
//! columns of tables created after the catalog was read have no source: only a bare or
//! `*.column` selector and the detectors see them.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use gatehouse_core::mask::{ColumnMeta, MaskCounts, MaskPlan, Masked, Masker};
use gatehouse_core::ConnectionSpec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::encoding::ClientEncoding;
use crate::error::PgError;
use crate::frame::split_frame;
use crate::messages::{backend, DataRow, MessageBuilder, Reader};
use crate::upstream;

/// Largest catalog answer read (frames).
const MAX_CATALOG_FRAME: usize = 1 << 20;

/// One column of a RowDescription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// The name the client sees (an alias if it chose one).
    pub name: String,
    /// The source table's OID, 0 for an expression.
    pub table_oid: u32,
    /// The source column's attribute number, 0 for an expression.
    pub attnum: i16,
    /// The type OID.
    pub type_oid: u32,
    /// 0 text, 1 binary (as described; a statement's Describe says 0 until bound).
    pub format: i16,
}

/// Decodes a RowDescription body; column names are in the session's client encoding.
pub fn decode_row_description(
    body: &[u8],
    encoding: ClientEncoding,
) -> Result<Vec<Field>, PgError> {
    let mut r = Reader::new(body);
    let n = r.count16()?;
    let mut fields = Vec::with_capacity(n.min(body.len() / 19));
    for _ in 0..n {
        let name = r.text(encoding)?.into_owned();
        let table_oid = r.i32()? as u32;
        let attnum = r.i16()?;
        let type_oid = r.i32()? as u32;
        let _size = r.i16()?;
        let _modifier = r.i32()?;
        let format = r.i16()?;
        fields.push(Field {
            name,
            table_oid,
            attnum,
            type_oid,
            format,
        });
    }
    Ok(fields)
}

/// Applies a Bind's result format codes (none: all text; one: all alike; else per column).
pub fn with_formats(fields: &[Field], formats: &[i16]) -> Vec<Field> {
    fields
        .iter()
        .enumerate()
        .map(|(i, f)| Field {
            format: match formats {
                [] => 0,
                [one] => *one,
                many => many.get(i).copied().unwrap_or(0),
            },
            ..f.clone()
        })
        .collect()
}

/// Table and column names by OID and attribute number, as the upstream's catalog has them.
#[derive(Debug, Default)]
pub struct Catalog {
    tables: HashMap<u32, (String, HashMap<i16, String>)>,
}

impl Catalog {
    /// Reads the catalog of the connection's database over a second login as the connection's
    /// user: every user relation (tables, views, materialized views, foreign and partitioned
    /// tables) and its columns.
    pub async fn load(spec: &ConnectionSpec) -> Result<Self, PgError> {
        let mut up = upstream::connect(spec, &[]).await?;
        let query = MessageBuilder::new(b'Q')
            .cstr(
                "SELECT c.oid, c.relname, a.attnum, a.attname FROM pg_catalog.pg_class c \
                 JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid \
                 WHERE c.relkind IN ('r', 'v', 'm', 'f', 'p') AND a.attnum > 0 \
                 AND NOT a.attisdropped",
            )
            .finish();
        up.stream.write_all(&query).await?;
        up.stream.flush().await?;
        let mut buf = up.leftover;
        let mut catalog = Self::default();
        loop {
            let Some(frame) = split_frame(&mut buf, MAX_CATALOG_FRAME)? else {
                if up.stream.read_buf(&mut buf).await? == 0 {
                    return Err(PgError::Upstream(
                        "upstream closed while the catalog was read".into(),
                    ));
                }
                continue;
            };
            match frame.tag() {
                backend::DATA_ROW => catalog.add(frame.body())?,
                backend::ERROR_RESPONSE => {
                    return Err(PgError::Upstream(
                        "upstream refused the catalog query".into(),
                    ))
                }
                backend::READY_FOR_QUERY => break,
                _ => {}
            }
        }
        let _ = up.stream.write_all(&crate::messages::terminate()).await;
        Ok(catalog)
    }

    fn add(&mut self, row: &[u8]) -> Result<(), PgError> {
        let mut values = DataRow::decode(row)?;
        let mut text = || -> Result<String, PgError> {
            let v = values.next().transpose()?.flatten().unwrap_or_default();
            Ok(String::from_utf8_lossy(v).into_owned())
        };
        let (oid, table, attnum, column) = (text()?, text()?, text()?, text()?);
        let (Ok(oid), Ok(attnum)) = (oid.parse::<u32>(), attnum.parse::<i16>()) else {
            return Ok(());
        };
        self.tables
            .entry(oid)
            .or_insert_with(|| (table, HashMap::new()))
            .1
            .insert(attnum, column);
        Ok(())
    }

    /// The source table and column of a described field, if it comes straight from one.
    fn source(&self, field: &Field) -> Option<(&str, &str)> {
        let (table, columns) = self.tables.get(&field.table_oid)?;
        Some((table, columns.get(&field.attnum)?))
    }
}

/// The plan for a result with these fields.
pub fn plan(masker: &Masker, catalog: Option<&Catalog>, fields: &[Field]) -> MaskPlan {
    let metas: Vec<ColumnMeta<'_>> = fields
        .iter()
        .map(|f| {
            let source = catalog.and_then(|c| c.source(f));
            ColumnMeta {
                table: source.map(|(t, _)| t),
                name: source.map(|(_, c)| c).unwrap_or(&f.name),
                type_oid: f.type_oid,
                binary: f.format == 1,
            }
        })
        .collect();
    masker.plan(&metas)
}

/// A DataRow with the plan applied; `None` when nothing changed (forward the original).
pub fn mask_data_row(
    plan: &MaskPlan,
    body: &[u8],
    counts: &mut MaskCounts,
) -> Result<Option<Bytes>, PgError> {
    let values = DataRow::decode(body)?.collect::<Result<Vec<_>, _>>()?;
    let masked: Vec<Masked> = values
        .iter()
        .enumerate()
        .map(|(col, value)| plan.apply(col, *value, counts))
        .collect();
    if masked.iter().all(|m| matches!(m, Masked::Unchanged)) {
        return Ok(None);
    }
    let mut b = MessageBuilder::new(backend::DATA_ROW).i16(values.len() as i16);
    for (value, masked) in values.iter().zip(&masked) {
        b = match masked {
            Masked::Unchanged => put_value(b, *value),
            Masked::Replaced(bytes) => put_value(b, Some(bytes)),
            Masked::Null => put_value(b, None),
        };
    }
    Ok(Some(b.finish()))
}

fn put_value(b: MessageBuilder, value: Option<&[u8]>) -> MessageBuilder {
    match value {
        None => b.i32(-1),
        Some(v) => b.i32(v.len() as i32).bytes(v),
    }
}

/// An ErrorResponse or NoticeResponse with its text fields (message, detail, hint, context,
/// where the query failed) masked by the detectors; `None` when nothing changed.
pub fn mask_notice(
    masker: &Masker,
    tag: u8,
    body: &[u8],
    counts: &mut MaskCounts,
) -> Result<Option<Bytes>, PgError> {
    let mut r = Reader::new(body);
    let mut fields = Vec::new();
    let mut changed = false;
    loop {
        let field = r.u8()?;
        if field == 0 {
            break;
        }
        let value = r.cbytes()?;
        // Every text a statement can put there (message, detail, hint, context, query, and
        // the schema/table/column/constraint/type names a RAISE may set); not the severity,
        // code, positions or the server's source location.
        let masked = match field {
            b'S' | b'V' | b'C' | b'P' | b'p' | b'F' | b'L' | b'R' => {
                std::borrow::Cow::Borrowed(value)
            }
            // Masked as bytes: the text is in the session's client encoding, and what the
            // detectors match (digits, addresses) is ASCII in every encoding the gateway admits.
            _ => masker.mask_bytes(value, counts, "error"),
        };
        changed |= matches!(masked, std::borrow::Cow::Owned(_));
        fields.push((field, masked));
    }
    if !changed {
        return Ok(None);
    }
    let mut b = MessageBuilder::new(tag);
    for (field, value) in &fields {
        b = b.u8(*field).bytes(value).u8(0);
    }
    Ok(Some(b.u8(0).finish()))
}

/// A CopyData row of a COPY TO (text or CSV) with the detectors applied; `None` when nothing
/// changed.
pub fn mask_copy_data(masker: &Masker, body: &[u8], counts: &mut MaskCounts) -> Option<Bytes> {
    match masker.mask_bytes(body, counts, "copy") {
        std::borrow::Cow::Borrowed(_) => None,
        std::borrow::Cow::Owned(masked) => Some(
            MessageBuilder::new(backend::COPY_DATA)
                .bytes(&masked)
                .finish(),
        ),
    }
}

/// A ParameterStatus with its value masked by the detectors (a statement can set a reported
/// setting, such as `application_name`, to a value it read); `None` when nothing changed.
pub fn mask_parameter_status(
    masker: &Masker,
    body: &[u8],
    counts: &mut MaskCounts,
) -> Result<Option<Bytes>, PgError> {
    let mut r = Reader::new(body);
    let name = r.cbytes()?;
    let value = r.cbytes()?;
    match masker.mask_bytes(value, counts, "parameter status") {
        std::borrow::Cow::Borrowed(_) => Ok(None),
        std::borrow::Cow::Owned(masked) => Ok(Some(
            MessageBuilder::new(backend::PARAMETER_STATUS)
                .bytes(name)
                .u8(0)
                .bytes(&masked)
                .u8(0)
                .finish(),
        )),
    }
}

/// A NotificationResponse (LISTEN/NOTIFY) with its payload masked by the detectors; `None`
/// when nothing changed.
pub fn mask_notification(
    masker: &Masker,
    body: &[u8],
    counts: &mut MaskCounts,
) -> Result<Option<Bytes>, PgError> {
    let mut r = Reader::new(body);
    let pid = r.i32()?;
    let channel = r.cbytes()?;
    let payload = r.cbytes()?;
    match masker.mask_bytes(payload, counts, "notification") {
        std::borrow::Cow::Borrowed(_) => Ok(None),
        std::borrow::Cow::Owned(masked) => Ok(Some(
            MessageBuilder::new(backend::NOTIFICATION_RESPONSE)
                .i32(pid)
                .bytes(channel)
                .u8(0)
                .bytes(&masked)
                .u8(0)
                .finish(),
        )),
    }
}

/// A FunctionCallResponse with its value masked by the detectors; `None` when nothing
/// changed.
pub fn mask_function_result(
    masker: &Masker,
    body: &[u8],
    counts: &mut MaskCounts,
) -> Result<Option<Bytes>, PgError> {
    let Some(value) = Reader::new(body).value()? else {
        return Ok(None);
    };
    match masker.mask_bytes(value, counts, "function result") {
        std::borrow::Cow::Borrowed(_) => Ok(None),
        std::borrow::Cow::Owned(masked) => Ok(Some(
            MessageBuilder::new(backend::FUNCTION_CALL_RESPONSE)
                .i32(masked.len() as i32)
                .bytes(&masked)
                .finish(),
        )),
    }
}

/// Catalog shared by a session's relay halves.
pub type SharedCatalog = Option<Arc<Catalog>>;

#[cfg(test)]
mod tests {
    use super::*;
    use gatehouse_core::mask::{MaskPolicy, MaskSpec};

    fn masker(toml_specs: &str) -> Masker {
        #[derive(serde::Deserialize)]
        struct File {
            mask: Vec<MaskSpec>,
        }
        let file: File = toml::from_str(toml_specs).unwrap();
        MaskPolicy::new(file.mask, vec![7; 32])
            .unwrap()
            .for_groups(&[])
    }

    fn row(values: &[Option<&[u8]>]) -> Bytes {
        let mut b = MessageBuilder::new(backend::DATA_ROW).i16(values.len() as i16);
        for v in values {
            b = put_value(b, *v);
        }
        b.finish()
    }

    #[test]
    fn rows_are_rewritten_only_where_the_plan_touches_them() {
        let m = masker(
            "[[mask]]\nname = \"pan\"\ndetect = \"pan\"\nstyle = \"keep-last-4\"\n\
             [[mask]]\nname = \"secret\"\ncolumns = [\"*.secret\"]\n",
        );
        let fields = [
            Field {
                name: "name".into(),
                table_oid: 0,
                attnum: 0,
                type_oid: 25,
                format: 0,
            },
            Field {
                name: "card".into(),
                table_oid: 0,
                attnum: 0,
                type_oid: 25,
                format: 0,
            },
            Field {
                name: "secret".into(),
                table_oid: 0,
                attnum: 0,
                type_oid: 25,
                format: 0,
            },
        ];
        let plan = plan(&m, None, &fields);
        let mut counts = MaskCounts::new();
        let clean = row(&[Some(b"ada"), Some(b"n/a"), None]);
        assert_eq!(
            mask_data_row(&plan, &clean[5..], &mut counts).unwrap(),
            None
        );
        let dirty = row(&[Some(b"ada"), Some(b"4111 1111 1111 1111"), Some(b"hunter2")]);
        let masked = mask_data_row(&plan, &dirty[5..], &mut counts)
            .unwrap()
            .unwrap();
        let values: Vec<_> = DataRow::decode(&masked[5..])
            .unwrap()
            .map(|v| v.unwrap().map(|b| String::from_utf8_lossy(b).into_owned()))
            .collect();
        assert_eq!(values[0].as_deref(), Some("ada"));
        assert_eq!(values[1].as_deref(), Some("**** **** **** 1111"));
        assert_ne!(values[2].as_deref(), Some("hunter2"));
        assert_eq!(counts.total(), 2);
    }

    #[test]
    fn notices_and_copy_rows_are_masked() {
        let m = masker("[[mask]]\nname = \"pan\"\ndetect = \"pan\"\n");
        let mut counts = MaskCounts::new();
        let notice = crate::messages::error_response(
            crate::messages::Severity::Error,
            "23505",
            "duplicate key (card)=(4111111111111111)",
            None,
        );
        let masked = mask_notice(&m, notice[0], &notice[5..], &mut counts)
            .unwrap()
            .unwrap();
        assert!(!String::from_utf8_lossy(&masked).contains("4111111111111111"));
        let copy = mask_copy_data(&m, b"1\t4111111111111111\n", &mut counts).unwrap();
        assert!(!String::from_utf8_lossy(&copy).contains("4111111111111111"));
        assert!(mask_copy_data(&m, b"1\tada\n", &mut counts).is_none());
    }

    #[test]
    fn texts_in_other_encodings_are_masked_byte_exact() {
        let m = masker("[[mask]]\nname = \"pan\"\ndetect = \"pan\"\n");
        let mut counts = MaskCounts::new();
        // LATIN9: "carte refusée 4111111111111111" with é as the one byte 0xE9.
        let notice = b"SERREUR\0C23505\0Mcarte refus\xe9e 4111111111111111\0\0";
        let masked = mask_notice(&m, b'E', notice, &mut counts).unwrap().unwrap();
        assert!(masked.windows(6).any(|w| w == b"refus\xe9"), "{masked:?}");
        assert!(!masked.windows(16).any(|w| w == b"4111111111111111"));
        let mut payload = 42i32.to_be_bytes().to_vec();
        payload.extend_from_slice(b"caf\xe9\0paid 4111111111111111 \xe0 la caisse\0");
        let masked = mask_notification(&m, &payload, &mut counts)
            .unwrap()
            .unwrap();
        assert!(masked.windows(5).any(|w| w == b"caf\xe9\0"), "{masked:?}");
        assert!(masked.windows(3).any(|w| w == b" \xe0 "), "{masked:?}");
        assert!(!masked.windows(16).any(|w| w == b"4111111111111111"));
    }
}
