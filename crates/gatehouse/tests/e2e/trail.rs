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
    let journal = journal_dir(&gw);
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

#[test]
fn credential_and_approval_changes_are_chained_and_edits_to_them_are_reported() {
    let db = "gh_trail_events";
    scratch_db(db);
    admin_sql(db, "CREATE TABLE t (id int); INSERT INTO t VALUES (1)");
    let policy = "[[rule]]\nname = \"wipes\"\nwhen = { class = [\"delete-without-where\"] }\n\
                  action = \"review\"\napprovers = [\"dba\"]\ntimeout = \"30s\"\n";
    let gw = Gateway::start_with_policy(&[Conn::local("app", db)], policy, &[]);
    let job = gw.token("job", &["batch"]);
    let dana = gw.token("dana", &["dba"]);
    gw.token("leaver", &["batch"]);
    let tokens: Vec<serde_json::Value> =
        serde_json::from_str(&gw.cli(&["token", "list", "--json"])).expect("token list");
    let leaver_id = tokens
        .iter()
        .find(|t| t["identity"] == "leaver")
        .and_then(|t| t["id"].as_str())
        .unwrap_or_default()
        .to_owned();
    assert!(leaver_id.starts_with("tok_"), "{leaver_id}");
    gw.cli(&["token", "revoke", &leaver_id]);
    let dsn = gw.dsn("app", &job);
    let held = std::thread::spawn(move || psql(&dsn, &["-c", "DELETE FROM t"], None));
    let id = gw.wait_for_request(&dana);
    let out = gw.cli_as(&dana, &["approve", &id, "--reason", "ticket 7"]);
    assert!(out.status.success(), "{out:?}");
    let (ok, _, err) = held.join().expect("psql");
    assert!(ok, "{err}");

    // As things happened, everything verifies.
    let out = gw.cli_output(&["audit", "verify"]);
    assert!(out.status.success(), "{out:?}");

    // Someone with write access to the database widens a token, un-revokes another, and
    // changes who approved: each is named.
    store_sql(
        &gw,
        "UPDATE tokens SET groups_json = '[\"batch\",\"admin\"]' WHERE identity = 'job';
         UPDATE tokens SET revoked_at = NULL WHERE identity = 'leaver';
         UPDATE approvals SET decided_by = 'mallory';",
    );
    let out = gw.cli_output(&["audit", "verify"]);
    assert!(!out.status.success());
    let shown = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        shown.contains(&format!("the revocation of {leaver_id}")),
        "{shown}"
    );
    assert!(
        shown.contains(&format!("the decision on approval {id}")),
        "{shown}"
    );
    assert!(
        shown
            .lines()
            .filter(|l| l.contains("altered: credential tok_"))
            .count()
            == 1,
        "{shown}"
    );
}
