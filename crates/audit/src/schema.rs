//! The store's tables. Times are microseconds since the Unix epoch; lists are JSON arrays.

use crate::db::{params, Backend, Begin, Db, DbError};
use crate::error::AuditError;

const SCHEMA: &str = r#"
-- Credentials: service tokens (kind 'token', found by the SHA-256 of the secret in `hash`) and
-- SSH public keys registered to an identity (kind 'ssh-key', found by `fingerprint`; `hash`
-- holds 'ssh-key:' + id, which no hex digest can equal). Both share ids, scope, expiry and
-- revocation, so the revocation watch and the register cover both.
CREATE TABLE IF NOT EXISTS tokens (
    id            TEXT PRIMARY KEY,
    hash          TEXT NOT NULL UNIQUE,
    identity      TEXT NOT NULL,
    groups_json   TEXT NOT NULL,
    connections_json TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    created_by    TEXT NOT NULL,
    expires_at    INTEGER,
    revoked_at    INTEGER,
    revoked_by    TEXT,
    kind          TEXT NOT NULL DEFAULT 'token',  -- token | ssh-key
    fingerprint   TEXT,                           -- ssh-key: SHA256:... as ssh-keygen -lf
    public_key    TEXT                            -- ssh-key: the OpenSSH line as registered
);
CREATE INDEX IF NOT EXISTS tokens_revoked_at ON tokens(revoked_at);

CREATE TABLE IF NOT EXISTS sessions (
    id                TEXT PRIMARY KEY,
    identity          TEXT NOT NULL,
    groups_json       TEXT NOT NULL,
    token_id          TEXT NOT NULL,
    connection        TEXT NOT NULL,
    protocol          TEXT NOT NULL,
    client_addr       TEXT NOT NULL,
    claimed_user      TEXT NOT NULL,
    started_at        INTEGER NOT NULL,
    ended_at          INTEGER,
    end_reason        TEXT,
    bytes_from_client INTEGER,
    bytes_from_server INTEGER,
    recording_sha256  TEXT
);
CREATE INDEX IF NOT EXISTS sessions_started_at ON sessions(started_at);

CREATE TABLE IF NOT EXISTS audit_entries (
    id            INTEGER PRIMARY KEY,
    session_id    TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    at            INTEGER NOT NULL,
    identity      TEXT NOT NULL,
    groups_json   TEXT NOT NULL,
    connection    TEXT NOT NULL,
    protocol      TEXT NOT NULL,
    client_addr   TEXT NOT NULL,
    statement     TEXT NOT NULL,
    params_json   TEXT NOT NULL,
    class         TEXT NOT NULL,
    verdict       TEXT NOT NULL,
    status        TEXT,
    tag           TEXT,
    sqlstate      TEXT,
    error         TEXT,
    rows_returned INTEGER,
    rows_affected INTEGER,
    duration_us   INTEGER,
    finished_at   INTEGER,
    rule          TEXT,
    approval_id   TEXT,
    masked_json   TEXT,
    result_masked_json TEXT,
    UNIQUE (session_id, seq)
);
CREATE INDEX IF NOT EXISTS audit_entries_at ON audit_entries(at);

CREATE TABLE IF NOT EXISTS approvals (
    id               TEXT PRIMARY KEY,
    session_id       TEXT NOT NULL,
    identity         TEXT NOT NULL,
    groups_json      TEXT NOT NULL,
    connection       TEXT NOT NULL,
    protocol         TEXT NOT NULL,
    statement        TEXT NOT NULL,
    params_json      TEXT NOT NULL,
    class            TEXT NOT NULL,
    rule             TEXT NOT NULL,
    approvers_json   TEXT NOT NULL,
    fingerprint      TEXT NOT NULL,
    requested_at     INTEGER NOT NULL,
    expires_at       INTEGER NOT NULL,
    state            TEXT NOT NULL,       -- pending | approved | denied | expired | withdrawn
    decided_by       TEXT,
    decided_at       INTEGER,
    reason           TEXT,
    executed_at      INTEGER,
    executed_session TEXT,
    executed_seq     INTEGER
);
CREATE INDEX IF NOT EXISTS approvals_state ON approvals(state, requested_at);
CREATE INDEX IF NOT EXISTS approvals_grace ON approvals(identity, connection, fingerprint);

