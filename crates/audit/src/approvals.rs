//! The approvals desk: requests held commands wait on, decided through the admin API.
//!
//! Requests are few and each is written at once on its own connection (not through the audit
//! journal), so a held command's request is durable before the client is told its id. A
//! decision wakes the waiting command in-process; waiters also re-read the row every
//! [`POLL`], so a decision written by another process sharing the store (the CLI, or another
//! gateway instance on PostgreSQL) still arrives.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use gatehouse_core::approval::check_approver;
use gatehouse_core::identity::Identity;
use gatehouse_core::time::{display, from_micros, to_micros};
use gatehouse_core::{
    ApprovalDesk, ApprovalId, ApprovalRequest, DecideError, Decision, SessionId, StoreError,
};
use serde::Serialize;
use tokio::sync::{broadcast, Notify};

use crate::chain::Chain;
use crate::db::{params, Db, DbError, OptionalExtension, Row};
use crate::error::AuditError;
use crate::store::{Slot, Store};

/// How often a waiting command re-reads its request.
const POLL: Duration = Duration::from_millis(500);

/// What happened to a request on this desk: the console's live inbox and the approvers'
/// webhooks follow these. Each is announced by the process where it happened, so a request
/// made on one gateway instance and decided on another is announced once by each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApprovalEvent {
    /// A held command asked for a decision (its request id).
    Requested(String),
    /// Someone approved or denied it here.
    Decided(String),
    /// It stopped waiting undecided: timed out, or its client went away.
    Closed(String),
    /// Another process decided a request (the store told us): the inbox reads again.
    Elsewhere,
}

impl ApprovalEvent {
    /// The request it is about, if this process knows which.
    pub fn id(&self) -> Option<&str> {
        match self {
            Self::Requested(id) | Self::Decided(id) | Self::Closed(id) => Some(id),
            Self::Elsewhere => None,
        }
    }
}

/// How many events a slow listener may fall behind before it misses some (it then reads
/// the inbox again; a webhook logs what it missed).
const EVENTS_BUFFERED: usize = 1024;

/// One approval request as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApprovalRow {
    /// Request id.
    pub id: String,
    /// `pending`, `approved`, `denied`, `expired` or `withdrawn`.
    pub state: String,
    /// Who asked.
    pub identity: String,
    /// Their groups.
    pub groups: Vec<String>,
    /// Connection.
    pub connection: String,
    /// Protocol.
    pub protocol: String,
    /// The held command (masked as the audit trail keeps it).
    pub statement: String,
    /// Its parameters.
    pub params: Vec<Option<String>>,
    /// Statement classes.
    pub class: String,
    /// The review rule.
    pub rule: String,
    /// Groups that may decide.
    pub approvers: Vec<String>,
    /// The session holding it.
    pub session: String,
    /// When it was asked (RFC 3339).
    pub requested_at: String,
    /// When the command stops waiting.
    pub expires_at: String,
    /// Who decided.
    pub decided_by: Option<String>,
    /// When.
    pub decided_at: Option<String>,
    /// Why.
    pub reason: Option<String>,
    /// When the approved command ran.
    pub executed_at: Option<String>,
}

/// The desk over the store, on a connection of its own (made again if PostgreSQL drops it).
#[derive(Clone)]
pub struct Approvals {
    store: Store,
    conn: Arc<Slot>,
    /// Listings (the console, the CLI, webhooks), on a connection of their own: a page
    /// reading many rows never waits on, or makes wait, the held commands' reads and writes
    /// on `conn`.
    listings: Arc<Slot>,
    chain: Chain,
    decided: Arc<Notify>,
    events: broadcast::Sender<ApprovalEvent>,
}

