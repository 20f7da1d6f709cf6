//! Reads for the evidence package (`gatehouse evidence`): a period's counts, its masking log,
//! its approval trail, and the identity and token register. Plain JSON values: the package
//! writes them as JSON Lines and CSV without caring about their shape.

use std::collections::BTreeMap;
use std::time::SystemTime;

use gatehouse_core::time::{display, from_micros, to_micros};
use serde::Serialize;
use serde_json::{json, Value};

use crate::db::{params, Db};
use crate::entry::mask_log;
use crate::error::AuditError;
use crate::store::Store;

/// Counts of a period, for the report.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PeriodCounts {
    /// Audit entries admitted in the period.
    pub entries: u64,
    /// Sessions opened in the period (refused attempts included).
    pub sessions: u64,
    /// Of those, refused at opening (bad token, forbidden connection).
    pub refused_sessions: u64,
    /// Distinct identities that opened a session.
    pub identities: u64,
    /// Of those, authenticated by an OIDC JWT.
    pub jwt_identities: u64,
    /// Distinct connections used.
    pub connections: u64,
    /// Entries per verdict.
    pub verdicts: BTreeMap<String, u64>,
    /// Entries per statement class.
    pub classes: BTreeMap<String, u64>,
    /// Entries per status (`ok`, `error`, `not-run`, or `unknown`).
    pub statuses: BTreeMap<String, u64>,
    /// Values masked.
    pub masked_values: u64,
    /// Entries in which something was masked.
    pub masked_entries: u64,
    /// Approval requests per state.
    pub approvals: BTreeMap<String, u64>,
    /// Purges (retention runs that removed something).
    pub purges: u64,
}

/// One entry's identity and masking log.
type IdentityMasks = (String, BTreeMap<String, u64>);

fn range(from: SystemTime, to: SystemTime) -> (i64, i64) {
    (to_micros(from), to_micros(to))
}

