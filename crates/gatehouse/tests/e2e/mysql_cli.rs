//! The mysql CLI and mysqldump through the gateway against the local MariaDB: `-e` and
//! scripts, an interactive session under a pty, a rolled-back transaction, a server error, a
//! procedure returning two result sets, a dump and its restore — each in the audit trail with
//! statement, class, outcome and rows, and in the session's replay.

use serde_json::Value;

use crate::mysql_support::{
    mysql, mysql_args, mysql_connection, root_sql, scratch_mysql_db, shown,
};
use crate::support::{run, with_statement, Gateway};

fn one<'a>(rows: &'a [Value], needle: &str) -> &'a Value {
    let found = with_statement(rows, needle);
    assert_eq!(found.len(), 1, "one entry for {needle:?} in {rows:#?}");
    found[0]
}

#[test]
fn mysql_cli_statements_errors_procedures_and_transactions_are_audited() {
    scratch_mysql_db("gh_my_cli");
    root_sql(
        "DELIMITER //\nCREATE PROCEDURE gh_my_cli.two_sets() BEGIN \
         SELECT 1 AS first_set; SELECT 'b' AS second_set, 2 AS n; END //",
    );
    let gw = Gateway::start_with_policy(&[], &mysql_connection("shop", "gh_my_cli", ""), &[]);
    let token = gw.token("alice", &["dba"]);

    let out = mysql(
        &gw,
        "shop",
        &token,
        &[
            "-e",
            "CREATE TABLE items (id INT PRIMARY KEY, name VARCHAR(40)); \
             INSERT INTO items VALUES (1,'tea'),(2,'milk'); \
             SELECT name FROM items ORDER BY id",
        ],
        None,
    );
    assert!(out.status.success(), "{}", shown(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("tea") && text.contains("milk"), "{text}");

    // A script on stdin: a transaction rolled back leaves the table as it was.
    let script = "START TRANSACTION;\nDELETE FROM items WHERE id = 1;\nROLLBACK;\n\
                  SELECT COUNT(*) AS left_after_rollback FROM items;\n";
    let out = mysql(&gw, "shop", &token, &[], Some(script));
    assert!(out.status.success(), "{}", shown(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains('2'),
        "{}",
        shown(&out)
    );
    assert_eq!(root_sql("SELECT COUNT(*) FROM gh_my_cli.items").trim(), "2");

    // A server error reaches the client with its code and state; the gateway serves on.
    let out = mysql(
        &gw,
        "shop",
        &token,
        &["-e", "SELECT * FROM missing_table"],
        None,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ERROR 1146 (42S02)"), "{err}");

    // A procedure answering with two result sets.
    let out = mysql(&gw, "shop", &token, &["-e", "CALL two_sets()"], None);
    assert!(out.status.success(), "{}", shown(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("first_set") && text.contains("second_set"),
        "{text}"
    );

    // Interactive: `script` gives the CLI a terminal, as for a person at the prompt.
    let command = mysql_args(&gw, "shop", &token)
        .into_iter()
        .map(|a| format!("'{a}'"))
        .collect::<Vec<_>>()
        .join(" ");
    let typed = "INSERT INTO items VALUES (3, 'typed by hand');\n\
                 SELECT name FROM items WHERE id = 3;\nquit\n";
    let out = run(
        "script",
        &["-qec", &format!("mysql {command}"), "/dev/null"],
        Some(typed),
        &[("TERM", "dumb")],
    );
    let screen = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{screen}");
    assert!(screen.contains("typed by hand"), "{screen}");
    assert!(screen.contains("MariaDB ["), "no prompt: {screen}");

    let rows = gw.audit_until(|rows| {
        with_statement(rows, "SELECT name FROM items WHERE id = 3")
            .first()
            .is_some_and(|r| r["status"].is_string())
    });
    let create = one(&rows, "CREATE TABLE items");
    assert_eq!(create["identity"], "alice");
    assert_eq!(create["connection"], "shop");
    assert_eq!(create["protocol"], "mysql");
    assert_eq!(create["class"], "ddl");
    let insert = one(&rows, "INSERT INTO items VALUES (1,'tea')");
    assert_eq!(insert["class"], "insert");
    assert_eq!(insert["rows_affected"], 2);
    assert_eq!(insert["tag"], "OK, 2 rows affected");
    let select = one(&rows, "SELECT name FROM items ORDER BY id");
    assert_eq!(select["class"], "select");
    assert_eq!(select["rows_returned"], 2);
    assert_eq!(one(&rows, "ROLLBACK")["class"], "transaction");
    let delete = one(&rows, "DELETE FROM items WHERE id = 1");
    assert_eq!(delete["rows_affected"], 1);
    let failed = one(&rows, "missing_table");
    assert_eq!(failed["status"], "error");
    assert_eq!(failed["sqlstate"], "42S02");
    let call = one(&rows, "CALL two_sets()");
    assert_eq!(call["tag"], "2 result sets, 2 rows");
    assert_eq!(call["rows_returned"], 2);
    assert_eq!(one(&rows, "typed by hand")["class"], "insert");

    // The interactive session replays as a timeline.
    let session = one(&rows, "typed by hand")["session"]
        .as_str()
        .expect("session id")
        .to_owned();
    let replay = gw.cli(&["replay", &session[..12]]);
    for expected in [
        "alice on shop",
        "[insert] INSERT INTO items VALUES (3, 'typed by hand')",
        "-> ok OK, 1 rows affected",
        "[select] SELECT name FROM items WHERE id = 3",
        "client quit",
    ] {
        assert!(
            replay.contains(expected),
            "replay lacks {expected:?}:\n{replay}"
        );
    }
}

#[test]
fn mysqldump_through_the_gateway_restores_with_mysql() {
    scratch_mysql_db("gh_my_dump");
    scratch_mysql_db("gh_my_restore");
    root_sql(
        "CREATE TABLE gh_my_dump.orders (id INT PRIMARY KEY, item VARCHAR(40), total DECIMAL(8,2), \
         placed DATE); \
         INSERT INTO gh_my_dump.orders VALUES (1,'tea',3.50,'2026-01-02'),(2,'milk',1.20,NULL); \
         CREATE VIEW gh_my_dump.big AS SELECT * FROM gh_my_dump.orders WHERE total > 2",
    );
    let policy = format!(
        "{}{}",
        mysql_connection("dumpsrc", "gh_my_dump", ""),
        mysql_connection("dumpdst", "gh_my_restore", "")
    );
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let token = gw.token("backup-job", &["batch"]);

    // mysqldump connects without a database, so the user name names the connection; the
    // database it dumps is the upstream's own name (it also looks it up in
    // information_schema).
    let dump = run(
        "mysqldump",
        &[
            "-h",
            "127.0.0.1",
            "-P",
            &gw.mysql_port.to_string(),
            "-u",
            "dumpsrc",
            &format!("-p{token}"),
            "--ssl",
            "--single-transaction",
            "--routines",
            "gh_my_dump",
        ],
        None,
        &[],
    );
    assert!(dump.status.success(), "{}", shown(&dump));
    let sql = String::from_utf8_lossy(&dump.stdout).into_owned();
    assert!(sql.contains("INSERT INTO `orders` VALUES"), "{sql}");
    assert!(sql.contains("VIEW `big`"), "{sql}");

    let restore = mysql(&gw, "dumpdst", &token, &[], Some(&sql));
    assert!(restore.status.success(), "{}", shown(&restore));
    let checksum = |db: &str| root_sql(&format!("CHECKSUM TABLE {db}.orders EXTENDED"));
    let (src, dst) = (checksum("gh_my_dump"), checksum("gh_my_restore"));
    assert_eq!(
        src.split_whitespace().last(),
        dst.split_whitespace().last(),
        "{src} vs {dst}"
    );
    assert_eq!(
        root_sql("SELECT COUNT(*) FROM gh_my_restore.big").trim(),
        "1"
    );

    let rows = gw.audit_until(|rows| {
        rows.iter()
            .filter(|r| r["connection"] == "dumpdst")
            .any(|r| {
                r["statement"]
                    .as_str()
                    .is_some_and(|s| s.contains("INSERT INTO `orders`"))
                    && r["status"].is_string()
            })
    });
    let dumped = rows
        .iter()
        .filter(|r| r["connection"] == "dumpsrc" && r["identity"] == "backup-job")
        .count();
    assert!(dumped > 5, "mysqldump's statements are audited: {rows:#?}");
    let restored = with_statement(&rows, "INSERT INTO `orders` VALUES");
    assert_eq!(restored.len(), 1, "{rows:#?}");
    assert_eq!(restored[0]["rows_affected"], 2);
    assert_eq!(restored[0]["class"], "insert");
}
