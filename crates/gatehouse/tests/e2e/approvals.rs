//! Rules and per-command approvals, driven the way people and jobs meet them: psql and
//! psycopg hold on a review rule, an approver decides from "another terminal" (the CLI through
//! the admin API), refusals are native errors and the session goes on.

use std::thread;
use std::time::Duration;

use crate::support::*;

const POLICY: &str = r#"
[[rule]]
name = "unbounded-writes"
when = { class = ["delete-without-where", "update-without-where", "truncate", "drop"] }
action = "review"
approvers = ["dba"]
timeout = "3s"
grace = "10m"

[[rule]]
name = "no-grants"
when = { pattern = "(?i)\\bgrant\\s" }
action = "deny"
"#;

fn start(db: &str) -> Gateway {
    scratch_db(db);
    admin_sql(
        db,
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 3)",
    );
    let conn = Conn {
        groups: &["dev", "dba"],
        ..Conn::local("app", db)
    };
    Gateway::start_with_policy(&[conn], POLICY, &[])
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn a_held_delete_runs_once_another_approver_approves_it() {
    let gw = start("gh_review_ok");
    // alice is an approver too, but never of her own requests.
    let alice = gw.token("alice", &["dev", "dba"]);
    let bob = gw.token("bob", &["dba"]);
    let carol = gw.token("carol", &["dev"]);

    let dsn = gw.dsn("app", &alice);
    let held = thread::spawn(move || psql(&dsn, &["-c", "/* tidy */ DeLeTe\n FROM t"], None));
    let id = gw.wait_for_request(&bob);
    assert!(id.starts_with("apr_"), "{id}");
    let pending = gw.pending_approvals(&bob);
    assert_eq!(pending[0]["identity"], "alice");
    assert_eq!(pending[0]["rule"], "unbounded-writes");
    assert_eq!(pending[0]["connection"], "app");
    assert!(pending[0]["statement"].as_str().unwrap().contains("DeLeTe"));

    // Nobody approves their own request; someone who is no approver cannot either.
    let own = gw.cli_as(&alice, &["approve", &id]);
    assert!(!own.status.success());
    assert!(stderr(&own).contains("yourself"), "{}", stderr(&own));
    let outsider = gw.cli_as(&carol, &["approve", &id]);
    assert!(!outsider.status.success());
    assert!(
        stderr(&outsider).contains("not an approver") || stderr(&outsider).contains("HTTP 403"),
        "{}",
        stderr(&outsider)
    );
    let bad_token = gw.cli_as("gh_not-a-token", &["approve", &id]);
    assert!(
        stderr(&bad_token).contains("HTTP 401"),
        "{}",
        stderr(&bad_token)
    );

    let ok = gw.cli_as(&bob, &["approve", &id, "--reason", "cleanup ticket 42"]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    let (ran, stdout, err) = held.join().unwrap();
    assert!(ran, "{err}");
    assert!(stdout.contains("DELETE 3"), "{stdout}");
    assert!(err.contains("NOTICE") && err.contains(&id), "{err}");
    let again = gw.cli_as(&bob, &["deny", &id]);
    assert!(
        stderr(&again).contains("already approved"),
        "{}",
        stderr(&again)
    );

    // Within the rule's grace the same identity re-runs the identical command unasked.
    let (ran, stdout, err) = psql(
        &gw.dsn("app", &alice),
        &["-c", "/* tidy */ DeLeTe\n FROM t"],
        None,
    );
    assert!(ran && stdout.contains("DELETE 0"), "{stdout} {err}");
    assert!(!err.contains("NOTICE"), "{err}");

    let rows = gw.audit_until(|rows| {
        with_statement(rows, "DeLeTe")
            .iter()
            .filter(|r| r["status"] == "ok")
            .count()
            == 2
    });
    let deletes = with_statement(&rows, "DeLeTe");
    assert_eq!(deletes.len(), 2, "{rows:#?}");
    for d in &deletes {
        assert_eq!(d["verdict"], "approved");
        assert_eq!(d["rule"], "unbounded-writes");
        assert_eq!(d["approval"], id.as_str());
        assert_eq!(d["class"], "delete-without-where");
    }
    assert_eq!(deletes[0]["rows_affected"], 3);
    // The entry names its approver: bob, and for the re-run his decision's grace.
    assert_eq!(deletes[0]["approved_by"], "bob", "{:#?}", deletes[0]);
    assert!(
        deletes[1]["approved_by"]
            .as_str()
            .is_some_and(|by| by.contains(id.as_str())),
        "{:#?}",
        deletes[1]
    );
    let trail = gw.cli_as(&bob, &["approvals", "list", "--json"]);
    let trail: serde_json::Value = serde_json::from_slice(&trail.stdout).unwrap();
    let request = &trail[0];
    assert_eq!(request["state"], "approved");
    assert_eq!(request["decided_by"], "bob");
    assert_eq!(request["reason"], "cleanup ticket 42");
    assert!(request["executed_at"].is_string(), "{request}");
}

#[test]
fn denied_timed_out_and_hidden_commands_are_refused_and_the_session_goes_on() {
    let gw = start("gh_review_no");
    let alice = gw.token("alice", &["dev"]);
    let bob = gw.token("bob", &["dba"]);

    // bob denies what he sees, except the command meant to time out.
    let approver = {
        let (config, port) = (gw.config.clone(), gw.admin_port);
        let bob = bob.clone();
        thread::spawn(move || {
            let mut denied = 0;
            let deadline = std::time::Instant::now() + Duration::from_secs(60);
            while denied < 7 && std::time::Instant::now() < deadline {
                let out = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
                    .args(["--config", config.to_str().unwrap()])
                    .args(["--server", &format!("http://127.0.0.1:{port}")])
                    .args(["approvals", "list", "--pending", "--json"])
                    .env("GATEHOUSE_TOKEN", &bob)
                    .output()
                    .unwrap();
                let pending: Vec<serde_json::Value> =
                    serde_json::from_slice(&out.stdout).unwrap_or_default();
                for p in pending {
                    if p["statement"].as_str().unwrap_or("").contains("slow") {
                        continue;
                    }
                    let ok = std::process::Command::new(env!("CARGO_BIN_EXE_gatehouse"))
                        .args(["--config", config.to_str().unwrap()])
                        .args(["--server", &format!("http://127.0.0.1:{port}")])
                        .args(["deny", p["id"].as_str().unwrap(), "--reason", "not now"])
                        .env("GATEHOUSE_TOKEN", &bob)
                        .status()
                        .unwrap();
                    if ok.success() {
                        denied += 1;
                    }
                }
                thread::sleep(Duration::from_millis(100));
            }
            denied
        })
    };
    let script = "\
DELETE FROM t;
SELECT 'after denial', count(*) FROM t;
/* slow */ DELETE FROM t;
SELECT 'after timeout', count(*) FROM t;
-- hidden
dElEtE FROM t;
SELECT 1 AS one \\; TRUNCATE t \\; SELECT 2 AS two;
PREPARE wipe AS DELETE FROM t;
EXECUTE wipe;
EXPLAIN (ANALYZE) DELETE FROM t;
COPY (DELETE FROM t RETURNING id) TO STDOUT;
UPDATE t SET id = 0;
GRANT SELECT ON t TO PUBLIC;
SELECT 'still here', count(*) FROM t;
";
    let out = run(
        "psql",
        &[
            "-X",
            "-A",
            "-t",
            "-v",
            "VERBOSITY=verbose",
            "-d",
            &gw.dsn("app", &alice),
        ],
        Some(script),
        &[],
    );
    let (stdout, err) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    // The denied PREPARE never reached the server, so `EXECUTE wipe` is of a name the server
    // does not hold (unknown to the gateway, allowed here, and failing upstream).
    assert_eq!(approver.join().unwrap(), 7, "{err}");
    assert!(
        err.contains("prepared statement \"wipe\" does not exist"),
        "{err}"
    );
    assert!(stdout.contains("after denial|3"), "{stdout}");
    assert!(stdout.contains("after timeout|3"), "{stdout}");
    assert!(stdout.contains("still here|3"), "{stdout}");
    assert!(!stdout.lines().any(|l| l == "2"), "{stdout}");
    assert!(err.contains("42501"), "{err}");
    assert!(err.contains("denied by bob: not now"), "{err}");
    assert!(err.contains("got no decision within 3s"), "{err}");
    assert!(err.contains("refused by rule \"no-grants\""), "{err}");
    assert_eq!(err.matches("was denied by bob").count(), 7, "{err}");
    assert_eq!(
        admin_sql("gh_review_no", "SELECT count(*) FROM t").trim(),
        "3"
    );

    let rows = gw.audit_until(|rows| with_statement(rows, "still here").len() == 1);
    let verdicts: Vec<_> = rows
        .iter()
        .map(|r| {
            (
                r["verdict"].as_str().unwrap(),
                r["status"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        verdicts
            .iter()
            .filter(|v| **v == ("rejected", "not-run"))
            .count(),
        8,
        "{rows:#?}"
    );
    let grant = with_statement(&rows, "GRANT");
    assert_eq!(grant[0]["verdict"], "deny");
    assert_eq!(grant[0]["rule"], "no-grants");
    let timed_out = with_statement(&rows, "slow");
    assert!(timed_out[0]["error"]
        .as_str()
        .unwrap()
        .contains("no decision"));
    assert!(timed_out[0]["approval"]
        .as_str()
        .unwrap()
        .starts_with("apr_"));
}

#[test]
fn psycopg_waits_for_approval_of_a_prepared_delete() {
    let gw = start("gh_review_py");
    let job = gw.token("nightly-job", &["dev"]);
    let bob = gw.token("bob", &["dba"]);
    let script = r#"
import sys, psycopg
notices = []
with psycopg.connect(sys.argv[1], autocommit=True) as conn:
    conn.add_notice_handler(lambda d: notices.append(d.message_primary))
    cur = conn.execute("DELETE FROM t WHERE id > %s", (100,))
    print("bounded", cur.rowcount)
    cur = conn.execute("DELETE FROM t", prepare=True)
    print("deleted", cur.rowcount)
    try:
        conn.execute("TRUNCATE t")
    except psycopg.errors.InsufficientPrivilege as e:
        print("refused", e.sqlstate, e.diag.message_primary)
    print("alive", conn.execute("SELECT 42").fetchone()[0])
print("notices", len(notices), notices[0] if notices else "")
"#;
    let dsn = gw.dsn("app", &job);
    let client = thread::spawn(move || run("python3", &["-c", script, &dsn], None, &[]));
    let first = gw.wait_for_request(&bob);
    let ok = gw.cli_as(&bob, &["approve", &first]);
    assert!(ok.status.success(), "{}", stderr(&ok));
    // The TRUNCATE is left to time out.
    let out = client.join().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout.contains("bounded 0"), "{stdout}");
    assert!(stdout.contains("deleted 3"), "{stdout}");
    assert!(stdout.contains("refused 42501"), "{stdout}");
    assert!(stdout.contains("alive 42"), "{stdout}");
    assert!(
        stdout.contains("notices 2") && stdout.contains(&first),
        "{stdout}"
    );
}

#[test]
fn cancelling_a_held_command_withdraws_its_request() {
    let gw = start("gh_review_cancel");
    let alice = gw.token("alice", &["dev"]);
    let bob = gw.token("bob", &["dba"]);
    let held = std::process::Command::new("psql")
        .args([
            "-X",
            "-v",
            "VERBOSITY=verbose",
            "-d",
            &gw.dsn("app", &alice),
        ])
        .args(["-c", "DROP TABLE t"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = gw.wait_for_request(&bob);
    // Ctrl-C: psql sends a CancelRequest with the gateway's key.
    let _ = std::process::Command::new("kill")
        .args(["-INT", &held.id().to_string()])
        .status();
    let out = held.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        err.contains("57014") && err.contains("waiting for approval"),
        "{err}"
    );
    assert_eq!(
        admin_sql("gh_review_cancel", "SELECT count(*) FROM t").trim(),
        "3"
    );

    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let state = loop {
        let all = gw.cli_as(&bob, &["approvals", "list", "--json"]);
        let all: Vec<serde_json::Value> = serde_json::from_slice(&all.stdout).unwrap();
        let state = all[0]["state"].as_str().unwrap_or_default().to_owned();
        if state != "pending" || std::time::Instant::now() > deadline {
            break state;
        }
        thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(state, "withdrawn");
    let late = gw.cli_as(&bob, &["approve", &id]);
    assert!(
        stderr(&late).contains("already withdrawn"),
        "{}",
        stderr(&late)
    );
    let rows = gw.audit_until(|rows| with_statement(rows, "DROP TABLE t").len() == 1);
    let drop = with_statement(&rows, "DROP TABLE t")[0];
    assert_eq!(drop["verdict"], "rejected");
    assert_eq!(drop["status"], "not-run");
    assert_eq!(drop["approval"], id.as_str());
}
