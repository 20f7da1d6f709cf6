//! Tamper evidence and retention: `gatehouse audit verify` names each kind of tampering (an
//! altered byte, a removed entry, an inserted one, an edited recording), and a retention run
//! with the clock moved forward removes exactly what is past the period and leaves a chain
//! that still verifies.

use std::time::{Duration, SystemTime};

use crate::support::*;

/// Tampers with the store as an intruder would.
fn tamper(gw: &Gateway, sql: &str) {
    store_sql(gw, sql);
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

const PACKAGE_POLICY: &str = r#"
[[rule]]
name = "wipes"
when = { class = ["delete-without-where"] }
action = "review"
approvers = ["dba"]
timeout = "30s"

[[mask]]
name = "pan"
detect = "pan"
style = "keep-last-4"
"#;

/// A realistic run, then the package: every file verifies, the report renders in a browser
/// with the control mapping and non-zero counts.
#[test]
fn the_evidence_package_after_a_realistic_run() {
    scratch_db("gh_package");
    admin_sql(
        "gh_package",
        "CREATE TABLE cards (id int, pan text); INSERT INTO cards VALUES (1, '4111111111111111');
         CREATE TABLE scratch (id int); INSERT INTO scratch VALUES (1), (2);",
    );
    let conn = Conn {
        groups: &["batch", "dba"],
        ..Conn::local("db", "gh_package")
    };
    let gw = Gateway::start_with_policy(&[conn], PACKAGE_POLICY, &[]);
    let job = gw.token("nightly", &["batch"]);
    let dba = gw.token("dana", &["dba"]);
    let leaver = gw.token("leaver", &["batch"]);

    // psql with masked results; pgbench; a Python driver; an approval; a revoked token.
    let (ok, out, err) = psql(&gw.dsn("db", &job), &["-c", "SELECT * FROM cards"], None);
    assert!(
        ok && out.contains("1111") && !out.contains("4111111111111111"),
        "{out} {err}"
    );
    let bench = run(
        "pgbench",
        &[
            "-n",
            "-t",
            "20",
            "-c",
            "2",
            "-f",
            "/dev/stdin",
            &gw.dsn("db", &job),
        ],
        Some("SELECT count(*) FROM scratch;\n"),
        &[],
    );
    assert!(
        bench.status.success(),
        "{}",
        String::from_utf8_lossy(&bench.stderr)
    );
    let py = run(
        "python3",
        &[
            "-c",
            "import sys, psycopg\nwith psycopg.connect(sys.argv[1]) as c:\n    print(c.execute('SELECT id FROM scratch WHERE id = %s', (2,)).fetchone()[0])",
            &gw.dsn("db", &job),
        ],
        None,
        &[],
    );
    assert!(
        py.status.success(),
        "{}",
        String::from_utf8_lossy(&py.stderr)
    );
    let dsn = gw.dsn("db", &job);
    let held = std::thread::spawn(move || psql(&dsn, &["-c", "DELETE FROM scratch"], None));
    let id = gw.wait_for_request(&dba);
    assert!(gw
        .cli_as(&dba, &["approve", &id, "--reason", "cleanup"])
        .status
        .success());
    assert!(held.join().unwrap().0);
    let leaver_id = gw.cli(&["token", "list", "--json"]);
    let leaver_id: Vec<serde_json::Value> = serde_json::from_str(&leaver_id).unwrap();
    let leaver_id = leaver_id
        .iter()
        .find(|t| t["identity"] == "leaver")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    gw.cli(&["token", "revoke", &leaver_id]);
    let (ok, _, _) = psql(&gw.dsn("db", &leaver), &["-c", "SELECT 1"], None);
    assert!(!ok, "a revoked token is refused");
    gw.sessions_until(|s| {
        s.iter()
            .any(|r| r["identity"] == "leaver" && r["end_reason"] != serde_json::Value::Null)
    });
    let tried = gw.cli(&[
        "sessions",
        "list",
        "--refused",
        "--identity",
        "leaver",
        "--json",
    ]);
    let tried: Vec<serde_json::Value> = serde_json::from_str(&tried).unwrap();
    assert_eq!(
        tried.len(),
        1,
        "the revoked token's attempt names who tried: {:#?}",
        gw.sessions()
    );
    assert!(tried[0]["end_reason"].as_str().unwrap().contains("revoked"));
    gw.audit_until(|rows| {
        with_statement(rows, "DELETE FROM scratch")
            .first()
            .is_some_and(|r| r["status"] == "ok")
    });
    gw.sessions_until(|s| s.iter().all(|r| r["ended_at"].is_string()));

    let out = gw.dir.path().join("package");
    gw.cli(&["evidence", "--from", "1h", "--out", out.to_str().unwrap()]);
    for file in [
        "audit.jsonl",
        "audit.csv",
        "sessions.jsonl",
        "sessions.csv",
        "masking.csv",
        "approvals.csv",
        "tokens.csv",
        "retention.json",
        "verify.json",
        "policy.md",
        "report.md",
        "report.html",
        "manifest.json",
        "SHA256SUMS",
    ] {
        assert!(out.join(file).exists(), "{file} missing");
    }
    // Every file in the manifest verifies.
    let check = std::process::Command::new("sha256sum")
        .args(["-c", "--quiet", "SHA256SUMS"])
        .current_dir(&out)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "{}",
        String::from_utf8_lossy(&check.stdout)
    );
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert!(manifest["files"].as_array().unwrap().len() >= 14);
    let masking = std::fs::read_to_string(out.join("masking.csv")).unwrap();
    assert!(masking.contains(",pan,nightly,"), "{masking}");
    let approvals = std::fs::read_to_string(out.join("approvals.csv")).unwrap();
    assert!(
        approvals.contains("dana") && approvals.contains("cleanup"),
        "{approvals}"
    );
    let tokens = std::fs::read_to_string(out.join("tokens.csv")).unwrap();
    assert!(
        tokens.contains("revoked") && tokens.contains("cli:"),
        "{tokens}"
    );
    let verify: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("verify.json")).unwrap()).unwrap();
    assert_eq!(verify["problems"], serde_json::json!([]));
    let sessions = std::fs::read_to_string(out.join("sessions.csv")).unwrap();
    assert!(sessions.contains("matches its seal"), "{sessions}");

    // The report, rendered by a real browser.
    let page = std::process::Command::new("chromium")
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom"])
        .arg(format!("file://{}", out.join("report.html").display()))
        .output()
        .expect("chromium (scripts/setup.sh installs it)");
    let dom = String::from_utf8_lossy(&page.stdout);
    for control in ["7.1 / 7.2", "8.2 / 8.6", "10.2", "10.3", "10.5", "12.3"] {
        assert!(dom.contains(control), "{control} not rendered:\n{dom}");
    }
    let figure = |label: &str| -> u64 {
        let at = dom
            .find(label)
            .unwrap_or_else(|| panic!("{label} not rendered"));
        let rest = &dom[at..];
        let start = rest.find("class=\"figure\">").unwrap() + "class=\"figure\">".len();
        rest[start..]
            .chars()
            .take_while(|c| c.is_ascii_digit())
            .collect::<String>()
            .parse()
            .unwrap_or(0)
    };
    assert!(figure("audit entries") >= 40, "{dom}");
    assert!(figure("chain links verified") > 0);
    assert!(figure("values masked") >= 1);
    assert!(figure("tokens revoked") >= 1);
    assert!(figure("sessions refused at opening") >= 1);
    assert!(dom.contains("approved: 1"), "{dom}");
    assert!(
        dom.contains("name = \"wipes\""),
        "the active policy is quoted"
    );
}
