//! `audit export`: audit entries streamed out as JSON Lines or CSV, oldest first, in constant
//! memory.
//!
//! One prepared statement walks `audit_entries` in `id` order on a connection of its own (so a
//! long export never holds the reader the gateway's lookups share), and each row is written as
//! it is read: nothing is collected, whatever the number of entries. The fields are those of
//! [`AuditRow`](crate::AuditRow), except `at`, which keeps the stored microseconds.
//!
//! The whole export reads one snapshot of the store (one read transaction): entries written
//! while it runs are not in it, and an entry is never half there.

use std::collections::BTreeMap;
use std::io::{BufWriter, Write};
use std::time::SystemTime;

use gatehouse_core::time::{from_micros, to_micros};
use serde::Serialize;

use crate::db::{params, Backend, Begin, Cell, Db, Row, ToValue, Value};
use crate::error::AuditError;
use crate::store::Store;

/// Which audit entries to export. Every filter given must hold; `None` lets everything through.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    /// Only entries admitted at or after this time (inclusive).
    pub from: Option<SystemTime>,
    /// Only entries admitted before this time (exclusive, so consecutive windows do not
    /// overlap).
    pub to: Option<SystemTime>,
    /// Only entries of this identity (exact).
    pub identity: Option<String>,
    /// Only entries on this connection (exact).
    pub connection: Option<String>,
    /// Only entries of this protocol (`postgres`, `mysql`, `ssh`).
    pub protocol: Option<String>,
    /// Only entries with this verdict (`allow`, `deny`, `approved`, `rejected`).
    pub verdict: Option<String>,
    /// Only entries after this store id (a page of a search continues where the last ended).
    pub after_id: Option<i64>,
    /// At most this many (the first, by id).
    pub limit: Option<u64>,
}

/// How exported entries are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// JSON Lines: one JSON object per entry and line, every field present (`null` if unset).
    Jsonl,
    /// CSV (RFC 4180): a header line, then one record per entry, lines ending in CRLF; lists
    /// and maps as compact JSON text in one cell, unset values as empty cells.
    Csv,
}

/// The exported fields, in order: the CSV header and the JSON keys.
pub const FIELDS: [&str; 24] = [
    "id",
    "at",
    "session",
    "seq",
    "identity",
    "groups",
    "connection",
    "protocol",
    "client",
    "statement",
    "params",
    "class",
    "verdict",
    "status",
    "tag",
    "sqlstate",
    "error",
    "rows_returned",
    "rows_affected",
    "duration_us",
    "rule",
    "approval",
    "masked",
    "approved_by",
];

/// The stored columns read for [`FIELDS`], in the same order.
const COLUMNS: &str = "id, at, session_id, seq, identity, groups_json, connection, protocol,
    client_addr, statement, params_json, class, verdict, status, tag, sqlstate, error,
    rows_returned, rows_affected, duration_us, rule, approval_id, masked_json,
    result_masked_json, approved_by";

/// Bytes buffered before the output is written to.
const BUFFER: usize = 64 * 1024;

impl Store {
    /// Writes the entries matching `filter` to `out`, oldest first (by store id), and returns
    /// how many were written. `out` is buffered here and flushed before returning; an error
    /// writing it is [`AuditError::Io`] with the writer's own error as source (so a caller can
    /// tell a closed pipe from a failing store).
    pub fn export(
        &self,
        filter: &ExportFilter,
        format: ExportFormat,
        out: &mut dyn Write,
    ) -> Result<u64, AuditError> {
        let mut conn = self.connect()?;
        let mut snapshot = conn.transaction(Begin::Deferred)?;
        let mut out = BufWriter::with_capacity(BUFFER, out);
        let mut sink = Sink {
            format,
            at: String::with_capacity(32),
            cell: Vec::with_capacity(256),
        };
        if format == ExportFormat::Csv {
            sink.header(&mut out).map_err(write_error)?;
        }
        let mut written = 0;
        if let Some((sql, args)) = select(&mut snapshot, filter)? {
            let args: Vec<&dyn ToValue> = args.iter().map(|a| a as &dyn ToValue).collect();
            // A failed write stops the walk; its own error is the one reported.
            let mut failed: Option<AuditError> = None;
            let walked = snapshot.query_each(&sql, &args, |row| match sink.entry(row, &mut out) {
                Ok(()) => {
                    written += 1;
                    Ok(())
                }
                Err(e) => {
                    failed = Some(e);
                    Err(crate::db::DbError::Stopped)
                }
            });
            if let Some(e) = failed {
                return Err(e);
            }
            walked?;
        }
        out.flush().map_err(write_error)?;
        Ok(written)
    }
}

