//! One write to the audit store, as journaled and as applied to SQLite. The same value is
//! written to the journal (JSON, one line) and later applied to the database, so what the
//! journal holds is exactly what the database will hold.

use crate::db::{params, Db, DbError, OptionalExtension, Param};
use gatehouse_core::time::to_micros;
use gatehouse_core::{CommandCompletion, CommandRecord, MaskLog, Outcome, SessionEnd, SessionInfo};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::sync::Arc;

/// What a link says about its write, besides the write's content.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LinkKey {
    pub kind: &'static str,
    pub session: String,
    pub entry_seq: i64,
    pub at: i64,
}

/// A journaled write.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "kebab-case")]
pub(crate) enum Entry {
    /// A command admitted.
    Admit {
        session: Arc<str>,
        seq: u64,
        at: i64,
        identity: Arc<str>,
        groups: Arc<[String]>,
        connection: Arc<str>,
        protocol: Cow<'static, str>,
        client: Arc<str>,
        statement: String,
        params: Vec<Option<String>>,
        class: String,
        verdict: Cow<'static, str>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        rule: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approval: Option<String>,
        #[serde(default, skip_serializing_if = "MaskLog::is_empty")]
        masked: MaskLog,
        /// Who approved it (verdict `approved`): the entry names its approver.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        approved_by: Option<String>,
    },
    /// A command's outcome.
    Finish {
        session: Arc<str>,
        seq: u64,
        status: Cow<'static, str>,
        tag: Option<String>,
        sqlstate: Option<String>,
        error: Option<String>,
        rows_returned: u64,
        rows_affected: Option<u64>,
        duration_us: u64,
        finished_at: i64,
        #[serde(default, skip_serializing_if = "MaskLog::is_empty")]
        masked: MaskLog,
    },
    /// A session opened (or a refused attempt).
    Open {
        id: String,
        identity: String,
        groups: Vec<String>,
        token_id: String,
        connection: String,
        protocol: String,
        client: String,
        claimed_user: String,
        started_at: i64,
        /// The client's startup settings (absent in entries written before they were kept,
        /// so those still encode as they did when chained).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        settings: Vec<(String, String)>,
    },
    /// A trail event (see [`crate::events`]): a credential issued or revoked, an approval
    /// decided. Never journaled: written with the change it records.
    Event {
        seq: i64,
        at: i64,
        kind: String,
        subject: String,
        body: String,
    },
    /// A session ended.
    Close {
        id: String,
        ended_at: i64,
        reason: String,
        bytes_from_client: u64,
        bytes_from_server: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        recording_sha256: Option<String>,
    },
}

impl Entry {
    /// What this write's chain link says about it.
    pub(crate) fn link_key(&self) -> LinkKey {
        match self {
            Self::Admit {
                session, seq, at, ..
            } => LinkKey {
                kind: "admit",
                session: session.to_string(),
                entry_seq: *seq as i64,
                at: *at,
            },
            Self::Finish {
                session,
                seq,
                finished_at,
                ..
            } => LinkKey {
                kind: "finish",
                session: session.to_string(),
                entry_seq: *seq as i64,
                at: *finished_at,
            },
            Self::Open { id, started_at, .. } => LinkKey {
                kind: "open",
                session: id.clone(),
                entry_seq: 0,
                at: *started_at,
            },
            Self::Close { id, ended_at, .. } => LinkKey {
                kind: "close",
                session: id.clone(),
                entry_seq: 0,
                at: *ended_at,
            },
            Self::Event {
                seq, at, subject, ..
            } => LinkKey {
                kind: "event",
                session: subject.clone(),
                entry_seq: *seq,
                at: *at,
            },
        }
    }

