//! The write path of the store: journal first, database next.
//!
//! A write is serialised on the caller's thread and queued. Whoever finds the journal free
//! becomes the leader: it takes everything queued, appends it with one `write`, and answers
//! every receipt — the entries are now durable against the gateway being killed. (A submitter
//! that finds the journal busy leaves its write queued; the leader looks again before it lets
//! go.) So with one client an admission costs one `write` on its own thread, and under
//! concurrency one `write` carries many.
//!
//! A ticker thread seals the active journal segment every 20 ms (100 ms under load), applies
//! its entries to the database (SQLite or PostgreSQL, through [`Db`]) in one transaction, and
//! deletes it. If the database refuses or cannot be reached (disk full, corruption, a
//! trigger, PostgreSQL down), the segment is kept and retried (on a new connection if the old
//! one broke), and new admissions are refused until it succeeds: fail closed, and nothing
//! journaled is lost.

use std::collections::VecDeque;
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::thread;
use std::time::{Duration, Instant};

use gatehouse_core::store::{AuditSink, Lead, Receipt};
use gatehouse_core::{CommandCompletion, CommandRecord, SessionEnd, SessionInfo, StoreError};
use tokio::sync::oneshot;

use crate::chain::Chain;
use crate::db::{Backend, Begin, Db};
use crate::entry::Entry;
use crate::error::AuditError;
use crate::journal::{self, Journal};

/// How often journaled entries are applied to the database while traffic is light. Nothing
/// waits on this for durability (the journal gives that); it is how far `audit list` may lag
/// the traffic.
const TICK: Duration = Duration::from_millis(20);

/// The pause after a tick that applied at least [`BUSY_BATCH`] entries. Each apply is one
/// transaction whose cost is mostly per page touched (the index leaves of the live sessions,
/// the chain's head, the WAL frames of the commit), so under load fewer, larger batches cost
/// less per entry: with pgbench at 8 clients, 100 ms instead of 20 ms cut the ingest thread
/// from 34 to 24 µs per statement.
const BUSY_TICK: Duration = Duration::from_millis(100);

/// Entries per tick past which the ingest takes the longer pause: about 3,200 entries a
/// second, some 1,600 statements (each an admission and an outcome).
const BUSY_BATCH: usize = 64;

/// How often the WAL is checkpointed into the database, passively.
const CHECKPOINT_PERIOD: Duration = Duration::from_secs(1);

/// How long `serve` waits for a CLI command holding the journal lock.
const LOCK_WAIT: Duration = Duration::from_secs(5);

type Ack = oneshot::Sender<Result<(), StoreError>>;

struct Queued {
    line: JournalLine,
    entry: Entry,
    ack: Option<Ack>,
}

/// The write side of the store; clones share one journal.
#[derive(Clone)]
pub(crate) struct Writer {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Mutex<Vec<Queued>>,
    journal: Mutex<Active>,
    ingest: Mutex<Ingest>,
    failing: Mutex<Option<StoreError>>,
    /// Sealed segments not yet wholly in the database: when each began and how many of its
    /// entries wait (for [`Writer::health`], without waiting on the ingest lock, which an
    /// apply holds for as long as it takes).
    waiting: Mutex<VecDeque<(Option<Instant>, usize)>>,
    /// The chain key, for the journal lines' MACs.
    key: crate::chain::ChainKey,
}

/// Audit writes the store failed to take (counter; `kind`: `journal`, `database`,
/// `unreachable`).
pub const STORE_ERRORS: &str = "gatehouse_store_errors_total";
/// Batches the store did not take whole, applied write by write instead (counter): a segment
/// retried after its commit went unanswered, or something unexpected in the tables.
pub const WRITE_BY_WRITE: &str = "gatehouse_ingest_write_by_write_total";
/// `write`s to the journal (counter): one per flight of entries, so against
/// `gatehouse_commands_total` it shows how many admissions share a write.
pub const JOURNAL_APPENDS: &str = "gatehouse_journal_appends_total";
/// Entries applied to the database (counter).
pub const INGESTED: &str = "gatehouse_ingested_entries_total";
/// Entries journaled and not yet in the database (gauge, set from [`Health`] when scraped).
pub const BACKLOG: &str = "gatehouse_journal_backlog_entries";
/// How long the oldest entry not yet in the database has waited (gauge, seconds, set from
/// [`Health`] when scraped).
pub const LAG: &str = "gatehouse_ingest_lag_seconds";