/// The statement and its arguments, or `None` if no entry falls in the time window.
///
/// A time window is turned into a range of ids first (through the index on `at`), and the rows
/// are then read by id with no index (`NOT INDEXED`): the rows come in table order, already
/// sorted, so SQLite never sorts (or buffers) the result, whichever plan it would prefer.
/// (PostgreSQL walks the primary key's index in order, or sorts a window it chose to scan.)
fn select<'f>(
    db: &mut Db,
    filter: &'f ExportFilter,
) -> Result<Option<(String, Vec<Value<'f>>)>, AuditError> {
    let not_indexed = match db.backend() {
        Backend::Sqlite => "NOT INDEXED",
        Backend::Postgres => "",
    };
    let mut sql = format!("SELECT {COLUMNS} FROM audit_entries {not_indexed} WHERE true");
    let mut args: Vec<Value<'f>> = Vec::new();
    let mut condition = |sql: &mut String, clause: &str, value: Value<'f>| {
        args.push(value);
        sql.push_str(&format!(" AND {clause} ?{}", args.len()));
    };
    if filter.from.is_some() || filter.to.is_some() {
        let from = filter.from.map(to_micros).unwrap_or(i64::MIN);
        let to = filter.to.map(to_micros).unwrap_or(i64::MAX);
        let ids: (Option<i64>, Option<i64>) = db.query_row(
            "SELECT min(id), max(id) FROM audit_entries WHERE at >= ?1 AND at < ?2",
            params![from, to],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        let (Some(first), Some(last)) = ids else {
            return Ok(None);
        };
        condition(&mut sql, "id >=", Value::Int(first));
        condition(&mut sql, "id <=", Value::Int(last));
        condition(&mut sql, "at >=", Value::Int(from));
        condition(&mut sql, "at <", Value::Int(to));
    }
    let exact = [
        ("identity =", &filter.identity),
        ("connection =", &filter.connection),
        ("protocol =", &filter.protocol),
        ("verdict =", &filter.verdict),
    ];
    for (clause, value) in exact {
        if let Some(value) = value {
            condition(&mut sql, clause, Value::Text(value));
        }
    }
    if let Some(after) = filter.after_id {
        condition(&mut sql, "id >", Value::Int(after));
    }
    sql.push_str(" ORDER BY id");
    if let Some(limit) = filter.limit {
        sql.push_str(&format!(" LIMIT {}", limit.min(i64::MAX as u64)));
    }
    Ok(Some((sql, args)))
}

/// Writes entries in one format, with scratch space reused from row to row.
struct Sink {
    format: ExportFormat,
    /// The current entry's time, formatted.
    at: String,
    /// A list or map cell of the current CSV record, as JSON.
    cell: Vec<u8>,
}

/// One entry, borrowing its text from the row being read.
#[derive(Serialize)]
struct Entry<'r> {
    id: i64,
    at: &'r str,
    session: &'r str,
    seq: i64,
    identity: &'r str,
    groups: Vec<String>,
    connection: &'r str,
    protocol: &'r str,
    client: &'r str,
    statement: &'r str,
    params: Vec<Option<String>>,
    class: &'r str,
    verdict: &'r str,
    status: Option<&'r str>,
    tag: Option<&'r str>,
    sqlstate: Option<&'r str>,
    error: Option<&'r str>,
    rows_returned: Option<i64>,
    rows_affected: Option<i64>,
    duration_us: Option<i64>,
    rule: Option<&'r str>,
    approval: Option<&'r str>,
    masked: BTreeMap<String, u64>,
    approved_by: Option<&'r str>,
}

impl Sink {
    fn header(&self, out: &mut impl Write) -> std::io::Result<()> {
        out.write_all(FIELDS.join(",").as_bytes())?;
        out.write_all(b"\r\n")
    }