    /// Re-reads a chained write from the tables as it stands now (`None` if its row is gone).
    pub(crate) fn load(
        db: &mut Db,
        kind: &str,
        session: &str,
        entry_seq: i64,
    ) -> Result<Option<Self>, DbError> {
        let list = |text: String| serde_json::from_str::<Vec<String>>(&text).unwrap_or_default();
        let log = |text: Option<String>| mask_log(text);
        let settings = |text: Option<String>| {
            text.and_then(|t| serde_json::from_str::<Vec<(String, String)>>(&t).ok())
                .unwrap_or_default()
        };
        match kind {
            "admit" => db
                .query_row(
                    "SELECT at, identity, groups_json, connection, protocol, client_addr,
                        statement, params_json, class, verdict, rule, approval_id, masked_json,
                        approved_by
                     FROM audit_entries WHERE session_id = ?1 AND seq = ?2",
                    params![session, entry_seq],
                    |r| {
                        Ok(Self::Admit {
                            session: session.into(),
                            seq: entry_seq as u64,
                            at: r.get(0)?,
                            identity: r.get::<String>(1)?.into(),
                            groups: list(r.get(2)?).into(),
                            connection: r.get::<String>(3)?.into(),
                            protocol: Cow::Owned(r.get(4)?),
                            client: r.get::<String>(5)?.into(),
                            statement: r.get(6)?,
                            params: serde_json::from_str(&r.get::<String>(7)?).unwrap_or_default(),
                            class: r.get(8)?,
                            verdict: Cow::Owned(r.get(9)?),
                            rule: r.get(10)?,
                            approval: r.get(11)?,
                            masked: log(r.get(12)?),
                            approved_by: r.get(13)?,
                        })
                    },
                )
                .optional(),
            "finish" => db
                .query_row(
                    "SELECT status, tag, sqlstate, error, rows_returned, rows_affected,
                        duration_us, finished_at, result_masked_json
                     FROM audit_entries WHERE session_id = ?1 AND seq = ?2
                       AND status IS NOT NULL",
                    params![session, entry_seq],
                    |r| {
                        Ok(Self::Finish {
                            session: session.into(),
                            seq: entry_seq as u64,
                            status: Cow::Owned(r.get(0)?),
                            tag: r.get(1)?,
                            sqlstate: r.get(2)?,
                            error: r.get(3)?,
                            rows_returned: r.get::<i64>(4)? as u64,
                            rows_affected: r.get::<Option<i64>>(5)?.map(|n| n as u64),
                            duration_us: r.get::<i64>(6)? as u64,
                            finished_at: r.get(7)?,
                            masked: log(r.get(8)?),
                        })
                    },
                )
                .optional(),
            "open" => db
                .query_row(
                    "SELECT identity, groups_json, token_id, connection, protocol, client_addr,
                        claimed_user, started_at, settings_json
                     FROM sessions WHERE id = ?1",
                    params![session],
                    |r| {
                        Ok(Self::Open {
                            id: session.to_owned(),
                            identity: r.get(0)?,
                            groups: list(r.get(1)?),
                            token_id: r.get(2)?,
                            connection: r.get(3)?,
                            protocol: r.get(4)?,
                            client: r.get(5)?,
                            claimed_user: r.get(6)?,
                            started_at: r.get(7)?,
                            settings: settings(r.get(8)?),
                        })
                    },
                )
                .optional(),
            "event" => db
                .query_row(
                    "SELECT at, kind, body FROM trail_events WHERE seq = ?1 AND subject = ?2",
                    params![entry_seq, session],
                    |r| {
                        Ok(Self::Event {
                            seq: entry_seq,
                            at: r.get(0)?,
                            kind: r.get(1)?,
                            subject: session.to_owned(),
                            body: r.get(2)?,
                        })
                    },
                )
                .optional(),
            "close" => db
                .query_row(
                    "SELECT ended_at, end_reason, bytes_from_client, bytes_from_server,
                        recording_sha256
                     FROM sessions WHERE id = ?1 AND ended_at IS NOT NULL",
                    params![session],
                    |r| {
                        Ok(Self::Close {
                            id: session.to_owned(),
                            ended_at: r.get(0)?,
                            reason: r.get::<Option<String>>(1)?.unwrap_or_default(),
                            bytes_from_client: r.get::<Option<i64>>(2)?.unwrap_or(0) as u64,
                            bytes_from_server: r.get::<Option<i64>>(3)?.unwrap_or(0) as u64,
                            recording_sha256: r.get(4)?,
                        })
                    },
                )
                .optional(),
            _ => Ok(None),
        }
    }