-- What changes who may do what (credentials issued and revoked, approvals decided), each
-- chained (kind 'event' in audit_chain) in the transaction that made the change.
CREATE TABLE IF NOT EXISTS trail_events (
    seq     INTEGER PRIMARY KEY AUTOINCREMENT, -- never reused: a link names it
    at      INTEGER NOT NULL,
    kind    TEXT NOT NULL,
    subject TEXT NOT NULL,
    body    TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS trail_events_subject ON trail_events(kind, subject, seq);

"#;

/// The chain on SQLite: one chain (instance `""`), its sequence the row id.
const CHAIN_SQLITE: &str = r#"
-- The tamper-evident chain: a link per session opening or end, trail event and purge, and
-- one per batch of admissions and outcomes (listed in `content`), each hashing the one
-- before it. See chain.rs and links.rs.
CREATE TABLE IF NOT EXISTS audit_chain (
    seq            INTEGER PRIMARY KEY,
    kind           TEXT NOT NULL,        -- admit | finish | open | close | purge
    session_id     TEXT NOT NULL,        -- '' for a purge
    entry_seq      INTEGER NOT NULL,     -- 0 for session events and purges
    at             INTEGER NOT NULL,
    content_sha256 TEXT NOT NULL,
    prev_sha256    TEXT NOT NULL,
    sha256         TEXT NOT NULL,
    purged_by      INTEGER,              -- the purge link that removed its row
    content        TEXT,                 -- a purge's own record
    UNIQUE (kind, session_id, entry_seq)
);
CREATE INDEX IF NOT EXISTS audit_chain_session ON audit_chain(session_id);

-- Where the chain starts after a purge removed its oldest links.
CREATE TABLE IF NOT EXISTS chain_anchor (
    id     INTEGER PRIMARY KEY CHECK (id = 1),
    seq    INTEGER NOT NULL,
    sha256 TEXT NOT NULL
);
"#;

/// The chain on PostgreSQL: one chain per gateway instance, each numbered from 1.
const CHAIN_POSTGRES: &str = r#"
CREATE TABLE IF NOT EXISTS audit_chain (
    instance       TEXT NOT NULL,
    seq            BIGINT NOT NULL,
    kind           TEXT NOT NULL,
    session_id     TEXT NOT NULL,
    entry_seq      BIGINT NOT NULL,
    at             BIGINT NOT NULL,
    content_sha256 TEXT NOT NULL,
    prev_sha256    TEXT NOT NULL,
    sha256         TEXT NOT NULL,
    purged_by      BIGINT,
    content        TEXT,
    PRIMARY KEY (instance, seq),
    UNIQUE (kind, session_id, entry_seq)
);
CREATE INDEX IF NOT EXISTS audit_chain_session ON audit_chain(session_id);
"#;

/// Where each chain starts after a purge removed its oldest links (both backends). A SQLite
/// store's single `chain_anchor` row, from before instances, is moved here as instance `""`.
const ANCHORS: &str = r#"
CREATE TABLE IF NOT EXISTS chain_anchors (
    instance TEXT PRIMARY KEY,
    seq      BIGINT NOT NULL,
    sha256   TEXT NOT NULL
);
"#;

/// Columns added after the first release, for stores created before them.
const ADDED_COLUMNS: &[(&str, &str, &str)] = &[
    ("audit_entries", "rule", "TEXT"),
    ("audit_entries", "approval_id", "TEXT"),
    ("audit_entries", "masked_json", "TEXT"),
    ("audit_entries", "result_masked_json", "TEXT"),
    ("sessions", "recording_sha256", "TEXT"),
    ("sessions", "settings_json", "TEXT"),
    ("audit_entries", "approved_by", "TEXT"),
    ("tokens", "kind", "TEXT NOT NULL DEFAULT 'token'"),
    ("tokens", "fingerprint", "TEXT"),
    ("tokens", "public_key", "TEXT"),
    ("audit_chain", "instance", "TEXT NOT NULL DEFAULT ''"),
    ("approvals", "instance", "TEXT NOT NULL DEFAULT ''"),
    // The batch link that sealed an admission, and its outcome (see `links.rs`); NULL for
    // rows sealed by a link of their own (before batch links).
    ("audit_entries", "sealed_by", "INTEGER"),
    ("audit_entries", "outcome_sealed_by", "INTEGER"),
];

/// The web console's sign-ins (see `console.rs`): `id` is the SHA-256 of the cookie's secret,
/// `sealed` the token sealed under a key only the cookie gives. Its own statement, so that a
/// PostgreSQL store at version 2 gains it without touching (locking) any other table.
const CONSOLE_SESSIONS: &str = "CREATE TABLE IF NOT EXISTS console_sessions (
    id          TEXT PRIMARY KEY,
    sealed      TEXT NOT NULL,
    identity    TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
)";

/// Indexes over added columns: created once the columns exist, in old stores too.
const AFTER_COLUMNS: &str = r#"
CREATE INDEX IF NOT EXISTS tokens_fingerprint ON tokens(fingerprint);
-- One live registration per key, so a fingerprint names one identity. A removed key may be
-- registered again.
CREATE UNIQUE INDEX IF NOT EXISTS tokens_live_key ON tokens(fingerprint)
    WHERE kind = 'ssh-key' AND revoked_at IS NULL;
CREATE INDEX IF NOT EXISTS audit_chain_instance ON audit_chain(instance, seq);
"#;

