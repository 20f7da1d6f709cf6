//! How writes become chain links (see [`crate::chain`] for what a link is).
//!
//! A session's opening and end, a trail event and a purge each get a link of their own. The
//! admissions and outcomes a transaction applies — nearly every write — are sealed together
//! by one **batch link**, whose content lists each of them with its content hash, one line
//! each (`kind`, session, entry number, time, SHA-256, tab-separated), and whose row is the
//! only chain row the batch adds. Each row names the batch link that sealed it
//! (`sealed_by`, `outcome_sealed_by`), so `audit verify` still re-reads and checks every write
//! on its own, finds a row no link lists, and a purge can tell when every write a link lists
//! is gone. Per write, that is one row and two index entries in the hot table instead of two
//! more rows and six more index entries in the chain's, and one MAC per batch instead of one
//! per write.
//!
//! Links come in the order of the writes: the writes of a batch before the next link of its
//! own, which ends the batch.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::chain::{content_of, head, link_hash, sha256, Chain};
use crate::db::{params, Db};
use crate::entry::{Entry, LinkKey};
use crate::error::AuditError;

/// The kind of a batch link.
pub(crate) const BATCH: &str = "batch";

/// Assigns links, in order, within one transaction that holds the chain's head.
pub(crate) struct Linker<'c> {
    chain: &'c Chain,
    /// The last link written, or reserved by the batch being filled.
    last: i64,
    /// The hash of the last link written.
    prev: String,
    batch: Option<Batch>,
}

/// The batch link being filled.
struct Batch {
    seq: i64,
    content: String,
    at: i64,
}

impl<'c> Linker<'c> {
    /// Takes the chain's head (and, on PostgreSQL, its lock for the transaction).
    pub(crate) fn start(tx: &mut Db, chain: &'c Chain) -> Result<Self, AuditError> {
        let (last, prev) = head(tx, chain)?;
        Ok(Self {
            chain,
            last,
            prev,
            batch: None,
        })
    }

    /// The batch link an admission or outcome that lands now is sealed by (its row records
    /// it before the write is known to land; [`Linker::member`] then joins that link).
    pub(crate) fn member_seq(&self) -> i64 {
        self.batch.as_ref().map_or(self.last + 1, |b| b.seq)
    }

    /// Lists a write that landed in the batch link.
    pub(crate) fn member(&mut self, key: &LinkKey, content_sha256: &str) {
        let batch = match &mut self.batch {
            Some(batch) => batch,
            none => {
                self.last += 1;
                none.insert(Batch {
                    seq: self.last,
                    content: String::new(),
                    at: i64::MIN,
                })
            }
        };
        // Kinds, session ids and hashes hold no tab or newline (the gateway makes them).
        // Written piece by piece: one line per statement, where `format!` cost more than
        // the rest of the line's making.
        let mut n = itoa::Buffer::new();
        let c = &mut batch.content;
        c.push_str(key.kind);
        c.push('\t');
        c.push_str(&key.session);
        c.push('\t');
        c.push_str(n.format(key.entry_seq));
        c.push('\t');
        c.push_str(n.format(key.at));
        c.push('\t');
        c.push_str(content_sha256);
        c.push('\n');
        batch.at = batch.at.max(key.at);
    }

    /// Links a write with a link of its own (after the batch so far). A write already linked
    /// (a journal replayed) gets no second link.
    pub(crate) fn single(
        &mut self,
        tx: &mut Db,
        key: &LinkKey,
        content_sha256: &str,
    ) -> Result<(), AuditError> {
        self.flush(tx)?;
        let hash = link_hash(self.chain, &self.prev, key, content_sha256);
        let added = tx.execute(
            "INSERT INTO audit_chain (instance, seq, kind, session_id, entry_seq, at,
                content_sha256, prev_sha256, sha256)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT DO NOTHING",
            params![
                self.chain.instance,
                self.last + 1,
                key.kind,
                key.session,
                key.entry_seq,
                key.at,
                content_sha256,
                self.prev,
                hash
            ],
        )?;
        if added == 1 {
            self.prev = hash;
            self.last += 1;
        }
        Ok(())
    }

    /// Writes the batch link, if any write joined it.
    pub(crate) fn flush(&mut self, tx: &mut Db) -> Result<(), AuditError> {
        let Some(batch) = self.batch.take() else {
            return Ok(());
        };
        let key = batch_key(self.chain, batch.seq, batch.at);
        let content_sha256 = sha256(batch.content.as_bytes());
        let hash = link_hash(self.chain, &self.prev, &key, &content_sha256);
        tx.execute(
            "INSERT INTO audit_chain (instance, seq, kind, session_id, entry_seq, at,
                content_sha256, prev_sha256, sha256, content)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
            params![
                self.chain.instance,
                batch.seq,
                BATCH,
                key.session,
                key.entry_seq,
                key.at,
                content_sha256,
                self.prev,
                hash,
                batch.content
            ],
        )?;
        self.prev = hash;
        Ok(())
    }
}

