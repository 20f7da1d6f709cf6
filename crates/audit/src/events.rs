//! Trail events: what changes who may do what — a credential issued or revoked (tokens, SSH
//! keys, JWT subjects) and an approval decided — each a row of `trail_events` with a chain link,
//! written in the same transaction as the change itself.
//!
//! An event's body is the changed row's state as [`issued`], [`revoked`] and [`decided`] read it,
//! so `audit verify` can read the same state again and compare: a token whose groups, expiry or
//! revocation were edited in the database, or an approval whose approver was, no longer
//! matches its chained event.

use serde_json::{json, Value};

use crate::chain::Chain;
use crate::db::{params, Backend, Begin, Db, DbError, OptionalExtension};
use crate::entry::Entry;
use crate::error::AuditError;
use crate::links::append_own;

/// A credential was issued (token, SSH key).
pub const ISSUED: &str = "credential-issued";
/// A credential (or a JWT subject) was revoked.
pub const REVOKED: &str = "credential-revoked";
/// An approval request was approved or denied.
pub const DECIDED: &str = "approval-decided";

/// A credential's issued state, as chained.
pub(crate) fn issued(db: &mut Db, id: &str) -> Result<Option<Value>, DbError> {
    db.query_row(
        "SELECT kind, identity, groups_json, connections_json, created_at, created_by,
            expires_at, fingerprint
         FROM tokens WHERE id = ?1",
        params![id],
        |r| {
            Ok(json!({
                "id": id,
                "kind": r.get::<String>(0)?,
                "identity": r.get::<String>(1)?,
                "groups": r.get::<String>(2)?,
                "connections": r.get::<String>(3)?,
                "created_at": r.get::<i64>(4)?,
                "created_by": r.get::<String>(5)?,
                "expires_at": r.get::<Option<i64>>(6)?,
                "fingerprint": r.get::<Option<String>>(7)?,
            }))
        },
    )
    .optional()
}

/// A credential's revoked state, as chained (`None` if it is not revoked).
pub(crate) fn revoked(db: &mut Db, id: &str) -> Result<Option<Value>, DbError> {
    db.query_row(
        "SELECT kind, identity, revoked_at, revoked_by FROM tokens
         WHERE id = ?1 AND revoked_at IS NOT NULL",
        params![id],
        |r| {
            Ok(json!({
                "id": id,
                "kind": r.get::<String>(0)?,
                "identity": r.get::<String>(1)?,
                "revoked_at": r.get::<i64>(2)?,
                "revoked_by": r.get::<Option<String>>(3)?,
            }))
        },
    )
    .optional()
}

/// An approval's decision, as chained (`None` unless approved or denied).
pub(crate) fn decided(db: &mut Db, id: &str) -> Result<Option<Value>, DbError> {
    db.query_row(
        "SELECT state, identity, decided_by, decided_at, reason, session_id, fingerprint
         FROM approvals WHERE id = ?1 AND state IN ('approved', 'denied')",
        params![id],
        |r| {
            Ok(json!({
                "id": id,
                "state": r.get::<String>(0)?,
                "requester": r.get::<String>(1)?,
                "decided_by": r.get::<Option<String>>(2)?,
                "decided_at": r.get::<Option<i64>>(3)?,
                "reason": r.get::<Option<String>>(4)?,
                "session": r.get::<String>(5)?,
                "fingerprint": r.get::<String>(6)?,
            }))
        },
    )
    .optional()
}

