//! [`SqliteStore`]: the embedded store behind the core's traits.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use async_trait::async_trait;
use gatehouse_core::store::{AuditSink, Receipt, TokenRegistry};
use gatehouse_core::time::{from_micros, to_micros};
use gatehouse_core::{
    CommandCompletion, CommandRecord, SessionEnd, SessionInfo, StoreError, TokenHash, TokenId,
    TokenRecord,
};
use rusqlite::{Connection, OptionalExtension};

use crate::error::AuditError;
use crate::schema;
use crate::tokens::token_from_row;
use crate::writer::{Op, Writer};

/// The SQLite store: group-committed writes (see [`crate::writer`]), a reader connection for
/// lookups.
///
/// Several processes may open the same file (the CLI while `serve` runs): WAL lets readers and
/// the one writer proceed together, and SQLite serialises writers across processes.
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
    writer: Writer,
    reader: Arc<Mutex<Connection>>,
}

impl SqliteStore {
    /// Opens (creating the file, its directory and the tables if needed) the store.
    pub fn open(path: &Path) -> Result<Self, AuditError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|source| AuditError::Io {
                what: format!("could not create {}", dir.display()),
                source,
            })?;
        }
        let write_conn = schema::open(path)?;
        schema::migrate(&write_conn)?;
        let reader = schema::open(path)?;
        Ok(Self {
            path: path.to_owned(),
            writer: Writer::start(write_conn, schema::open(path)?)?,
            reader: Arc::new(Mutex::new(reader)),
        })
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs a read on the reader connection (blocking; call from a blocking context or the CLI).
    pub fn read<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let conn = self
            .reader
            .lock()
            .map_err(|_| AuditError::Corrupt("reader connection poisoned".into()))?;
        f(&conn)
    }

    /// Resolves once every write queued so far is committed (used at shutdown).
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.writer.submit(Op::Barrier).await
    }

    async fn read_async<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, AuditError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read(f))
            .await
            .map_err(|e| StoreError(format!("store lookup task failed: {e}")))?
            .map_err(StoreError::from)
    }
}

impl AuditSink for SqliteStore {
    fn session_opened(&self, info: &SessionInfo) -> Receipt {
        let info = Box::new(info.clone());
        self.writer.submit(|ack| Op::Open(info, ack))
    }

    fn command_admitted(&self, record: CommandRecord) -> Receipt {
        self.writer.submit(|ack| Op::Admit(Box::new(record), ack))
    }

    fn command_finished(&self, completion: CommandCompletion) {
        self.writer.send(Op::Finish(Box::new(completion)));
    }

    fn session_closed(&self, end: &SessionEnd) -> Receipt {
        let end = Box::new(end.clone());
        self.writer.submit(|ack| Op::Close(end, ack))
    }
}

#[async_trait]
impl TokenRegistry for SqliteStore {
    async fn find_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        let hash = hash.0.clone();
        self.read_async(move |conn| {
            conn.query_row(
                "SELECT id, identity, groups_json, connections_json, created_at, expires_at,
                        revoked_at, created_by
                 FROM tokens WHERE hash = ?1",
                [hash],
                token_from_row,
            )
            .optional()?
            .transpose()
        })
        .await
    }

    async fn revoked_since(
        &self,
        since: SystemTime,
    ) -> Result<Vec<(TokenId, SystemTime)>, StoreError> {
        let since = to_micros(since);
        self.read_async(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, revoked_at FROM tokens WHERE revoked_at >= ?1 ORDER BY revoked_at",
            )?;
            let rows = stmt.query_map([since], |row| {
                Ok((TokenId(row.get(0)?), from_micros(row.get(1)?)))
            })?;
            Ok(rows.collect::<Result<Vec<_>, _>>()?)
        })
        .await
    }
}
