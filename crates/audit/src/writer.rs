//! The group-commit writer: one thread owns the write connection; every write is a message to
//! it. It takes whatever has queued up while the last commit ran, applies it in one transaction
//! and commits once, then answers every receipt in the batch. Under concurrency a commit carries
//! many entries, so durability stays cheap.

use std::sync::mpsc;
use std::thread;

use gatehouse_core::store::Receipt;
use gatehouse_core::time::to_micros;
use gatehouse_core::{
    CommandCompletion, CommandRecord, Outcome, SessionEnd, SessionInfo, StoreError,
};
use rusqlite::{params, Connection};
use tokio::sync::oneshot;

use crate::error::AuditError;

/// Most operations applied in one transaction.
const MAX_BATCH: usize = 4096;

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

/// The sending side of the writer; cloning shares the one thread.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<Op>,
}

impl Writer {
    /// Starts the writer thread on its own connection.
    pub(crate) fn start(conn: Connection) -> Result<Self, AuditError> {
        let (tx, rx) = mpsc::channel();
        thread::Builder::new()
            .name("gatehouse-audit-writer".into())
            .spawn(move || run(conn, rx))
            .map_err(|source| AuditError::Io {
                what: "could not start the audit writer thread".into(),
                source,
            })?;
        Ok(Self { tx })
    }

    /// Queues a write that answers through a receipt.
    pub(crate) fn submit(&self, make: impl FnOnce(Ack) -> Op) -> Receipt {
        let (ack, receipt) = Receipt::channel();
        if let Err(mpsc::SendError(op)) = self.tx.send(make(ack)) {
            fail(op, &StoreError("the audit writer stopped".into()));
        }
        receipt
    }

    /// Queues a write nobody waits for.
    pub(crate) fn send(&self, op: Op) {
        if self.tx.send(op).is_err() {
            tracing::error!("audit writer stopped; a command outcome was not recorded");
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

fn run(mut conn: Connection, rx: mpsc::Receiver<Op>) {
    let mut batch = Vec::with_capacity(64);
    while let Ok(first) = rx.recv() {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(op) => batch.push(op),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, &mut batch);
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
