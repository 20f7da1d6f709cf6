//! Drivers through the gateway: psycopg 3 (server-side binding) and tokio-postgres (binary
//! parameters), with their parameters in the audit trail; cancellation reaching the server.

use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn psycopg3_server_side_binding_is_audited_with_parameters() {
    scratch_db("gh_psycopg");
    let gw = Gateway::start(&[Conn::local("py", "gh_psycopg")]);
    let token = gw.token("py-service", &["batch"]);
    let script = r#"
import sys, psycopg
with psycopg.connect(sys.argv[1]) as conn:
    conn.execute("CREATE TABLE accounts (id int, owner text, balance numeric)")
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO accounts VALUES (%s, %s, %s)",
                        [(1, "ada", 10.5), (2, "grace", 20), (3, None, 0)])
        cur.execute("SELECT owner FROM accounts WHERE balance > %s ORDER BY id", (5,))
        print(",".join(r[0] for r in cur.fetchall()))
        conn.commit()
        try:
            cur.execute("SELECT 1 / %s", (0,))
        except psycopg.errors.DivisionByZero as e:
            print("sqlstate", e.sqlstate)
    conn.rollback()
    with conn.transaction():
        conn.execute("UPDATE accounts SET balance = balance + %s WHERE id = %s", (1, 2))
"#;
    let out = run("python3", &["-c", script, &gw.dsn("py", &token)], None, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "python failed (is psycopg installed? scripts/setup.sh does it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.contains("ada,grace"), "{stdout}");
    assert!(stdout.contains("sqlstate 22012"), "{stdout}");

    let rows = gw.audit_until(|rows| {
        with_statement(rows, "UPDATE accounts")
            .first()
            .is_some_and(|r| r["status"].is_string())
    });
    let inserts = with_statement(&rows, "INSERT INTO accounts");
    assert_eq!(inserts.len(), 3, "{rows:#?}");
    let params: Vec<_> = inserts.iter().map(|r| r["params"].clone()).collect();
    assert!(
        params.contains(&serde_json::json!(["1", "ada", "10.5"])),
        "{params:?}"
    );
    assert!(
        params.contains(&serde_json::json!(["3", null, "0"])),
        "{params:?}"
    );
    let select = with_statement(&rows, "SELECT owner FROM accounts");
    assert_eq!(select[0]["params"], serde_json::json!(["5"]));
    assert_eq!(select[0]["rows_returned"], 2);
    let div = with_statement(&rows, "SELECT 1 /");
    assert_eq!(div[0]["sqlstate"], "22012");
    assert_eq!(div[0]["params"], serde_json::json!(["0"]));
    let update = with_statement(&rows, "UPDATE accounts");
    assert_eq!(update[0]["params"], serde_json::json!(["1", "2"]));
    assert_eq!(update[0]["rows_affected"], 1);
}

async fn connect(dsn: &str) -> tokio_postgres::Client {
    // The gateway's loopback listener accepts tokens without TLS; this driver has no TLS
    // backend configured here, so it connects in the clear.
    let dsn = dsn.replace("sslmode=require", "sslmode=disable");
    let (client, connection) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .expect("connect through gateway");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_postgres_binary_parameters_are_audited_readably() {
    scratch_db("gh_tokio");
    let gw = Gateway::start(&[Conn::local("rs", "gh_tokio")]);
    let token = gw.token("rust-worker", &["batch"]);
    let client = connect(&gw.dsn("rs", &token)).await;
    client
        .batch_execute("CREATE TABLE jobs (id bigint, name text, done bool)")
        .await
        .unwrap();
    let stmt = client
        .prepare("INSERT INTO jobs VALUES ($1, $2, $3)")
        .await
        .unwrap();
    for (id, name) in [(7i64, "nightly"), (8, "hourly")] {
        client.execute(&stmt, &[&id, &name, &false]).await.unwrap();
    }
    let rows = client
        .query("SELECT name FROM jobs WHERE id >= $1 ORDER BY id", &[&7i64])
        .await
        .unwrap();
    assert_eq!(rows.len(), 2);
    let err = client
        .query_one("SELECT $1::int / 0", &[&1i32])
        .await
        .expect_err("division by zero");
    assert_eq!(err.code().map(|c| c.code()), Some("22012"));
    drop(client);

    let rows = gw.audit_until(|rows| {
        with_statement(rows, "/ 0")
            .first()
            .is_some_and(|r| r["status"].is_string())
    });
    let inserts = with_statement(&rows, "INSERT INTO jobs");
    assert_eq!(inserts.len(), 2);
    assert_eq!(
        inserts[0]["params"],
        serde_json::json!(["7", "nightly", "false"])
    );
    assert_eq!(
        inserts[1]["params"],
        serde_json::json!(["8", "hourly", "false"])
    );
    let select = with_statement(&rows, "SELECT name FROM jobs");
    assert_eq!(select[0]["params"], serde_json::json!(["7"]));
    assert_eq!(select[0]["rows_returned"], 2);
    assert_eq!(with_statement(&rows, "/ 0")[0]["sqlstate"], "22012");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn driver_cancel_stops_the_server_side_query() {
    let gw = Gateway::start(&[Conn::local("cancel", "test")]);
    let token = gw.token("canceller", &["batch"]);
    let client = connect(&gw.dsn("cancel", &token)).await;
    let cancel = client.cancel_token();
    let started = Instant::now();
    let sleeper =
        tokio::spawn(async move { client.simple_query("SELECT pg_sleep(30)").await.map(|_| ()) });
    tokio::time::sleep(Duration::from_millis(500)).await;
    cancel
        .cancel_query(tokio_postgres::NoTls)
        .await
        .expect("cancel request");
    let result = tokio::time::timeout(Duration::from_secs(10), sleeper)
        .await
        .expect("query still running 10s after cancel")
        .unwrap();
    let err = result.expect_err("the query was cancelled");
    assert_eq!(err.code().map(|c| c.code()), Some("57014"), "{err}");
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        admin_sql("test", "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)' AND state = 'active'"),
        "0"
    );
    let rows = gw.audit_until(|rows| {
        with_statement(rows, "pg_sleep(30)")
            .first()
            .is_some_and(|r| r["status"].is_string())
    });
    assert_eq!(
        with_statement(&rows, "pg_sleep(30)")[0]["sqlstate"],
        "57014"
    );
}

#[test]
fn psql_ctrl_c_cancels_the_running_query() {
    let gw = Gateway::start(&[Conn::local("cancel", "test")]);
    let token = gw.token("operator", &["dba"]);
    let mut child = std::process::Command::new("psql")
        .args([
            "-X",
            "-d",
            &gw.dsn("cancel", &token),
            "-c",
            "SELECT pg_sleep(29)",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("psql");
    std::thread::sleep(Duration::from_millis(800));
    // What Ctrl-C at the terminal sends.
    let status = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "psql still waiting after Ctrl-C"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("canceling statement due to user request"),
        "{err}"
    );
    let rows = gw.audit_until(|rows| {
        with_statement(rows, "pg_sleep(29)")
            .first()
            .is_some_and(|r| r["status"].is_string())
    });
    assert_eq!(
        with_statement(&rows, "pg_sleep(29)")[0]["sqlstate"],
        "57014"
    );
}
