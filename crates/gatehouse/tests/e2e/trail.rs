//! The trail itself: what the gateway journals is authenticated, so a line planted in (or
//! altered in) the journal before it is ingested is refused, kept aside and reported by
//! `audit verify`, never chained as if the gateway had written it.

use crate::support::*;

#[test]
fn a_journal_segment_planted_before_ingest_is_refused_and_reported() {
    let db = "gh_trail_planted";
    scratch_db(db);
    let mut gw = Gateway::start(&[Conn::local("app", db)]);
    let token = gw.token("job", &["batch"]);
    let (ok, _, err) = psql(&gw.dsn("app", &token), &["-c", "SELECT 'real'"], None);
    assert!(ok, "{err}");
    gw.audit_until(|r| !with_statement(r, "SELECT 'real'").is_empty());
    gw.kill();

    // Someone with write access to the journal (but not to chain.key) plants entries.
    let journal = gw.dir.path().join("var/gatehouse.db.journal");
    let entry = r#"{"op":"admit","session":"forged","seq":1,"at":1700000000000000,"identity":"alice","groups":[],"connection":"app","protocol":"postgres","client":"127.0.0.1:1","statement":"SELECT 'planted'","params":[],"class":"select","verdict":"allow"}"#;
    std::fs::write(journal.join("999999999998.jsonl"), format!("{entry}\n")).expect("plant");
    let forged_mac = format!("{entry}\t{}\n", "0".repeat(32));
    std::fs::write(journal.join("999999999999.jsonl"), forged_mac).expect("plant");

    gw.restart();
    let (ok, _, err) = psql(&gw.dsn("app", &token), &["-c", "SELECT 'after'"], None);
    assert!(ok, "the gateway serves on: {err}");
    let rows = gw.audit_until(|r| !with_statement(r, "SELECT 'after'").is_empty());
    assert!(with_statement(&rows, "planted").is_empty(), "{rows:#?}");
    assert_eq!(with_statement(&rows, "SELECT 'real'").len(), 1);

    let out = gw.cli_output(&["audit", "verify"]);
    assert!(!out.status.success(), "{out:?}");
    let shown = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for segment in ["999999999998.jsonl", "999999999999.jsonl"] {
        assert!(shown.contains(segment), "{shown}");
        assert!(journal.join("refused").join(segment).exists());
    }
    assert!(shown.contains("MAC does not hold"), "{shown}");
}