    /// Whether new work depends on this write (admissions and openings are refused while the
    /// store is failing; outcomes and ends are always taken, they complete evidence).
    pub(crate) fn starts_something(&self) -> bool {
        matches!(self, Self::Admit { .. } | Self::Open { .. })
    }

    /// Takes the record by value: its text and parameters move into the entry uncopied.
    pub(crate) fn admit(r: CommandRecord) -> Self {
        Self::Admit {
            session: r.session.0,
            seq: r.seq,
            at: to_micros(r.at),
            identity: r.identity,
            groups: r.groups,
            connection: r.connection,
            protocol: Cow::Borrowed(r.protocol.as_str()),
            client: r.client,
            statement: r.text,
            params: r.params,
            class: r.classes.to_string(),
            verdict: Cow::Borrowed(r.verdict.as_str()),
            approved_by: match &r.verdict {
                gatehouse_core::Verdict::Approved { by } => Some(by.clone()),
                _ => None,
            },
            rule: r.rule,
            approval: r.approval,
            masked: r.masked,
        }
    }

    pub(crate) fn finish(c: &CommandCompletion) -> Self {
        let (tag, sqlstate, error) = match &c.outcome {
            Outcome::Completed { tag } => (Some(tag.clone()), None, None),
            Outcome::Failed { code, message } => (None, Some(code.clone()), Some(message.clone())),
            Outcome::NotExecuted { reason } => (None, None, Some(reason.clone())),
        };
        Self::Finish {
            session: c.session.0.clone(),
            seq: c.seq,
            status: Cow::Borrowed(c.outcome.status()),
            tag,
            sqlstate,
            error,
            rows_returned: c.rows_returned,
            rows_affected: c.rows_affected,
            duration_us: u64::try_from(c.duration.as_micros()).unwrap_or(u64::MAX),
            finished_at: to_micros(c.finished_at),
            masked: c.masked.clone(),
        }
    }

    pub(crate) fn open(s: &SessionInfo) -> Self {
        Self::Open {
            id: s.id.0.to_string(),
            identity: s.identity.to_string(),
            groups: s.groups.to_vec(),
            token_id: s.token_id.0.clone(),
            connection: s.connection.to_string(),
            protocol: s.protocol.as_str().to_owned(),
            client: s.client_addr.to_string(),
            claimed_user: s.claimed_user.clone(),
            started_at: to_micros(s.started_at),
            settings: s.settings.clone(),
        }
    }

    pub(crate) fn close(e: &SessionEnd) -> Self {
        Self::Close {
            id: e.id.0.to_string(),
            ended_at: to_micros(e.ended_at),
            reason: e.reason.clone(),
            bytes_from_client: e.bytes_from_client,
            bytes_from_server: e.bytes_from_server,
            recording_sha256: e.recording_sha256.clone(),
        }
    }

    /// Applies an admission and its outcome as one row, both sealed by chain link `seal` (the
    /// batch link they join). If the row is already there (a journal replayed after a crash),
    /// the outcome is applied to it instead.
    ///
    /// Returns whether the admission landed here, and whether its outcome did: each that did
    /// is a member of the batch link.
    pub(crate) fn apply_with_outcome(
        &self,
        db: &mut Db,
        outcome: &Entry,
        seal: i64,
    ) -> Result<(bool, bool), DbError> {
        let row = match (self, outcome) {
            (Self::Admit { .. }, Self::Finish { .. }) => self.entry_row(Some(outcome), Some(seal)),
            _ => None,
        };
        let Some(row) = row else {
            let admitted = self.apply(db, Some(seal))? > 0;
            let finished = outcome.apply(db, Some(seal))? > 0;
            return Ok((admitted, finished));
        };
        if insert_one(db, Inserted::Entry, &row)? == 1 {
            return Ok((true, true));
        }
        Ok((false, outcome.apply(db, Some(seal))? > 0))
    }

