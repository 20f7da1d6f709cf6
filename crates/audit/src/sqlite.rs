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

use crate::entry::Entry;
use crate::error::AuditError;
use crate::journal;
use crate::keys::KEY_COLUMNS;
use crate::schema;
use crate::tokens::token_from_row;
use crate::writer::{apply, Writer};

/// The SQLite store: listings, tokens and lookups on a reader connection; audit writes through
/// [`AuditWriter`] (journal first, see [`crate::writer`]).
///
/// Several processes may open the same file (the CLI while `serve` runs): WAL lets readers and
/// the one writer proceed together. Opening the store when no gateway holds the journal replays
/// whatever a killed gateway left in it, so a listing after a crash shows every entry.
#[derive(Clone)]
pub struct SqliteStore {
    path: PathBuf,
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
        let mut conn = schema::open(path)?;
        schema::migrate(&conn)?;
        crate::events::baseline(&conn)?;
        recover_if_idle(path, &mut conn)?;
        Ok(Self {
            path: path.to_owned(),
            reader: Arc::new(Mutex::new(conn)),
        })
    }

    /// Becomes the store's one writer: takes the journal (waiting briefly for a CLI command
    /// that holds it), replays leftovers, and starts applying entries to the database.
    pub fn start_writer(&self) -> Result<AuditWriter, AuditError> {
        let writer = Writer::start(
            &self.path,
            schema::open(&self.path)?,
            schema::open(&self.path)?,
        )?;
        Ok(AuditWriter { writer })
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

/// Replays the journal a killed gateway left, if no gateway holds it now.
fn recover_if_idle(path: &Path, conn: &mut Connection) -> Result<(), AuditError> {
    let Some(_idle) = journal::try_idle(path)? else {
        return Ok(());
    };
    let segments = journal::segments(path)?;
    if segments.is_empty() {
        return Ok(());
    }
    let chain = crate::chain::ChainKey::for_store(path, true)?;
    for segment in segments {
        let Some(entries) = journal::read_checked(path, &segment, &chain)? else {
            continue;
        };
        apply(conn, &chain, &entries, &[])?;
        std::fs::remove_file(&segment).map_err(|source| AuditError::Io {
            what: format!("could not remove replayed segment {}", segment.display()),
            source,
        })?;
        tracing::info!(segment = %segment.display(), entries = entries.len(), "replayed audit journal");
    }
    Ok(())
}

/// The audit sink of a running gateway.
#[derive(Clone)]
pub struct AuditWriter {
    writer: Writer,
}

impl AuditWriter {
    /// Resolves once every write made so far is in the database (shutdown, tests).
    pub async fn flush(&self) -> Result<(), StoreError> {
        let writer = self.writer.clone();
        tokio::task::spawn_blocking(move || writer.flush())
            .await
            .map_err(|e| StoreError(format!("flush task failed: {e}")))
    }
}

impl AuditSink for AuditWriter {
    fn session_opened(&self, info: &SessionInfo) -> Receipt {
        self.writer.submit(Entry::open(info))
    }

    fn command_admitted(&self, record: CommandRecord) -> Receipt {
        self.writer.submit(Entry::admit(record))
    }

    fn command_finished(&self, completion: CommandCompletion) {
        self.writer.send(Entry::finish(&completion));
    }

    fn session_closed(&self, end: &SessionEnd) -> Receipt {
        self.writer.submit(Entry::close(end))
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
                 FROM tokens WHERE hash = ?1 AND kind = 'token'",
                [hash],
                token_from_row,
            )
            .optional()?
            .transpose()
        })
        .await
    }

    async fn find_by_key(&self, fingerprint: &str) -> Result<Option<TokenRecord>, StoreError> {
        let fingerprint = fingerprint.to_owned();
        self.read_async(move |conn| {
            // At most one live registration (a unique index); else the latest removed one, so
            // the refusal names who held the key.
            conn.query_row(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM tokens
                     WHERE kind = 'ssh-key' AND fingerprint = ?1
                     ORDER BY revoked_at IS NULL DESC, created_at DESC LIMIT 1"
                ),
                [fingerprint],
                token_from_row,
            )
            .optional()?
            .transpose()
        })
        .await
    }

    async fn subject_revoked_at(&self, identity: &str) -> Result<Option<SystemTime>, StoreError> {
        let id = gatehouse_core::revocation::subject_key(identity).0;
        self.read_async(move |conn| {
            Ok(conn
                .query_row(
                    "SELECT revoked_at FROM tokens WHERE id = ?1 AND kind = 'subject'",
                    [id],
                    |r| r.get::<_, i64>(0),
                )
                .optional()?
                .map(from_micros))
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
