//! Group commit without a writer thread: whoever submits a write and finds the connection
//! free becomes the leader, takes everything queued, applies it in one transaction, commits
//! once and answers every receipt in the batch — then looks again, in case more arrived while it
//! held the connection. A submitter that finds the connection busy just leaves its write in the
//! queue: the leader is bound to see it. Under concurrency one commit carries many entries; with
//! one client the entry is committed on the caller's own thread, with no hand-off to wake.
//!
//! Outcomes (`send`) do not lead a commit of their own: they ride with the next admission's,
//! or with the ticker's, which also runs WAL checkpoints off the hot path.

use std::mem;
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::thread;
use std::time::Duration;

use gatehouse_core::store::Receipt;
use gatehouse_core::time::to_micros;
use gatehouse_core::{CommandCompletion, CommandRecord, Outcome, SessionEnd, SessionInfo, StoreError};
use rusqlite::{params, Connection};
use tokio::sync::oneshot;

use crate::error::AuditError;

/// How often queued outcomes are committed when no admission carries them.
const TICK: Duration = Duration::from_millis(50);

/// How often the WAL is checkpointed into the database (passively, never blocking writers).
const CHECKPOINT_EVERY: u32 = 20;

type Ack = oneshot::Sender<Result<(), StoreError>>;

/// One write.
pub(crate) enum Op {
    Admit(Box<CommandRecord>, Ack),
    Finish(Box<CommandCompletion>),
    Open(Box<SessionInfo>, Ack),
    Close(Box<SessionEnd>, Ack),
    /// Answers once everything queued before it is committed.
    Barrier(Ack),
}

/// The write side of the store; clones share one connection and one queue.
#[derive(Clone)]
pub(crate) struct Writer {
    inner: Arc<Inner>,
}

struct Inner {
    queue: Mutex<Vec<Op>>,
    conn: Mutex<Connection>,
}

impl Writer {
    /// Takes the write connection and starts the ticker (outcomes, checkpoints).
    pub(crate) fn start(conn: Connection, checkpoint: Connection) -> Result<Self, AuditError> {
        // Checkpoints run on the ticker's own connection, never inside a hot-path commit.
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        let writer = Self {
            inner: Arc::new(Inner {
                queue: Mutex::new(Vec::with_capacity(64)),
                conn: Mutex::new(conn),
            }),
        };
        let weak = Arc::downgrade(&writer.inner);
        thread::Builder::new()
            .name("gatehouse-audit-ticker".into())
            .spawn(move || {
                let mut ticks = 0u32;
                while let Some(inner) = weak.upgrade() {
                    Writer { inner }.drive();
                    ticks = ticks.wrapping_add(1);
                    if ticks % CHECKPOINT_EVERY == 0 {
                        if let Err(e) = checkpoint.execute_batch("PRAGMA wal_checkpoint(PASSIVE)") {
                            tracing::warn!(error = %e, "audit store checkpoint failed");
                        }
                    }
                    thread::sleep(TICK);
                }
            })
            .map_err(|source| AuditError::Io {
                what: "could not start the audit ticker thread".into(),
                source,
            })?;
        Ok(writer)
    }

    /// Queues a write and commits it (leading the commit if nobody is); the receipt resolves
    /// once it is durable.
    pub(crate) fn submit(&self, make: impl FnOnce(Ack) -> Op) -> Receipt {
        let (ack, receipt) = Receipt::channel();
        self.queue().push(make(ack));
        self.drive();
        receipt
    }

    /// Queues a write nobody waits for; it is committed with the next batch.
    pub(crate) fn send(&self, op: Op) {
        self.queue().push(op);
    }