/// Runs `change` and chains the event it returns (`kind`, the subject's id, its state), in
/// one immediate transaction: both land or neither.
pub(crate) fn with_event<T>(
    db: &mut Db,
    chain: &Chain,
    change: impl FnOnce(&mut Db) -> Result<(T, Option<(&'static str, String, Value)>), AuditError>,
) -> Result<T, AuditError> {
    let mut tx = db.transaction(Begin::Immediate)?;
    let (out, event) = change(&mut tx)?;
    if let Some((kind, subject, body)) = event {
        record(&mut tx, chain, kind, &subject, &body)?;
    }
    tx.commit()?;
    Ok(out)
}

/// Appends an event row and its chain link.
fn record(
    tx: &mut Db,
    chain: &Chain,
    kind: &str,
    subject: &str,
    body: &Value,
) -> Result<(), AuditError> {
    let at = gatehouse_core::time::to_micros(std::time::SystemTime::now());
    let body = body.to_string();
    let seq: i64 = tx.query_row(
        "INSERT INTO trail_events (at, kind, subject, body) VALUES (?1, ?2, ?3, ?4)
         RETURNING seq",
        params![at, kind, subject, body],
        |r| r.get(0),
    )?;
    let entry = Entry::Event {
        seq,
        at,
        kind: kind.to_owned(),
        subject: subject.to_owned(),
        body,
    };
    append_own(tx, chain, &[entry])?;
    if tx.backend() == Backend::Postgres {
        // Every instance listening hears of it once this commits (see `Store::watch`).
        tx.execute("SELECT pg_notify('gatehouse_events', ?1)", params![kind])?;
    }
    Ok(())
}

/// Whether the store is a SQLite store made before trail events existed, whose tables'
/// state must be chained as the baseline once (`PRAGMA user_version` 1 marks it done). A
/// PostgreSQL store had trail events from its first day.
pub(crate) fn needs_baseline(db: &mut Db) -> Result<bool, AuditError> {
    if db.backend() != Backend::Sqlite {
        return Ok(false);
    }
    let done: i64 = db.query_row("PRAGMA user_version", params![], |r| r.get(0))?;
    Ok(done < 1)
}

/// Chains the baseline of a store that [`needs_baseline`].
pub(crate) fn baseline(db: &mut Db, chain: &Chain) -> Result<(), AuditError> {
    let mut tx = db.transaction(Begin::Immediate)?;
    let again: i64 = tx.query_row("PRAGMA user_version", params![], |r| r.get(0))?;
    if again < 1 {
        chain_current_state(&mut tx, chain)?;
        tx.execute_batch("PRAGMA user_version = 1")?;
    }
    tx.commit()?;
    Ok(())
}

/// A purge's carrying forward (after it removed the events its links superseded): the
/// current state of every credential and decision is chained again.
pub(crate) fn carry_forward(tx: &mut Db, chain: &Chain) -> Result<(), AuditError> {
    chain_current_state(tx, chain)
}

/// Chains the current state of every credential and decision as events.
fn chain_current_state(tx: &mut Db, chain: &Chain) -> Result<(), AuditError> {
    for id in ids(tx, "SELECT id FROM tokens ORDER BY created_at")? {
        if let Some(body) = issued(tx, &id)? {
            record(tx, chain, ISSUED, &id, &body)?;
        }
        if let Some(body) = revoked(tx, &id)? {
            record(tx, chain, REVOKED, &id, &body)?;
        }
    }
    for id in ids(tx, "SELECT id FROM approvals ORDER BY requested_at")? {
        if let Some(body) = decided(tx, &id)? {
            record(tx, chain, DECIDED, &id, &body)?;
        }
    }
    Ok(())
}

/// `audit verify`'s check of the tables against their events: every credential's issued
/// state, every revocation and every decision must be what its latest event chained.
///
/// Returns what does not hold, each a sentence.
pub(crate) fn check_state(db: &mut Db) -> Result<Vec<String>, AuditError> {
    let mut problems: Vec<String> = Vec::new();
    let latest = |db: &mut Db, kind: &str, subject: &str| -> Result<Option<Value>, DbError> {
        Ok(db
            .query_row(
                "SELECT body FROM trail_events WHERE kind = ?1 AND subject = ?2
                 ORDER BY seq DESC LIMIT 1",
                params![kind, subject],
                |r| r.get::<String>(0),
            )
            .optional()?
            .and_then(|b| serde_json::from_str(&b).ok()))
    };
    let mut compare =
        |what: String, now: Option<Value>, chained: Option<Value>| match (now, chained) {
            (Some(now), Some(chained)) if now == chained => {}
            (Some(_), None) => {
                problems.push(format!("inserted: {what} that the chain never recorded"))
            }
            (Some(_), Some(_)) => {
                problems.push(format!("altered: {what} differs from what was chained"))
            }
            // A row that exists but no longer shows a chained revocation or decision: undone.
            (None, Some(_)) => problems.push(format!(
                "altered: {what} was chained but the row no longer shows it"
            )),
            (None, None) => {}
        };
    for id in ids(db, "SELECT id FROM tokens WHERE kind <> 'subject'")? {
        let (now, chained) = (issued(db, &id)?, latest(db, ISSUED, &id)?);
        compare(format!("credential {id}"), now, chained);
    }
    for id in ids(db, "SELECT id FROM tokens")? {
        let (now, chained) = (revoked(db, &id)?, latest(db, REVOKED, &id)?);
        compare(format!("the revocation of {id}"), now, chained);
    }
    // Approvals a purge removed are gone with their rows, so only the rows still held are
    // compared.
    for id in ids(db, "SELECT id FROM approvals")? {
        let (now, chained) = (decided(db, &id)?, latest(db, DECIDED, &id)?);
        compare(format!("the decision on approval {id}"), now, chained);
    }
    Ok(problems)
}

/// The ids a query lists.
fn ids(db: &mut Db, sql: &str) -> Result<Vec<String>, DbError> {
    db.query_map(sql, params![], |r| r.get(0))
}