impl Approvals {
    /// Opens the desk of a gateway: requests this instance left pending when it stopped are
    /// expired (nobody waits on them any more: approving one later must not open a grace for
    /// a command that never ran). Another instance's pending requests are its own.
    pub fn open(store: &Store) -> Result<Self, AuditError> {
        let (mut conn, chain) = store.admin()?;
        conn.execute(
            "UPDATE approvals SET state = 'expired' WHERE state = 'pending' AND instance = ?1",
            params![chain.instance],
        )?;
        Ok(Self {
            store: store.clone(),
            conn: Arc::new(Slot::holding(conn)),
            listings: Arc::default(),
            chain,
            decided: Arc::new(Notify::new()),
            events: broadcast::channel(EVENTS_BUFFERED).0,
        })
    }

    /// Wakes every command waiting on a decision, to read its request again (a decision
    /// another instance announced).
    pub fn wake(&self) {
        self.decided.notify_waiters();
        self.announce(ApprovalEvent::Elsewhere);
    }

    /// Follows what happens on this desk from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ApprovalEvent> {
        self.events.subscribe()
    }

    fn announce(&self, event: ApprovalEvent) {
        // Nobody listening is fine: the desk never waits on its listeners.
        let _ = self.events.send(event);
    }

    fn with<T>(&self, f: impl FnMut(&mut Db) -> Result<T, AuditError>) -> Result<T, AuditError> {
        self.conn.with(self.store.location(), f)
    }

    async fn blocking<T: Send + 'static>(
        &self,
        f: impl FnMut(&mut Db) -> Result<T, AuditError> + Send + 'static,
    ) -> Result<T, AuditError> {
        let this = self.clone();
        tokio::task::spawn_blocking(move || this.with(f))
            .await
            .map_err(|e| AuditError::Corrupt(format!("approvals task failed: {e}")))?
    }

    /// One request, if it exists (on the listings' connection).
    pub fn get(&self, id: &str) -> Result<Option<ApprovalRow>, AuditError> {
        let id = id.to_owned();
        self.listings.with(self.store.location(), |db| {
            Ok(db
                .query_row(
                    &format!("{SELECT_ROW} WHERE id = ?1"),
                    params![id],
                    row_to_approval,
                )
                .optional()?)
        })
    }

    /// A page of requests, newest first: pending ones only if asked, skipping `offset`. On
    /// the listings' own connection: a page reading many rows never waits on, or makes wait,
    /// the held commands' reads and writes.
    pub fn page(
        &self,
        pending_only: bool,
        limit: u32,
        offset: u32,
    ) -> Result<Vec<ApprovalRow>, AuditError> {
        self.listings.with(self.store.location(), |db| {
            Ok(db.query_map(
                &format!(
                    "{SELECT_ROW} WHERE (?1 = 0 OR state = 'pending')
                     ORDER BY requested_at DESC, id LIMIT ?2 OFFSET ?3"
                ),
                params![pending_only, i64::from(limit), i64::from(offset)],
                row_to_approval,
            )?)
        })
    }

    fn decision_of(db: &mut Db, id: &str) -> Result<Option<Decision>, AuditError> {
        Ok(db
            .query_row(
                "SELECT state, decided_by, reason, decided_at FROM approvals WHERE id = ?1",
                params![id],
                |row| {
                    let state: String = row.get(0)?;
                    let by: Option<String> = row.get(1)?;
                    Ok(match (state.as_str(), by) {
                        ("approved" | "denied", Some(by)) => Some(Decision {
                            approved: state == "approved",
                            by,
                            reason: row.get(2)?,
                            at: from_micros(row.get::<Option<i64>>(3)?.unwrap_or(0)),
                        }),
                        _ => None,
                    })
                },
            )
            .optional()?
            .flatten())
    }
}

/// The columns [`row_to_approval`] reads, in its order.
const SELECT_ROW: &str = "SELECT id, state, identity, groups_json, connection, protocol, statement,
        params_json, class, rule, approvers_json, session_id, requested_at, expires_at,
        decided_by, decided_at, reason, executed_at
    FROM approvals";

