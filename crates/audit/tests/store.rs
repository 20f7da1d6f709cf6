//! The store through the core's traits, on SQLite or (with `GATEHOUSE_TEST_STORE`) PostgreSQL:
//! receipts mean durable, many concurrent writers share commits, tokens are stored as hashes,
//! revocations are found.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use gatehouse_audit::db::params;
use gatehouse_audit::testing::{fresh_state, on_postgres, open_state};
use gatehouse_audit::{AuditFilter, NewToken};
use gatehouse_core::store::{AuditSink, TokenRegistry};
use gatehouse_core::{
    Classification, CommandCompletion, CommandRecord, Outcome, Protocol, SessionId, SessionInfo,
    StatementClass, TokenHash, TokenId, Verdict,
};

fn session(id: &str) -> SessionInfo {
    SessionInfo {
        id: SessionId(Arc::from(id)),
        identity: Arc::from("job"),
        groups: Arc::from(vec!["batch".to_owned()]),
        token_id: TokenId("tok_1".into()),
        connection: Arc::from("db"),
        protocol: Protocol::Postgres,
        client_addr: "127.0.0.1:5000".parse().unwrap(),
        claimed_user: "x".into(),
        settings: Vec::new(),
        started_at: SystemTime::now(),
    }
}

/// The entries' numbers in the store, in order.
fn audited_seqs(store: &gatehouse_audit::Store) -> Vec<i64> {
    store
        .list_audit(&AuditFilter::default())
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect()
}

