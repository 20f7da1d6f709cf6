//! Retention (PCI DSS 10.5.1): sessions that ended before the cutoff are removed with their
//! audit entries and recordings, and approval requests asked before it, in one transaction
//! that also chains a purge record (what, how many, the cutoff, by whom) and keeps the chain
//! verifiable (see [`crate::chain`]). The purge is itself an audit entry, listed like any
//! other under the pseudo-session `retention`.

use std::path::Path;
use std::time::SystemTime;

use gatehouse_core::time::{display, to_micros};
use serde::Serialize;

use crate::cast::casts_of;
use crate::chain::{append_purge, instances, Chain};
use crate::db::{params, Backend, Begin, Db};
use crate::entry::Entry;
use crate::error::AuditError;
use crate::links::members;
use crate::recording_file::recording_path;
use crate::store::Store;

/// Sessions removed per transaction.
pub const PURGE_BATCH: usize = 500;

/// What a purge removed.
#[derive(Debug, Default, Clone, Serialize)]
pub struct PurgeReport {
    /// Everything that ended before this was removed (RFC 3339).
    pub cutoff: String,
    /// Sessions removed.
    pub sessions: u64,
    /// Audit entries removed.
    pub entries: u64,
    /// Approval requests removed.
    pub approvals: u64,
    /// Recording files removed (terminal casts included).
    pub recordings: u64,
    /// The oldest record still held after the purge (RFC 3339), if any.
    pub oldest_kept: Option<String>,
}

impl Store {
    /// When the oldest session still held started (RFC 3339).
    pub fn oldest_session(&self) -> Result<Option<String>, AuditError> {
        self.read(|db| {
            Ok(db
                .query_row("SELECT MIN(started_at) FROM sessions", params![], |r| {
                    r.get::<Option<i64>>(0)
                })?
                .map(|us| display(gatehouse_core::time::from_micros(us))))
        })
    }

    /// Removes what ended before `cutoff`; `by` is recorded as who ran it, `now` as when.
    ///
    /// Works in batches of [`PURGE_BATCH`] sessions, each its own transaction (and its own
    /// chained purge record), so a large first purge never holds the store's write lock long
    /// enough to stall the gateway's audit writes.
    pub fn purge(
        &self,
        cutoff: SystemTime,
        now: SystemTime,
        by: &str,
        recordings: &Path,
    ) -> Result<PurgeReport, AuditError> {
        let (mut db, chain) = self.admin()?;
        let mut total = PurgeReport {
            cutoff: display(cutoff),
            ..PurgeReport::default()
        };
        loop {
            let batch = self.purge_batch(&mut db, &chain, cutoff, now, by, recordings)?;
            total.sessions += batch.sessions;
            total.entries += batch.entries;
            total.approvals += batch.approvals;
            total.recordings += batch.recordings;
            total.oldest_kept = batch.oldest_kept.clone();
            if batch.sessions < PURGE_BATCH as u64 {
                return Ok(total);
            }
        }
    }