fn row_to_approval(row: &Row<'_>) -> Result<ApprovalRow, DbError> {
    let list = |i: usize| -> Result<Vec<String>, DbError> {
        Ok(serde_json::from_str(&row.get::<String>(i)?).unwrap_or_default())
    };
    let time = |i: usize| -> Result<Option<String>, DbError> {
        Ok(row
            .get::<Option<i64>>(i)?
            .map(|us| display(from_micros(us))))
    };
    Ok(ApprovalRow {
        id: row.get(0)?,
        state: row.get(1)?,
        identity: row.get(2)?,
        groups: list(3)?,
        connection: row.get(4)?,
        protocol: row.get(5)?,
        statement: row.get(6)?,
        params: serde_json::from_str(&row.get::<String>(7)?).unwrap_or_default(),
        class: row.get(8)?,
        rule: row.get(9)?,
        approvers: list(10)?,
        session: row.get(11)?,
        requested_at: time(12)?.unwrap_or_default(),
        expires_at: time(13)?.unwrap_or_default(),
        decided_by: row.get(14)?,
        decided_at: time(15)?,
        reason: row.get(16)?,
        executed_at: time(17)?,
    })
}

#[async_trait]
impl ApprovalDesk for Approvals {
    async fn request(&self, r: &ApprovalRequest) -> Result<(), StoreError> {
        let r = r.clone();
        let id = r.id.0.clone();
        let instance = self.chain.instance.clone();
        self.blocking(move |db| {
            db.execute(
                "INSERT INTO approvals (id, session_id, identity, groups_json, connection,
                    protocol, statement, params_json, class, rule, approvers_json, fingerprint,
                    requested_at, expires_at, state, instance)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, 'pending',
                    ?15)",
                params![
                    r.id.0,
                    r.session.0.to_string(),
                    r.identity,
                    serde_json::to_string(&r.groups).unwrap_or_default(),
                    r.connection,
                    r.protocol,
                    r.text,
                    serde_json::to_string(&r.params).unwrap_or_default(),
                    r.class,
                    r.rule,
                    serde_json::to_string(&r.approvers).unwrap_or_default(),
                    r.fingerprint,
                    to_micros(r.requested_at),
                    to_micros(r.expires_at),
                    instance,
                ],
            )?;
            Ok(())
        })
        .await
        .map_err(StoreError::from)?;
        self.announce(ApprovalEvent::Requested(id));
        Ok(())
    }

    async fn wait_decision(
        &self,
        id: &ApprovalId,
        timeout: Duration,
    ) -> Result<Option<Decision>, StoreError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the read, so a decision made between the read and the wait
            // still wakes us.
            let woken = self.decided.notified();
            let key = id.0.clone();
            let found = self
                .blocking(move |db| Self::decision_of(db, &key))
                .await
                .map_err(StoreError::from)?;
            if found.is_some() {
                return Ok(found);
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(None);
            }
            let nap = (deadline - now).min(POLL);
            let _ = tokio::time::timeout(nap, woken).await;
        }
    }

    async fn expire(&self, id: &ApprovalId) -> Result<Option<Decision>, StoreError> {
        let key = id.0.clone();
        let (expired, decision) = self
            .blocking(move |db| {
                let expired = db.execute(
                    "UPDATE approvals SET state = 'expired' WHERE id = ?1 AND state = 'pending'",
                    params![key],
                )?;
                Ok((expired, Self::decision_of(db, &key)?))
            })
            .await
            .map_err(StoreError::from)?;
        if expired > 0 {
            self.announce(ApprovalEvent::Closed(id.0.clone()));
        }
        Ok(decision)
    }

    async fn withdraw(&self, id: &ApprovalId, why: &str) -> Result<(), StoreError> {
        let (key, why) = (id.0.clone(), why.to_owned());
        let withdrawn = self
            .blocking(move |db| {
                Ok(db.execute(
                    "UPDATE approvals SET state = 'withdrawn', reason = ?2, decided_at = ?3
                     WHERE id = ?1 AND state = 'pending'",
                    params![key, why, to_micros(SystemTime::now())],
                )?)
            })
            .await
            .map_err(StoreError::from)?;
        if withdrawn > 0 {
            self.announce(ApprovalEvent::Closed(id.0.clone()));
        }
        Ok(())
    }

    async fn executed(
        &self,
        id: &ApprovalId,
        session: &SessionId,
        seq: u64,
    ) -> Result<(), StoreError> {
        let (key, session) = (id.0.clone(), session.0.to_string());
        self.blocking(move |db| {
            // A grace re-run runs the approved command again: the first execution is kept.
            db.execute(
                "UPDATE approvals SET executed_at = ?2, executed_session = ?3, executed_seq = ?4
                 WHERE id = ?1 AND executed_at IS NULL",
                params![key, to_micros(SystemTime::now()), session, seq as i64],
            )?;
            Ok(())
        })
        .await
        .map_err(StoreError::from)
    }

    async fn recent_approval(
        &self,
        identity: &str,
        connection: &str,
        fingerprint: &str,
        since: SystemTime,
    ) -> Result<Option<ApprovalId>, StoreError> {
        let args = (
            identity.to_owned(),
            connection.to_owned(),
            fingerprint.to_owned(),
            to_micros(since),
        );
        self.blocking(move |db| {
            Ok(db
                .query_row(
                    "SELECT id FROM approvals
                     WHERE identity = ?1 AND connection = ?2 AND fingerprint = ?3
                       AND state = 'approved' AND decided_at >= ?4
                     ORDER BY decided_at DESC LIMIT 1",
                    params![args.0, args.1, args.2, args.3],
                    |row| row.get::<String>(0),
                )
                .optional()?
                .map(ApprovalId))
        })
        .await
        .map_err(StoreError::from)
    }

    async fn decide(
        &self,
        id: &str,
        who: &Identity,
        approve: bool,
        reason: Option<String>,
    ) -> Result<Decision, DecideError> {
        let (key, who) = (id.to_owned(), who.clone());
        let chain = self.chain.clone();
        let decision = self
            .blocking(move |db| {
                let found = db
                    .query_row(
                        "SELECT identity, approvers_json, state FROM approvals WHERE id = ?1",
                        params![key],
                        |row| {
                            Ok((
                                row.get::<String>(0)?,
                                row.get::<String>(1)?,
                                row.get::<String>(2)?,
                            ))
                        },
                    )
                    .optional()?;
                let Some((requester, approvers, state)) = found else {
                    return Ok(Err(DecideError::NotFound(key.clone())));
                };
                let approvers: Vec<String> = serde_json::from_str(&approvers).unwrap_or_default();
                if let Err(e) = check_approver(&key, &requester, &approvers, &who) {
                    return Ok(Err(e));
                }
                if state != "pending" {
                    return Ok(Err(DecideError::NotPending {
                        id: key.clone(),
                        state,
                    }));
                }
                let at = SystemTime::now();
                let changed = crate::events::with_event(db, &chain, |tx| {
                    let changed = tx.execute(
                        "UPDATE approvals SET state = ?2, decided_by = ?3, decided_at = ?4,
                            reason = ?5
                         WHERE id = ?1 AND state = 'pending' AND expires_at > ?4",
                        params![
                            key,
                            if approve { "approved" } else { "denied" },
                            who.name,
                            to_micros(at),
                            reason
                        ],
                    )?;
                    let event = match changed {
                        0 => None,
                        _ => crate::events::decided(tx, &key)?
                            .map(|body| (crate::events::DECIDED, key.clone(), body)),
                    };
                    Ok((changed, event))
                })?;
                if changed == 0 {
                    return Ok(Err(DecideError::NotPending {
                        id: key.clone(),
                        state: "decided meanwhile, or past its waiting time".into(),
                    }));
                }
                Ok(Ok(Decision {
                    approved: approve,
                    by: who.name.clone(),
                    reason: reason.clone(),
                    at,
                }))
            })
            .await
            .map_err(|e| DecideError::Store(e.into()))??;
        self.decided.notify_waiters();
        self.announce(ApprovalEvent::Decided(id.to_owned()));
        Ok(decision)
    }
}
