//! [`Store`]: the store a gateway and the CLI open from `[gateway] state` — a SQLite file (the
//! embedded default, one gateway) or a PostgreSQL database (several gateways, each an
//! instance with its own journal and chain). Everything above it is the same code over
//! [`crate::db::Db`].
//!
//! What stays on the local disk either way (the state directory): the journal (durability
//! before forwarding; see [`crate::writer`]) and the chain key.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use gatehouse_core::StoreError;

use crate::chain::{Chain, ChainKey};
use crate::db::{Db, DbError};
use crate::error::AuditError;
use crate::journal;
use crate::schema;
use crate::verify::VerifyReport;
use crate::writer::{apply, AuditWriter, Writer};

/// Where the store's database is. Shown (`Debug` too) without a PostgreSQL password.
#[derive(Clone, PartialEq, Eq)]
pub enum Location {
    /// A SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL connection string (`postgres://user:pw@host:port/db`).
    Postgres(String),
}

impl Location {
    /// Reads `[gateway] state`: `sqlite:PATH` (relative to `base`) or `postgres://...`
    /// (also `postgresql://...`).
    pub fn parse(state: &str, base: &Path) -> Result<Self, AuditError> {
        if let Some(path) = state.strip_prefix("sqlite:") {
            return Ok(Self::Sqlite(base.join(path)));
        }
        if state.starts_with("postgres://") || state.starts_with("postgresql://") {
            return Ok(Self::Postgres(state.to_owned()));
        }
        Err(AuditError::NotFound(format!(
            "state = {:?} names no store: use sqlite:PATH or postgres://user:password@host:port/db",
            redact(state)
        )))
    }

    /// What logs and errors may show: a PostgreSQL URL without its password.
    pub fn display(&self) -> String {
        match self {
            Self::Sqlite(path) => format!("sqlite:{}", path.display()),
            Self::Postgres(url) => redact(url),
        }
    }

    /// A new connection (blocking).
    pub(crate) fn connect(&self) -> Result<Db, AuditError> {
        match self {
            Self::Sqlite(path) => schema::open_sqlite(path),
            Self::Postgres(url) => Db::postgres(url).map_err(|e| {
                AuditError::Store(StoreError(format!(
                    "could not connect to the store at {}: {e}",
                    redact(url)
                )))
            }),
        }
    }
}

impl std::fmt::Debug for Location {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.display())
    }
}

/// `url` with the password (between `user:` and the last `@`) replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}")
        }
        _ => url.to_owned(),
    }
}

/// How to open a store besides its location.
#[derive(Debug, Clone, Default)]
pub struct StoreOptions {
    /// The local state directory: the journal and the chain key. For SQLite, the database's
    /// own directory when `None`.
    pub state_dir: Option<PathBuf>,
    /// This gateway's instance id (PostgreSQL: whose journal and chain). Ignored for SQLite,
    /// whose one writer keeps the chain `""`.
    pub instance: Option<String>,
}

/// The store: reads and administration on connections of its own, audit writes through
/// [`AuditWriter`] (journal first). Clones share one reader connection.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    location: Location,
    /// Where the journal lives: the SQLite file itself, or `STATE_DIR/INSTANCE.pg` (the
    /// journal is `<this>.journal/`).
    local: PathBuf,
    key_path: PathBuf,
    instance: String,
    reader: Slot,
}

/// A connection made when first needed, and made again after PostgreSQL dropped it.
#[derive(Default)]
pub(crate) struct Slot(Mutex<Option<Db>>);

impl Slot {
    /// A slot holding `db` already.
    pub(crate) fn holding(db: Db) -> Self {
        Self(Mutex::new(Some(db)))
    }

    /// Keeps `db` as the connection.
    pub(crate) fn put(&self, db: Db) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(db);
    }

    /// Runs `f` on the connection (blocking), connecting to `location` first if there is none.
    /// A kept connection PostgreSQL dropped meanwhile (a restart) is found dead by `f`'s first
    /// statement: it is replaced and `f` runs once more on the new one, so a caller does not
    /// pay for the outage after it is over.
    pub(crate) fn with<T>(
        &self,
        location: &Location,
        mut f: impl FnMut(&mut Db) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        let mut slot = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let kept = slot.is_some();
        let db = match &mut *slot {
            Some(db) => db,
            empty => empty.insert(location.connect()?),
        };
        let out = f(db);
        match &out {
            Err(AuditError::Database(e)) if e.is_connection_lost() => {
                *slot = None;
                if !kept {
                    return out;
                }
                let db = slot.insert(location.connect()?);
                let again = f(db);
                if matches!(&again, Err(AuditError::Database(e)) if e.is_connection_lost()) {
                    *slot = None;
                }
                again
            }
            _ => out,
        }
    }
}

