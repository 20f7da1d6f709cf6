//! psql through the gateway: scripts, \copy both ways, transactions, server errors, the
//! recording, and what the audit trail says of each.

use crate::support::*;

#[test]
fn psql_commands_scripts_transactions_and_errors_are_audited() {
    scratch_db("gh_psql");
    let gw = Gateway::start(&[Conn::local("app", "gh_psql")]);
    let token = gw.token("etl-job", &["batch"]);
    let dsn = gw.dsn("app", &token);

    let (ok, out, err) = psql(
        &dsn,
        &["-c", "CREATE TABLE items (id int primary key, name text)"],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("CREATE TABLE"));

    // A script file with several statements.
    let script = path_in(&gw, "load.sql");
    std::fs::write(
        &script,
        "INSERT INTO items VALUES (1, 'one'), (2, 'two');\nUPDATE items SET name = 'uno' WHERE id = 1;\nSELECT * FROM items ORDER BY id;\n",
    )
    .unwrap();
    let (ok, out, err) = psql(&dsn, &["-f", script.to_str().unwrap()], None);
    assert!(ok, "{err}");
    assert!(out.contains("uno") && out.contains("two"), "{out}");

    // A transaction rolled back leaves nothing behind.
    let (ok, _, err) = psql(
        &dsn,
        &[
            "-c",
            "BEGIN",
            "-c",
            "INSERT INTO items VALUES (3, 'three')",
            "-c",
            "ROLLBACK",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(admin_sql("gh_psql", "SELECT count(*) FROM items"), "2");

    // A server error surfaces with its SQLSTATE, and the session stays usable.
    let (ok, _, err) = psql(&dsn, &["-c", "SELECT * FROM missing_table"], None);
    assert!(!ok);
    assert!(err.contains("42P01"), "SQLSTATE not shown: {err}");
    let (ok, out, _) = psql(&dsn, &["-c", "SELECT 40 + 2 AS answer"], None);
    assert!(ok && out.contains("42"));

    // The store is filled in order: once the last statement's outcome is there, all are.
    let rows = gw.audit_until(|rows| {
        with_statement(rows, "SELECT 40 + 2")
            .first()
            .is_some_and(|r| r["status"].is_string())
    });
    let find = |needle: &str| {
        let found = with_statement(&rows, needle);
        assert_eq!(found.len(), 1, "one entry for {needle:?} in {rows:#?}");
        found[0].clone()
    };
    let create = find("CREATE TABLE items");
    assert_eq!(create["identity"], "etl-job");
    assert_eq!(create["class"], "ddl");
    assert_eq!(create["connection"], "app");
    assert_eq!(create["groups"], serde_json::json!(["batch"]));
    let insert = find("INSERT INTO items VALUES (1");
    assert_eq!(insert["class"], "insert");
    assert_eq!(insert["tag"], "INSERT 0 2");
    assert_eq!(insert["rows_affected"], 2);
    let select = find("SELECT * FROM items ORDER BY id");
    assert_eq!(select["class"], "select");
    assert_eq!(select["rows_returned"], 2);
    assert_eq!(find("UPDATE items SET name")["class"], "update");
    assert_eq!(find("BEGIN")["class"], "transaction");
    assert_eq!(find("ROLLBACK")["tag"], "ROLLBACK");
    let rolled_back = find("INSERT INTO items VALUES (3");
    assert_eq!(rolled_back["status"], "ok");
    let failed = find("missing_table");
    assert_eq!(failed["status"], "error");
    assert_eq!(failed["sqlstate"], "42P01");
    assert!(failed["error"].as_str().unwrap().contains("missing_table"));
    for r in &rows {
        assert_eq!(r["verdict"], "allow");
        assert!(r["duration_us"].as_i64().is_some(), "no duration: {r}");
    }
}

#[test]
fn psql_copy_in_and_out_round_trips() {
    scratch_db("gh_copy");
    let gw = Gateway::start(&[Conn::local("copydb", "gh_copy")]);
    let token = gw.token("loader", &["batch"]);
    let dsn = gw.dsn("copydb", &token);
    let (ok, _, err) = psql(&dsn, &["-c", "CREATE TABLE t (id int, note text)"], None);
    assert!(ok, "{err}");

    // Enough rows that CopyData streams across many reads.
    let input = path_in(&gw, "in.tsv");
    let data: String = (1..=50_000)
        .map(|i| format!("{i}\tnote number {i}\n"))
        .collect();
    std::fs::write(&input, &data).unwrap();
    let copy_in = format!("\\copy t FROM '{}'", input.display());
    let (ok, out, err) = psql(&dsn, &["-c", &copy_in], None);
    assert!(ok, "{err}");
    assert!(out.contains("COPY 50000"), "{out}");

    let output = path_in(&gw, "out.tsv");
    let copy_out = format!(
        "\\copy (SELECT * FROM t ORDER BY id) TO '{}'",
        output.display()
    );
    let (ok, out, err) = psql(&dsn, &["-c", &copy_out], None);
    assert!(ok, "{err}");
    assert!(out.contains("COPY 50000"), "{out}");
    assert_eq!(read(&output), data, "COPY OUT differs from what went in");

    let rows = gw.audit_until(|rows| {
        with_statement(rows, "TO STDOUT")
            .first()
            .is_some_and(|r| r["status"].is_string())
    });
    let copy_in = with_statement(&rows, "FROM STDIN");
    assert_eq!(copy_in.len(), 1);
    assert_eq!(copy_in[0]["class"], "copy");
    assert_eq!(copy_in[0]["rows_affected"], 50_000);
    let copy_out = with_statement(&rows, "TO STDOUT");
    assert_eq!(copy_out[0]["rows_returned"], 50_000);
    assert_eq!(copy_out[0]["tag"], "COPY 50000");
}

#[test]
fn psql_interactive_session_under_a_pty_is_recorded_and_replays() {
    scratch_db("gh_interactive");
    let gw = Gateway::start(&[Conn::local("inter", "gh_interactive")]);
    let token = gw.token("alice", &["dba"]);
    let dsn = gw.dsn("inter", &token);
    // `script` gives psql a real terminal, so it runs as it does for a person at a prompt.
    let typed = "CREATE TABLE notes (body text);\nINSERT INTO notes VALUES ('typed by hand');\nSELECT body FROM notes;\n\\q\n";
    let out = run(
        "script",
        &["-qec", &format!("psql -X '{dsn}'"), "/dev/null"],
        Some(typed),
        &[("TERM", "dumb")],
    );
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("typed by hand"), "{screen}");
    assert!(
        screen.contains("inter=#") || screen.contains("inter=>"),
        "no prompt: {screen}"
    );

    let sessions = gw.sessions_until(|rows| {
        rows.iter()
            .any(|s| s["identity"] == "alice" && s["end_reason"].is_string())
    });
    let session = sessions
        .iter()
        .find(|s| s["identity"] == "alice")
        .expect("session row");
    assert_eq!(session["connection"], "inter");
    assert_eq!(session["end_reason"], "client terminated");
    assert!(session["bytes_from_client"].as_i64().unwrap() > 0);
    assert!(session["bytes_from_server"].as_i64().unwrap() > 0);

    let id = session["id"].as_str().unwrap();
    let replay = gw.cli(&["replay", &id[..12]]);
    for expected in [
        "alice on inter",
        "[ddl] CREATE TABLE notes",
        "[insert] INSERT INTO notes VALUES ('typed by hand')",
        "-> ok INSERT 0 1",
        "[select] SELECT body FROM notes",
        "-> ok SELECT 1 (1 rows",
        "close    client terminated",
    ] {
        assert!(
            replay.contains(expected),
            "replay lacks {expected:?}:\n{replay}"
        );
    }
}

#[test]
fn first_start_prints_a_working_admin_token_once_and_stores_only_its_hash() {
    let mut gw = Gateway::start(&[Conn {
        groups: &["admin"],
        ..Conn::local("test", "test")
    }]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let line = loop {
        let found = gw
            .stdout
            .lock()
            .unwrap()
            .iter()
            .find(|l| l.contains("psql \""))
            .cloned();
        if let Some(line) = found {
            break line;
        }
        assert!(std::time::Instant::now() < deadline, "no psql line printed");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let conninfo = line.split('"').nth(1).unwrap();
    assert!(
        conninfo.contains(&format!("port={}", gw.port)),
        "{conninfo}"
    );
    let (ok, out, err) = psql(conninfo, &["-Atc", "SELECT 'pasted'"], None);
    assert!(ok, "the printed line does not work: {err}");
    assert_eq!(out.trim(), "pasted");

    let token = conninfo
        .split("password=")
        .nth(1)
        .unwrap()
        .split(' ')
        .next()
        .unwrap()
        .to_owned();
    let printed = gw
        .stdout
        .lock()
        .unwrap()
        .iter()
        .filter(|l| l.contains(&token))
        .count();
    assert_eq!(printed, 2, "the token line and the psql line");
    let stored = store_bytes(&gw);
    assert!(
        !stored.windows(token.len()).any(|w| w == token.as_bytes()),
        "token stored in clear"
    );

    gw.stdout.lock().unwrap().clear();
    gw.restart();
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert!(
        !gw.stdout.lock().unwrap().iter().any(|l| l.contains("gh_")),
        "a second start must not issue or print a token"
    );
    let listed = gw.cli(&["token", "list"]);
    assert!(listed.contains("admin") && !listed.contains(&token));
}
