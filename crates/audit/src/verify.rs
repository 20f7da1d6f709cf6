//! `gatehouse audit verify`: walks the chain and the recordings and names what was altered,
//! removed or inserted (see [`crate::chain`] for how the chain is built).

use std::path::Path;

use rusqlite::Connection;
use serde::Serialize;

use crate::cast::casts_of;
use crate::chain::{content_of, link_hash, sha256, LinkKey, GENESIS};
use crate::entry::Entry;
use crate::error::AuditError;
use crate::recording::{file_sha256, recording_path};

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
    /// Where the chain starts (0 unless a purge removed its oldest links).
    pub anchor_seq: i64,
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
        _ => format!("purge record #{}", key.entry_seq),
    }
}

/// Verifies the chain of the database on `conn` and the recordings in `recordings`.
pub fn verify(
    conn: &Connection,
    chain: &crate::chain::ChainKey,
    recordings: &Path,
) -> Result<VerifyReport, AuditError> {
    let mut report = VerifyReport::default();
    let anchor: Option<(i64, String)> = conn
        .query_row(
            "SELECT seq, sha256 FROM chain_anchor WHERE id = 1",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .ok();
    let (mut expected_seq, mut prev) = match anchor.clone() {
        Some((seq, hash)) => (seq + 1, hash),
        None => (1, GENESIS.to_owned()),
    };
    report.anchor_seq = expected_seq - 1;
    // Purge cutoffs by the purge link's sequence, to check the links they claim (a purge's
    // link comes after the links it marks).
    let mut cutoffs: std::collections::HashMap<i64, PurgeCover> = std::collections::HashMap::new();
    {
        let mut stmt = conn.prepare("SELECT seq, content FROM audit_chain WHERE kind = 'purge'")?;
        let purges = stmt.query_map([], |r| {
            Ok((r.get::<_, i64>(0)?, r.get::<_, Option<String>>(1)?))
        })?;
        for purge in purges {
            let (seq, record) = purge?;
            let record = record.and_then(|r| serde_json::from_str::<serde_json::Value>(&r).ok());
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
                seq,
                PurgeCover {
                    cutoff,
                    sessions,
                    events,
                },
            );
        }
    }
    let mut stmt = conn.prepare(
        "SELECT seq, kind, session_id, entry_seq, at, content_sha256, prev_sha256, sha256,
                purged_by, content
         FROM audit_chain ORDER BY seq",
    )?;
    let mut rows = stmt.query([])?;
    while let Some(r) = rows.next()? {
        let kind: String = r.get(1)?;
        let link = Link {
            seq: r.get(0)?,
            key: LinkKey {
                kind: match kind.as_str() {
                    "admit" => "admit",
                    "finish" => "finish",
                    "open" => "open",
                    "close" => "close",
                    "purge" => "purge",
                    "event" => "event",
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
        };
        report.links += 1;
        if link.seq != expected_seq {
            report.problems.push(format!(
                "removed: chain links {}..{} are missing (the writes they sealed were deleted \
                 with them)",
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
        check_write(conn, &link, &cutoffs, &mut report)?;
        prev = link.sha256;
        expected_seq = link.seq + 1;
    }
    drop(rows);
    drop(stmt);
    if let Some((seq, hash)) = &anchor {
        // An anchor is only ever set by a purge, which names it in its record.
        let named = conn
            .prepare("SELECT content FROM audit_chain WHERE kind = 'purge'")?
            .query_map([], |r| r.get::<_, Option<String>>(0))?
            .filter_map(Result::ok)
            .flatten()
            .filter_map(|c| serde_json::from_str::<serde_json::Value>(&c).ok())
            .any(|v| v["anchor_seq"].as_i64() == Some(*seq) && v["anchor_sha256"] == *hash);
        if !named {
            report.problems.push(format!(
                "altered: the chain starts at an anchor (link {seq}) that no purge created — \
                 older links were removed"
            ));
        }
    }
    find_inserted(conn, &mut report)?;
    crate::events::check_state(conn, &mut report)?;
    check_recordings(conn, recordings, &mut report)?;
    Ok(report)
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
    fn covers(&self, purge_seq: i64, link: &Link) -> bool {
        if link.key.kind == "event" {
            return self.events && purge_seq > link.seq;
        }
        let listed = match &self.sessions {
            None => true,
            Some(ids) => link.key.session == "retention" || ids.contains(&link.key.session),
        };
        purge_seq > link.seq && link.key.at < self.cutoff && listed
    }
}

/// Re-reads the write a link seals and compares it.
fn check_write(
    conn: &Connection,
    link: &Link,
    cutoffs: &std::collections::HashMap<i64, PurgeCover>,
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
            Some(cover) if cover.covers(purge, link) => {}
            _ => report.problems.push(format!(
                "removed: {} is gone and marked purged, but no purge covers it",
                describe(&link.key)
            )),
        }
        return Ok(());
    }
    report.writes_checked += 1;
    match Entry::load(conn, link.key.kind, &link.key.session, link.key.entry_seq)? {
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

/// Rows the chain does not know: written around the gateway.
fn find_inserted(conn: &Connection, report: &mut VerifyReport) -> Result<(), AuditError> {
    let checks = [
        (
            "SELECT a.session_id, a.seq FROM audit_entries a WHERE NOT EXISTS
               (SELECT 1 FROM audit_chain c WHERE c.kind = 'admit'
                  AND c.session_id = a.session_id AND c.entry_seq = a.seq)",
            "an audit entry",
        ),
        (
            "SELECT a.session_id, a.seq FROM audit_entries a WHERE a.status IS NOT NULL
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
        let mut stmt = conn.prepare(sql)?;
        let found = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in found {
            let (session, seq) = row?;
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
fn check_recordings(
    conn: &Connection,
    dir: &Path,
    report: &mut VerifyReport,
) -> Result<(), AuditError> {
    let mut stmt = conn.prepare(
        "SELECT id, recording_sha256, protocol FROM sessions WHERE recording_sha256 IS NOT NULL",
    )?;
    let sealed = stmt.query_map([], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, String>(2)?,
        ))
    })?;
    for row in sealed {
        let (session, seal, protocol) = row?;
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

impl crate::SqliteStore {
    /// `audit verify` of this store: the chain, the recordings in `recordings`, and the
    /// journal's refused segments. A store with no chain key yet has nothing chained: an empty
    /// chain, unless links are there after all (then the missing key is the problem).
    pub fn verify(&self, recordings: &Path) -> Result<VerifyReport, AuditError> {
        let conn = crate::schema::open(self.path())?;
        let mut report = match crate::chain::ChainKey::existing(self.path())? {
            Some(key) => verify(&conn, &key, recordings)?,
            None => {
                let links: i64 =
                    conn.query_row("SELECT count(*) FROM audit_chain", [], |r| r.get(0))?;
                let mut report = VerifyReport::default();
                if links > 0 {
                    report.problems.push(format!(
                        "the chain key {} is missing: none of the {links} links can be checked",
                        crate::chain::ChainKey::path_for(self.path()).display()
                    ));
                }
                report
            }
        };
        report
            .problems
            .extend(crate::journal::problems(self.path()));
        Ok(report)
    }
}
