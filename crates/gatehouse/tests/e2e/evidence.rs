//! Tamper evidence and retention: `gatehouse audit verify` names each kind of tampering (an
//! altered byte, a removed entry, an inserted one, an edited recording), and a retention run
//! with the clock moved forward removes exactly what is past the period and leaves a chain
//! that still verifies.

use std::time::{Duration, SystemTime};

use crate::support::*;

/// Runs SQL on the gateway's SQLite store with Python's sqlite3 (as a tamperer would).
fn tamper(gw: &Gateway, sql: &str) {
    let db = gw.dir.path().join("var/gatehouse.db");
    let out = run(
        "python3",
        &[
            "-c",
            "import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()",
            db.to_str().unwrap(),
            sql,
        ],
        None,
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn verify(gw: &Gateway) -> (bool, String) {
    let out = gw.cli_output(&["audit", "verify"]);
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

fn activity(gw: &Gateway, token: &str, tag: &str) {
    let (ok, _, err) = psql(
        &gw.dsn("db", token),
        &[
            "-c",
            &format!("SELECT '{tag}-1'"),
            "-c",
            &format!("SELECT '{tag}-2'"),
        ],
        None,
    );
    assert!(ok, "{err}");
}

#[test]
fn verify_names_each_kind_of_tampering() {
    scratch_db("gh_verify");
    let gw = Gateway::start(&[Conn::local("db", "gh_verify")]);
    let token = gw.token("job", &["batch"]);
    activity(&gw, &token, "alpha");
    activity(&gw, &token, "beta");
    gw.sessions_until(|s| s.iter().filter(|r| r["ended_at"].is_string()).count() == 2);
    let (ok, out) = verify(&gw);
    assert!(ok, "{out}");
    assert!(out.contains("2 sealed recordings"), "{out}");

    // One byte of one entry.
    tamper(&gw, "UPDATE audit_entries SET statement = 'SELECT ''alphb-1''' WHERE statement = 'SELECT ''alpha-1''';");
    let (ok, out) = verify(&gw);
    assert!(!ok);
    assert_eq!(out.matches("altered:").count(), 1, "{out}");
    assert!(out.contains("(its admission) differs"), "{out}");
    tamper(&gw, "UPDATE audit_entries SET statement = 'SELECT ''alpha-1''' WHERE statement = 'SELECT ''alphb-1''';");
    assert!(verify(&gw).0, "restoring the byte restores the chain");

    // An entry removed, one inserted.
    tamper(
        &gw,
        "DELETE FROM audit_entries WHERE statement = 'SELECT ''beta-2''';",
    );
    let (_, out) = verify(&gw);
    assert!(out.contains("removed: audit entry #2 of session"), "{out}");
    tamper(
        &gw,
        "INSERT INTO audit_entries (session_id, seq, at, identity, groups_json, connection, \
         protocol, client_addr, statement, params_json, class, verdict) VALUES ('forged', 1, 0, \
         'mallory', '[]', 'db', 'postgres', '-', 'SELECT 1', '[]', 'select', 'allow');",
    );
    let (_, out) = verify(&gw);
    assert!(
        out.contains("inserted: an audit entry #1 of session forged"),
        "{out}"
    );

    // A recording edited.
    let recordings = gw.dir.path().join("var/recordings");
    let file = std::fs::read_dir(&recordings)
        .unwrap()
        .flatten()
        .next()
        .unwrap()
        .path();
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replacen("SELECT", "SELEKT", 1)).unwrap();
    let (_, out) = verify(&gw);
    assert!(
        out.contains("altered: the recording of session") && out.contains("no longer matches"),
        "{out}"
    );
}

#[test]
fn retention_with_the_clock_forward_removes_exactly_what_is_past() {
    scratch_db("gh_retention");
    let gw = Gateway::start(&[Conn::local("db", "gh_retention")]);
    let token = gw.token("job", &["batch"]);
    activity(&gw, &token, "old");
    gw.sessions_until(|s| s.iter().filter(|r| r["ended_at"].is_string()).count() == 1);
    std::thread::sleep(Duration::from_millis(1500));
    let boundary = SystemTime::now();
    std::thread::sleep(Duration::from_millis(1500));
    activity(&gw, &token, "new");
    gw.sessions_until(|s| s.iter().filter(|r| r["ended_at"].is_string()).count() == 2);
    let recordings = gw.dir.path().join("var/recordings");
    assert_eq!(std::fs::read_dir(&recordings).unwrap().count(), 2);

    // A year and a day after the boundary: the first session is past the period, the second
    // is not.
    let now = boundary + Duration::from_secs(365 * 86_400);
    let now = humantime::format_rfc3339(now).to_string();
    let out = gw.cli(&["retention", "run", "--now", &now, "--json"]);
    let report: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["sessions"], 1, "{report}");
    assert_eq!(report["entries"], 2, "{report}");
    assert_eq!(report["recordings"], 1, "{report}");
    let rows = gw.audit();
    assert!(with_statement(&rows, "old-").is_empty(), "{rows:#?}");
    assert_eq!(with_statement(&rows, "new-").len(), 2);
    let purge = with_statement(&rows, "PURGE before");
    assert_eq!(purge.len(), 1, "the purge is itself an audit entry");
    assert_eq!(
        purge[0]["identity"].as_str().map(|s| s.starts_with("cli:")),
        Some(true)
    );
    assert_eq!(std::fs::read_dir(&recordings).unwrap().count(), 1);
    let (ok, out) = verify(&gw);
    assert!(ok, "{out}");
    assert!(out.contains("1 purges"), "{out}");

    // Again, past everything: the chain is anchored past the purged links and still verifies.
    let later = humantime::format_rfc3339(SystemTime::now() + Duration::from_secs(800 * 86_400));
    gw.cli(&["retention", "run", "--now", &later.to_string()]);
    assert!(with_statement(&gw.audit(), "new-").is_empty());
    let (ok, out) = verify(&gw);
    assert!(ok, "{out}");
    assert!(out.contains("the chain starts after link"), "{out}");
}

#[test]
fn retention_below_a_year_is_refused_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("g.toml");
    std::fs::write(
        &config,
        "[gateway]\nretention_days = 90\n[listen]\npostgres = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["--config", config.to_str().unwrap(), "token", "list"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("below PCI DSS 10.5.1's minimum of 365 days"),
        "{err}"
    );
    std::fs::write(
        &config,
        "[gateway]\nretention_days = 90\nretention_force = true\n[listen]\npostgres = \"127.0.0.1:0\"\n",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .args(["--config", config.to_str().unwrap(), "token", "list"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