/// How the write path stands: for `/readyz` and `/metrics`.
#[derive(Debug, Clone)]
pub struct Health {
    /// Why new commands are refused, if they are (the journal or the database failing).
    pub failing: Option<String>,
    /// Entries journaled and not yet in the database.
    pub backlog: usize,
    /// How long the oldest of them has waited.
    pub lag: Duration,
}

/// Opens a new connection to the store (after one broke).
pub(crate) type Connect = Box<dyn Fn() -> Result<Db, AuditError> + Send + Sync>;

struct Active {
    journal: Journal,
    unsealed: Segment,
}

struct Ingest {
    conn: Option<Db>,
    connect: Connect,
    chain: Chain,
    sealed: VecDeque<(PathBuf, Segment)>,
    /// When the idle store was last looked at.
    probed: Instant,
}

/// How often an idle shared store is looked at.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// Whether the store answers, on the ingest connection (a new one if it broke).
fn probe(ingest: &mut Ingest) -> Result<(), AuditError> {
    if ingest.conn.is_none() {
        ingest.conn = Some((ingest.connect)()?);
    }
    let Some(db) = ingest.conn.as_mut() else {
        return Ok(());
    };
    let answered = db.execute_batch("SELECT 1");
    if let Err(e) = answered {
        if e.is_connection_lost() {
            ingest.conn = None;
        }
        return Err(e.into());
    }
    Ok(())
}

/// Entries of a segment applied per transaction: a long backlog goes in steps, each committed
/// (and counted off the lag) before the next, rather than as one transaction as long as the
/// backlog.
const APPLY_STEP: usize = 4096;

