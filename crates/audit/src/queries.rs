//! Listings for the CLI: sessions and audit entries as stored.

use std::time::SystemTime;

use gatehouse_core::time::{from_micros, to_micros};
use serde::Serialize;

use crate::db::{params, DbError, Row};
use crate::error::AuditError;
use crate::store::Store;

/// Which audit entries to list.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// Only entries admitted at or after this time.
    pub since: Option<SystemTime>,
    /// Only entries of this session (a prefix of its id is enough).
    pub session: Option<String>,
    /// At most this many, the newest (all if `None`).
    pub limit: Option<u64>,
}

/// Which sessions to list, a page at a time (the console's sessions page).
#[derive(Debug, Clone, Default)]
pub struct SessionFilter {
    /// Only sessions of this identity.
    pub identity: Option<String>,
    /// Only sessions of this connection.
    pub connection: Option<String>,
    /// Only this wire (`postgres`, `mysql`, `ssh`).
    pub protocol: Option<String>,
    /// Only sessions started at or after this time.
    pub since: Option<SystemTime>,
    /// Only sessions started before this time.
    pub until: Option<SystemTime>,
    /// Only sessions refused at their opening or with a command refused (denied or rejected).
    pub refused: bool,
    /// Only sessions still open (no end recorded).
    pub open: bool,
    /// At most this many, newest first.
    pub limit: u32,
    /// Skipping the newest this many.
    pub offset: u32,
}

/// One audit entry as listed.
#[derive(Debug, Clone, Serialize)]
pub struct AuditRow {
    /// Store row id.
    pub id: i64,
    /// Admission time (RFC 3339).
    pub at: String,
    /// Session id.
    pub session: String,
    /// Sequence within the session.
    pub seq: i64,
    /// Identity.
    pub identity: String,
    /// Identity groups.
    pub groups: Vec<String>,
    /// Connection.
    pub connection: String,
    /// Protocol.
    pub protocol: String,
    /// Client address.
    pub client: String,
    /// Statement text.
    pub statement: String,
    /// Bind parameters.
    pub params: Vec<Option<String>>,
    /// Statement classes (comma separated).
    pub class: String,
    /// Verdict.
    pub verdict: String,
    /// `ok`, `error`, `not-run`, or `None` if the outcome never arrived (gateway killed).
    pub status: Option<String>,
    /// Completion tag.
    pub tag: Option<String>,
    /// SQLSTATE of an error.
    pub sqlstate: Option<String>,
    /// Error message or reason not run.
    pub error: Option<String>,
    /// Rows returned.
    pub rows_returned: Option<i64>,
    /// Rows affected.
    pub rows_affected: Option<i64>,
    /// Duration in microseconds.
    pub duration_us: Option<i64>,
    /// The rule that decided it, if one matched.
    pub rule: Option<String>,
    /// The approval request it went through, if it was held.
    pub approval: Option<String>,
    /// Who approved it, for verdict `approved`.
    pub approved_by: Option<String>,
    /// The masking log: values masked per column or place.
    pub masked: std::collections::BTreeMap<String, u64>,
}

/// One session as listed.
#[derive(Debug, Clone, Serialize)]
pub struct SessionRow {
    /// Session id.
    pub id: String,
    /// Identity (`-` for a refused unknown token).
    pub identity: String,
    /// Identity groups.
    pub groups: Vec<String>,
    /// Token id.
    pub token_id: String,
    /// Connection asked for.
    pub connection: String,
    /// Protocol.
    pub protocol: String,
    /// Client address.
    pub client: String,
    /// User name the client claimed.
    pub claimed_user: String,
    /// Start (RFC 3339).
    pub started_at: String,
    /// End (RFC 3339), `None` while live (or if the gateway died).
    pub ended_at: Option<String>,
    /// Why it ended.
    pub end_reason: Option<String>,
    /// Bytes from the client.
    pub bytes_from_client: Option<i64>,
    /// Bytes from the server.
    pub bytes_from_server: Option<i64>,
    /// Commands audited in it.
    pub commands: i64,
    /// SHA-256 of its recording, sealed at its end.
    pub recording_sha256: Option<String>,
    /// The gateway instance that served it, on a store several share (whose chain holds its
    /// opening).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// The client's startup settings as it sent them (PostgreSQL's startup parameters).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub settings: Vec<(String, String)>,
}

