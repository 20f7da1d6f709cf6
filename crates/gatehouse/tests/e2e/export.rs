//! `gatehouse audit export`: what psql sessions of two identities left in the trail comes out
//! as CSV that Python's csv module reads back exactly (commas, quotes and line breaks in the
//! statement included) and as JSON Lines, filtered by identity, verdict and time.

use std::process::{Command, Stdio};

use serde_json::Value;

use crate::support::*;

const POLICY: &str = r#"
[[rule]]
name = "no-drops"
when = { class = ["drop"] }
action = "deny"
"#;

/// A statement with a comma, double quotes, single quotes and a line break in its text.
const AWKWARD: &str = "SELECT 1 AS \"a,b\", 'say \"hi\", it''s' AS q,\n  'two\nlines' AS r";

/// Reads CSV with Python's csv module (RFC 4180, newlines inside quotes kept as they are).
fn python_csv(text: &str) -> Vec<Vec<String>> {
    let script = "import csv, io, json, sys\n\
                  rows = list(csv.reader(io.TextIOWrapper(sys.stdin.buffer, encoding='utf-8', newline=''), strict=True))\n\
                  json.dump(rows, sys.stdout)";
    let out = run("python3", &["-c", script], Some(text), &[]);
    assert!(
        out.status.success(),
        "python csv: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("csv rows as json")
}

fn jsonl(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect()
}

#[test]
fn export_gives_csv_and_jsonl_an_auditor_can_read_with_filters() {
    scratch_db("gh_export");
    let gw = Gateway::start_with_policy(&[Conn::local("app", "gh_export")], POLICY, &[]);
    let alice = gw.token("alice", &["batch"]);
    let bob = gw.token("bob", &["batch"]);

    let (ok, _, err) = psql(
        &gw.dsn("app", &alice),
        &["-c", "CREATE TABLE t (id int, note text)", "-c", AWKWARD],
        None,
    );
    assert!(ok, "{err}");
    let (ok, _, err) = psql(
        &gw.dsn("app", &bob),
        &["-c", "INSERT INTO t VALUES (1, 'x, y')"],
        None,
    );
    assert!(ok, "{err}");
    let (ok, _, err) = psql(&gw.dsn("app", &bob), &["-c", "DROP TABLE t"], None);
    assert!(!ok && err.contains("no-drops"), "{err}");

    let listed = gw.audit_until(|rows| {
        ["DROP TABLE t", "two\nlines"].iter().all(|needle| {
            with_statement(rows, needle)
                .first()
                .is_some_and(|r| r["status"].is_string())
        })
    });
    assert!(listed.len() >= 4, "{listed:#?}");

    // CSV, everything: one record per listed entry, in the same order, read back exactly.
    let records = python_csv(&gw.cli(&["audit", "export", "--format", "csv"]));
    let header = &records[0];
    assert_eq!(header.len(), 24);
    let col = |name: &str| header.iter().position(|h| h == name).expect(name);
    let body = &records[1..];
    assert_eq!(body.len(), listed.len());
    for (record, entry) in body.iter().zip(&listed) {
        assert_eq!(record.len(), 24, "{record:?}");
        assert_eq!(record[col("id")], entry["id"].to_string());
        assert_eq!(
            record[col("statement")],
            entry["statement"].as_str().unwrap()
        );
        assert_eq!(record[col("identity")], entry["identity"].as_str().unwrap());
        assert_eq!(record[col("verdict")], entry["verdict"].as_str().unwrap());
        let params: Value = serde_json::from_str(&record[col("params")]).unwrap();
        assert_eq!(params, entry["params"]);
        let groups: Value = serde_json::from_str(&record[col("groups")]).unwrap();
        assert_eq!(groups, entry["groups"]);
    }
    let awkward = body
        .iter()
        .find(|r| r[col("statement")].contains("two\nlines"))
        .expect("the awkward statement");
    assert_eq!(awkward[col("statement")], AWKWARD);
    assert_eq!(awkward[col("identity")], "alice");
    assert_eq!(awkward[col("tag")], "SELECT 1");
    assert_eq!(awkward[col("sqlstate")], "", "NULL is an empty cell");
    assert!(awkward[col("at")].ends_with('Z'));

    // JSON Lines for one identity: alice's entries only, the statement intact.
    let alices = jsonl(&gw.cli(&["audit", "export", "--identity", "alice"]));
    assert!(alices.len() >= 2, "{alices:#?}");
    assert!(alices.iter().all(|e| e["identity"] == "alice"));
    assert!(alices.iter().any(|e| e["statement"] == AWKWARD));
    assert!(alices
        .windows(2)
        .all(|w| w[0]["id"].as_i64() < w[1]["id"].as_i64()));

    // Denials: bob's DROP alone, with its rule and no outcome from the server.
    let denied = jsonl(&gw.cli(&["audit", "export", "--format", "jsonl", "--verdict", "deny"]));
    assert_eq!(denied.len(), 1, "{denied:#?}");
    assert_eq!(denied[0]["identity"], "bob");
    assert_eq!(denied[0]["statement"], "DROP TABLE t");
    assert_eq!(denied[0]["rule"], "no-drops");
    assert_eq!(denied[0]["status"], "not-run");

    // Filters combine; --out writes a file; the count goes to stderr.
    let file = path_in(&gw, "bob.csv");
    let out = gw.cli_output(&[
        "audit",
        "export",
        "--format",
        "csv",
        "--identity",
        "bob",
        "--verdict",
        "allow",
        "--from",
        "1h",
        "--out",
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success());
    assert!(out.stdout.is_empty());
    let bobs = python_csv(&read(&file));
    let n = bobs.len() - 1;
    assert!(n >= 1);
    assert!(bobs[1..].iter().all(|r| r[col("identity")] == "bob"));
    assert!(bobs[1..]
        .iter()
        .any(|r| r[col("statement")] == "INSERT INTO t VALUES (1, 'x, y')"));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr).trim(),
        format!("exported {n} entries")
    );

    // A window that ended an hour ago holds nothing (a CSV is still a header).
    let past = python_csv(&gw.cli(&["audit", "export", "--format", "csv", "--to", "1h"]));
    assert_eq!(past, vec![header.clone()]);
    // A window that is no window is a usage error.
    let out = gw.cli_output(&["audit", "export", "--from", "1h", "--to", "2h"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--from must be before --to"));

    // A reader that goes away (`| head`) ends the export quietly, with success.
    let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("--config")
        .arg(&gw.config)
        .args(["audit", "export"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("gatehouse:"), "{stderr}");
}