/// What a batch link says about itself: its session is the chain's instance and its number
/// its own sequence (as a purge's), so no two links share a key; its time is its last write's.
pub(crate) fn batch_key(chain: &Chain, seq: i64, at: i64) -> LinkKey {
    LinkKey {
        kind: BATCH,
        session: chain.instance.clone(),
        entry_seq: seq,
        at,
    }
}

/// The writes a batch link lists, with their content hashes; `None` for a line that is not
/// one (the content was altered, which its hash also shows).
pub(crate) fn members(content: &str) -> impl Iterator<Item = Option<(LinkKey, &str)>> {
    content.lines().map(|line| {
        let mut f = line.split('\t');
        let kind = match f.next()? {
            "admit" => "admit",
            "finish" => "finish",
            _ => return None,
        };
        let session = f.next()?.to_owned();
        let entry_seq = f.next()?.parse().ok()?;
        let at = f.next()?.parse().ok()?;
        let hash = f.next()?;
        f.next().is_none().then_some((
            LinkKey {
                kind,
                session,
                entry_seq,
                at,
            },
            hash,
        ))
    })
}

/// The SHA-256 of a write's canonical encoding: `sealed`, the hash its journal line was
/// sealed with as this process wrote it, if there is one; else the entry encoded afresh.
pub(crate) fn content_sha256(entry: &Entry, sealed: Option<&String>) -> Result<String, AuditError> {
    match sealed {
        Some(hash) if !hash.is_empty() => Ok(hash.clone()),
        _ => Ok(sha256(&content_of(entry)?)),
    }
}

/// Applies writes one statement each, in the open transaction `tx`, and links them: the
/// admissions and outcomes that land in one batch link, the rest each in its own. `hashes`
/// are the content hashes the writes' journal lines were sealed with, in step with
/// `entries`, or empty (entries read back from disk are encoded afresh, as `verify` does).
///
/// An admission whose outcome is in the same batch (the common case: a command takes less
/// than a tick) is written with it in one INSERT instead of an INSERT and an UPDATE.
pub(crate) fn apply_linked(
    tx: &mut Db,
    chain: &Chain,
    entries: &[Entry],
    hashes: &[String],
) -> Result<(), AuditError> {
    let hashes = (hashes.len() == entries.len()).then_some(hashes);
    let hash = |i: usize| -> Result<Cow<'_, str>, AuditError> {
        match hashes.and_then(|h| h.get(i)).filter(|h| !h.is_empty()) {
            Some(sealed) => Ok(Cow::Borrowed(sealed)),
            None => entries
                .get(i)
                .ok_or_else(|| AuditError::Corrupt("a write out of range".into()))
                .and_then(|entry| content_sha256(entry, None))
                .map(Cow::Owned),
        }
    };
    let mut outcomes: HashMap<(&str, u64), usize, foldhash::fast::RandomState> = HashMap::default();
    for (i, entry) in entries.iter().enumerate() {
        if let Entry::Finish { session, seq, .. } = entry {
            outcomes.insert((&**session, *seq), i);
        }
    }
    let mut merged = vec![false; entries.len()];
    let mut linker = Linker::start(tx, chain)?;
    for (i, entry) in entries.iter().enumerate() {
        if merged.get(i).copied().unwrap_or(false) {
            continue;
        }
        match entry {
            Entry::Admit { session, seq, .. } => {
                let seal = linker.member_seq();
                let outcome = outcomes
                    .get(&(&**session, *seq))
                    .copied()
                    .filter(|&j| j > i)
                    .and_then(|j| entries.get(j).map(|e| (j, e)));
                let (admitted, finished) = match outcome {
                    Some((j, finish)) => {
                        if let Some(m) = merged.get_mut(j) {
                            *m = true;
                        }
                        let (admitted, finished) = entry.apply_with_outcome(tx, finish, seal)?;
                        (admitted, finished.then_some((j, finish)))
                    }
                    None => (entry.apply(tx, Some(seal))? > 0, None),
                };
                if admitted {
                    linker.member(&entry.link_key(), &hash(i)?);
                }
                if let Some((j, finish)) = finished {
                    linker.member(&finish.link_key(), &hash(j)?);
                }
            }
            // An outcome whose row is not there (its admission was refused while the store
            // failed) changed nothing, so nothing is sealed.
            Entry::Finish { .. } => {
                if entry.apply(tx, Some(linker.member_seq()))? > 0 {
                    linker.member(&entry.link_key(), &hash(i)?);
                }
            }
            Entry::Open { .. } | Entry::Event { .. } => {
                entry.apply(tx, None)?;
                linker.single(tx, &entry.link_key(), &hash(i)?)?;
            }
            // Likewise an end without its session.
            Entry::Close { id, .. } => {
                entry.apply(tx, None)?;
                let ended = tx.exists(
                    "SELECT 1 FROM sessions WHERE id = ?1 AND ended_at IS NOT NULL",
                    params![id],
                )?;
                if ended {
                    linker.single(tx, &entry.link_key(), &hash(i)?)?;
                }
            }
        }
    }
    linker.flush(tx)
}