impl Store {
    /// The counts of `[from, to)`.
    pub fn period_counts(
        &self,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<PeriodCounts, AuditError> {
        let (from, to) = range(from, to);
        self.read(|db| {
            let mut c = PeriodCounts::default();
            let mut one = |sql: &str| -> Result<u64, AuditError> {
                Ok(db.query_row(sql, params![from, to], |r| r.get::<i64>(0))? as u64)
            };
            c.entries = one("SELECT count(*) FROM audit_entries WHERE at >= ?1 AND at < ?2")?;
            c.sessions =
                one("SELECT count(*) FROM sessions WHERE started_at >= ?1 AND started_at < ?2")?;
            c.refused_sessions = one(
                "SELECT count(*) FROM sessions WHERE started_at >= ?1 AND started_at < ?2
                   AND end_reason LIKE 'refused:%'",
            )?;
            c.identities = one(
                "SELECT count(DISTINCT identity) FROM sessions WHERE started_at >= ?1
                   AND started_at < ?2 AND identity <> '-' AND end_reason NOT LIKE 'refused:%'",
            )?;
            c.jwt_identities = one(
                "SELECT count(DISTINCT identity) FROM sessions WHERE started_at >= ?1
                   AND started_at < ?2 AND token_id LIKE 'jwt_%'",
            )?;
            c.connections = one(
                "SELECT count(DISTINCT connection) FROM audit_entries WHERE at >= ?1 AND at < ?2
                   AND session_id <> 'retention'",
            )?;
            c.purges = one(
                "SELECT count(*) FROM audit_entries WHERE at >= ?1 AND at < ?2
                   AND session_id = 'retention'",
            )?;
            for (column, map) in [
                ("verdict", &mut c.verdicts),
                ("class", &mut c.classes),
                ("COALESCE(status, 'unknown')", &mut c.statuses),
            ] {
                let rows = db.query_map(
                    &format!(
                        "SELECT {column}, count(*) FROM audit_entries WHERE at >= ?1 AND at < ?2
                         GROUP BY 1"
                    ),
                    params![from, to],
                    |r| Ok((r.get::<String>(0)?, r.get::<u64>(1)?)),
                )?;
                map.extend(rows);
            }
            let rows = db.query_map(
                "SELECT state, count(*) FROM approvals WHERE requested_at >= ?1
                   AND requested_at < ?2 GROUP BY 1",
                params![from, to],
                |r| Ok((r.get::<String>(0)?, r.get::<u64>(1)?)),
            )?;
            c.approvals.extend(rows);
            for row in masking_log_rows(db, from, to)? {
                let total: u64 = row.1.values().sum();
                if total > 0 {
                    c.masked_entries += 1;
                    c.masked_values += total;
                }
            }
            Ok(c)
        })
    }

    /// The masking log of `[from, to)`: per masked field and identity, how many values in how
    /// many commands.
    pub fn masking_log(&self, from: SystemTime, to: SystemTime) -> Result<Vec<Value>, AuditError> {
        let (from, to) = range(from, to);
        self.read(|db| {
            let mut by: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
            for (identity, log) in masking_log_rows(db, from, to)? {
                for (field, n) in log {
                    let slot = by.entry((field, identity.clone())).or_default();
                    slot.0 += n;
                    slot.1 += 1;
                }
            }
            Ok(by
                .into_iter()
                .map(|((field, identity), (values, commands))| {
                    json!({"field": field, "identity": identity, "values_masked": values,
                           "commands": commands})
                })
                .collect())
        })
    }

    /// The approval trail of `[from, to)`: request, approvers, decision, who, why, execution.
    pub fn approval_trail(
        &self,
        from: SystemTime,
        to: SystemTime,
    ) -> Result<Vec<Value>, AuditError> {
        let (from, to) = range(from, to);
        let t = |us: Option<i64>| us.map(|us| display(from_micros(us)));
        self.read(|db| {
            Ok(db.query_map(
                "SELECT id, requested_at, identity, connection, rule, statement, class,
                        approvers_json, state, decided_by, decided_at, reason, executed_at,
                        executed_session, executed_seq
                 FROM approvals WHERE requested_at >= ?1 AND requested_at < ?2
                 ORDER BY requested_at",
                params![from, to],
                |r| {
                Ok(json!({
                    "id": r.get::<String>(0)?,
                    "requested_at": t(r.get(1)?),
                    "identity": r.get::<String>(2)?,
                    "connection": r.get::<String>(3)?,
                    "rule": r.get::<String>(4)?,
                    "statement": r.get::<String>(5)?,
                    "class": r.get::<String>(6)?,
                    "approvers": serde_json::from_str::<Value>(&r.get::<String>(7)?).unwrap_or(Value::Null),
                    "state": r.get::<String>(8)?,
                    "decided_by": r.get::<Option<String>>(9)?,
                    "decided_at": t(r.get(10)?),
                    "reason": r.get::<Option<String>>(11)?,
                    "executed_at": t(r.get(12)?),
                    "executed_session": r.get::<Option<String>>(13)?,
                    "executed_seq": r.get::<Option<i64>>(14)?,
                }))
                },
            )?)
        })
    }

    /// The identity and credential register: every token (never its secret) and registered SSH
    /// key (its fingerprint), who issued it, its groups and scope, expiry and revocation.
    pub fn token_register(&self) -> Result<Vec<Value>, AuditError> {
        let t = |us: Option<i64>| us.map(|us| display(from_micros(us)));
        let now = to_micros(SystemTime::now());
        self.read(|db| {
            Ok(db.query_map(
                "SELECT id, identity, groups_json, connections_json, created_at, created_by,
                        expires_at, revoked_at, revoked_by, kind, fingerprint
                 FROM tokens ORDER BY created_at",
                params![],
                |r| {
                let expires: Option<i64> = r.get(6)?;
                let revoked: Option<i64> = r.get(7)?;
                let state = if revoked.is_some() {
                    "revoked"
                } else if expires.is_some_and(|e| e <= now) {
                    "expired"
                } else {
                    "active"
                };
                Ok(json!({
                    "id": r.get::<String>(0)?,
                    "kind": r.get::<String>(9)?,
                    "fingerprint": r.get::<Option<String>>(10)?,
                    "identity": r.get::<String>(1)?,
                    "groups": serde_json::from_str::<Value>(&r.get::<String>(2)?).unwrap_or(Value::Null),
                    "connections": serde_json::from_str::<Value>(&r.get::<String>(3)?).unwrap_or(Value::Null),
                    "issued_at": t(r.get(4)?),
                    "issued_by": r.get::<String>(5)?,
                    "expires_at": t(expires),
                    "revoked_at": t(revoked),
                    "revoked_by": r.get::<Option<String>>(8)?,
                    "state": state,
                }))
                },
            )?)
        })
    }
}

/// Each entry's masking log (statement and result together), with its identity.
fn masking_log_rows(db: &mut Db, from: i64, to: i64) -> Result<Vec<IdentityMasks>, AuditError> {
    Ok(db.query_map(
        "SELECT identity, masked_json, result_masked_json FROM audit_entries
         WHERE at >= ?1 AND at < ?2
           AND (masked_json IS NOT NULL OR result_masked_json IS NOT NULL)",
        params![from, to],
        |r| {
            let mut log = mask_log(r.get(1)?);
            for (k, v) in mask_log(r.get(2)?) {
                *log.entry(k).or_default() += v;
            }
            Ok((r.get::<String>(0)?, log))
        },
    )?)
}
