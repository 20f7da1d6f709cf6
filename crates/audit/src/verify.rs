//! `gatehouse audit verify`: walks the chain and the recordings and names what was altered,
//! removed or inserted (see [`crate::chain`] for how the chain is built).

use std::collections::HashMap;
use std::path::Path;

use serde::Serialize;

use crate::cast::casts_of;
use crate::chain::{content_of, instances, link_hash, sha256, Chain, GENESIS};
use crate::db::{params, Db, OptionalExtension};
use crate::entry::Entry;
use crate::entry::LinkKey;
use crate::error::AuditError;
use crate::links::{members, BATCH};
use crate::recording_file::{file_sha256, recording_path};

/// What verification found.
#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    /// Links walked.
    pub links: u64,
    /// Writes re-read and matched against their links.
    pub writes_checked: u64,
    /// Links whose rows a purge removed (their hashes still chain).
    pub purged_links: u64,
    /// Purges found in the chain.
    pub purges: u64,
    /// Sealed recordings checked.
    pub recordings_checked: u64,
    /// Sealed terminal casts checked (named, with their hash, in a sealed recording).
    #[serde(default)]
    pub casts_checked: u64,
    /// Where the chain starts (0 unless a purge removed its oldest links); of the first
    /// chain walked, when the store holds several.
    pub anchor_seq: i64,
    /// The chains walked: one per gateway instance that wrote to the store (`""` for a SQLite
    /// store's one chain).
    #[serde(default)]
    pub chains: Vec<String>,
    /// Everything that does not hold, each a sentence naming the thing.
    pub problems: Vec<String>,
}

