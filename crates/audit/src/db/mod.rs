//! The one seam between the store's SQL and a database: [`Db`], a connection to SQLite or
//! PostgreSQL with the calls the store makes (execute, query a row, query rows, a transaction),
//! parameters as [`Value`]s and rows read as [`Row`]s.
//!
//! Every query of the store is written once, in the SQL both databases read (`?1` parameters,
//! `INSERT ... ON CONFLICT DO NOTHING`, `RETURNING`, `CAST(... AS BIGINT)`); the PostgreSQL
//! connection renumbers the parameters as `$1` when it prepares a statement. What differs
//! (the schema's types, how a transaction takes the chain's head) asks [`Db::backend`].

mod placeholders;
mod postgres;
mod sqlite;
mod tls;
mod value;

use thiserror::Error;

pub use postgres::listen;
pub use value::{Cell, FromCell, Param, ToValue, Value};

/// From how many rows [`Db::insert_rows`] sends them to PostgreSQL with `COPY`.
pub const COPY_FROM: usize = 32;

/// Which database a [`Db`] talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The embedded file (one gateway per store).
    Sqlite,
    /// A PostgreSQL server (several gateways per store).
    Postgres,
}

/// What went wrong talking to the database.
#[derive(Debug, Error)]
pub enum DbError {
    /// SQLite refused an operation.
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    /// PostgreSQL refused an operation, or the connection failed.
    #[error("{}", postgres::describe(.0))]
    Postgres(#[from] tokio_postgres::Error),
    /// The database cannot be reached.
    #[error("{0}")]
    Unavailable(String),
    /// A row reader stopped the walk (its own error is kept by the caller).
    #[error("the rows' reader stopped")]
    Stopped,
    /// A query that must return a row returned none.
    #[error("the query returned no row")]
    NoRows,
    /// A column's value is not of the type the store reads it as.
    #[error("column {index}: {what}")]
    Type {
        /// The column's index.
        index: usize,
        /// What was found.
        what: String,
    },
}

impl DbError {
    /// A unique constraint refused the write (a key registered twice).
    pub fn is_unique_violation(&self) -> bool {
        match self {
            Self::Sqlite(e) => {
                e.sqlite_error_code() == Some(rusqlite::ErrorCode::ConstraintViolation)
            }
            Self::Postgres(e) => {
                e.code() == Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)
            }
            _ => false,
        }
    }

    /// The database could not be reached or the connection broke (PostgreSQL), as opposed to
    /// refusing one statement.
    pub fn is_connection_lost(&self) -> bool {
        match self {
            Self::Postgres(e) => postgres::connection_lost(e),
            Self::Unavailable(_) => true,
            _ => false,
        }
    }
}

/// `Ok(None)` for a query that returned no row.
pub trait OptionalExtension<T> {
    /// The row's value, or `None` if there was no row.
    fn optional(self) -> Result<Option<T>, DbError>;
}