    /// Decodes one row (the list columns as `queries` decodes them: unreadable JSON is
    /// empty) and writes it.
    fn entry(&mut self, row: &Row<'_>, out: &mut impl Write) -> Result<(), AuditError> {
        let id: i64 = row.get(0)?;
        let at: i64 = row.get(1)?;
        self.at.clear();
        std::fmt::Write::write_fmt(
            &mut self.at,
            format_args!("{}", humantime::format_rfc3339_micros(from_micros(at))),
        )
        .map_err(|_| AuditError::Corrupt(format!("audit entry {id}: time {at} is out of range")))?;
        let entry = Entry {
            id,
            at: &self.at,
            session: text(row, 2)?,
            seq: row.get(3)?,
            identity: text(row, 4)?,
            groups: json_or_default(text(row, 5)?),
            connection: text(row, 6)?,
            protocol: text(row, 7)?,
            client: text(row, 8)?,
            statement: text(row, 9)?,
            params: json_or_default(text(row, 10)?),
            class: text(row, 11)?,
            verdict: text(row, 12)?,
            status: optional_text(row, 13)?,
            tag: optional_text(row, 14)?,
            sqlstate: optional_text(row, 15)?,
            error: optional_text(row, 16)?,
            rows_returned: row.get(17)?,
            rows_affected: row.get(18)?,
            duration_us: row.get(19)?,
            rule: optional_text(row, 20)?,
            approval: optional_text(row, 21)?,
            masked: {
                // The admission's log (statement, parameters) and the result's (columns).
                let mut log: BTreeMap<String, u64> = optional_text(row, 22)?
                    .map(json_or_default)
                    .unwrap_or_default();
                let result: BTreeMap<String, u64> = optional_text(row, 23)?
                    .map(json_or_default)
                    .unwrap_or_default();
                for (k, v) in result {
                    *log.entry(k).or_default() += v;
                }
                log
            },
            approved_by: optional_text(row, 24)?,
        };
        match self.format {
            ExportFormat::Jsonl => {
                serde_json::to_writer(&mut *out, &entry)
                    .map_err(|e| write_error(std::io::Error::from(e)))?;
                out.write_all(b"\n").map_err(write_error)
            }
            ExportFormat::Csv => csv_record(&entry, &mut self.cell, out).map_err(write_error),
        }
    }
}

/// Writes one CSV record (RFC 4180), fields in [`FIELDS`] order.
fn csv_record(e: &Entry<'_>, cell: &mut Vec<u8>, out: &mut impl Write) -> std::io::Result<()> {
    csv_int(out, Some(e.id))?;
    out.write_all(b",")?;
    csv_text(out, e.at.as_bytes())?;
    out.write_all(b",")?;
    csv_text(out, e.session.as_bytes())?;
    out.write_all(b",")?;
    csv_int(out, Some(e.seq))?;
    out.write_all(b",")?;
    csv_text(out, e.identity.as_bytes())?;
    out.write_all(b",")?;
    csv_json(out, cell, &e.groups)?;
    for text in [e.connection, e.protocol, e.client, e.statement] {
        out.write_all(b",")?;
        csv_text(out, text.as_bytes())?;
    }
    out.write_all(b",")?;
    csv_json(out, cell, &e.params)?;
    for text in [e.class, e.verdict] {
        out.write_all(b",")?;
        csv_text(out, text.as_bytes())?;
    }
    for text in [e.status, e.tag, e.sqlstate, e.error] {
        out.write_all(b",")?;
        csv_text(out, text.unwrap_or_default().as_bytes())?;
    }
    for number in [e.rows_returned, e.rows_affected, e.duration_us] {
        out.write_all(b",")?;
        csv_int(out, number)?;
    }
    for text in [e.rule, e.approval] {
        out.write_all(b",")?;
        csv_text(out, text.unwrap_or_default().as_bytes())?;
    }
    out.write_all(b",")?;
    csv_json(out, cell, &e.masked)?;
    out.write_all(b",")?;
    csv_text(out, e.approved_by.unwrap_or_default().as_bytes())?;
    out.write_all(b"\r\n")
}