/// Links writes already applied that each have a link of their own (a trail event).
pub(crate) fn append_own(tx: &mut Db, chain: &Chain, entries: &[Entry]) -> Result<(), AuditError> {
    let mut linker = Linker::start(tx, chain)?;
    for entry in entries {
        linker.single(tx, &entry.link_key(), &content_sha256(entry, None)?)?;
    }
    linker.flush(tx)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::chain::ChainKey;
    use crate::db::Begin;
    use crate::entry::samples::{admit, close, finish, open};

    fn store(dir: &std::path::Path) -> (Db, Chain) {
        let mut db = match crate::testing::postgres_server() {
            Some(server) => {
                Db::postgres(&crate::testing::fresh_postgres(&server).unwrap()).unwrap()
            }
            None => crate::schema::open_sqlite(&dir.join("store.db")).unwrap(),
        };
        crate::schema::migrate(&mut db).unwrap();
        let chain = Chain {
            key: ChainKey::load(&dir.join("chain.key"), true, || 0).unwrap(),
            instance: String::new(),
        };
        (db, chain)
    }

    fn problems(db: &mut Db, chain: &Chain, dir: &std::path::Path) -> Vec<String> {
        crate::verify::verify(db, &chain.key, &dir.join("recordings"))
            .unwrap()
            .problems
    }

    fn in_tx(db: &mut Db, f: impl FnOnce(&mut Db)) {
        let mut tx = db.transaction(Begin::Immediate).unwrap();
        f(&mut tx);
        tx.commit().unwrap();
    }

    #[test]
    fn writes_sealed_one_link_each_and_by_batch_links_verify_together_and_tampering_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let (mut db, chain) = store(dir.path());
        // A store written before batch links: each admission and outcome its own link.
        in_tx(&mut db, |tx| {
            let old = [open("s0"), admit("s0", 1, "SELECT 'old'"), finish("s0", 1)];
            for entry in &old {
                entry.apply(tx, None).unwrap();
            }
            append_own(tx, &chain, &old).unwrap();
        });
        // Then batches, as the writer applies them now (s1 without a recording).
        let mut end = close("s1");
        if let Entry::Close {
            recording_sha256, ..
        } = &mut end
        {
            *recording_sha256 = None;
        }
        let writes = [
            vec![
                open("s1"),
                admit("s1", 1, "SELECT 1"),
                admit("s1", 2, "SELECT 2"),
            ],
            vec![
                finish("s1", 1),
                finish("s1", 2),
                admit("s1", 3, "SELECT 3"),
                end,
            ],
        ];
        for batch in &writes {
            in_tx(&mut db, |tx| apply_linked(tx, &chain, batch, &[]).unwrap());
        }
        let report = crate::verify::verify(&mut db, &chain.key, &dir.path().join("recordings"));
        let report = report.unwrap();
        assert!(report.ok(), "{:?}", report.problems);
        // s0: 3 links; s1: its opening, two batches (its end closes the second), its end.
        assert_eq!(report.links, 3 + 4);
        assert_eq!(report.writes_checked, 3 + 1 + 5 + 1);
        // The same batches again (a journal replayed): nothing lands twice, nothing is linked.
        for batch in &writes {
            in_tx(&mut db, |tx| apply_linked(tx, &chain, batch, &[]).unwrap());
        }
        let again = crate::verify::verify(&mut db, &chain.key, &dir.path().join("recordings"));
        assert_eq!(again.unwrap().links, 7);

        let first_batch: i64 = db
            .query_row(
                "SELECT MIN(seq) FROM audit_chain WHERE kind = 'batch'",
                params![],
                |r| r.get(0),
            )
            .unwrap();
        // A row moved to another batch link: the link it left and the one it joined say so.
        db.execute(
            "UPDATE audit_entries SET sealed_by = sealed_by + 2 WHERE session_id = 's1' AND seq = 1",
            params![],
        )
        .unwrap();
        let found = problems(&mut db, &chain, dir.path());
        assert!(
            found.iter().any(|p| p.contains(&format!(
                "sealed by chain link {first_batch} no longer name it"
            ))),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p.contains("inserted: an audit entry #1 of session s1")),
            "{found:?}"
        );
        db.execute(
            "UPDATE audit_entries SET sealed_by = sealed_by - 2 WHERE session_id = 's1' AND seq = 1",
            params![],
        )
        .unwrap();
        assert_eq!(problems(&mut db, &chain, dir.path()), Vec::<String>::new());

        // A row that claims a batch link which never listed it.
        db.execute(
            "INSERT INTO audit_entries (session_id, seq, at, identity, groups_json, connection,
                protocol, client_addr, statement, params_json, class, verdict, sealed_by)
             VALUES ('s1', 99, 0, 'mallory', '[]', 'db', 'postgres', '-', 'SELECT 1', '[]',
                'select', 'allow', ?1)",
            params![first_batch],
        )
        .unwrap();
        let found = problems(&mut db, &chain, dir.path());
        assert_eq!(
            found,
            vec![
                "inserted: an audit entry #99 of session s1 that the chain never sealed".to_owned()
            ]
        );
        db.execute("DELETE FROM audit_entries WHERE seq = 99", params![])
            .unwrap();

        // An outcome erased, an admission altered, and a batch link's list edited.
        db.execute(
            "UPDATE audit_entries SET status = NULL WHERE session_id = 's1' AND seq = 2",
            params![],
        )
        .unwrap();
        db.execute(
            "UPDATE audit_entries SET statement = 'SELECT 33' WHERE session_id = 's1' AND seq = 3",
            params![],
        )
        .unwrap();
        let found = problems(&mut db, &chain, dir.path());
        assert!(
            found
                .iter()
                .any(|p| p == "removed: audit entry #2 of session s1 (its outcome) is missing"),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|p| p
                    .starts_with("altered: audit entry #3 of session s1 (its admission) differs")),
            "{found:?}"
        );
        db.execute(
            "UPDATE audit_chain SET content = replace(content, 'admit', 'finish') WHERE seq = ?1",
            params![first_batch],
        )
        .unwrap();
        let found = problems(&mut db, &chain, dir.path());
        assert!(
            found.iter().any(|p| p.contains(&format!(
                "the list of writes of chain link {first_batch} does not match"
            ))),
            "{found:?}"
        );
    }

    #[test]
    fn a_batch_lines_up_its_writes_and_reads_them_back() {
        let content = "admit\ts1\t1\t10\tab\nfinish\ts1\t1\t12\tcd\nopen\ts1\t0\t9\tef\nadmit\ts1\tx\t1\tff\n";
        let read: Vec<_> = members(content).collect();
        assert_eq!(read.len(), 4);
        let (key, hash) = read[1].clone().unwrap();
        assert_eq!(
            (key.kind, key.session.as_str(), key.entry_seq, key.at, hash),
            ("finish", "s1", 1, 12, "cd")
        );
        assert!(read[2].is_none(), "only admissions and outcomes are listed");
        assert!(read[3].is_none(), "a number that is not one");
    }
}