    /// The columns of [`Entry::entry_row`], as `audit_entries` names them.
    pub(crate) const ENTRY_COLUMNS: &'static [&'static str] = &[
        "session_id",
        "seq",
        "at",
        "identity",
        "groups_json",
        "connection",
        "protocol",
        "client_addr",
        "statement",
        "params_json",
        "class",
        "verdict",
        "status",
        "tag",
        "sqlstate",
        "error",
        "rows_returned",
        "rows_affected",
        "duration_us",
        "finished_at",
        "rule",
        "approval_id",
        "masked_json",
        "result_masked_json",
        "approved_by",
        "sealed_by",
        "outcome_sealed_by",
    ];

    /// The columns of [`Entry::session_row`], as `sessions` names them.
    pub(crate) const SESSION_COLUMNS: &'static [&'static str] = &[
        "id",
        "identity",
        "groups_json",
        "token_id",
        "connection",
        "protocol",
        "client_addr",
        "claimed_user",
        "started_at",
        "settings_json",
    ];

    /// An admission's `audit_entries` row, with its outcome's columns if the outcome is given
    /// (else NULL, as [`Entry::apply`] leaves them), sealed by the batch link `seal` (the
    /// outcome too, if given): what [`Entry::apply_with_outcome`] and [`Entry::apply`]
    /// insert, for a batch's multi-row INSERT. `None` for other writes.
    pub(crate) fn entry_row<'a>(
        &'a self,
        outcome: Option<&'a Entry>,
        seal: Option<i64>,
    ) -> Option<Vec<Param<'a>>> {
        let Self::Admit {
            session,
            seq,
            at,
            identity,
            groups,
            connection,
            protocol,
            client,
            statement,
            params,
            class,
            verdict,
            rule,
            approval,
            masked,
            approved_by,
        } = self
        else {
            return None;
        };
        let mut row = vec![
            Param::borrowed(session),
            // As `apply` binds them (`as`), so a row reads back as the journal wrote it.
            Param::Int(*seq as i64),
            Param::Int(*at),
            Param::borrowed(identity),
            Param::owned(json(groups)),
            Param::borrowed(connection),
            Param::borrowed(protocol),
            Param::borrowed(client),
            Param::borrowed(statement),
            Param::owned(json(params)),
            Param::borrowed(class),
            Param::borrowed(verdict),
        ];
        match outcome {
            Some(Self::Finish {
                status,
                tag,
                sqlstate,
                error,
                rows_returned,
                rows_affected,
                duration_us,
                finished_at,
                masked: masked_out,
                ..
            }) => row.extend([
                Param::borrowed(status),
                Param::text(tag.as_deref()),
                Param::text(sqlstate.as_deref()),
                Param::text(error.as_deref()),
                Param::Int(*rows_returned as i64),
                Param::int(rows_affected.map(|n| n as i64)),
                Param::Int(i64::try_from(*duration_us).unwrap_or(i64::MAX)),
                Param::Int(*finished_at),
                Param::text(rule.as_deref()),
                Param::text(approval.as_deref()),
                Param::from(masked_json(masked)),
                Param::from(masked_json(masked_out)),
            ]),
            _ => {
                row.extend(std::iter::repeat_n(Param::Null, 8));
                row.extend([
                    Param::text(rule.as_deref()),
                    Param::text(approval.as_deref()),
                    Param::from(masked_json(masked)),
                    Param::Null,
                ]);
            }
        }
        row.push(Param::text(approved_by.as_deref()));
        row.push(Param::int(seal));
        row.push(match outcome {
            Some(Self::Finish { .. }) => Param::int(seal),
            _ => Param::Null,
        });
        Some(row)
    }

    /// A session opening's `sessions` row (see [`Entry::entry_row`]); `None` for other writes.
    pub(crate) fn session_row(&self) -> Option<Vec<Param<'_>>> {
        let Self::Open {
            id,
            identity,
            groups,
            token_id,
            connection,
            protocol,
            client,
            claimed_user,
            started_at,
            settings,
        } = self
        else {
            return None;
        };
        Some(vec![
            Param::borrowed(id),
            Param::borrowed(identity),
            Param::owned(json(groups)),
            Param::borrowed(token_id),
            Param::borrowed(connection),
            Param::borrowed(protocol),
            Param::borrowed(client),
            Param::borrowed(claimed_user),
            Param::Int(*started_at),
            if settings.is_empty() {
                Param::Null
            } else {
                Param::owned(json(settings))
            },
        ])
    }

    /// Applies the write; returns how many rows it changed (0: its row is not there, or it
    /// was applied before). Idempotent, so a journal replayed after a crash that happened
    /// between the database commit and the journal's removal changes nothing twice. An
    /// admission or an outcome records `seal`, the batch link it joins if it lands (see
    /// [`crate::links`]); other writes have links of their own and ignore it.
    pub(crate) fn apply(&self, db: &mut Db, seal: Option<i64>) -> Result<usize, DbError> {
        let changed = match self {
            Self::Admit { .. } | Self::Open { .. } => {
                let (kind, row) = match self {
                    Self::Admit { .. } => (Inserted::Entry, self.entry_row(None, seal)),
                    _ => (Inserted::Session, self.session_row()),
                };
                match row {
                    Some(row) => insert_one(db, kind, &row)?,
                    None => 0,
                }
            }
            Self::Finish {
                session,
                seq,
                status,
                tag,
                sqlstate,
                error,
                rows_returned,
                rows_affected,
                duration_us,
                finished_at,
                masked,
            } => {
                // The result's masking log is kept apart from the admission's (statement and
                // parameters), so each write can be re-read exactly as it was chained. An
                // outcome lands once: replayed, it changes nothing and joins no second link.
                db.execute(
                    "UPDATE audit_entries SET status = ?3, tag = ?4, sqlstate = ?5, error = ?6,
                        rows_returned = ?7, rows_affected = ?8, duration_us = ?9,
                        finished_at = ?10, result_masked_json = ?11, outcome_sealed_by = ?12
                     WHERE session_id = ?1 AND seq = ?2 AND status IS NULL",
                    params![
                        session,
                        *seq as i64,
                        status,
                        tag,
                        sqlstate,
                        error,
                        *rows_returned as i64,
                        rows_affected.map(|n| n as i64),
                        i64::try_from(*duration_us).unwrap_or(i64::MAX),
                        finished_at,
                        masked_json(masked),
                        seal
                    ],
                )?
            }
            Self::Close {
                id,
                ended_at,
                reason,
                bytes_from_client,
                bytes_from_server,
                recording_sha256,
            } => db.execute(
                "UPDATE sessions SET ended_at = ?2, end_reason = ?3, bytes_from_client = ?4,
                        bytes_from_server = ?5, recording_sha256 = ?6
                     WHERE id = ?1",
                params![
                    id,
                    ended_at,
                    reason,
                    *bytes_from_client as i64,
                    *bytes_from_server as i64,
                    recording_sha256
                ],
            )?,
            Self::Event {
                seq,
                at,
                kind,
                subject,
                body,
            } => db.execute(
                "INSERT INTO trail_events (seq, at, kind, subject, body)
                     VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT DO NOTHING",
                params![seq, at, kind, subject, body],
            )?,
        };
        Ok(changed)
    }
}