fn command(session: &str, seq: u64, text: &str) -> CommandRecord {
    CommandRecord {
        session: SessionId(Arc::from(session)),
        seq,
        at: SystemTime::now(),
        identity: Arc::from("job"),
        groups: Arc::from(vec!["batch".to_owned()]),
        connection: Arc::from("db"),
        protocol: Protocol::Postgres,
        client: Arc::from("127.0.0.1:5000"),
        text: text.into(),
        params: vec![Some("1".into()), None],
        classes: Classification::of(&[StatementClass::Select]),
        verdict: Verdict::Allow,
        rule: None,
        approval: None,
        masked: Default::default(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_admissions_are_all_durable_and_outcomes_land() {
    let dir = tempfile::tempdir().unwrap();
    let state = fresh_state(dir.path()).unwrap();
    let store = Arc::new(
        open_state(&state, dir.path())
            .unwrap()
            .start_writer()
            .unwrap(),
    );
    store.session_opened(&session("s1")).await.unwrap();
    let mut tasks = Vec::new();
    for worker in 0..8u64 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            for i in 0..50u64 {
                let seq = worker * 1000 + i;
                store
                    .command_admitted(command("s1", seq, "SELECT $1, $2"))
                    .await
                    .unwrap();
                store.command_finished(CommandCompletion {
                    session: SessionId(Arc::from("s1")),
                    seq,
                    outcome: Outcome::Completed {
                        tag: "SELECT 1".into(),
                    },
                    rows_returned: 1,
                    rows_affected: Some(1),
                    duration: Duration::from_micros(10),
                    finished_at: SystemTime::now(),
                    masked: Default::default(),
                });
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    store.flush().await.unwrap();
    // A second, independent connection (as the CLI would open) sees every entry.
    let reader = open_state(&state, dir.path()).unwrap();
    let rows = reader.list_audit(&AuditFilter::default()).unwrap();
    assert_eq!(rows.len(), 400);
    assert!(rows
        .iter()
        .all(|r| r.status.as_deref() == Some("ok") && r.rows_returned == Some(1)));
    assert_eq!(rows[0].params, vec![Some("1".to_owned()), None]);
    assert_eq!(reader.list_sessions(None).unwrap()[0].commands, 400);
    // Every write was chained as the tables hold it (admissions with and without their
    // outcome in the same batch alike).
    let verified = reader.verify(&dir.path().join("recordings")).unwrap();
    assert!(verified.ok(), "{:?}", verified.problems);
    assert_eq!(verified.writes_checked, 801);
    // The opening has a link of its own; the admissions and outcomes share one link per
    // batch the ingest applied, far fewer than one each.
    assert!(
        (2..=100).contains(&verified.links),
        "{} links",
        verified.links
    );
}

#[tokio::test]
async fn admissions_queued_together_are_written_by_the_first_wait_and_none_is_lost_unwaited() {
    let dir = tempfile::tempdir().unwrap();
    let state = fresh_state(dir.path()).unwrap();
    let store = open_state(&state, dir.path()).unwrap();
    let writer = store.start_writer().unwrap();
    writer.session_opened(&session("s")).await.unwrap();
    // A flight: three admissions queued before any is waited on (as sessions on one thread
    // queue theirs while another waits).
    let first = writer.command_admitted(command("s", 1, "SELECT 1"));
    let second = writer.command_admitted(command("s", 2, "SELECT 2"));
    let third = writer.command_admitted(command("s", 3, "SELECT 3"));
    // (Not asserted unanswered here: the store's ticker also appends what is queued.)
    assert!(first.is_deferred(), "only queued");
    third.await.unwrap();
    // The wait on the third wrote the others queued before it: durable, never polled.
    assert!(first.is_answered() && second.is_answered());
    assert!(matches!(first.await, Ok(())));
    assert!(matches!(second.await, Ok(())));
    // One whose wait is given up unpolled (a client gone) is written all the same.
    drop(writer.command_admitted(command("s", 4, "SELECT 4")));
    writer.flush().await.unwrap();
    let seqs = audited_seqs(&store);
    assert_eq!(
        seqs,
        vec![1, 2, 3, 4],
        "the one dropped unwaited was written too"
    );
}

#[tokio::test]
async fn a_database_refusing_writes_refuses_new_commands_and_loses_nothing_journaled() {
    let dir = tempfile::tempdir().unwrap();
    let state = fresh_state(dir.path()).unwrap();
    let store = open_state(&state, dir.path()).unwrap();
    let writer = store.start_writer().unwrap();
    writer
        .command_admitted(command("s", 1, "SELECT 1"))
        .await
        .unwrap();
    writer.flush().await.unwrap();
    let mut db = store.connect().unwrap();
    db.execute_batch(if on_postgres() {
        "CREATE FUNCTION refuse() RETURNS trigger AS $$
           BEGIN RAISE EXCEPTION 'disk full'; END $$ LANGUAGE plpgsql;
         CREATE TRIGGER refuse BEFORE INSERT ON audit_entries
           FOR EACH ROW EXECUTE FUNCTION refuse();"
    } else {
        "CREATE TRIGGER refuse BEFORE INSERT ON audit_entries
           BEGIN SELECT RAISE(ABORT, 'disk full'); END"
    })
    .unwrap();
    // Journaled before the database refuses: durable, and kept.
    writer
        .command_admitted(command("s", 2, "SELECT 2"))
        .await
        .unwrap();
    writer.flush().await.unwrap();
    let refused = writer.command_admitted(command("s", 3, "SELECT 3")).await;
    let refused = refused.unwrap_err().0;
    assert!(refused.contains("disk full"), "{refused}");
    db.execute_batch(if on_postgres() {
        "DROP TRIGGER refuse ON audit_entries"
    } else {
        "DROP TRIGGER refuse"
    })
    .unwrap();
    writer.flush().await.unwrap();
    writer
        .command_admitted(command("s", 4, "SELECT 4"))
        .await
        .unwrap();
    writer.flush().await.unwrap();
    let seqs = audited_seqs(&store);
    assert_eq!(seqs, vec![1, 2, 4]);
}

#[tokio::test]
async fn tokens_are_stored_hashed_found_by_hash_and_revocations_seen() {
    let dir = tempfile::tempdir().unwrap();
    let state = fresh_state(dir.path()).unwrap();
    let store = open_state(&state, dir.path()).unwrap();
    let _writer = store.start_writer().unwrap();
    let (id, secret) = store
        .create_token(&NewToken {
            identity: "etl".into(),
            groups: vec!["batch".into()],
            connections: vec!["db".into()],
            expires_at: None,
            created_by: "test".into(),
        })
        .unwrap();
    // No column of any row holds the secret.
    let rows: Vec<String> = store
        .read(|db| {
            Ok(db.query_map(
                "SELECT id || hash || identity || groups_json || connections_json || created_by
                 FROM tokens",
                params![],
                |r| r.get(0),
            )?)
        })
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert!(!rows[0].contains(&secret), "the token is stored in clear");
    if !on_postgres() {
        // Nor any byte of the SQLite file or its log.
        let raw = std::fs::read(dir.path().join("gatehouse.db")).unwrap();
        let wal = std::fs::read(dir.path().join("gatehouse.db-wal")).unwrap_or_default();
        let needle = secret.as_bytes();
        let contains = |hay: &[u8]| hay.windows(needle.len()).any(|w| w == needle);
        assert!(
            !contains(&raw) && !contains(&wal),
            "the token is stored in clear"
        );
    }

    let found = store
        .find_by_hash(&TokenHash::of(&secret))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(found.id, id);
    assert_eq!(found.identity.groups, vec!["batch".to_owned()]);
    assert_eq!(found.connections, vec!["db".to_owned()]);
    assert!(store
        .find_by_hash(&TokenHash::of("gh_other"))
        .await
        .unwrap()
        .is_none());

    let before = SystemTime::now() - Duration::from_secs(1);
    store.revoke_token(&id.0, "test").unwrap();
    let revoked = store.revoked_since(before).await.unwrap();
    assert_eq!(
        revoked.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>(),
        vec![id.clone()]
    );
    assert!(!store
        .find_by_hash(&TokenHash::of(&secret))
        .await
        .unwrap()
        .unwrap()
        .is_valid_at(SystemTime::now()));
    assert!(store.revoke_token("tok_nope", "test").is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_purge_goes_in_batches_and_the_chain_still_verifies() {
    let dir = tempfile::tempdir().unwrap();
    let state = fresh_state(dir.path()).unwrap();
    let store = open_state(&state, dir.path()).unwrap();
    let writer = store.start_writer().unwrap();
    let n = gatehouse_audit::retention::PURGE_BATCH + 120;
    for i in 0..n {
        let id = format!("s{i}");
        writer.session_opened(&session(&id)).await.unwrap();
        writer
            .command_admitted(command(&id, 1, "SELECT 1"))
            .await
            .unwrap();
        writer
            .session_closed(&gatehouse_core::SessionEnd {
                id: SessionId(Arc::from(id.as_str())),
                ended_at: SystemTime::now(),
                reason: "client terminated".into(),
                bytes_from_client: 1,
                bytes_from_server: 1,
                recording_sha256: None,
            })
            .await
            .unwrap();
    }
    writer.flush().await.unwrap();
    let later = SystemTime::now() + Duration::from_secs(3600);
    let report = store
        .purge(
            later - Duration::from_secs(1),
            later,
            "test",
            &dir.path().join("recordings"),
        )
        .unwrap();
    assert_eq!(report.sessions as usize, n);
    assert_eq!(report.entries as usize, n);
    let verified = store.verify(&dir.path().join("recordings")).unwrap();
    assert!(verified.ok(), "{:?}", verified.problems);
    assert_eq!(verified.purges, 2, "one purge record per batch");
    let purges = store
        .list_audit(&AuditFilter::default())
        .unwrap()
        .into_iter()
        .filter(|r| r.statement.starts_with("PURGE"))
        .count();
    assert_eq!(purges, 2);

    // Rows deleted later cannot hide under an old purge: a session written after it (so
    // before its far cutoff) is removed and its links marked as purged by it.
    writer.session_opened(&session("late")).await.unwrap();
    writer
        .command_admitted(command("late", 1, "DELETE FROM cards"))
        .await
        .unwrap();
    writer.flush().await.unwrap();
    let mut conn = store.connect().unwrap();
    let first_purge: i64 = conn
        .query_row(
            "SELECT MIN(seq) FROM audit_chain WHERE kind = 'purge'",
            params![],
            |r| r.get(0),
        )
        .unwrap();
    conn.execute_batch(&format!(
        "DELETE FROM audit_entries WHERE session_id = 'late';
         DELETE FROM sessions WHERE id = 'late';
         UPDATE audit_chain SET purged_by = {first_purge} WHERE session_id = 'late';"
    ))
    .unwrap();
    let verified = store.verify(&dir.path().join("recordings")).unwrap();
    assert!(
        verified
            .problems
            .iter()
            .any(|p| p.contains("session late") && p.contains("no purge covers it")),
        "{:?}",
        verified.problems
    );
}
