//! The web console's sign-ins in the store, on SQLite or (with `GATEHOUSE_TEST_STORE`)
//! PostgreSQL: a sign-in opens its token until signed out or expired, the table never holds
//! the token, and a PostgreSQL store made before sign-ins existed gains their table alone.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use gatehouse_audit::db::params;
use gatehouse_audit::testing::{fresh_state, on_postgres, open_state};

#[test]
fn a_sign_in_opens_its_token_until_signed_out_or_expired() {
    let dir = tempfile::tempdir().unwrap();
    let state = fresh_state(dir.path()).unwrap();
    let store = open_state(&state, dir.path()).unwrap();
    let secret = store
        .console_sign_in("gh_the-token", "alice", Duration::from_secs(60))
        .unwrap();
    assert!(secret.starts_with("gc_"), "{secret}");
    assert_eq!(
        store.console_token(&secret).unwrap().as_deref(),
        Some("gh_the-token")
    );
    // Another secret of the same shape opens nothing.
    let mut other = secret.clone();
    other.pop();
    other.push(if secret.ends_with('0') { '1' } else { '0' });
    assert_eq!(store.console_token(&other).unwrap(), None);
    assert_eq!(store.console_token("gh_the-token").unwrap(), None);

    // The table holds neither the token nor the secret.
    let mut db = store.connect().unwrap();
    let rows = db
        .query_map(
            "SELECT id, sealed, identity FROM console_sessions",
            params![],
            |r| {
                Ok((
                    r.get::<String>(0)?,
                    r.get::<String>(1)?,
                    r.get::<String>(2)?,
                ))
            },
        )
        .unwrap();
    assert_eq!(rows.len(), 1);
    let (id, sealed, identity) = &rows[0];
    assert_eq!(identity, "alice");
    for column in [id, sealed] {
        assert!(!column.contains("the-token") && !column.contains(&secret[3..]));
    }

    // A second process sharing the store sees the sign-in; signing out ends it for both.
    let other_process = open_state(&state, dir.path()).unwrap();
    assert!(other_process.console_token(&secret).unwrap().is_some());
    other_process.console_sign_out(&secret).unwrap();
    assert_eq!(store.console_token(&secret).unwrap(), None);

    let expired = store
        .console_sign_in("gh_the-token", "alice", Duration::ZERO)
        .unwrap();
    assert_eq!(store.console_token(&expired).unwrap(), None);
}

#[test]
fn a_postgres_store_at_version_2_gains_the_sign_in_table_alone() {
    if !on_postgres() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let state = fresh_state(dir.path()).unwrap();
    {
        let store = open_state(&state, dir.path()).unwrap();
        let mut db = store.connect().unwrap();
        db.execute_batch(
            "DROP TABLE console_sessions;
             DELETE FROM gatehouse_schema;
             INSERT INTO gatehouse_schema (version) VALUES (2);",
        )
        .unwrap();
    }
    let store = open_state(&state, dir.path()).unwrap();
    let secret = store
        .console_sign_in("gh_x", "bob", Duration::from_secs(60))
        .unwrap();
    assert_eq!(
        store.console_token(&secret).unwrap().as_deref(),
        Some("gh_x")
    );
    let mut db = store.connect().unwrap();
    let version: i64 = db
        .query_row(
            "SELECT max(version) FROM gatehouse_schema",
            params![],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(version, 3);
}