/// A number, or an empty cell for NULL.
fn csv_int(out: &mut impl Write, value: Option<i64>) -> std::io::Result<()> {
    match value {
        Some(n) => serde_json::to_writer(out, &n).map_err(std::io::Error::from),
        None => Ok(()),
    }
}

/// A list or map as compact JSON text in one cell.
fn csv_json(
    out: &mut impl Write,
    cell: &mut Vec<u8>,
    value: &impl Serialize,
) -> std::io::Result<()> {
    cell.clear();
    serde_json::to_writer(&mut *cell, value).map_err(std::io::Error::from)?;
    csv_text(out, cell)
}

/// A text cell, quoted if it holds a comma, a double quote, CR or LF (its quotes doubled).
fn csv_text(out: &mut impl Write, text: &[u8]) -> std::io::Result<()> {
    if !text
        .iter()
        .any(|b| matches!(b, b',' | b'"' | b'\r' | b'\n'))
    {
        return out.write_all(text);
    }
    out.write_all(b"\"")?;
    for (i, part) in text.split(|&b| b == b'"').enumerate() {
        if i > 0 {
            out.write_all(b"\"\"")?;
        }
        out.write_all(part)?;
    }
    out.write_all(b"\"")
}

/// A text column, borrowed from the row.
fn text<'r>(row: &'r Row<'_>, column: usize) -> Result<&'r str, AuditError> {
    optional_text(row, column)?.ok_or_else(|| {
        AuditError::Corrupt(format!(
            "audit entry column {column} is NULL where text is required"
        ))
    })
}

/// A text column that may be NULL, borrowed from the row.
fn optional_text<'r>(row: &'r Row<'_>, column: usize) -> Result<Option<&'r str>, AuditError> {
    match row.cell(column)? {
        Cell::Null => Ok(None),
        Cell::Text(text) => Ok(Some(text)),
        other => Err(AuditError::Corrupt(format!(
            "audit entry column {column} holds {other:?} where text is expected"
        ))),
    }
}

/// A JSON column decoded, or the empty value if it is unreadable (as the listings do).
fn json_or_default<T: serde::de::DeserializeOwned + Default>(text: &str) -> T {
    serde_json::from_str(text).unwrap_or_default()
}

fn write_error(source: std::io::Error) -> AuditError {
    AuditError::Io {
        what: "could not write the export".into(),
        source,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(filter: &ExportFilter) -> String {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_sqlite(&dir.path().join("a.db")).unwrap();
        store
            .read(|db| {
                db.execute_batch(
                    "INSERT INTO audit_entries (session_id, seq, at, identity, groups_json,
                        connection, protocol, client_addr, statement, params_json, class, verdict)
                     VALUES ('s', 1, 10, 'job', '[]', 'db', 'postgres', 'c', 'SELECT 1', '[]',
                        'select', 'allow')",
                )?;
                let (sql, args) = select(db, filter)?.unwrap();
                let args: Vec<&dyn ToValue> = args.iter().map(|a| a as &dyn ToValue).collect();
                let details = db.query_map(&format!("EXPLAIN QUERY PLAN {sql}"), &args, |row| {
                    row.get::<String>(3)
                })?;
                Ok(details.join("; "))
            })
            .unwrap()
    }

    #[test]
    fn rows_are_read_in_id_order_without_a_sort() {
        let window = ExportFilter {
            from: Some(from_micros(0)),
            to: Some(from_micros(100)),
            identity: Some("job".into()),
            ..Default::default()
        };
        for filter in [ExportFilter::default(), window] {
            let plan = plan(&filter);
            assert!(!plan.contains("TEMP B-TREE"), "{plan}");
            assert!(!plan.contains("INDEX"), "{plan}");
        }
    }

    #[test]
    fn csv_text_quotes_only_when_needed() {
        let cases: [(&str, &str); 5] = [
            ("plain text", "plain text"),
            ("a,b", "\"a,b\""),
            ("say \"hi\"", "\"say \"\"hi\"\"\""),
            ("two\nlines", "\"two\nlines\""),
            ("cr\r", "\"cr\r\""),
        ];
        for (input, want) in cases {
            let mut out = Vec::new();
            csv_text(&mut out, input.as_bytes()).unwrap();
            assert_eq!(String::from_utf8(out).unwrap(), want, "{input:?}");
        }
    }
}
