//! Fills a store with realistic audit entries, fast, for `benches/e2e/export.sh`.
//!
//! ```text
//! cargo run --release -p gatehouse-benches --example seed_audit -- PATH ENTRIES
//! ```
//!
//! Creates the store at `PATH` (the schema `Store::open` makes) and inserts `ENTRIES`
//! audit entries in sessions of 100, with the spread a busy gateway sees: several identities
//! and connections, statements from a few bytes to half a kilobyte (some with commas, quotes
//! and line breaks), bind parameters, errors, denials, approvals and masking logs. One
//! transaction, one prepared statement; the data is the same on every run.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use gatehouse_audit::Store;
use rusqlite::params;

const IDENTITIES: &[(&str, &str)] = &[
    ("etl-job", r#"["batch"]"#),
    ("alice", r#"["dev","fraud-investigators"]"#),
    ("bob", r#"["dba"]"#),
    ("reporting", r#"["batch","bi"]"#),
    ("carol@example.com", r#"["dev"]"#),
];
const CONNECTIONS: &[&str] = &["payments", "crm", "analytics"];

/// (statement, class, params JSON, returns rows).
const STATEMENTS: &[(&str, &str, &str, bool)] = &[
    (
        "SELECT id, customer_id, card_number, amount, currency, created_at FROM payments WHERE customer_id = $1 AND created_at > $2 ORDER BY created_at DESC LIMIT 50",
        "select",
        r#"["48213","2024-05-01 00:00:00+00"]"#,
        true,
    ),
    (
        "INSERT INTO ledger (account_id, amount, memo, created_at) VALUES ($1, $2, $3, now())",
        "insert",
        r#"["1207","-42.50","refund, order #88213 \"damaged\""]"#,
        false,
    ),
    (
        "UPDATE accounts SET balance = balance - 42.50, updated_at = now() WHERE id = 1207",
        "update",
        "[]",
        false,
    ),
    ("BEGIN", "transaction", "[]", false),
    ("COMMIT", "transaction", "[]", false),
    (
        "SELECT c.id, c.name, c.email, sum(p.amount) AS total\nFROM customers c\nJOIN payments p ON p.customer_id = c.id\nWHERE p.created_at >= date_trunc('month', now()) - interval '1 month'\n  AND p.status IN ('settled', 'refunded')\nGROUP BY c.id, c.name, c.email\nHAVING sum(p.amount) > 1000\nORDER BY total DESC\nLIMIT 100",
        "select",
        "[]",
        true,
    ),
    (
        "/* nightly cleanup */ DELETE FROM sessions WHERE expires_at < now() - interval '7 days'",
        "delete",
        "[]",
        false,
    ),
    ("SELECT 1", "select", "[]", true),
    (
        "SELECT \"Name\", note FROM crm.contacts WHERE note LIKE '%call back, \"urgent\"%'",
        "select",
        "[]",
        true,
    ),
    (
        "INSERT INTO events (kind, payload) VALUES ($1, $2)",
        "insert",
        r#"["login","{\"ip\":\"10.1.2.3\",\"agent\":\"psql/16.2\"}"]"#,
        false,
    ),
];

/// A small deterministic generator (xorshift64*): the same data on every run, no dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let (Some(path), Some(Ok(entries))) = (args.next(), args.next().map(|n| n.parse::<u64>()))
    else {
        eprintln!("usage: seed_audit PATH ENTRIES");
        return ExitCode::FAILURE;
    };
    match seed(&PathBuf::from(path), entries) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("seed_audit: {e}");
            ExitCode::FAILURE
        }
    }
}

fn seed(path: &std::path::Path, entries: u64) -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    drop(Store::open_sqlite(path)?);
    // Written with rusqlite directly: the seeder fills a file as fast as SQLite can.
    let mut conn = rusqlite::Connection::open(path)?;
    let tx = conn.transaction()?;
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    // A month ago, a command every 2.5 ms on average.
    let mut at: i64 = 1_717_200_000_000_000;
    {
        let mut session_insert = tx.prepare(
            "INSERT INTO sessions (id, identity, groups_json, token_id, connection, protocol,
                client_addr, claimed_user, started_at, ended_at, end_reason, bytes_from_client,
                bytes_from_server)
             VALUES (?1, ?2, ?3, ?4, ?5, 'postgres', ?6, ?7, ?8, ?9, 'client closed', ?10, ?11)",
        )?;
        let mut entry_insert = tx.prepare(
            "INSERT INTO audit_entries (session_id, seq, at, identity, groups_json, connection,
                protocol, client_addr, statement, params_json, class, verdict, status, tag,
                sqlstate, error, rows_returned, rows_affected, duration_us, finished_at, rule,
                approval_id, masked_json)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, 'postgres', ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14,
                ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
        )?;
        let mut written = 0;
        let mut session_no = 0u64;
        while written < entries {
            session_no += 1;
            let session = format!("ses_{:016x}{:010x}", rng.next(), session_no);
            let (identity, groups) = IDENTITIES[rng.below(IDENTITIES.len() as u64) as usize];
            let connection = CONNECTIONS[rng.below(CONNECTIONS.len() as u64) as usize];
            let client = format!(
                "10.0.{}.{}:{}",
                rng.below(8),
                rng.below(250),
                40000 + rng.below(20000)
            );
            let session_start = at;
            let commands = 100.min(entries - written);
            for seq in 1..=commands {
                at += 500 + rng.below(4000) as i64;
                let (statement, class, params_json, returns) =
                    STATEMENTS[rng.below(STATEMENTS.len() as u64) as usize];
                let roll = rng.below(1000);
                let duration = 80 + rng.below(20_000) as i64;
                let (verdict, rule, approval) = match roll {
                    0..=9 => ("deny", Some("no-ddl-in-business-hours"), None),
                    10..=11 => (
                        "approved",
                        Some("unbounded-writes"),
                        Some(format!("apr_{:012x}", rng.next() >> 16)),
                    ),
                    _ => ("allow", None, None),
                };
                let ran = verdict != "deny";
                let failed = ran && (12..=31).contains(&roll);
                let rows = if returns { rng.below(200) as i64 } else { 0 };
                let (status, tag, sqlstate, error, returned, affected) = if !ran {
                    (
                        "not-run",
                        None,
                        None,
                        Some("denied by rule no-ddl-in-business-hours"),
                        0,
                        None,
                    )
                } else if failed {
                    (
                        "error",
                        None,
                        Some("23505"),
                        Some("duplicate key value violates unique constraint \"ledger_pkey\""),
                        0,
                        None,
                    )
                } else if returns {
                    ("ok", Some(format!("SELECT {rows}")), None, None, rows, None)
                } else {
                    let n = rng.below(5) as i64;
                    let tag = match class {
                        "insert" => format!("INSERT 0 {n}"),
                        "transaction" => statement.to_owned(),
                        _ => format!("{} {n}", class.to_uppercase()),
                    };
                    ("ok", Some(tag), None, None, 0, Some(n))
                };
                let masked = (returns && rows > 0 && rng.below(10) == 0)
                    .then(|| format!(r#"{{"payments.card_number":{rows}}}"#));
                entry_insert.execute(params![
                    session,
                    seq as i64,
                    at,
                    identity,
                    groups,
                    connection,
                    client,
                    statement,
                    params_json,
                    class,
                    verdict,
                    status,
                    tag,
                    sqlstate,
                    error,
                    returned,
                    affected,
                    duration,
                    at + duration,
                    rule,
                    approval,
                    masked,
                ])?;
            }
            written += commands;
            session_insert.execute(params![
                session,
                identity,
                groups,
                format!("tok_{:012x}", session_no),
                connection,
                client,
                identity,
                session_start,
                at + 1000,
                (rng.below(1 << 20) + 500) as i64,
                (rng.below(1 << 24) + 500) as i64,
            ])?;
        }
    }
    tx.commit()?;
    conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")?;
    eprintln!(
        "seeded {entries} audit entries in {:.1}s",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