/// The masking log as stored: `NULL` when nothing was masked.
fn masked_json(log: &MaskLog) -> Option<String> {
    (!log.is_empty()).then(|| json(log))
}

/// JSON text of a list column.
fn json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "[]".into())
}

/// A stored masking log (`NULL` when nothing was masked).
pub(crate) fn mask_log(json: Option<String>) -> std::collections::BTreeMap<String, u64> {
    json.and_then(|j| serde_json::from_str(&j).ok())
        .unwrap_or_default()
}

/// The rows a journaled write inserts: an admission's entry, a session's opening.
#[derive(Debug, Clone, Copy)]
enum Inserted {
    Entry,
    Session,
}

impl Inserted {
    /// The INSERT (unless the row is there: a journal replayed), built once per kind so it is
    /// prepared once per connection.
    fn sql(self) -> &'static str {
        static SQL: std::sync::OnceLock<[String; 2]> = std::sync::OnceLock::new();
        let [entry, session] = SQL.get_or_init(|| {
            let insert = |table: &str, columns: &[&str]| {
                let places: Vec<String> = (1..=columns.len()).map(|n| format!("?{n}")).collect();
                format!(
                    "INSERT INTO {table} ({}) VALUES ({}) ON CONFLICT DO NOTHING",
                    columns.join(", "),
                    places.join(", ")
                )
            };
            [
                insert("audit_entries", Entry::ENTRY_COLUMNS),
                insert("sessions", Entry::SESSION_COLUMNS),
            ]
        });
        match self {
            Self::Entry => entry,
            Self::Session => session,
        }
    }
}

