//! Trail events: what changes who may do what — a credential issued or revoked (tokens, SSH
//! keys, JWT subjects) and an approval decided — each a row of `trail_events` with a chain link,
//! written in the same transaction as the change itself.
//!
//! An event's body is the changed row's state as [`issued`], [`revoked`] and [`decided`] read it,
//! so `audit verify` can read the same state again and compare: a token whose groups, expiry or
//! revocation were edited in the database, or an approval whose approver was, no longer
//! matches its chained event.

use std::path::Path;

use rusqlite::{params, Connection, OptionalExtension, Transaction, TransactionBehavior};
use serde_json::{json, Value};

use crate::chain::{append, ChainKey};
use crate::entry::Entry;
use crate::error::AuditError;
use crate::verify::VerifyReport;

/// A credential was issued (token, SSH key).
pub const ISSUED: &str = "credential-issued";
/// A credential (or a JWT subject) was revoked.
pub const REVOKED: &str = "credential-revoked";
/// An approval request was approved or denied.
pub const DECIDED: &str = "approval-decided";

/// A credential's issued state, as chained.
pub(crate) fn issued(conn: &Connection, id: &str) -> rusqlite::Result<Option<Value>> {
    conn.query_row(
        "SELECT kind, identity, groups_json, connections_json, created_at, created_by,
            expires_at, fingerprint
         FROM tokens WHERE id = ?1",
        [id],
        |r| {
            Ok(json!({
                "id": id,
                "kind": r.get::<_, String>(0)?,
                "identity": r.get::<_, String>(1)?,
                "groups": r.get::<_, String>(2)?,
                "connections": r.get::<_, String>(3)?,
                "created_at": r.get::<_, i64>(4)?,
                "created_by": r.get::<_, String>(5)?,
                "expires_at": r.get::<_, Option<i64>>(6)?,
                "fingerprint": r.get::<_, Option<String>>(7)?,
            }))
        },
    )
    .optional()
}

/// A credential's revoked state, as chained (`None` if it is not revoked).
pub(crate) fn revoked(conn: &Connection, id: &str) -> rusqlite::Result<Option<Value>> {
    conn.query_row(
        "SELECT kind, identity, revoked_at, revoked_by FROM tokens
         WHERE id = ?1 AND revoked_at IS NOT NULL",
        [id],
        |r| {
            Ok(json!({
                "id": id,
                "kind": r.get::<_, String>(0)?,
                "identity": r.get::<_, String>(1)?,
                "revoked_at": r.get::<_, i64>(2)?,
                "revoked_by": r.get::<_, Option<String>>(3)?,
            }))
        },
    )
    .optional()
}

/// An approval's decision, as chained (`None` unless approved or denied).
pub(crate) fn decided(conn: &Connection, id: &str) -> rusqlite::Result<Option<Value>> {
    conn.query_row(
        "SELECT state, identity, decided_by, decided_at, reason, session_id, fingerprint
         FROM approvals WHERE id = ?1 AND state IN ('approved', 'denied')",
        [id],
        |r| {
            Ok(json!({
                "id": id,
                "state": r.get::<_, String>(0)?,
                "requester": r.get::<_, String>(1)?,
                "decided_by": r.get::<_, Option<String>>(2)?,
                "decided_at": r.get::<_, Option<i64>>(3)?,
                "reason": r.get::<_, Option<String>>(4)?,
                "session": r.get::<_, String>(5)?,
                "fingerprint": r.get::<_, String>(6)?,
            }))
        },
    )
    .optional()
}

/// The chain key of the store `conn` is open on.
fn key_of(conn: &Connection) -> Result<ChainKey, AuditError> {
    let path = conn
        .path()
        .filter(|p| !p.is_empty())
        .ok_or_else(|| AuditError::Corrupt("the store has no file for its chain key".into()))?;
    ChainKey::for_store(Path::new(path), true)
}

