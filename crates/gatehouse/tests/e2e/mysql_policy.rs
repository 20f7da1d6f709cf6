//! Rules, approvals and masking on the MySQL wire, as on PostgreSQL: a held statement waits
//! (MySQL has no notice channel) until approved, denied, timed out or killed — the refusal
//! names the request id; masking applies to text rows (mysql CLI) and binary rows (server-side
//! prepared statements) alike, and the audit trail keeps only masked text.

use std::time::{Duration, Instant};

use crate::mysql_faults::RawMy;
use crate::mysql_support::{mysql, mysql_connection, root_sql, scratch_mysql_db, shown};
use crate::support::{run, with_statement, Gateway};

const REVIEW: &str = r#"
[[rule]]
name = "unbounded-writes"
when = { class = ["delete-without-where", "truncate"] }
action = "review"
approvers = ["dba"]
timeout = "30s"

[[rule]]
name = "drops-wait-briefly"
when = { class = ["drop"] }
action = "review"
approvers = ["dba"]
timeout = "2s"

[[rule]]
name = "no-grants"
when = { class = ["dcl"] }
action = "deny"
message = "privileges are managed by the platform team"
"#;

#[test]
fn held_mysql_statements_wait_for_a_decision_and_refusals_name_the_request() {
    scratch_mysql_db("gh_my_review");
    root_sql(
        "CREATE TABLE gh_my_review.t (id INT); INSERT INTO gh_my_review.t VALUES (1),(2),(3); \
         CREATE TABLE gh_my_review.keep (id INT)",
    );
    let policy = format!("{}{REVIEW}", mysql_connection("rev", "gh_my_review", ""));
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let alice = gw.token("alice", &["batch"]);
    let bob = gw.token("bob", &["dba"]);

    // Approved: the statement runs once bob says so.
    std::thread::scope(|s| {
        let held = s.spawn(|| mysql(&gw, "rev", &alice, &["-e", "DELETE FROM t"], None));
        let id = gw.wait_for_request(&bob);
        let out = gw.cli_as(&bob, &["approve", &id, "--reason", "cleanup ticket 7"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = held.join().unwrap();
        assert!(out.status.success(), "{}", shown(&out));
    });
    assert_eq!(root_sql("SELECT COUNT(*) FROM gh_my_review.t").trim(), "0");

    // Denied: the client gets the reason and the request id; the session goes on (--force).
    std::thread::scope(|s| {
        let held = s.spawn(|| {
            mysql(
                &gw,
                "rev",
                &alice,
                &["--force", "-N"],
                Some("TRUNCATE keep;\nSELECT 'session goes on';\n"),
            )
        });
        let id = gw.wait_for_request(&bob);
        let out = gw.cli_as(&bob, &["deny", &id, "--reason", "not today"]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = held.join().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("ERROR 1227 (42000)"), "{}", shown(&out));
        assert!(
            err.contains(&format!("request {id} was denied by bob: not today")),
            "{err}"
        );
        assert!(String::from_utf8_lossy(&out.stdout).contains("session goes on"));
    });

    // Timed out, with the request id in the error.
    let started = Instant::now();
    let out = mysql(&gw, "rev", &alice, &["-e", "DROP TABLE keep"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ERROR 1227 (42000)"), "{}", shown(&out));
    assert!(err.contains("got no decision within 2s"), "{err}");
    assert!(started.elapsed() >= Duration::from_secs(2));

    // Denied by rule, at once.
    let out = mysql(
        &gw,
        "rev",
        &alice,
        &["-e", "GRANT SELECT ON t TO nobody"],
        None,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("privileges are managed by the platform team"),
        "{err}"
    );

    // Killed: `KILL QUERY <gateway id>` from the client's other connection (the mysql CLI's
    // Ctrl-C) ends the wait; the request is withdrawn.
    let mut raw = RawMy::login(gw.mysql_port, "rev", &alice);
    raw.send(0, b"\x03DELETE FROM t");
    let id = gw.wait_for_request(&bob);
    let out = mysql(
        &gw,
        "rev",
        &alice,
        &["-e", &format!("KILL QUERY {}", raw.connection_id)],
        None,
    );
    assert!(out.status.success(), "{}", shown(&out));
    let (code, state, message) = raw.error();
    assert_eq!((code, state.as_str()), (1317, "70100"), "{message}");
    assert_eq!(raw.query_value("SELECT 'still usable'"), "still usable");
    let late = gw.cli_as(&bob, &["approve", &id]);
    assert!(!late.status.success());
    assert!(
        String::from_utf8_lossy(&late.stderr).contains("withdrawn"),
        "{}",
        String::from_utf8_lossy(&late.stderr)
    );
    // Another identity cannot kill alice's sessions: the id is unknown to it.
    let out = mysql(
        &gw,
        "rev",
        &bob,
        &["-e", &format!("KILL QUERY {}", raw.connection_id)],
        None,
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ERROR 1094"),
        "{}",
        shown(&out)
    );

    let rows = gw.audit_until(|rows| with_statement(rows, "KILL QUERY").len() == 2);
    let approved = with_statement(&rows, "DELETE FROM t");
    assert_eq!(approved[0]["verdict"], "approved", "{rows:#?}");
    assert_eq!(approved[0]["rule"], "unbounded-writes");
    assert_eq!(approved[0]["rows_affected"], 3);
    let denied = with_statement(&rows, "TRUNCATE keep");
    assert_eq!(denied[0]["verdict"], "rejected");
    assert_eq!(denied[0]["status"], "not-run");
    assert_eq!(with_statement(&rows, "GRANT SELECT")[0]["verdict"], "deny");
    assert_eq!(
        with_statement(&rows, "DROP TABLE keep")[0]["status"],
        "not-run"
    );
    assert_eq!(
        root_sql("SELECT COUNT(*) FROM gh_my_review.keep").trim(),
        "0"
    );
}

const MASKS: &str = r#"
[[mask]]
name = "pan"
detect = "pan"
columns = ["*.card_number"]
style = "keep-last-4"
exempt_groups = ["fraud"]

[[mask]]
name = "email"
detect = "email"
style = "redact"
exempt_groups = ["fraud"]

[[mask]]
name = "notes"
columns = ["customers.secret_note", "customers.pin"]
exempt_groups = ["fraud"]
"#;

#[test]
fn mysql_rows_are_masked_in_the_text_and_the_binary_protocol() {
    scratch_mysql_db("gh_my_mask");
    root_sql(
        "CREATE TABLE gh_my_mask.customers (id INT PRIMARY KEY, name VARCHAR(40), \
         card_number VARCHAR(25), email VARCHAR(60), secret_note TEXT, pin INT); \
         INSERT INTO gh_my_mask.customers VALUES \
         (1, 'Ada', '4111 1111 1111 1111', 'ada@example.com', 'likes tea', 1234), \
         (2, 'Bob paid with 5500-0000-0000-0004', NULL, 'bob@example.com', NULL, NULL)",
    );
    let policy = format!("{}{MASKS}", mysql_connection("crm", "gh_my_mask", ""));
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let support = gw.token("sam", &["batch"]);
    let fraud = gw.token("fran", &["batch", "fraud"]);

    // Text protocol (mysql CLI), aliases included.
    let query = "SELECT id, name, card_number AS c, email, secret_note AS n, pin FROM customers \
                 ORDER BY id";
    let out = mysql(&gw, "crm", &support, &["-N", "-B", "-e", query], None);
    assert!(out.status.success(), "{}", shown(&out));
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    for clear in [
        "4111 1111 1111 1111",
        "ada@example.com",
        "likes tea",
        "1234",
        "5500-0000-0000-0004",
    ] {
        assert!(!text.contains(clear), "{clear} leaked:\n{text}");
    }
    assert!(text.contains("1111"), "keep-last-4:\n{text}");
    assert!(
        text.contains("****-****-****-0004"),
        "detector inside a value:\n{text}"
    );
    let out = mysql(&gw, "crm", &fraud, &["-N", "-B", "-e", query], None);
    assert!(String::from_utf8_lossy(&out.stdout).contains("4111 1111 1111 1111"));

    // Binary protocol: server-side prepared statements (mysql-connector-python, prepared=True).
    let script = format!(
        r#"
import mysql.connector
for token in ["{support}", "{fraud}"]:
    c = mysql.connector.connect(host="127.0.0.1", port={port}, user="py", password=token,
        database="crm", use_pure=True, connection_timeout=10)
    cur = c.cursor(prepared=True)
    cur.execute("SELECT id, name, card_number, email, secret_note, pin FROM customers WHERE id >= %s ORDER BY id", (1,))
    print(repr(cur.fetchall()))
    c.close()
"#,
        port = gw.mysql_port
    );
    let out = run("python3", &["-c", &script], None, &[]);
    assert!(out.status.success(), "{}", shown(&out));
    let printed = String::from_utf8_lossy(&out.stdout).into_owned();
    let (masked, clear) = printed.split_once('\n').expect("two lines");
    for leaked in [
        "4111 1111 1111 1111",
        "ada@example.com",
        "likes tea",
        "1234",
        "5500-0000-0000-0004",
    ] {
        assert!(
            !masked.contains(leaked),
            "{leaked} leaked in binary rows:\n{masked}"
        );
    }
    assert!(masked.contains("1111"), "{masked}");
    assert!(
        masked.contains("None"),
        "an INT column masked whole becomes NULL: {masked}"
    );
    assert!(
        clear.contains("4111 1111 1111 1111") && clear.contains("1234"),
        "{clear}"
    );

    // The audit trail has what was masked, per column.
    let rows = gw.audit_until(|rows| {
        rows.iter()
            .filter(|r| r["identity"] == "sam" && r["status"].is_string())
            .count()
            >= 2
    });
    let binary = rows
        .iter()
        .find(|r| {
            r["identity"] == "sam"
                && r["statement"]
                    .as_str()
                    .is_some_and(|s| s.contains("WHERE id >= ?"))
        })
        .unwrap_or_else(|| panic!("the prepared statement's entry: {rows:#?}"));
    assert_eq!(binary["params"], serde_json::json!(["1"]), "{binary:#?}");
    assert!(
        binary["masked"].to_string().contains("card_number"),
        "masking log: {binary:#?}"
    );
}