impl<T> OptionalExtension<T> for Result<T, DbError> {
    fn optional(self) -> Result<Option<T>, DbError> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(DbError::NoRows) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

/// Parameters of a statement, in order: `params![a, b]`.
pub type Params<'a> = &'a [&'a dyn ToValue];

/// Builds [`Params`] from expressions, as `rusqlite::params!` does.
#[macro_export]
#[doc(hidden)]
macro_rules! db_params {
    () => { &[] as $crate::db::Params<'_> };
    ($($p:expr),+ $(,)?) => { &[$(&$p as &dyn $crate::db::ToValue),+] as $crate::db::Params<'_> };
}
pub use crate::db_params as params;

/// One row of a result.
pub enum Row<'a> {
    /// A SQLite row.
    Sqlite(&'a rusqlite::Row<'a>),
    /// A PostgreSQL row.
    Postgres(&'a tokio_postgres::Row),
}

impl Row<'_> {
    /// Column `index` as `T`.
    pub fn get<T: FromCell>(&self, index: usize) -> Result<T, DbError> {
        T::from_cell(self.cell(index)?).map_err(|what| DbError::Type { index, what })
    }

    /// Column `index` as it is, text borrowed from the row.
    pub fn cell(&self, index: usize) -> Result<Cell<'_>, DbError> {
        match self {
            Self::Sqlite(row) => sqlite::cell(row, index),
            Self::Postgres(row) => postgres::cell(row, index),
        }
    }
}

/// A connection to the store's database.
pub struct Db {
    conn: Conn,
}

enum Conn {
    Sqlite(rusqlite::Connection),
    Postgres(Box<postgres::PgConn>),
}

/// How a transaction starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// Reads see one snapshot; writes take their locks as they go.
    Deferred,
    /// The writer's lock is taken at once (SQLite's `BEGIN IMMEDIATE`): for a transaction that
    /// reads something and writes what follows from it (the chain's head).
    Immediate,
}

impl Db {
    /// A SQLite connection.
    pub fn sqlite(conn: rusqlite::Connection) -> Self {
        Self {
            conn: Conn::Sqlite(conn),
        }
    }

    /// Connects to PostgreSQL (`postgres://user:pw@host:port/db`). Blocking: call it from a
    /// thread of its own or a blocking task, never from async code.
    pub fn postgres(url: &str) -> Result<Self, DbError> {
        Ok(Self {
            conn: Conn::Postgres(Box::new(postgres::PgConn::connect(url)?)),
        })
    }

    /// Which database this is.
    pub fn backend(&self) -> Backend {
        match self.conn {
            Conn::Sqlite(_) => Backend::Sqlite,
            Conn::Postgres(_) => Backend::Postgres,
        }
    }

    /// Sets a SQLite pragma (`wal_autocheckpoint`, ...); nothing on PostgreSQL.
    pub fn sqlite_pragma(&self, name: &str, value: i64) -> Result<(), DbError> {
        match &self.conn {
            Conn::Sqlite(c) => Ok(c.pragma_update(None, name, value)?),
            Conn::Postgres(_) => Ok(()),
        }
    }

    /// Runs one statement; returns how many rows it changed.
    pub fn execute(&mut self, sql: &str, params: Params<'_>) -> Result<usize, DbError> {
        match &mut self.conn {
            Conn::Sqlite(c) => sqlite::execute(c, sql, params),
            Conn::Postgres(c) => c.execute(sql, params),
        }
    }

    /// Runs statements with no parameters (schema, `BEGIN`).
    pub fn execute_batch(&mut self, sql: &str) -> Result<(), DbError> {
        match &mut self.conn {
            Conn::Sqlite(c) => Ok(c.execute_batch(sql)?),
            Conn::Postgres(c) => c.batch(sql),
        }
    }

