//! A segment applied as a batch: its rows and chain links inserted with a few multi-row
//! INSERTs ([`crate::db::Db::insert_rows`]) instead of a statement per write, which is what
//! lets one PostgreSQL store keep up with several gateways (each statement there is a round
//! trip and an executor run).
//!
//! Only for a segment this process journaled (its entries new, their content hashes at hand).
//! Anything unexpected — a row already there — fails the batch, whose transaction then rolls
//! back, and the segment is applied write by write instead ([`crate::writer`]), which is
//! idempotent. The rows and links are the same either way.

use std::collections::HashMap;

use crate::chain::Chain;
use crate::db::Db;
use crate::entry::Entry;
use crate::error::AuditError;
use crate::links::Linker;

/// Applies `entries` (with `hashes`, their journal lines' content hashes, in step) in the
/// open transaction `tx`, linked as [`crate::links::apply_linked`] links them.
pub(crate) fn apply(
    tx: &mut Db,
    chain: &Chain,
    entries: &[Entry],
    hashes: &[String],
) -> Result<(), AuditError> {
    if hashes.len() != entries.len() || hashes.iter().any(String::is_empty) {
        return Err(AuditError::Corrupt(
            "an entry without its content hash: applied write by write".into(),
        ));
    }
    // An admission whose outcome is in the batch is one row with it.
    let mut outcome_of: HashMap<(&str, u64), usize, foldhash::fast::RandomState> =
        HashMap::default();
    for (i, entry) in entries.iter().enumerate() {
        if let Entry::Finish { session, seq, .. } = entry {
            outcome_of.insert((&**session, *seq), i);
        }
    }
    // The sessions first: an end in the batch may be of a session it opens.
    let session_rows: Vec<_> = entries.iter().filter_map(Entry::session_row).collect();
    tx.insert_rows("sessions", Entry::SESSION_COLUMNS, &session_rows)?;
    // Then each write in order, as write by write would: the new admissions' rows are
    // collected (each names the link that seals it) and inserted together at the end — any
    // already there fails the batch. What changes a row already there is applied now, and
    // whether it found its row decides whether it is linked.
    let mut merged = vec![false; entries.len()];
    let mut entry_rows = Vec::new();
    let mut linker = Linker::start(tx, chain)?;
    for ((i, entry), hash) in entries.iter().enumerate().zip(hashes) {
        if merged.get(i).copied().unwrap_or(false) {
            continue;
        }
        match entry {
            Entry::Admit { session, seq, .. } => {
                let outcome = outcome_of
                    .get(&(&**session, *seq))
                    .copied()
                    .filter(|&j| j > i);
                let seal = linker.member_seq();
                entry_rows
                    .extend(entry.entry_row(outcome.and_then(|j| entries.get(j)), Some(seal)));
                linker.member(&entry.link_key(), hash);
                if let Some(j) = outcome {
                    if let Some(m) = merged.get_mut(j) {
                        *m = true;
                    }
                    if let (Some(finish), Some(hash)) = (entries.get(j), hashes.get(j)) {
                        linker.member(&finish.link_key(), hash);
                    }
                }
            }
            Entry::Finish { .. } => {
                if entry.apply(tx, Some(linker.member_seq()))? > 0 {
                    linker.member(&entry.link_key(), hash);
                }
            }
            Entry::Open { .. } => linker.single(tx, &entry.link_key(), hash)?,
            Entry::Event { .. } => {
                entry.apply(tx, None)?;
                linker.single(tx, &entry.link_key(), hash)?;
            }
            Entry::Close { .. } => {
                if entry.apply(tx, None)? > 0 {
                    linker.single(tx, &entry.link_key(), hash)?;
                }
            }
        }
    }
    linker.flush(tx)?;
    tx.insert_rows("audit_entries", Entry::ENTRY_COLUMNS, &entry_rows)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;
    use crate::db::params;
    use crate::entry::samples::{admit, close, finish, open};

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
        // The earlier batch's link; s1's opening, one batch link for every admission and
        // outcome since, s1's end.
        assert_eq!(
            want.iter().filter(|r| r.starts_with("audit_chain")).count(),
            4,
            "{want:#?}"
        );
        let listed = want
            .iter()
            .filter(|r| r.starts_with("audit_chain"))
            .map(|r| r.matches("admit\\t").count() + r.matches("finish\\t").count())
            .sum::<usize>();
        assert_eq!(listed, 7 + 2 * crate::db::COPY_FROM, "{want:#?}");
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