    fn purge_batch(
        &self,
        db: &mut Db,
        chain: &Chain,
        cutoff: SystemTime,
        now: SystemTime,
        by: &str,
        recordings: &Path,
    ) -> Result<PurgeReport, AuditError> {
        let cutoff_us = to_micros(cutoff);
        let mut tx = db.transaction(Begin::Immediate)?;
        if tx.backend() == Backend::Postgres {
            // Every instance runs the retention schedule: one purge at a time.
            tx.execute_batch("SELECT pg_advisory_xact_lock(7406319617363713)")?;
        }
        // A session's time is its end; a session that never recorded one (the gateway died)
        // ends with its last entry.
        let doomed: Vec<(String, String)> = tx.query_map(
            "SELECT s.id, s.protocol FROM sessions s WHERE COALESCE(s.ended_at,
                (SELECT MAX(a.at) FROM audit_entries a WHERE a.session_id = s.id),
                s.started_at) < ?1 AND s.id <> 'retention'
             LIMIT ?2",
            params![cutoff_us, PURGE_BATCH],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        tx.execute_batch(
            "CREATE TEMP TABLE IF NOT EXISTS doomed (id TEXT PRIMARY KEY); DELETE FROM doomed;",
        )?;
        for (id, _) in &doomed {
            tx.execute(
                "INSERT INTO doomed (id) VALUES (?1) ON CONFLICT DO NOTHING",
                params![id],
            )?;
        }
        let entries = tx.execute(
            "DELETE FROM audit_entries WHERE session_id IN (SELECT id FROM doomed)
                OR (session_id = 'retention' AND at < ?1)",
            params![cutoff_us],
        )?;
        let sessions = tx.execute(
            "DELETE FROM sessions WHERE id IN (SELECT id FROM doomed)",
            params![],
        )?;
        let approvals = tx.execute(
            "DELETE FROM approvals WHERE requested_at < ?1",
            params![cutoff_us],
        )?;
        let mut report = PurgeReport {
            cutoff: display(cutoff),
            sessions: sessions as u64,
            entries: entries as u64,
            approvals: approvals as u64,
            ..PurgeReport::default()
        };
        if sessions + entries + approvals == 0 {
            // Nothing past the period: no purge happened, so none is recorded.
            drop(tx);
            report.oldest_kept = self.oldest_session()?;
            return Ok(report);
        }
        let now_us = to_micros(now);
        // The manifest: which sessions this purge removed. `audit verify` accepts a link as
        // purged by it only if the link's session is listed here, so marking a live session's
        // links with an old purge does not hide their deletion.
        let mut manifest: Vec<&str> = doomed.iter().map(|(id, _)| id.as_str()).collect();
        manifest.sort_unstable();
        // Each chain gets its own purge link over its own links (several gateways on one
        // store each have one); this process's chain then carries the trail events forward.
        let mut chains = instances(&mut tx)?;
        if !chains.contains(&chain.instance) {
            chains.push(chain.instance.clone());
        }
        for instance in chains {
            purge_chain(
                &mut tx,
                &chain.of(&instance),
                &manifest,
                cutoff_us,
                now_us,
                by,
                &report,
            )?;
        }
        crate::events::carry_forward(&mut tx, chain)?;
        // The purge as an audit entry, chained like any other, numbered after the last one
        // (never reused, even after older purge entries are purged).
        let seq: i64 = tx.query_row(
            "SELECT COALESCE(MAX(seq), 0) + 1 FROM (
                SELECT MAX(seq) AS seq FROM audit_entries WHERE session_id = 'retention'
                UNION ALL SELECT MAX(seq) FROM audit_chain WHERE instance = ?1) AS last",
            params![chain.instance],
            |r| r.get(0),
        )?;
        let statement = format!(
            "PURGE before {}: {} sessions, {} audit entries, {} approval requests (retention)",
            report.cutoff, report.sessions, report.entries, report.approvals
        );
        let written = [
            Entry::Admit {
                session: "retention".into(),
                seq: seq as u64,
                at: now_us,
                identity: by.into(),
                groups: std::sync::Arc::from([]),
                connection: "-".into(),
                protocol: "gatehouse".into(),
                client: "-".into(),
                statement,
                params: Vec::new(),
                class: "retention".into(),
                verdict: "allow".into(),
                rule: None,
                approval: None,
                masked: Default::default(),
                approved_by: None,
            },
            Entry::Finish {
                session: "retention".into(),
                seq: seq as u64,
                status: "ok".into(),
                tag: Some(format!("PURGE {}", report.entries)),
                sqlstate: None,
                error: None,
                rows_returned: 0,
                rows_affected: Some(report.entries),
                duration_us: 0,
                finished_at: now_us,
                masked: Default::default(),
            },
        ];
        crate::links::apply_linked(&mut tx, chain, &written, &[])?;
        report.oldest_kept = tx
            .query_row(
                "SELECT MIN(started_at) FROM sessions WHERE id <> 'retention'",
                params![],
                |r| r.get::<Option<i64>>(0),
            )?
            .map(|us| display(gatehouse_core::time::from_micros(us)));
        tx.commit()?;
        for (id, protocol) in &doomed {
            // The casts first: the session's recording names them.
            if protocol == "ssh" {
                report.recordings += remove_casts(recordings, id);
            }
            match std::fs::remove_file(recording_path(recordings, id)) {
                Ok(()) => report.recordings += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => tracing::warn!(session = %id, error = %e, "recording not removed"),
            }
        }
        Ok(report)
    }
}