/// Inserts one row of `kind`; returns 1 if it was inserted, 0 if it was there.
fn insert_one(db: &mut Db, kind: Inserted, row: &[Param]) -> Result<usize, DbError> {
    let params: Vec<&dyn crate::db::ToValue> = row.iter().map(|p| p as _).collect();
    db.execute(kind.sql(), &params)
}

/// Writes for the crate's tests.
#[cfg(test)]
pub(crate) mod samples {
    use super::Entry;

    pub(crate) fn admit(session: &str, seq: u64, text: &str) -> Entry {
        Entry::Admit {
            session: session.into(),
            seq,
            at: 1_700_000_000_000_000 + seq as i64,
            identity: "job".into(),
            groups: vec!["batch".into()].into(),
            connection: "db".into(),
            protocol: "postgres".into(),
            client: "127.0.0.1:5000".into(),
            statement: text.into(),
            params: vec![Some("tab\there".into()), None],
            class: "select".into(),
            verdict: "allow".into(),
            rule: None,
            approval: None,
            masked: [("pan".to_owned(), 1)].into_iter().collect(),
            approved_by: None,
        }
    }

    pub(crate) fn finish(session: &str, seq: u64) -> Entry {
        Entry::Finish {
            session: session.into(),
            seq,
            status: "ok".into(),
            tag: Some("SELECT 1".into()),
            sqlstate: None,
            error: None,
            rows_returned: 1,
            rows_affected: None,
            duration_us: 50,
            finished_at: 1_700_000_000_000_100 + seq as i64,
            masked: Default::default(),
        }
    }

    pub(crate) fn open(id: &str) -> Entry {
        Entry::Open {
            id: id.into(),
            identity: "job".into(),
            groups: vec![],
            token_id: "tok_1".into(),
            connection: "db".into(),
            protocol: "postgres".into(),
            client: "127.0.0.1:5000".into(),
            claimed_user: "x".into(),
            started_at: 1_700_000_000_000_000,
            settings: vec![("application_name".into(), "psql".into())],
        }
    }

    pub(crate) fn close(id: &str) -> Entry {
        Entry::Close {
            id: id.into(),
            ended_at: 1_700_000_000_001_000,
            reason: "client terminated".into(),
            bytes_from_client: 10,
            bytes_from_server: 20,
            recording_sha256: Some("ab".repeat(32)),
        }
    }
}
