//! Heap allocations per statement on the path every statement takes before it is forwarded
//! and after its answer: `Session::admit` of a text the session has read before, the wait for
//! its entry to be durable (the real journal, on SQLite), and `Session::finish` — with the
//! real audit writer and recordings. Counted on this thread only (the ingest and recording
//! threads work apart from the relay), by `allocation-counter`'s allocator.
//!
//! The bound pins today's count: a change that adds allocations to every statement fails
//! here and says how many; one that removes some lowers the bound.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;

use gatehouse_core::testing::{connection, open, MemoryStore};
use gatehouse_core::{Gateway, Outcome, Protocol};

/// Allocations one cached statement makes on the relay's thread, at most (21 since the
/// entries share the session's strings and recording events are encoded by their writer).
const MAX_PER_STATEMENT: u64 = 24;

#[test]
fn a_cached_statement_allocates_at_most_its_pinned_count() {
    let dir = tempfile::tempdir().unwrap();
    let store = gatehouse_audit::testing::fresh_store(dir.path()).unwrap();
    let tokens = Arc::new(MemoryStore::accepting_any_token("bench", &["bench"]));
    let mut parts = tokens.parts(connection("db", Protocol::Postgres, &["bench"]));
    parts.audit = Arc::new(store.start_writer().unwrap());
    parts.recordings =
        Arc::new(gatehouse_audit::FileRecordings::start(&dir.path().join("recordings")).unwrap());
    let gateway = Gateway::new(parts).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let session = runtime.block_on(open(&gateway, "db", Protocol::Postgres));
    let statement = |n: u64| {
        runtime.block_on(async {
            let text = format!("SELECT abalance FROM pgbench_accounts WHERE aid = {n};");
            let admitted = session
                .admit(gatehouse_core::Command::new(text))
                .wait()
                .await
                .unwrap();
            session.finish(
                admitted,
                Outcome::Completed {
                    tag: "SELECT 1".into(),
                },
            );
        })
    };
    // The first reading parses; the rest are the session's cache, as under pgbench.
    for n in 0..50 {
        statement(n);
    }
    const STATEMENTS: u64 = 200;
    let counted = allocation_counter::measure(|| {
        for n in 0..STATEMENTS {
            statement(1000 + n);
        }
    });
    let per_statement = counted.count_total / STATEMENTS;
    eprintln!(
        "allocations per statement: {per_statement} ({} bytes)",
        counted.bytes_total / STATEMENTS
    );
    assert!(
        per_statement <= MAX_PER_STATEMENT,
        "{per_statement} allocations per statement, more than the {MAX_PER_STATEMENT} pinned: \
         something on every statement's path allocates anew"
    );
    assert!(per_statement > 0, "the counting allocator is not installed");
}
