//! A segment applied as a batch: its rows and chain links inserted with a few multi-row
//! INSERTs ([`crate::db::Db::insert_rows`]) instead of a statement per write, which is what
//! lets one PostgreSQL store keep up with several gateways (each statement there is a round
//! trip and an executor run).
//!
//! Only for a segment this process journaled (its entries new, their content hashes at hand).
//! Anything unexpected — a row or link already there — fails the batch, whose transaction
//! then rolls back, and the segment is applied write by write instead ([`crate::writer`]),
//! which is idempotent. The rows and links are the same either way.

use std::collections::HashMap;

use crate::chain::{head, link_hash, Chain};
use crate::db::{Db, Param};
use crate::entry::Entry;
use crate::error::AuditError;

/// The columns of a chain link.
const LINK_COLUMNS: &[&str] = &[
    "instance",
    "seq",
    "kind",
    "session_id",
    "entry_seq",
    "at",
    "content_sha256",
    "prev_sha256",
    "sha256",
];

/// Applies `entries` (with `hashes`, their journal lines' content hashes, in step) in the
/// open transaction `tx`.
pub(crate) fn apply(
    tx: &mut Db,
    chain: &Chain,
    entries: &[Entry],
    hashes: &[String],
) -> Result<(), AuditError> {
    // An admission whose outcome is in the batch is one row with it.
    let mut outcome_of: HashMap<(&str, u64), usize> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        if let Entry::Finish { session, seq, .. } = entry {
            outcome_of.insert((session.as_str(), *seq), i);
        }
    }
    let mut merged = vec![false; entries.len()];
    let mut entry_rows = Vec::new();
    let mut session_rows = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        match entry {
            Entry::Admit { session, seq, .. } => {
                let outcome = outcome_of
                    .get(&(session.as_str(), *seq))
                    .copied()
                    .filter(|&j| j > i);
                if let Some(j) = outcome {
                    if let Some(m) = merged.get_mut(j) {
                        *m = true;
                    }
                }
                entry_rows.extend(entry.entry_row(outcome.and_then(|j| entries.get(j))));
            }
            Entry::Open { .. } => session_rows.extend(entry.session_row()),
            _ => {}
        }
    }
    tx.insert_rows("sessions", Entry::SESSION_COLUMNS, &session_rows)?;
    tx.insert_rows("audit_entries", Entry::ENTRY_COLUMNS, &entry_rows)?;
    // What changes a row already there, in order; whether it found its row decides whether
    // it is chained (an outcome or an end whose row was never written changed nothing).
    let mut landed = vec![true; entries.len()];
    for (i, entry) in entries.iter().enumerate() {
        let changes = match entry {
            Entry::Finish { .. } => !merged.get(i).copied().unwrap_or(false),
            Entry::Close { .. } | Entry::Event { .. } => true,
            Entry::Admit { .. } | Entry::Open { .. } => false,
        };
        if changes {
            let changed = entry.apply(tx)?;
            if let Some(l) = landed.get_mut(i) {
                *l = changed > 0 || matches!(entry, Entry::Event { .. });
            }
        }
    }
    let (mut seq, mut prev) = head(tx, chain)?;
    let mut links = Vec::with_capacity(entries.len());
    for ((entry, hash), landed) in entries.iter().zip(hashes).zip(landed) {
        if !landed || hash.is_empty() {
            if hash.is_empty() {
                return Err(AuditError::Corrupt(
                    "an entry without its content hash: applied write by write".into(),
                ));
            }
            continue;
        }
        let key = entry.link_key();
        let link = link_hash(chain, &prev, &key, hash);
        seq += 1;
        links.push(vec![
            Param::Text(chain.instance.clone()),
            Param::Int(seq),
            Param::Text(key.kind.to_owned()),
            Param::Text(key.session),
            Param::Int(key.entry_seq),
            Param::Int(key.at),
            Param::Text(hash.clone()),
            Param::Text(std::mem::replace(&mut prev, link.clone())),
            Param::Text(link),
        ]);
    }
    tx.insert_rows("audit_chain", LINK_COLUMNS, &links)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::db::params;

    fn admit(session: &str, seq: u64, text: &str) -> Entry {
        Entry::Admit {
            session: session.into(),
            seq,
            at: 1_700_000_000_000_000 + seq as i64,
            identity: "job".into(),
            groups: vec!["batch".into()],
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

    fn finish(session: &str, seq: u64) -> Entry {
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

    fn open(id: &str) -> Entry {
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

    fn close(id: &str) -> Entry {
        Entry::Close {
            id: id.into(),
            ended_at: 1_700_000_000_001_000,
            reason: "client terminated".into(),
            bytes_from_client: 10,
            bytes_from_server: 20,
            recording_sha256: Some("ab".repeat(32)),
        }
    }

    /// Every row of the tables a batch writes, as text.
    fn dump(db: &mut Db) -> Vec<String> {
        let mut out = Vec::new();
        for table in ["sessions", "audit_entries", "audit_chain"] {
            let sql = format!("SELECT * FROM {table} ORDER BY 1, 2");
            db.query_each(&sql, params![], |row| {
                let mut cells = Vec::new();
                let mut i = 0;
                while let Ok(cell) = row.cell(i) {
                    cells.push(format!("{cell:?}"));
                    i += 1;
                }
                out.push(format!("{table}: {}", cells.join(" | ")));
                Ok(())
            })
            .unwrap();
        }
        out
    }

    #[test]
    fn a_batch_writes_what_write_by_write_writes_and_a_repeat_changes_nothing() {
        // s1: opened, two commands with outcomes, one without, closed; s2: an outcome whose
        // admission was in an earlier batch, and an end for a session never opened.
        let earlier = vec![admit("s2", 1, "SELECT 'earlier'")];
        let mut entries = vec![
            open("s1"),
            admit("s1", 1, "SELECT 1"),
            admit("s1", 2, "SELECT 'x\ny'"),
            finish("s1", 1),
            admit("s1", 3, "SELECT 3"),
            finish("s1", 2),
            finish("s2", 1),
        ];
        // Past `COPY_FROM` rows a table, so PostgreSQL takes them by COPY.
        for seq in 10..(10 + crate::db::COPY_FROM as u64) {
            entries.push(admit("s1", seq, "SELECT '\\ \t \r'"));
            entries.push(finish("s1", seq));
        }
        entries.extend([close("s1"), close("ghost")]);
        let hashes: Vec<String> = entries
            .iter()
            .map(|e| crate::writer::journal_line(e).content_sha256)
            .collect();
        let earlier_hashes: Vec<String> = earlier
            .iter()
            .map(|e| crate::writer::journal_line(e).content_sha256)
            .collect();
        let dir = tempfile::tempdir().unwrap();
        let mut dbs = Vec::new();
        for name in ["batch.db", "each.db"] {
            // On the PostgreSQL server the suite's second run names, else SQLite files.
            let mut db = match crate::testing::postgres_server() {
                Some(server) => {
                    Db::postgres(&crate::testing::fresh_postgres(&server).unwrap()).unwrap()
                }
                None => crate::schema::open_sqlite(&dir.path().join(name)).unwrap(),
            };
            crate::schema::migrate(&mut db).unwrap();
            dbs.push(db);
        }
        let chain = Chain {
            key: crate::chain::ChainKey::load(&dir.path().join("chain.key"), true, || 0).unwrap(),
            instance: String::new(),
        };
        let [batched, each] = dbs.as_mut_slice() else {
            panic!("two databases");
        };
        crate::writer::apply(batched, &chain, &earlier, &earlier_hashes).unwrap();
        crate::writer::apply(each, &chain, &earlier, &[]).unwrap();
        // The batch itself (the writer only batches on PostgreSQL; it reads the same on both).
        {
            let mut tx = batched.transaction(crate::db::Begin::Immediate).unwrap();
            apply(&mut tx, &chain, &entries, &hashes).unwrap();
            tx.commit().unwrap();
        }
        // Entries read back from disk (no hashes) go write by write.
        crate::writer::apply(each, &chain, &entries, &[]).unwrap();
        let want = dump(each);
        assert_eq!(dump(batched), want);
        // An end without its session changed nothing, so nothing chains it.
        assert!(!want.iter().any(|r| r.contains("ghost")), "{want:#?}");
        assert_eq!(
            want.iter().filter(|r| r.starts_with("audit_chain")).count(),
            9 + 2 * crate::db::COPY_FROM
        );
        // The same batch again (a segment retried after its commit went unanswered): the
        // batch fails on its own rows, and write by write changes nothing.
        {
            let mut tx = batched.transaction(crate::db::Begin::Immediate).unwrap();
            assert!(apply(&mut tx, &chain, &entries, &hashes).is_err());
        }
        crate::writer::apply(batched, &chain, &entries, &hashes).unwrap();
        assert_eq!(dump(batched), want);
    }
}