impl Store {
    /// Opens (creating the tables, and for SQLite the file and its directory, if needed) the
    /// store at `location`. Opening it when no gateway holds this instance's journal replays
    /// whatever a killed gateway left in it, so a listing after a crash shows every entry.
    pub fn open(location: Location, options: &StoreOptions) -> Result<Self, AuditError> {
        let (local, state_dir, instance) = match &location {
            Location::Sqlite(path) => {
                let dir = path
                    .parent()
                    .filter(|d| !d.as_os_str().is_empty())
                    .map(Path::to_owned)
                    .unwrap_or_else(|| PathBuf::from("."));
                (path.clone(), dir, String::new())
            }
            Location::Postgres(_) => {
                let dir = options
                    .state_dir
                    .clone()
                    .unwrap_or_else(|| PathBuf::from("var"));
                let instance = match &options.instance {
                    Some(id) => check_instance(id)?,
                    None => check_instance(&default_instance())?,
                };
                (dir.join(format!("{instance}.pg")), dir, instance)
            }
        };
        std::fs::create_dir_all(&state_dir).map_err(|source| AuditError::Io {
            what: format!("could not create {}", state_dir.display()),
            source,
        })?;
        let key_path = state_dir.join("chain.key");
        let mut db = location.connect()?;
        schema::migrate(&mut db)?;
        let store = Self {
            inner: Arc::new(Inner {
                location,
                local,
                key_path,
                instance,
                reader: Slot::default(),
            }),
        };
        if crate::events::needs_baseline(&mut db)? {
            let chain = store.chain(&mut db)?;
            crate::events::baseline(&mut db, &chain)?;
        }
        store.recover_if_idle(&mut db)?;
        store.inner.reader.put(db);
        Ok(store)
    }

    /// Opens a SQLite store file (tests, tools).
    pub fn open_sqlite(path: &Path) -> Result<Self, AuditError> {
        Self::open(Location::Sqlite(path.to_owned()), &StoreOptions::default())
    }

    /// Where the database is.
    pub fn location(&self) -> &Location {
        &self.inner.location
    }

    /// This gateway's instance id (`""` for SQLite).
    pub fn instance(&self) -> &str {
        &self.inner.instance
    }

    /// The chain key's file.
    pub fn key_path(&self) -> &Path {
        &self.inner.key_path
    }

    /// The directory of this instance's journal segments refused at ingest.
    pub fn refused_dir(&self) -> PathBuf {
        journal::refused_dir(&self.inner.local)
    }

    /// A new connection (blocking): administration, exports, the writer.
    pub fn connect(&self) -> Result<Db, AuditError> {
        self.inner.location.connect()
    }

    /// A new connection and this instance's chain: for a change that chains an event.
    pub(crate) fn admin(&self) -> Result<(Db, Chain), AuditError> {
        let mut db = self.connect()?;
        let chain = self.chain(&mut db)?;
        Ok((db, chain))
    }

    /// This instance's chain; its key is made on first use, unless links already need it.
    pub(crate) fn chain(&self, db: &mut Db) -> Result<Chain, AuditError> {
        let key = ChainKey::load(&self.inner.key_path, true, || {
            crate::chain::links(db).unwrap_or(0)
        })?;
        Ok(Chain {
            key,
            instance: self.inner.instance.clone(),
        })
    }

    /// Runs a read on the shared reader connection (blocking; call from a blocking context or
    /// the CLI). A connection PostgreSQL dropped is replaced on the next read.
    pub fn read<T>(
        &self,
        f: impl FnMut(&mut Db) -> Result<T, AuditError>,
    ) -> Result<T, AuditError> {
        self.inner.reader.with(&self.inner.location, f)
    }