    fn queue(&self) -> MutexGuard<'_, Vec<Op>> {
        self.inner.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Commits whatever is queued, unless another thread is already doing so.
    fn drive(&self) {
        let mut batch = Vec::new();
        loop {
            let mut conn = match self.inner.conn.try_lock() {
                Ok(c) => c,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            mem::swap(&mut *self.queue(), &mut batch);
            if batch.is_empty() {
                return;
            }
            commit_batch(&mut conn, &mut batch);
            drop(conn);
            if self.queue().is_empty() {
                return;
            }
        }
    }
}

fn fail(op: Op, e: &StoreError) {
    match op {
        Op::Admit(_, ack) | Op::Open(_, ack) | Op::Close(_, ack) | Op::Barrier(ack) => {
            let _ = ack.send(Err(e.clone()));
        }
        Op::Finish(_) => {}
    }
}

/// Applies a batch in one transaction. An operation that fails alone (a constraint, a trigger)
/// fails only its own receipt; a failed commit fails them all. Receipts are answered only after
/// the commit, so "ok" always means durable.
fn commit_batch(conn: &mut Connection, batch: &mut Vec<Op>) {
    let tx = match conn.transaction() {
        Ok(tx) => tx,
        Err(e) => {
            let e = StoreError(e.to_string());
            batch.drain(..).for_each(|op| fail(op, &e));
            return;
        }
    };
    let mut answers: Vec<(Ack, Result<(), StoreError>)> = Vec::with_capacity(batch.len());
    for op in batch.drain(..) {
        match op {
            Op::Admit(record, ack) => answers.push((ack, insert_command(&tx, &record))),
            Op::Open(info, ack) => answers.push((ack, insert_session(&tx, &info))),
            Op::Close(end, ack) => answers.push((ack, close_session(&tx, &end))),
            Op::Barrier(ack) => answers.push((ack, Ok(()))),
            Op::Finish(done) => {
                if let Err(e) = finish_command(&tx, &done) {
                    tracing::error!(session = %done.session, seq = done.seq, error = %e,
                        "command outcome not recorded");
                }
            }
        }
    }
    match tx.commit() {
        Ok(()) => {
            for (ack, result) in answers {
                let _ = ack.send(result);
            }
        }
        Err(e) => {
            let e = StoreError(format!("commit failed: {e}"));
            for (ack, _) in answers {
                let _ = ack.send(Err(e.clone()));
            }
        }
    }
}

fn json<T: serde::Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

fn insert_command(conn: &Connection, r: &CommandRecord) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO audit_entries (session_id, seq, at, identity, groups_json, connection,
                protocol, client_addr, statement, params_json, class, verdict)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
        )
        .map_err(db)?;
    stmt.execute(params![
        &*r.session.0,
        r.seq as i64,
        to_micros(r.at),
        &*r.identity,
        json(&*r.groups),
        &*r.connection,
        r.protocol.as_str(),
        r.client_addr.to_string(),
        r.text,
        json(&r.params),
        r.classes.to_string(),
        r.verdict.as_str(),
    ])
    .map_err(db)?;
    Ok(())
}

fn finish_command(conn: &Connection, c: &CommandCompletion) -> Result<(), StoreError> {
    let (tag, sqlstate, error) = match &c.outcome {
        Outcome::Completed { tag } => (Some(tag.as_str()), None, None),
        Outcome::Failed { code, message } => (None, Some(code.as_str()), Some(message.as_str())),
        Outcome::NotExecuted { reason } => (None, None, Some(reason.as_str())),
    };
    let mut stmt = conn
        .prepare_cached(
            "UPDATE audit_entries SET status = ?3, tag = ?4, sqlstate = ?5, error = ?6,
                rows_returned = ?7, rows_affected = ?8, duration_us = ?9, finished_at = ?10
             WHERE session_id = ?1 AND seq = ?2",
        )
        .map_err(db)?;
    stmt.execute(params![
        &*c.session.0,
        c.seq as i64,
        c.outcome.status(),
        tag,
        sqlstate,
        error,
        c.rows_returned as i64,
        c.rows_affected.map(|n| n as i64),
        i64::try_from(c.duration.as_micros()).unwrap_or(i64::MAX),
        to_micros(c.finished_at),
    ])
    .map_err(db)?;
    Ok(())
}

fn insert_session(conn: &Connection, s: &SessionInfo) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "INSERT INTO sessions (id, identity, groups_json, token_id, connection, protocol,
                client_addr, claimed_user, started_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )
        .map_err(db)?;
    stmt.execute(params![
        &*s.id.0,
        &*s.identity,
        json(&*s.groups),
        s.token_id.0,
        &*s.connection,
        s.protocol.as_str(),
        s.client_addr.to_string(),
        s.claimed_user,
        to_micros(s.started_at),
    ])
    .map_err(db)?;
    Ok(())
}

fn close_session(conn: &Connection, e: &SessionEnd) -> Result<(), StoreError> {
    let mut stmt = conn
        .prepare_cached(
            "UPDATE sessions SET ended_at = ?2, end_reason = ?3, bytes_from_client = ?4,
                bytes_from_server = ?5
             WHERE id = ?1",
        )
        .map_err(db)?;
    stmt.execute(params![
        &*e.id.0,
        to_micros(e.ended_at),
        e.reason,
        e.bytes_from_client as i64,
        e.bytes_from_server as i64,
    ])
    .map_err(db)?;
    Ok(())
}

fn db(e: rusqlite::Error) -> StoreError {
    StoreError(e.to_string())
}