impl VerifyReport {
    /// Whether everything held.
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

struct Link {
    seq: i64,
    key: LinkKey,
    content_sha256: String,
    prev_sha256: String,
    sha256: String,
    purged_by: Option<i64>,
    content: Option<String>,
}

fn describe(key: &LinkKey) -> String {
    match key.kind {
        "admit" => format!(
            "audit entry #{} of session {} (its admission)",
            key.entry_seq, key.session
        ),
        "finish" => format!(
            "audit entry #{} of session {} (its outcome)",
            key.entry_seq, key.session
        ),
        "open" => format!("session {} (its opening)", key.session),
        "close" => format!("session {} (its end)", key.session),
        "event" => format!("trail event #{} (of {})", key.entry_seq, key.session),
        "batch" => format!("batch link #{}", key.entry_seq),
        _ => format!("purge record #{}", key.entry_seq),
    }
}

/// How many rows say each batch link sealed them, as the links list them (by link number,
/// all chains together: rows name a link by its number alone).
#[derive(Default)]
struct Sealed {
    admissions: HashMap<i64, u64>,
    outcomes: HashMap<i64, u64>,
}

/// Verifies every chain of the database on `db` (with the store's key) and the recordings
/// in `recordings`.
pub fn verify(
    db: &mut Db,
    key: &crate::chain::ChainKey,
    recordings: &Path,
) -> Result<VerifyReport, AuditError> {
    let mut report = VerifyReport::default();
    let base = Chain {
        key: key.clone(),
        instance: String::new(),
    };
    let chains = instances(db)?;
    let mut sealed = Sealed::default();
    for (i, instance) in chains.iter().enumerate() {
        let anchor_seq = verify_chain(db, &base.of(instance), &mut sealed, &mut report)?;
        if i == 0 {
            report.anchor_seq = anchor_seq;
        }
    }
    report.chains = chains;
    find_inserted(db, &mut report)?;
    find_unlisted(db, &sealed, &mut report)?;
    let state = crate::events::check_state(db)?;
    report.problems.extend(state);
    check_recordings(db, recordings, &mut report)?;
    Ok(report)
}

/// Walks one chain, link by link; returns where it starts.
fn verify_chain(
    db: &mut Db,
    chain: &Chain,
    sealed: &mut Sealed,
    report: &mut VerifyReport,
) -> Result<i64, AuditError> {
    let before = report.problems.len();
    let anchor: Option<(i64, String)> = db
        .query_row(
            "SELECT seq, sha256 FROM chain_anchors WHERE instance = ?1",
            params![chain.instance],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .optional()?;
    let (mut expected_seq, mut prev) = match anchor.clone() {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_owned()),
    };
    let anchor_seq = expected_seq - 1;
    // Purge cutoffs by the purge link's sequence, to check the links they claim (a purge's
    // link comes after the links it marks).
    let mut cutoffs: HashMap<i64, PurgeCover> = HashMap::new();
    let purges: Vec<(i64, Option<String>)> = db.query_map(
        "SELECT seq, content FROM audit_chain WHERE instance = ?1 AND kind = 'purge'",
        params![chain.instance],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (seq, record) in &purges {
        let record = record
            .as_deref()
            .and_then(|r| serde_json::from_str::<serde_json::Value>(r).ok());
        let cutoff = record
            .as_ref()
            .and_then(|v| v["cutoff_us"].as_i64())
            .unwrap_or(i64::MIN);
        // Purges recorded before manifests were kept cover by their cutoff alone.
        let sessions = record.as_ref().and_then(|v| {
            v["sessions_purged"].as_array().map(|ids| {
                ids.iter()
                    .filter_map(|id| id.as_str().map(str::to_owned))
                    .collect()
            })
        });
        let events = record
            .as_ref()
            .is_some_and(|v| v["events_carried_forward"] == true);
        cutoffs.insert(
            *seq,
            PurgeCover {
                cutoff,
                sessions,
                events,
            },
        );
    }
    // The links are read in pages, each checked against its rows before the next page.
    let mut after = anchor_seq;
    loop {
        let page: Vec<Link> = db.query_map(
            "SELECT seq, kind, session_id, entry_seq, at, content_sha256, prev_sha256, sha256,
                    purged_by, content
             FROM audit_chain WHERE instance = ?1 AND seq > ?2 ORDER BY seq LIMIT 1000",
            params![chain.instance, after],
            |r| {
                let kind: String = r.get(1)?;
                Ok(Link {
                    seq: r.get(0)?,
                    key: LinkKey {
                        kind: match kind.as_str() {
                            "admit" => "admit",
                            "finish" => "finish",
                            "open" => "open",
                            "close" => "close",
                            "purge" => "purge",
                            "event" => "event",
                            "batch" => BATCH,
                            _ => "unknown",
                        },
                        session: r.get(2)?,
                        entry_seq: r.get(3)?,
                        at: r.get(4)?,
                    },
                    content_sha256: r.get(5)?,
                    prev_sha256: r.get(6)?,
                    sha256: r.get(7)?,
                    purged_by: r.get(8)?,
                    content: r.get(9)?,
                })
            },
        )?;
        let Some(last) = page.last() else { break };
        after = last.seq;
        for link in page {
            report.links += 1;
            if link.seq != expected_seq {
                report.problems.push(format!(
                    "removed: chain links {}..{} are missing (the writes they sealed were \
                     deleted with them)",
                    expected_seq,
                    link.seq - 1
                ));
            } else if link.prev_sha256 != prev {
                report.problems.push(format!(
                    "chain broken at link {}: it does not follow link {} (a link was altered, \
                     removed or inserted)",
                    link.seq,
                    link.seq - 1
                ));
            }
            if link_hash(chain, &link.prev_sha256, &link.key, &link.content_sha256) != link.sha256 {
                report.problems.push(format!(
                    "altered: chain link {} ({}) does not hash to what it says",
                    link.seq,
                    describe(&link.key)
                ));
            }
            if link.key.kind == BATCH {
                check_members(db, &link, &cutoffs, sealed, report)?;
            } else {
                check_write(db, &link, &cutoffs, report)?;
            }
            prev = link.sha256;
            expected_seq = link.seq + 1;
        }
    }
    if let Some((seq, hash)) = &anchor {
        // An anchor is only ever set by a purge, which names it in its record.
        let named = purges
            .iter()
            .filter_map(|(_, c)| c.as_deref())
            .filter_map(|c| serde_json::from_str::<serde_json::Value>(c).ok())
            .any(|v| v["anchor_seq"].as_i64() == Some(*seq) && v["anchor_sha256"] == *hash);
        if !named {
            report.problems.push(format!(
                "altered: the chain starts at an anchor (link {seq}) that no purge created — \
                 older links were removed"
            ));
        }
    }
    if !chain.instance.is_empty() {
        for problem in report.problems.iter_mut().skip(before) {
            *problem = format!("chain of instance {}: {problem}", chain.instance);
        }
    }
    Ok(anchor_seq)
}

/// What a purge may have removed: links older than its cutoff, of the sessions its manifest
/// lists (or of the `retention` pseudo-session).
struct PurgeCover {
    cutoff: i64,
    sessions: Option<std::collections::HashSet<String>>,
    /// It chained every credential's and decision's state again after itself, superseding
    /// the event links before it.
    events: bool,
}

impl PurgeCover {
    /// Whether the purge with link `purge_seq` may have removed the write `key`, sealed by
    /// link `link_seq`.
    fn covers(&self, purge_seq: i64, link_seq: i64, key: &LinkKey) -> bool {
        if key.kind == "event" {
            return self.events && purge_seq > link_seq;
        }
        let listed = match &self.sessions {
            None => true,
            Some(ids) => key.session == "retention" || ids.contains(&key.session),
        };
        purge_seq > link_seq && key.at < self.cutoff && listed
    }
}

/// Re-reads the write a link seals and compares it.
fn check_write(
    db: &mut Db,
    link: &Link,
    cutoffs: &HashMap<i64, PurgeCover>,
    report: &mut VerifyReport,
) -> Result<(), AuditError> {
    if link.key.kind == "purge" {
        report.purges += 1;
        let record = link.content.as_deref().unwrap_or_default();
        if sha256(record.as_bytes()) != link.content_sha256 {
            report.problems.push(format!(
                "altered: the record of purge #{} does not match its link",
                link.seq
            ));
        }
        return Ok(());
    }
    if let Some(purge) = link.purged_by {
        report.purged_links += 1;
        match cutoffs.get(&purge) {
            Some(cover) if cover.covers(purge, link.seq, &link.key) => {}
            _ => report.problems.push(format!(
                "removed: {} is gone and marked purged, but no purge covers it",
                describe(&link.key)
            )),
        }
        return Ok(());
    }
    report.writes_checked += 1;
    match Entry::load(db, link.key.kind, &link.key.session, link.key.entry_seq)? {
        None => report
            .problems
            .push(format!("removed: {} is missing", describe(&link.key))),
        Some(entry) => {
            if sha256(&content_of(&entry)?) != link.content_sha256 {
                report.problems.push(format!(
                    "altered: {} differs from what was sealed at {}",
                    describe(&link.key),
                    gatehouse_core::time::display(gatehouse_core::time::from_micros(link.key.at))
                ));
            }
        }
    }
    Ok(())
}

/// Re-reads each write a batch link lists and compares it; a write whose row is gone must be
/// one a purge removed.
fn check_members(
    db: &mut Db,
    link: &Link,
    cutoffs: &HashMap<i64, PurgeCover>,
    sealed: &mut Sealed,
    report: &mut VerifyReport,
) -> Result<(), AuditError> {
    let content = link.content.as_deref().unwrap_or_default();
    if sha256(content.as_bytes()) != link.content_sha256 {
        report.problems.push(format!(
            "altered: the list of writes of chain link {} does not match its link",
            link.seq
        ));
        return Ok(());
    }
    if link.purged_by.is_some() {
        report.purged_links += 1;
    }
    for member in members(content) {
        let Some((key, hash)) = member else {
            report.problems.push(format!(
                "altered: chain link {} lists a write it cannot name",
                link.seq
            ));
            continue;
        };
        match Entry::load(db, key.kind, &key.session, key.entry_seq)? {
            Some(entry) => {
                report.writes_checked += 1;
                let count = match key.kind {
                    "admit" => &mut sealed.admissions,
                    _ => &mut sealed.outcomes,
                };
                *count.entry(link.seq).or_default() += 1;
                if sha256(&content_of(&entry)?) != hash {
                    report.problems.push(format!(
                        "altered: {} differs from what was sealed at {}",
                        describe(&key),
                        gatehouse_core::time::display(gatehouse_core::time::from_micros(key.at))
                    ));
                }
            }
            None if cutoffs
                .iter()
                .any(|(purge, cover)| cover.covers(*purge, link.seq, &key)) => {}
            None if link.purged_by.is_some() => report.problems.push(format!(
                "removed: {} is gone and marked purged, but no purge covers it",
                describe(&key)
            )),
            None => report
                .problems
                .push(format!("removed: {} is missing", describe(&key))),
        }
    }
    Ok(())
}

/// Rows that name a batch link which does not list them (inserted, or moved from another
/// link), and links whose rows no longer name them.
fn find_unlisted(
    db: &mut Db,
    sealed: &Sealed,
    report: &mut VerifyReport,
) -> Result<(), AuditError> {
    let checks = [
        (
            "sealed_by",
            "",
            &sealed.admissions,
            "admit",
            "an audit entry",
        ),
        (
            "outcome_sealed_by",
            " AND status IS NOT NULL",
            &sealed.outcomes,
            "finish",
            "an outcome",
        ),
    ];
    for (column, filter, want, kind, what) in checks {
        let found: Vec<(i64, i64)> = db.query_map(
            &format!(
                "SELECT {column}, count(*) FROM audit_entries WHERE {column} IS NOT NULL{filter}
                 GROUP BY {column}"
            ),
            params![],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let mut seen = 0usize;
        for (seq, rows) in found {
            let listed = want.get(&seq).copied().unwrap_or(0);
            seen += usize::from(listed > 0);
            let rows = u64::try_from(rows).unwrap_or(0);
            if rows > listed {
                name_unlisted(db, column, kind, what, seq, report)?;
            } else if rows < listed {
                report.problems.push(format!(
                    "altered: {} rows sealed by chain link {seq} no longer name it",
                    listed - rows
                ));
            }
        }
        if seen < want.len() {
            report.problems.push(format!(
                "altered: {} chain links list rows of which none names its link",
                want.len() - seen
            ));
        }
    }
    Ok(())
}

/// Names the rows that say chain link `seq` sealed them but that no link `seq` lists.
fn name_unlisted(
    db: &mut Db,
    column: &str,
    kind: &str,
    what: &str,
    seq: i64,
    report: &mut VerifyReport,
) -> Result<(), AuditError> {
    let lists: Vec<Option<String>> = db.query_map(
        "SELECT content FROM audit_chain WHERE kind = 'batch' AND seq = ?1",
        params![seq],
        |r| r.get(0),
    )?;
    let listed: std::collections::HashSet<(String, i64)> = lists
        .iter()
        .flat_map(|c| members(c.as_deref().unwrap_or_default()))
        .flatten()
        .filter(|(key, _)| key.kind == kind)
        .map(|(key, _)| (key.session, key.entry_seq))
        .collect();
    let rows: Vec<(String, i64)> = db.query_map(
        &format!("SELECT session_id, seq FROM audit_entries WHERE {column} = ?1"),
        params![seq],
        |r| Ok((r.get(0)?, r.get(1)?)),
    )?;
    for (session, entry_seq) in rows {
        if !listed.contains(&(session.clone(), entry_seq)) {
            report.problems.push(format!(
                "inserted: {what} #{entry_seq} of session {session} that the chain never sealed"
            ));
        }
    }
    Ok(())
}

/// Rows the chain does not know: written around the gateway.
fn find_inserted(db: &mut Db, report: &mut VerifyReport) -> Result<(), AuditError> {
    let checks = [
        (
            "SELECT a.session_id, a.seq FROM audit_entries a
             WHERE a.sealed_by IS NULL AND NOT EXISTS
               (SELECT 1 FROM audit_chain c WHERE c.kind = 'admit'
                  AND c.session_id = a.session_id AND c.entry_seq = a.seq)",
            "an audit entry",
        ),
        (
            "SELECT a.session_id, a.seq FROM audit_entries a WHERE a.status IS NOT NULL
               AND a.outcome_sealed_by IS NULL
               AND NOT EXISTS (SELECT 1 FROM audit_chain c WHERE c.kind = 'finish'
                  AND c.session_id = a.session_id AND c.entry_seq = a.seq)",
            "an outcome",
        ),
        (
            "SELECT s.id, 0 FROM sessions s WHERE NOT EXISTS
               (SELECT 1 FROM audit_chain c WHERE c.kind = 'open' AND c.session_id = s.id)",
            "a session",
        ),
        (
            "SELECT e.subject, e.seq FROM trail_events e WHERE NOT EXISTS
               (SELECT 1 FROM audit_chain c WHERE c.kind = 'event' AND c.entry_seq = e.seq)",
            "a trail event of",
        ),
    ];
    for (sql, what) in checks {
        let found = db.query_map(sql, params![], |r| {
            Ok((r.get::<String>(0)?, r.get::<i64>(1)?))
        })?;
        for (session, seq) in found {
            report.problems.push(if seq == 0 {
                format!("inserted: {what} {session} that the chain never sealed")
            } else {
                format!("inserted: {what} #{seq} of session {session} that the chain never sealed")
            });
        }
    }
    Ok(())
}

/// Every sealed recording must hash to its seal, and every cast it seals to its line.
fn check_recordings(db: &mut Db, dir: &Path, report: &mut VerifyReport) -> Result<(), AuditError> {
    let sealed: Vec<(String, String, String)> = db.query_map(
        "SELECT id, recording_sha256, protocol FROM sessions WHERE recording_sha256 IS NOT NULL",
        params![],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
    )?;
    for (session, seal, protocol) in sealed {
        report.recordings_checked += 1;
        let path = recording_path(dir, &session);
        match file_sha256(&path) {
            // Only SSH sessions have terminals; reading every SQL recording twice would
            // double what verification reads.
            Ok(hash) if hash == seal && protocol == "ssh" => check_casts(dir, &session, report),
            Ok(hash) if hash == seal => {}
            Ok(_) => report.problems.push(format!(
                "altered: the recording of session {session} ({}) no longer matches its seal",
                path.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => report.problems.push(format!(
                "removed: the recording of session {session} ({}) is missing",
                path.display()
            )),
            Err(e) => report.problems.push(format!(
                "unreadable: the recording of session {session} ({}): {e}",
                path.display()
            )),
        }
    }
    Ok(())
}

/// The casts a sealed (so authentic) recording names must hash to what it says.
fn check_casts(dir: &Path, session: &str, report: &mut VerifyReport) {
    let casts = match casts_of(dir, session) {
        Ok(casts) => casts,
        Err(e) => {
            report.problems.push(format!(
                "unreadable: the casts of session {session} could not be listed: {e}"
            ));
            return;
        }
    };
    for cast in casts {
        let path = dir.join(&cast.file);
        let Some(seal) = cast.seal else {
            report.problems.push(format!(
                "unsealed: the cast of channel {} of session {session} ({}) was never sealed \
                 (its writing failed)",
                cast.channel,
                path.display()
            ));
            continue;
        };
        report.casts_checked += 1;
        match file_sha256(&path) {
            Ok(hash) if hash == seal.sha256 => {}
            Ok(_) => report.problems.push(format!(
                "altered: the cast of channel {} of session {session} ({}) no longer matches \
                 its seal",
                cast.channel,
                path.display()
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => report.problems.push(format!(
                "removed: the cast of channel {} of session {session} ({}) is missing",
                cast.channel,
                path.display()
            )),
            Err(e) => report.problems.push(format!(
                "unreadable: the cast of channel {} of session {session} ({}): {e}",
                cast.channel,
                path.display()
            )),
        }
    }
}