    /// Calls `each` for every row, as they arrive (never collecting them).
    pub fn query_each(
        &mut self,
        sql: &str,
        params: Params<'_>,
        mut each: impl FnMut(&Row<'_>) -> Result<(), DbError>,
    ) -> Result<(), DbError> {
        match &mut self.conn {
            Conn::Sqlite(c) => sqlite::query_each(c, sql, params, &mut each),
            Conn::Postgres(c) => c.query_each(sql, params, &mut each),
        }
    }

    /// The first row, read by `f`; [`DbError::NoRows`] if there is none (see
    /// [`OptionalExtension::optional`]).
    pub fn query_row<T>(
        &mut self,
        sql: &str,
        params: Params<'_>,
        f: impl FnOnce(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<T, DbError> {
        let mut f = Some(f);
        let mut out = None;
        self.query_each(sql, params, |row| {
            if let Some(f) = f.take() {
                out = Some(f(row)?);
            }
            Ok(())
        })?;
        out.ok_or(DbError::NoRows)
    }

    /// Every row, each read by `f`.
    pub fn query_map<T>(
        &mut self,
        sql: &str,
        params: Params<'_>,
        mut f: impl FnMut(&Row<'_>) -> Result<T, DbError>,
    ) -> Result<Vec<T>, DbError> {
        let mut out = Vec::new();
        self.query_each(sql, params, |row| {
            out.push(f(row)?);
            Ok(())
        })?;
        Ok(out)
    }

    /// Inserts `rows` (each a value per column of `columns`) into `table`: on PostgreSQL with
    /// `COPY` (from [`COPY_FROM`] rows) or multi-row INSERTs of up to 64 rows (one round trip
    /// and one statement for many rows), on SQLite one prepared INSERT per row (in-process, as
    /// cheap). A conflict is an error:
    /// call it in a transaction, which the error rolls back.
    pub fn insert_rows(
        &mut self,
        table: &str,
        columns: &[&str],
        rows: &[Vec<Param<'_>>],
    ) -> Result<(), DbError> {
        if let Conn::Postgres(c) = &mut self.conn {
            if rows.len() >= COPY_FROM {
                return c.copy_rows(table, columns, rows);
            }
        }
        let mut rest = rows;
        while !rest.is_empty() {
            let n = match self.backend() {
                Backend::Sqlite => 1,
                // A few sizes, so each is prepared once per connection.
                Backend::Postgres => [64, 16, 4, 1]
                    .into_iter()
                    .find(|&size| size <= rest.len())
                    .unwrap_or(1),
            };
            let (chunk, tail) = rest.split_at(n.min(rest.len()));
            let mut sql = format!("INSERT INTO {table} ({}) VALUES ", columns.join(", "));
            let mut next = 1;
            for (r, _) in chunk.iter().enumerate() {
                sql.push_str(if r == 0 { "(" } else { ", (" });
                for c in 0..columns.len() {
                    if c > 0 {
                        sql.push_str(", ");
                    }
                    sql.push('?');
                    sql.push_str(&next.to_string());
                    next += 1;
                }
                sql.push(')');
            }
            let params: Vec<&dyn ToValue> =
                chunk.iter().flatten().map(|p| p as &dyn ToValue).collect();
            self.execute(&sql, &params)?;
            rest = tail;
        }
        Ok(())
    }

    /// Whether the query returns a row.
    pub fn exists(&mut self, sql: &str, params: Params<'_>) -> Result<bool, DbError> {
        self.query_row(sql, params, |_| Ok(()))
            .optional()
            .map(|r| r.is_some())
    }

    /// Starts a transaction; it rolls back unless [`Tx::commit`] is called.
    pub fn transaction(&mut self, begin: Begin) -> Result<Tx<'_>, DbError> {
        let sql = match (self.backend(), begin) {
            (Backend::Sqlite, Begin::Immediate) => "BEGIN IMMEDIATE",
            (Backend::Sqlite, Begin::Deferred) => "BEGIN DEFERRED",
            // PostgreSQL's rows are locked by the statements that need them (`FOR UPDATE`).
            (Backend::Postgres, _) => "BEGIN",
        };
        self.execute_batch(sql)?;
        Ok(Tx {
            db: self,
            done: false,
        })
    }
}

/// An open transaction; derefs to its [`Db`]. Dropped without [`Tx::commit`], it rolls back.
pub struct Tx<'a> {
    db: &'a mut Db,
    done: bool,
}

impl Tx<'_> {
    /// Commits.
    pub fn commit(mut self) -> Result<(), DbError> {
        self.done = true;
        self.db.execute_batch("COMMIT")
    }
}

impl std::ops::Deref for Tx<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl std::ops::DerefMut for Tx<'_> {
    fn deref_mut(&mut self) -> &mut Db {
        self.db
    }
}

impl Drop for Tx<'_> {
    fn drop(&mut self) {
        if !self.done {
            if let Err(e) = self.db.execute_batch("ROLLBACK") {
                tracing::warn!(error = %e, "rollback failed");
            }
        }
    }
}