/// The same tables in PostgreSQL's types: integers are `BIGINT` (times in microseconds), and
/// the row ids the database assigns are identity columns. A gateway instance's chain is the
/// links with its `instance` (see [`crate::chain`]).
const POSTGRES_TYPES: &[(&str, &str)] = &[
    (
        "INTEGER PRIMARY KEY AUTOINCREMENT",
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    ("INTEGER PRIMARY KEY CHECK", "BIGINT PRIMARY KEY CHECK"),
    (
        "INTEGER PRIMARY KEY",
        "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY",
    ),
    ("INTEGER", "BIGINT"),
];

/// Opens (creating if needed) the database file with the settings every connection uses:
/// WAL so readers never block the writer, and `synchronous = NORMAL`, under which a committed
/// transaction survives the gateway process being killed (the WAL is written before commit
/// returns); only an operating-system crash can lose the last commits.
pub fn open_sqlite(path: &std::path::Path) -> Result<Db, AuditError> {
    let conn = rusqlite::Connection::open(path).map_err(DbError::from)?;
    let setup = || -> rusqlite::Result<()> {
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")
    };
    setup().map_err(DbError::from)?;
    Ok(Db::sqlite(conn))
}

/// The PostgreSQL schema's version, kept in `gatehouse_schema`: a store at this version is
/// used as it is, without DDL (which would take every table's exclusive lock while other
/// instances write). Version 2 added the batch links' columns (`sealed_by`,
/// `outcome_sealed_by`); version 3 the console's sign-ins (`console_sessions`).
const POSTGRES_VERSION: i64 = 3;

/// The PostgreSQL store's schema version (0 for an empty database).
fn postgres_version(db: &mut Db) -> Result<i64, AuditError> {
    let exists: i64 = db.query_row(
        "SELECT count(*) FROM pg_tables WHERE schemaname = current_schema()
           AND tablename = 'gatehouse_schema'",
        params![],
        |r| r.get(0),
    )?;
    if exists == 0 {
        return Ok(0);
    }
    Ok(db.query_row(
        "SELECT COALESCE(MAX(version), 0) FROM gatehouse_schema",
        params![],
        |r| r.get(0),
    )?)
}

/// Creates the PostgreSQL tables once, whichever instance starts first.
fn migrate_postgres(db: &mut Db) -> Result<(), AuditError> {
    if postgres_version(db)? >= POSTGRES_VERSION {
        return Ok(());
    }
    let mut tx = db.transaction(Begin::Immediate)?;
    // One migration at a time across the instances starting together; the others find it
    // done.
    tx.execute_batch(
        "SELECT pg_advisory_xact_lock(7406319617363712);
         SET LOCAL client_min_messages = warning;",
    )?;
    let version = postgres_version(&mut tx)?;
    if version >= POSTGRES_VERSION {
        return Ok(());
    }
    if version == 2 {
        // Version 3 only adds a table: the others, which running instances write, are left
        // alone (DDL on them would lock them until this commits).
        tx.execute_batch(CONSOLE_SESSIONS)?;
        tx.execute_batch(&format!(
            "INSERT INTO gatehouse_schema (version) VALUES ({POSTGRES_VERSION})"
        ))?;
        tx.commit()?;
        return Ok(());
    }
    let mut schema = SCHEMA.to_owned();
    for (from, to) in POSTGRES_TYPES {
        schema = schema.replace(from, to);
    }
    tx.execute_batch(&schema)?;
    tx.execute_batch(CONSOLE_SESSIONS)?;
    tx.execute_batch(CHAIN_POSTGRES)?;
    tx.execute_batch(ANCHORS)?;
    for (table, column, kind) in ADDED_COLUMNS {
        let kind = kind.replace("INTEGER", "BIGINT");
        tx.execute_batch(&format!(
            "ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {column} {kind}"
        ))?;
    }
    tx.execute_batch(AFTER_COLUMNS)?;
    // The chain's primary key is (instance, seq) here: SQLite's index for it is redundant,
    // and every link would pay for it.
    tx.execute_batch("DROP INDEX IF EXISTS audit_chain_instance")?;
    tx.execute_batch(&format!(
        "CREATE TABLE IF NOT EXISTS gatehouse_schema (version BIGINT NOT NULL);
         INSERT INTO gatehouse_schema (version) VALUES ({POSTGRES_VERSION});"
    ))?;
    tx.commit()?;
    Ok(())
}

/// Creates the tables if they do not exist, and adds what later releases added.
pub fn migrate(db: &mut Db) -> Result<(), AuditError> {
    match db.backend() {
        Backend::Sqlite => {
            db.execute_batch(SCHEMA)?;
            db.execute_batch(CONSOLE_SESSIONS)?;
            db.execute_batch(CHAIN_SQLITE)?;
            db.execute_batch(ANCHORS)?;
        }
        Backend::Postgres => return migrate_postgres(db),
    }
    for (table, column, kind) in ADDED_COLUMNS {
        let present: bool = db.query_row(
            &format!("SELECT COUNT(*) > 0 FROM pragma_table_info('{table}') WHERE name = ?1"),
            params![column],
            |row| row.get(0),
        )?;
        if !present {
            db.execute_batch(&format!("ALTER TABLE {table} ADD COLUMN {column} {kind}"))?;
        }
    }
    db.execute_batch(AFTER_COLUMNS)?;
    db.execute_batch(
        "INSERT INTO chain_anchors (instance, seq, sha256)
            SELECT '', seq, sha256 FROM chain_anchor WHERE id = 1
            ON CONFLICT DO NOTHING;
         DELETE FROM chain_anchor;",
    )?;
    Ok(())
}