    /// [`Store::read`] on a blocking thread.
    pub(crate) async fn read_async<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut Db) -> Result<T, AuditError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.read(f))
            .await
            .map_err(|e| StoreError(format!("store lookup task failed: {e}")))?
            .map_err(StoreError::from)
    }

    /// Calls `on_event` with the kind of every trail event another process commits (a
    /// credential revoked, an approval decided: [`crate::events`]), as soon as it commits:
    /// PostgreSQL's LISTEN on a connection of its own, reconnecting if it drops. A SQLite
    /// store has no such channel (its one gateway polls); nothing is started for it.
    pub fn watch(&self, on_event: impl Fn(&str) + Send + Sync + 'static) -> Result<(), AuditError> {
        let Location::Postgres(url) = &self.inner.location else {
            return Ok(());
        };
        crate::db::listen(url, "gatehouse_events", on_event)?;
        Ok(())
    }

    /// Whether the database answers (`SELECT 1`, on the reader connection).
    pub fn ping(&self) -> Result<(), AuditError> {
        self.read(|db| Ok(db.execute_batch("SELECT 1")?))
    }

    /// Becomes this instance's one writer: takes the journal (waiting briefly for a CLI
    /// command that holds it), replays leftovers, and starts applying entries to the database.
    pub fn start_writer(&self) -> Result<AuditWriter, AuditError> {
        let mut ingest = self.connect()?;
        let chain = self.chain(&mut ingest)?;
        let checkpoint = match &self.inner.location {
            Location::Sqlite(_) => Some(self.connect()?),
            Location::Postgres(_) => None,
        };
        let location = self.inner.location.clone();
        let writer = Writer::start(
            &self.inner.local,
            ingest,
            checkpoint,
            chain,
            Box::new(move || location.connect()),
        )?;
        Ok(AuditWriter::new(writer))
    }

    /// Replays this instance's journal, left by a killed gateway, if no gateway holds it now.
    fn recover_if_idle(&self, db: &mut Db) -> Result<(), AuditError> {
        let local = &self.inner.local;
        let Some(_idle) = journal::try_idle(local)? else {
            return Ok(());
        };
        let segments = journal::segments(local)?;
        if segments.is_empty() {
            return Ok(());
        }
        let chain = self.chain(db)?;
        for segment in segments {
            let Some(entries) = journal::read_checked(local, &segment, &chain.key)? else {
                continue;
            };
            apply(db, &chain, &entries, &[])?;
            std::fs::remove_file(&segment).map_err(|source| AuditError::Io {
                what: format!("could not remove replayed segment {}", segment.display()),
                source,
            })?;
            tracing::info!(segment = %segment.display(), entries = entries.len(), "replayed audit journal");
        }
        Ok(())
    }

    /// `audit verify` of this store: every chain, the recordings in `recordings`, and this
    /// instance's journal's refused segments. A store with no chain key yet has nothing
    /// chained: an empty chain, unless links are there after all (then the missing key is the
    /// problem).
    pub fn verify(&self, recordings: &Path) -> Result<VerifyReport, AuditError> {
        let mut db = self.connect()?;
        let mut report = if self.inner.key_path.exists() {
            let key = ChainKey::load(&self.inner.key_path, false, || 0)?;
            crate::verify::verify(&mut db, &key, recordings)?
        } else {
            let links = crate::chain::links(&mut db)?;
            let mut report = VerifyReport::default();
            if links > 0 {
                report.problems.push(format!(
                    "the chain key {} is missing: none of the {links} links can be checked",
                    self.inner.key_path.display()
                ));
            }
            report
        };
        report.problems.extend(journal::problems(&self.inner.local));
        Ok(report)
    }
}

/// An instance id as given: it names a journal file and a chain, so it is kept to letters,
/// digits and `-_.`.
fn check_instance(id: &str) -> Result<String, AuditError> {
    let ok = !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(id.to_owned())
    } else {
        Err(AuditError::Conflict(format!(
            "instance {id:?} is not a usable instance id: use 1 to 64 letters, digits, '-', '_' \
             or '.' (set [gateway] instance)"
        )))
    }
}

/// The host's name: a gateway's instance id unless the configuration gives one.
fn default_instance() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "gatehouse".into())
}

impl From<DbError> for StoreError {
    fn from(e: DbError) -> Self {
        StoreError(format!("audit database error: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_postgres_url_is_shown_without_its_password() {
        assert_eq!(
            redact("postgres://gh:s3cret@db:5432/gatehouse"),
            "postgres://gh:***@db:5432/gatehouse"
        );
        assert_eq!(redact("postgres://db/gatehouse"), "postgres://db/gatehouse");
        assert_eq!(
            redact("postgres://gh:p@ss@db/g"),
            "postgres://gh:***@db/g",
            "a password holding '@'"
        );
        let shown = format!(
            "{:?}",
            Location::Postgres("postgres://gh:s3cret@db/g".into())
        );
        assert!(!shown.contains("s3cret"), "{shown}");
        assert!(Location::parse("mysql://x", Path::new(".")).is_err());
        assert_eq!(
            Location::parse("sqlite:var/g.db", Path::new("/etc/gh")).ok(),
            Some(Location::Sqlite(PathBuf::from("/etc/gh/var/g.db")))
        );
    }

    #[test]
    fn instance_ids_name_files_safely() {
        assert!(check_instance("gw-a.eu_1").is_ok());
        for bad in ["", "../x", "a b", "a/b"] {
            assert!(check_instance(bad).is_err(), "{bad:?}");
        }
    }
}