impl Store {
    /// Audit entries matching the filter, oldest first.
    pub fn list_audit(&self, filter: &AuditFilter) -> Result<Vec<AuditRow>, AuditError> {
        let since = filter.since.map(to_micros).unwrap_or(i64::MIN);
        let session = filter
            .session
            .as_deref()
            .map(|s| format!("{}%", s.replace(['%', '_'], "")))
            .unwrap_or_else(|| "%".into());
        let limit = filter
            .limit
            .and_then(|n| i64::try_from(n).ok())
            .unwrap_or(i64::MAX);
        self.read(|db| {
            Ok(db.query_map(
                "SELECT * FROM (
                    SELECT id, at, session_id, seq, identity, groups_json, connection, protocol,
                        client_addr, statement, params_json, class, verdict, status, tag,
                        sqlstate, error, rows_returned, rows_affected, duration_us, rule,
                        approval_id, masked_json, result_masked_json, approved_by
                    FROM audit_entries WHERE at >= ?1 AND session_id LIKE ?2
                    ORDER BY id DESC LIMIT ?3) AS newest
                 ORDER BY id",
                params![since, session, limit],
                audit_row,
            )?)
        })
    }

    /// Sessions started at or after `since`, oldest first.
    pub fn list_sessions(&self, since: Option<SystemTime>) -> Result<Vec<SessionRow>, AuditError> {
        let since = since.map(to_micros).unwrap_or(i64::MIN);
        self.read(|db| {
            Ok(db.query_map(
                &format!("{SESSION_COLUMNS} WHERE s.started_at >= ?1 ORDER BY s.started_at"),
                params![since],
                session_row,
            )?)
        })
    }

    /// A page of the sessions matching the filter, newest first.
    pub fn sessions_page(&self, filter: &SessionFilter) -> Result<Vec<SessionRow>, AuditError> {
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        self.read(|db| {
            Ok(db.query_map(
                &format!(
                    "{SESSION_COLUMNS}
                 WHERE (?1 = '' OR s.identity = ?1) AND (?2 = '' OR s.connection = ?2)
                   AND (?3 = '' OR s.protocol = ?3)
                   AND s.started_at >= ?4 AND s.started_at < ?5
                   AND (?6 = 0 OR s.end_reason LIKE 'refused%' OR EXISTS (
                        SELECT 1 FROM audit_entries r
                        WHERE r.session_id = s.id AND r.verdict IN ('deny', 'rejected')))
                   AND (?7 = 0 OR s.ended_at IS NULL)
                 ORDER BY s.started_at DESC, s.id LIMIT ?8 OFFSET ?9"
                ),
                params![
                    text(&filter.identity),
                    text(&filter.connection),
                    text(&filter.protocol),
                    filter.since.map(to_micros).unwrap_or(i64::MIN),
                    filter.until.map(to_micros).unwrap_or(i64::MAX),
                    filter.refused,
                    filter.open,
                    i64::from(filter.limit),
                    i64::from(filter.offset),
                ],
                session_row,
            )?)
        })
    }

    /// The one session whose id starts with `prefix`.
    pub fn find_session(&self, prefix: &str) -> Result<SessionRow, AuditError> {
        // Compared exactly (LIKE ignores case on SQLite, and treats `%` and `_` as wildcards).
        let length = i64::try_from(prefix.chars().count()).unwrap_or(i64::MAX);
        let mut found: Vec<SessionRow> = self.read(|db| {
            Ok(db.query_map(
                &format!("{SESSION_COLUMNS} WHERE substr(s.id, 1, ?2) = ?1 ORDER BY s.id LIMIT 2"),
                params![prefix, length],
                session_row,
            )?)
        })?;
        match found.len() {
            1 => Ok(found.remove(0)),
            0 => Err(AuditError::NotFound(format!(
                "no session starts with {prefix}; `gatehouse sessions list` shows the ids"
            ))),
            _ => Err(AuditError::NotFound(format!(
                "several sessions start with {prefix}; give more of the id"
            ))),
        }
    }
}

/// The columns [`session_row`] reads, in its order.
const SESSION_COLUMNS: &str = "SELECT s.id, s.identity, s.groups_json, s.token_id, s.connection,
        s.protocol, s.client_addr, s.claimed_user, s.started_at, s.ended_at, s.end_reason,
        s.bytes_from_client, s.bytes_from_server,
        (SELECT count(*) FROM audit_entries a WHERE a.session_id = s.id),
        s.recording_sha256, s.settings_json,
        (SELECT c.instance FROM audit_chain c WHERE c.kind = 'open' AND c.session_id = s.id)
    FROM sessions s";

fn list(text: String) -> Vec<String> {
    serde_json::from_str(&text).unwrap_or_default()
}

fn audit_row(row: &Row<'_>) -> Result<AuditRow, DbError> {
    Ok(AuditRow {
        id: row.get(0)?,
        at: gatehouse_core::time::display(from_micros(row.get(1)?)),
        session: row.get(2)?,
        seq: row.get(3)?,
        identity: row.get(4)?,
        groups: list(row.get(5)?),
        connection: row.get(6)?,
        protocol: row.get(7)?,
        client: row.get(8)?,
        statement: row.get(9)?,
        params: serde_json::from_str(&row.get::<String>(10)?).unwrap_or_default(),
        class: row.get(11)?,
        verdict: row.get(12)?,
        status: row.get(13)?,
        tag: row.get(14)?,
        sqlstate: row.get(15)?,
        error: row.get(16)?,
        rows_returned: row.get(17)?,
        rows_affected: row.get(18)?,
        duration_us: row.get(19)?,
        rule: row.get(20)?,
        approval: row.get(21)?,
        approved_by: row.get(24)?,
        masked: {
            let mut log = crate::entry::mask_log(row.get(22)?);
            for (k, v) in crate::entry::mask_log(row.get(23)?) {
                *log.entry(k).or_default() += v;
            }
            log
        },
    })
}

fn session_row(row: &Row<'_>) -> Result<SessionRow, DbError> {
    let display = |us: i64| gatehouse_core::time::display(from_micros(us));
    Ok(SessionRow {
        id: row.get(0)?,
        identity: row.get(1)?,
        groups: list(row.get(2)?),
        token_id: row.get(3)?,
        connection: row.get(4)?,
        protocol: row.get(5)?,
        client: row.get(6)?,
        claimed_user: row.get(7)?,
        started_at: display(row.get(8)?),
        ended_at: row.get::<Option<i64>>(9)?.map(display),
        end_reason: row.get(10)?,
        bytes_from_client: row.get(11)?,
        bytes_from_server: row.get(12)?,
        commands: row.get(13)?,
        recording_sha256: row.get(14)?,
        instance: row.get::<Option<String>>(16)?.filter(|i| !i.is_empty()),
        settings: row
            .get::<Option<String>>(15)?
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default(),
    })
}