/// One chain's part of a purge: its links of what was removed are marked with its purge
/// link, which records the purge; its oldest run of purged links goes, and the chain then
/// starts from an anchor the record names.
fn purge_chain(
    tx: &mut Db,
    chain: &Chain,
    manifest: &[&str],
    cutoff_us: i64,
    now_us: i64,
    by: &str,
    report: &PurgeReport,
) -> Result<(), AuditError> {
    // The purge's link comes next; the links of what it removes are marked with it.
    let (last, _) = crate::chain::head(tx, chain)?;
    let purge = last + 1;
    tx.execute(
        "UPDATE audit_chain SET purged_by = ?1
         WHERE instance = ?3 AND purged_by IS NULL AND kind <> 'purge'
           AND (session_id IN (SELECT id FROM doomed)
                OR (session_id = 'retention' AND at < ?2))",
        params![purge, cutoff_us, chain.instance],
    )?;
    // A batch link is purged once none of the writes it lists is left.
    let batches: Vec<(i64, Option<String>)> = tx.query_map(
        "SELECT seq, content FROM audit_chain
         WHERE instance = ?1 AND kind = 'batch' AND purged_by IS NULL AND at < ?2",
        params![chain.instance, cutoff_us],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (seq, content) in batches {
        if !any_write_left(tx, content.as_deref().unwrap_or_default())? {
            tx.execute(
                "UPDATE audit_chain SET purged_by = ?1 WHERE instance = ?2 AND seq = ?3",
                params![purge, chain.instance, seq],
            )?;
        }
    }
    // Trail events are carried forward: the purge chains the current state of every
    // credential and decision again after its own record, so the old event links (and rows)
    // can go with the purged run instead of pinning the chain's start forever.
    tx.execute(
        "UPDATE audit_chain SET purged_by = ?1
         WHERE instance = ?2 AND purged_by IS NULL AND kind = 'event'",
        params![purge, chain.instance],
    )?;
    let first_kept: Option<i64> = tx.query_row(
        "SELECT MIN(seq) FROM audit_chain WHERE instance = ?1 AND purged_by IS NULL",
        params![chain.instance],
        |r| r.get(0),
    )?;
    let anchor: Option<(i64, String)> = match first_kept {
        Some(first) => tx
            .query_row(
                "SELECT seq - 1, prev_sha256 FROM audit_chain WHERE instance = ?1 AND seq = ?2",
                params![chain.instance, first],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok(),
        None => tx
            .query_row(
                "SELECT seq, sha256 FROM audit_chain WHERE instance = ?1
                 ORDER BY seq DESC LIMIT 1",
                params![chain.instance],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .ok(),
    }
    .filter(|(seq, _)| *seq > 0);
    let record = serde_json::json!({
        "purge": "retention",
        "sessions_purged": manifest,
        "events_carried_forward": true,
        "cutoff_us": cutoff_us,
        "cutoff": report.cutoff,
        "at": gatehouse_core::time::display(gatehouse_core::time::from_micros(now_us)),
        "by": by,
        "sessions": report.sessions,
        "entries": report.entries,
        "approvals": report.approvals,
        "anchor_seq": anchor.as_ref().map(|(s, _)| *s),
        "anchor_sha256": anchor.as_ref().map(|(_, h)| h.clone()),
    })
    .to_string();
    let appended = append_purge(tx, chain, &record, now_us)?;
    if appended != purge {
        return Err(AuditError::Corrupt(format!(
            "the chain moved during a purge (link {appended}, expected {purge})"
        )));
    }
    // The superseded events' rows go with their links (their state is chained again).
    tx.execute(
        "DELETE FROM trail_events WHERE seq IN (SELECT entry_seq FROM audit_chain
            WHERE instance = ?2 AND kind = 'event' AND purged_by = ?1)",
        params![purge, chain.instance],
    )?;
    if let Some((seq, hash)) = &anchor {
        tx.execute(
            "DELETE FROM audit_chain WHERE instance = ?1 AND seq <= ?2",
            params![chain.instance, seq],
        )?;
        tx.execute(
            "INSERT INTO chain_anchors (instance, seq, sha256) VALUES (?1, ?2, ?3)
             ON CONFLICT (instance) DO UPDATE SET seq = excluded.seq, sha256 = excluded.sha256",
            params![chain.instance, seq, hash],
        )?;
    }
    Ok(())
}

/// Whether any write a batch link lists still has its row (a line that does not read as one
/// counts as left: such a link is never taken for purged).
fn any_write_left(tx: &mut Db, content: &str) -> Result<bool, AuditError> {
    for member in members(content) {
        let Some((key, _)) = member else {
            return Ok(true);
        };
        let sql = match key.kind {
            "finish" => {
                "SELECT 1 FROM audit_entries WHERE session_id = ?1 AND seq = ?2
                   AND status IS NOT NULL"
            }
            _ => "SELECT 1 FROM audit_entries WHERE session_id = ?1 AND seq = ?2",
        };
        if tx.exists(sql, params![key.session, key.entry_seq])? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Removes the casts a session's recording names; how many were removed.
fn remove_casts(recordings: &Path, session: &str) -> u64 {
    let casts = match casts_of(recordings, session) {
        Ok(casts) => casts,
        Err(AuditError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
            return 0
        }
        Err(e) => {
            tracing::warn!(session = %session, error = %e, "casts not listed, not removed");
            return 0;
        }
    };
    let mut removed = 0;
    for cast in casts {
        match std::fs::remove_file(recordings.join(&cast.file)) {
            Ok(()) => removed += 1,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => tracing::warn!(session = %session, error = %e, "cast not removed"),
        }
    }
    removed
}