/// Runs `change` and chains the event it returns (`kind`, the subject's id, its state), in
/// one immediate transaction: both land or neither.
pub(crate) fn with_event<T>(
    conn: &Connection,
    change: impl FnOnce(
        &Transaction<'_>,
    ) -> Result<(T, Option<(&'static str, String, Value)>), AuditError>,
) -> Result<T, AuditError> {
    let key = key_of(conn)?;
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let (out, event) = change(&tx)?;
    if let Some((kind, subject, body)) = event {
        record(&tx, &key, kind, &subject, &body)?;
    }
    tx.commit()?;
    Ok(out)
}

/// Appends an event row and its chain link.
fn record(
    tx: &Transaction<'_>,
    key: &ChainKey,
    kind: &str,
    subject: &str,
    body: &Value,
) -> Result<(), AuditError> {
    let at = gatehouse_core::time::to_micros(std::time::SystemTime::now());
    let body = body.to_string();
    tx.execute(
        "INSERT INTO trail_events (at, kind, subject, body) VALUES (?1, ?2, ?3, ?4)",
        params![at, kind, subject, body],
    )?;
    let seq = tx.last_insert_rowid();
    let entry = Entry::Event {
        seq,
        at,
        kind: kind.to_owned(),
        subject: subject.to_owned(),
        body,
    };
    append(tx, key, &[entry], &[], &[])
}

/// On a store made before trail events existed, chains what its tables hold now as the
/// baseline, once (`PRAGMA user_version` 1 marks it done).
pub(crate) fn baseline(conn: &Connection) -> Result<(), AuditError> {
    let done: i64 = conn.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if done >= 1 {
        return Ok(());
    }
    let key = key_of(conn)?;
    let tx = Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
    let again: i64 = tx.query_row("PRAGMA user_version", [], |r| r.get(0))?;
    if again < 1 {
        chain_current_state(&tx, &key)?;
        tx.execute_batch("PRAGMA user_version = 1")?;
    }
    tx.commit()?;
    Ok(())
}

/// A purge's carrying forward: the events its link superseded (`purged_by = purge`) lose
/// their rows, and the current state of every credential and decision is chained again.
pub(crate) fn carry_forward(
    tx: &Transaction<'_>,
    key: &ChainKey,
    purge: i64,
) -> Result<(), AuditError> {
    tx.execute(
        "DELETE FROM trail_events WHERE seq IN
           (SELECT entry_seq FROM audit_chain WHERE kind = 'event' AND purged_by = ?1)",
        [purge],
    )?;
    chain_current_state(tx, key)
}

/// Chains the current state of every credential and decision as events.
fn chain_current_state(tx: &Transaction<'_>, key: &ChainKey) -> Result<(), AuditError> {
    let ids = |sql: &str| -> rusqlite::Result<Vec<String>> {
        let mut stmt = tx.prepare(sql)?;
        let ids = stmt.query_map([], |r| r.get(0))?;
        ids.collect()
    };
    for id in ids("SELECT id FROM tokens ORDER BY created_at")? {
        if let Some(body) = issued(tx, &id)? {
            record(tx, key, ISSUED, &id, &body)?;
        }
        if let Some(body) = revoked(tx, &id)? {
            record(tx, key, REVOKED, &id, &body)?;
        }
    }
    for id in ids("SELECT id FROM approvals ORDER BY requested_at")? {
        if let Some(body) = decided(tx, &id)? {
            record(tx, key, DECIDED, &id, &body)?;
        }
    }
    Ok(())
}

/// `audit verify`'s check of the tables against their events: every credential's issued
/// state, every revocation and every decision must be what its latest event chained.
pub(crate) fn check_state(conn: &Connection, report: &mut VerifyReport) -> Result<(), AuditError> {
    let latest = |kind: &str, subject: &str| -> rusqlite::Result<Option<Value>> {
        Ok(conn
            .query_row(
                "SELECT body FROM trail_events WHERE kind = ?1 AND subject = ?2
                 ORDER BY seq DESC LIMIT 1",
                params![kind, subject],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .and_then(|b| serde_json::from_str(&b).ok()))
    };
    let ids = |sql: &str| -> rusqlite::Result<Vec<String>> {
        let mut stmt = conn.prepare(sql)?;
        let ids = stmt.query_map([], |r| r.get(0))?;
        ids.collect()
    };
    let mut compare =
        |what: String, now: Option<Value>, chained: Option<Value>| match (now, chained) {
            (Some(now), Some(chained)) if now == chained => {}
            (Some(_), None) => report
                .problems
                .push(format!("inserted: {what} that the chain never recorded")),
            (Some(_), Some(_)) => report
                .problems
                .push(format!("altered: {what} differs from what was chained")),
            // A row that exists but no longer shows a chained revocation or decision: undone.
            (None, Some(_)) => report.problems.push(format!(
                "altered: {what} was chained but the row no longer shows it"
            )),
            (None, None) => {}
        };
    for id in ids("SELECT id FROM tokens WHERE kind <> 'subject'")? {
        compare(
            format!("credential {id}"),
            issued(conn, &id)?,
            latest(ISSUED, &id)?,
        );
    }
    for id in ids("SELECT id FROM tokens")? {
        compare(
            format!("the revocation of {id}"),
            revoked(conn, &id)?,
            latest(REVOKED, &id)?,
        );
    }
    // Approvals a purge removed are gone with their rows, so only the rows still held are
    // compared.
    for id in ids("SELECT id FROM approvals")? {
        compare(
            format!("the decision on approval {id}"),
            decided(conn, &id)?,
            latest(DECIDED, &id)?,
        );
    }
    Ok(())
}
