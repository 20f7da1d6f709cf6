//! [`super::Db`] over rusqlite: statements prepared once per connection (its cache).

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::Connection;

use super::{Cell, DbError, Params, Row, Value};

impl rusqlite::ToSql for Value<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match *self {
            Value::Null => ValueRef::Null,
            Value::Int(n) => ValueRef::Integer(n),
            Value::Text(t) => ValueRef::Text(t.as_bytes()),
        }))
    }
}

/// Binds `params` to `stmt` in place (1-based), checking their number as `execute` does.
fn bind(stmt: &mut rusqlite::Statement<'_>, params: Params<'_>) -> Result<(), DbError> {
    if stmt.parameter_count() != params.len() {
        return Err(DbError::Sqlite(rusqlite::Error::InvalidParameterCount(
            params.len(),
            stmt.parameter_count(),
        )));
    }
    for (i, p) in params.iter().enumerate() {
        stmt.raw_bind_parameter(i + 1, p.to_value())?;
    }
    Ok(())
}

pub(super) fn execute(conn: &Connection, sql: &str, params: Params<'_>) -> Result<usize, DbError> {
    let mut stmt = conn.prepare_cached(sql)?;
    bind(&mut stmt, params)?;
    // `raw_execute` refuses a statement that returns rows, as `execute` does.
    Ok(stmt.raw_execute()?)
}

pub(super) fn query_each(
    conn: &Connection,
    sql: &str,
    params: Params<'_>,
    each: &mut dyn FnMut(&Row<'_>) -> Result<(), DbError>,
) -> Result<(), DbError> {
    let mut stmt = conn.prepare_cached(sql)?;
    bind(&mut stmt, params)?;
    let mut rows = stmt.raw_query();
    while let Some(row) = rows.next()? {
        each(&Row::Sqlite(row))?;
    }
    Ok(())
}

pub(super) fn cell<'a>(row: &'a rusqlite::Row<'a>, index: usize) -> Result<Cell<'a>, DbError> {
    Ok(match row.get_ref(index)? {
        ValueRef::Null => Cell::Null,
        ValueRef::Integer(n) => Cell::Int(n),
        ValueRef::Real(x) => Cell::Real(x),
        ValueRef::Text(t) => Cell::Text(std::str::from_utf8(t).map_err(|e| DbError::Type {
            index,
            what: format!("text that is not UTF-8: {e}"),
        })?),
        ValueRef::Blob(_) => {
            return Err(DbError::Type {
                index,
                what: "a blob".into(),
            })
        }
    })
}