/// A segment's entries, and (for segments this process wrote) the content hash each one's
/// journal line was sealed with, so the chain does not encode and hash the entry again.
#[derive(Default)]
struct Segment {
    /// When its first entry was journaled (for the ingest lag).
    since: Option<Instant>,
    entries: Vec<Entry>,
    /// Empty for segments read back from disk; else one per entry, in step.
    hashes: Vec<String>,
    /// How many of its entries (from the start) are in the database already.
    applied: usize,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Inner {
    /// Appends whatever is queued, unless another thread is already doing so.
    fn drive(&self) {
        let mut batch: Vec<Queued> = Vec::new();
        let mut acks: Vec<Ack> = Vec::new();
        loop {
            let mut active = match self.journal.try_lock() {
                Ok(a) => a,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            mem::swap(&mut *lock(&self.queue), &mut batch);
            if batch.is_empty() {
                // A submitter may have queued after the swap and failed its try_lock while
                // this thread held the journal: look once more after letting go.
                drop(active);
                if lock(&self.queue).is_empty() {
                    return;
                }
                continue;
            }
            // The write's lines, then one seal for them all.
            let len: usize = batch.iter().map(|q| q.line.text.len()).sum();
            let mut bytes = String::with_capacity(len + 34);
            for q in &batch {
                bytes.push_str(&q.line.text);
            }
            self.key
                .seal_write_into(&mut bytes, batch.iter().map(|q| &q.line.digest));
            let written = active.journal.append(bytes.as_bytes());
            metrics::counter!(JOURNAL_APPENDS).increment(1);
            let result = match written {
                Ok(()) => {
                    for q in batch.drain(..) {
                        active.unsealed.since.get_or_insert_with(Instant::now);
                        active.unsealed.entries.push(q.entry);
                        active.unsealed.hashes.push(q.line.content_sha256);
                        acks.extend(q.ack);
                    }
                    Ok(())
                }
                Err(e) => {
                    let e = StoreError(format!("the audit journal cannot be written: {e}"));
                    metrics::counter!(STORE_ERRORS, "kind" => "journal").increment(1);
                    *lock(&self.failing) = Some(e.clone());
                    tracing::error!(error = %e, lost_outcomes = batch.iter().filter(|q| q.ack.is_none()).count(),
                        "journal append failed; refusing new commands");
                    acks.extend(batch.drain(..).filter_map(|q| q.ack));
                    Err(e)
                }
            };
            drop(active);
            for ack in acks.drain(..) {
                let _ = ack.send(result.clone());
            }
            if lock(&self.queue).is_empty() {
                return;
            }
        }
    }
}

impl Lead for Inner {
    fn lead(&self) {
        self.drive();
    }
}

impl Writer {
    /// Takes the journal (one writer per store), replays what a previous gateway left, and
    /// starts the ticker.
    pub(crate) fn start(
        db: &Path,
        conn: Db,
        mut checkpoint: Option<Db>,
        chain: Chain,
        connect: Connect,
    ) -> Result<Self, AuditError> {
        // SQLite checkpoints run on the ticker's own connection, never inside an ingest commit.
        conn.sqlite_pragma("wal_autocheckpoint", 0)?;
        let journal = Journal::open(db, LOCK_WAIT)?;
        let key = chain.key.clone();
        let mut sealed = VecDeque::new();
        for path in journal::segments(db)? {
            if path != journal.active_path() {
                let Some(entries) = journal::read_checked(db, &path, &key)? else {
                    continue;
                };
                sealed.push_back((
                    path,
                    Segment {
                        since: Some(Instant::now()),
                        entries,
                        hashes: Vec::new(),
                        applied: 0,
                    },
                ));
            }
        }
        let waiting = sealed
            .iter()
            .map(|(_, s): &(PathBuf, Segment)| (s.since, s.entries.len()))
            .collect();
        let writer = Self {
            inner: Arc::new(Inner {
                waiting: Mutex::new(waiting),
                queue: Mutex::new(Vec::with_capacity(64)),
                journal: Mutex::new(Active {
                    journal,
                    unsealed: Segment::default(),
                }),
                ingest: Mutex::new(Ingest {
                    conn: Some(conn),
                    connect,
                    chain,
                    sealed,
                    probed: Instant::now(),
                }),
                failing: Mutex::new(None),
                key,
            }),
        };
        writer.ingest();
        let weak = Arc::downgrade(&writer.inner);
        thread::Builder::new()
            .name("gatehouse-audit-ingest".into())
            .spawn(move || {
                let mut checkpointed = Instant::now();
                while let Some(inner) = weak.upgrade() {
                    let w = Writer { inner };
                    w.drive();
                    let applied = w.ingest();
                    drop(w);
                    if checkpointed.elapsed() >= CHECKPOINT_PERIOD {
                        checkpointed = Instant::now();
                        if let Some(checkpoint) = &mut checkpoint {
                            if let Err(e) =
                                checkpoint.execute_batch("PRAGMA wal_checkpoint(PASSIVE)")
                            {
                                tracing::warn!(error = %e, "audit store checkpoint failed");
                            }
                        }
                    }
                    thread::sleep(if applied >= BUSY_BATCH {
                        BUSY_TICK
                    } else {
                        TICK
                    });
                }
            })
            .map_err(|source| AuditError::Io {
                what: "could not start the audit ingest thread".into(),
                source,
            })?;
        Ok(writer)
    }

    /// Journals a write (leading the append if nobody is); the receipt resolves once it is
    /// durable. Refused at once while the store is failing, if it would start something new.
    pub(crate) fn submit(&self, entry: Entry) -> Receipt {
        if entry.starts_something() {
            if let Some(e) = lock(&self.inner.failing).clone() {
                return Receipt::failed(e);
            }
        }
        let (ack, receipt) = Receipt::channel();
        self.push(entry, Some(ack));
        self.drive();
        receipt
    }

    /// Like [`Writer::submit`], but the write is only queued: the receipt leads the append
    /// when it is first waited on, unless another thread's append took it first. The core
    /// waits for admissions after letting its thread's other ready tasks run when commands of
    /// other sessions are running ([`Receipt::deferred`]): one `write` for a flight of them.
    pub(crate) fn submit_deferred(&self, entry: Entry) -> Receipt {
        if let Some(e) = lock(&self.inner.failing).clone() {
            return Receipt::failed(e);
        }
        let (ack, receipt) = Receipt::deferred(self.inner.clone());
        self.push(entry, Some(ack));
        receipt
    }

    /// Queues a write nobody waits for; it goes out with the next append.
    pub(crate) fn send(&self, entry: Entry) {
        self.push(entry, None);
    }

    fn push(&self, entry: Entry, ack: Option<Ack>) {
        let line = journal_line(&entry);
        lock(&self.inner.queue).push(Queued { line, entry, ack });
    }

    /// Appends whatever is queued, unless another thread is already doing so.
    fn drive(&self) {
        self.inner.drive();
    }

    /// Seals the journal's new entries and applies every sealed segment to the database;
    /// returns how many entries it applied.
    fn ingest(&self) -> usize {
        // The ingest lock is taken first and held across sealing, so segments reach the
        // database in the order they were written (a Finish never precedes its Admit).
        let mut ingest = lock(&self.inner.ingest);
        let fresh = {
            let mut active = lock(&self.inner.journal);
            if active.unsealed.entries.is_empty() {
                None
            } else {
                match active.journal.rotate() {
                    Ok(path) => Some((path, mem::take(&mut active.unsealed))),
                    Err(e) => {
                        tracing::error!(error = %e, "cannot seal the audit journal segment");
                        None
                    }
                }
            }
        };
        // A submitter that found the journal busy while it was being sealed left its entry
        // queued for the holder to append: this thread was the holder.
        self.drive();
        if let Some((_, segment)) = &fresh {
            lock(&self.inner.waiting).push_back((segment.since, segment.entries.len()));
        }
        ingest.sealed.extend(fresh);
        let Ingest {
            conn,
            connect,
            chain,
            sealed,
            ..
        } = &mut *ingest;
        let mut applied = 0;
        while let Some((path, segment)) = sealed.front_mut() {
            while segment.applied < segment.entries.len() {
                if conn.is_none() {
                    match connect() {
                        Ok(db) => *conn = Some(db),
                        Err(e) => tracing::debug!(error = %e, "audit store still unreachable"),
                    }
                }
                let from = segment.applied;
                let to = (from + APPLY_STEP).min(segment.entries.len());
                let entries = segment.entries.get(from..to).unwrap_or_default();
                let hashes = segment.hashes.get(from..to).unwrap_or_default();
                let outcome = match conn.as_mut() {
                    Some(db) => apply(db, chain, entries, hashes),
                    None => Err(AuditError::Store(StoreError(
                        "the audit database cannot be reached".into(),
                    ))),
                };
                if let Err(AuditError::Database(e)) = &outcome {
                    if e.is_connection_lost() {
                        // Reconnect at the next tick; the segment stays until it is applied.
                        *conn = None;
                    }
                }
                if let Err(e) = outcome {
                    metrics::counter!(STORE_ERRORS, "kind" => "database").increment(1);
                    let e = StoreError(format!("the audit database refuses writes: {e}"));
                    let mut failing = lock(&self.inner.failing);
                    if failing.is_none() {
                        tracing::error!(error = %e, "audit ingest failed; refusing new commands until it recovers");
                    }
                    *failing = Some(e);
                    return applied;
                }
                segment.applied = to;
                applied += to - from;
                metrics::counter!(INGESTED).increment((to - from) as u64);
                if let Some(front) = lock(&self.inner.waiting).front_mut() {
                    front.1 = segment.entries.len() - to;
                }
            }
            if let Err(e) = std::fs::remove_file(&*path) {
                tracing::warn!(segment = %path.display(), error = %e, "ingested journal segment not removed");
            }
            sealed.pop_front();
            lock(&self.inner.waiting).pop_front();
        }
        // Idle: a shared store is looked at now and then, so its going away refuses new
        // commands before one is journaled that it could not take.
        if applied == 0
            && conn
                .as_ref()
                .is_none_or(|db| db.backend() == Backend::Postgres)
        {
            if ingest.probed.elapsed() < PROBE_EVERY {
                return 0;
            }
            ingest.probed = Instant::now();
            if let Err(e) = probe(&mut ingest) {
                metrics::counter!(STORE_ERRORS, "kind" => "unreachable").increment(1);
                let e = StoreError(format!("the audit database cannot be reached: {e}"));
                let mut failing = lock(&self.inner.failing);
                if failing.is_none() {
                    tracing::error!(error = %e, "audit store unreachable; refusing new commands until it is back");
                }
                *failing = Some(e);
                return 0;
            }
        }
        let mut failing = lock(&self.inner.failing);
        if failing.take().is_some() {
            tracing::info!("audit store recovered; commands are accepted again");
        }
        applied
    }

    /// How the write path stands.
    pub(crate) fn health(&self) -> Health {
        let (mut backlog, mut oldest) = {
            let waiting = lock(&self.inner.waiting);
            let backlog: usize = waiting.iter().map(|(_, n)| n).sum();
            (backlog, waiting.front().and_then(|(since, _)| *since))
        };
        {
            let active = lock(&self.inner.journal);
            backlog += active.unsealed.entries.len();
            oldest = oldest.or(active.unsealed.since);
        }
        Health {
            failing: lock(&self.inner.failing).as_ref().map(|e| e.0.clone()),
            backlog,
            lag: oldest.map(|t| t.elapsed()).unwrap_or_default(),
        }
    }

    /// Appends and ingests everything queued so far (shutdown, tests).
    pub(crate) fn flush(&self) {
        self.drive();
        self.ingest();
    }
}

/// An entry's line in the journal, and its JSON's SHA-256.
pub(crate) struct JournalLine {
    /// The JSON and a newline (the write's seal line follows the write's last line).
    pub text: String,
    /// The JSON's SHA-256: what the write's seal covers.
    pub digest: [u8; 32],
    /// The same, hex: the entry's content hash in the chain (see
    /// [`crate::chain::content_of`], which encodes the same value the same way); empty if
    /// the entry could not be encoded, so the chain encodes it itself.
    pub content_sha256: String,
}

/// An entry's line in the journal.
pub(crate) fn journal_line(entry: &Entry) -> JournalLine {
    // Sized for a typical entry and its statement, so the encoding rarely grows it.
    let hint = match entry {
        Entry::Admit { statement, .. } => 448 + statement.len(),
        _ => 320,
    };
    let mut json = Vec::with_capacity(hint);
    let mut text = match serde_json::to_writer(&mut json, entry) {
        // serde_json writes UTF-8 only.
        Ok(()) => String::from_utf8(json).unwrap_or_default(),
        Err(_) => String::new(),
    };
    let digest = crate::chain::json_digest(&text);
    let content_sha256 = if text.is_empty() {
        String::new()
    } else {
        gatehouse_core::identity::hex(&digest)
    };
    text.push('\n');
    JournalLine {
        text,
        digest,
        content_sha256,
    }
}

/// Applies entries in one transaction; all or nothing. On PostgreSQL a segment this process
/// journaled goes as a batch ([`crate::batch`]); SQLite, a batch that fails for anything but a
/// lost connection, and entries read back from disk go write by write ([`apply_each`]).
pub(crate) fn apply(
    conn: &mut Db,
    chain: &Chain,
    entries: &[Entry],
    hashes: &[String],
) -> Result<(), AuditError> {
    // SQLite runs in-process: a statement per write costs it no round trip, and the batch's
    // owned rows would only add copies.
    if conn.backend() == Backend::Postgres && !entries.is_empty() && hashes.len() == entries.len() {
        let batched =
            conn.transaction(Begin::Immediate).and_then(|mut tx| {
                match crate::batch::apply(&mut tx, chain, entries, hashes) {
                    Ok(()) => tx.commit().map(|()| Ok(())),
                    Err(e) => Ok(Err(e)),
                }
            });
        match batched {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(AuditError::Database(e))) | Err(e) if e.is_connection_lost() => {
                return Err(AuditError::Database(e))
            }
            Ok(Err(e)) => {
                metrics::counter!(WRITE_BY_WRITE).increment(1);
                tracing::debug!(error = %e, "batch not applied; applying write by write");
            }
            Err(e) => {
                metrics::counter!(WRITE_BY_WRITE).increment(1);
                tracing::debug!(error = %e, "batch not applied; applying write by write");
            }
        }
    }
    apply_each(conn, chain, entries, hashes)
}

/// Applies entries one write at a time, in one transaction; all or nothing (see
/// [`crate::links::apply_linked`]).
fn apply_each(
    conn: &mut Db,
    chain: &Chain,
    entries: &[Entry],
    hashes: &[String],
) -> Result<(), AuditError> {
    // Immediate: the chain's head is read and extended in one step, even with a purge or
    // another process writing the same file (on PostgreSQL, `chain::head` locks the chain).
    let mut tx = conn.transaction(Begin::Immediate)?;
    crate::links::apply_linked(&mut tx, chain, entries, hashes)?;
    tx.commit()?;
    Ok(())
}

/// The audit sink of a running gateway.
#[derive(Clone)]
pub struct AuditWriter {
    writer: Writer,
}

impl AuditWriter {
    pub(crate) fn new(writer: Writer) -> Self {
        Self { writer }
    }

    /// How the write path stands (failing or not, backlog, lag).
    pub fn health(&self) -> Health {
        self.writer.health()
    }

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
        self.writer.submit_deferred(Entry::admit(record))
    }

    fn command_finished(&self, completion: CommandCompletion) {
        self.writer.send(Entry::finish(&completion));
    }

    fn session_closed(&self, end: &SessionEnd) -> Receipt {
        self.writer.submit(Entry::close(end))
    }
}
