//! The extended protocol's corners: what is audited for an Execute is what the server runs,
//! even when a client tries to re-Parse a name the server refuses to replace, pipelines with
//! errors, the gateway's reserved portal name, and COPY through the extended protocol.

use std::time::Duration;

use futures_util::SinkExt;

use crate::faults::{query, Raw};
use crate::support::*;
use crate::upstream_auth::{error_code, message_types};

/// One frontend message: tag, length, body.
pub fn msg(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut m = vec![tag];
    m.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    m.extend_from_slice(body);
    m
}

/// NUL-terminated strings, concatenated.
pub fn cstrs(parts: &[&str]) -> Vec<u8> {
    let mut b = Vec::new();
    for p in parts {
        b.extend_from_slice(p.as_bytes());
        b.push(0);
    }
    b
}

fn parse(name: &str, sql: &str) -> Vec<u8> {
    let mut b = cstrs(&[name, sql]);
    b.extend_from_slice(&0i16.to_be_bytes());
    msg(b'P', &b)
}

fn bind(portal: &str, statement: &str) -> Vec<u8> {
    let mut b = cstrs(&[portal, statement]);
    b.extend_from_slice(&[0, 0, 0, 0, 0, 0]);
    msg(b'B', &b)
}

fn execute(portal: &str) -> Vec<u8> {
    let mut b = cstrs(&[portal]);
    b.extend_from_slice(&0i32.to_be_bytes());
    msg(b'E', &b)
}

fn sync() -> Vec<u8> {
    msg(b'S', &[])
}

fn until_ready(raw: &mut Raw) -> Vec<u8> {
    raw.read_until(|b| {
        b.len() >= 6 && b[b.len() - 6] == b'Z' && b[b.len() - 5..b.len() - 1] == [0, 0, 0, 5]
    })
}

#[test]
fn a_refused_reparse_cannot_make_the_audit_lie_about_what_runs() {
    scratch_db("gh_reparse");
    admin_sql(
        "gh_reparse",
        "CREATE TABLE victims (id int); INSERT INTO victims VALUES (1), (2)",
    );
    let gw = Gateway::start(&[Conn::local("app", "gh_reparse")]);
    let token = gw.token("sneaky", &["batch"]);
    let mut raw = Raw::login(gw.port, "app", &token);

    raw.send(&[parse("s1", "DELETE FROM victims"), sync()].concat());
    until_ready(&mut raw);
    // The server refuses to replace s1 (42P05); the gateway must not believe it did.
    raw.send(&[parse("s1", "SELECT 1"), sync()].concat());
    let answer = until_ready(&mut raw);
    assert_eq!(error_code(&answer).as_deref(), Some("42P05"));
    raw.send(&[bind("", "s1"), execute(""), sync()].concat());
    let answer = until_ready(&mut raw);
    assert!(message_types(&answer)
        .iter()
        .any(|(t, b)| *t == b'C' && b.starts_with(b"DELETE 2")));
    assert_eq!(admin_sql("gh_reparse", "SELECT count(*) FROM victims"), "0");

    // A pipeline whose Parse fails: its Execute fails with the Parse's error.
    raw.send(
        &[
            parse("", "SELEKT nonsense"),
            bind("", ""),
            execute(""),
            sync(),
        ]
        .concat(),
    );
    let answer = until_ready(&mut raw);
    assert_eq!(error_code(&answer).as_deref(), Some("42601"));
    raw.send(&[b'X', 0, 0, 0, 4]);

    let rows = gw.audit_until(|rows| rows.iter().filter(|r| r["status"].is_string()).count() >= 2);
    let executes: Vec<_> = rows.iter().filter(|r| r["identity"] == "sneaky").collect();
    assert_eq!(executes.len(), 2, "{rows:#?}");
    assert_eq!(executes[0]["statement"], "DELETE FROM victims");
    assert_eq!(executes[0]["class"], "delete-without-where");
    assert_eq!(executes[0]["tag"], "DELETE 2");
    assert_eq!(executes[1]["statement"], "SELEKT nonsense");
    assert_eq!(executes[1]["status"], "error");
    assert_eq!(executes[1]["sqlstate"], "42601");
    let session = executes[0]["session"].as_str().unwrap();
    let replay = gw.cli(&["replay", session]);
    assert!(
        replay.contains("Parse of statement \"s1\" failed") && replay.contains("42P05"),
        "{replay}"
    );
}

#[test]
fn the_reserved_stand_in_portal_cannot_be_used_by_a_client() {
    let gw = Gateway::start(&[Conn::local("app", "test")]);
    let token = gw.token("job", &["batch"]);
    let mut raw = Raw::login(gw.port, "app", &token);
    raw.send(
        &[
            parse("", "SELECT 1"),
            bind("gatehouse: refused command", ""),
            sync(),
        ]
        .concat(),
    );
    assert_eq!(error_code(&raw.read_to_close()).as_deref(), Some("08P01"));
    let mut raw = Raw::login(gw.port, "app", &token);
    raw.send(&query("SELECT 'still fine'"));
    let answer = until_ready(&mut raw);
    assert!(String::from_utf8_lossy(&answer).contains("still fine"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_through_the_extended_protocol_keeps_later_answers_in_step() {
    scratch_db("gh_copy_ext");
    let gw = Gateway::start(&[Conn::local("app", "gh_copy_ext")]);
    let token = gw.token("loader", &["batch"]);
    let dsn = gw
        .dsn("app", &token)
        .replace("sslmode=require", "sslmode=disable");
    let (client, connection) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
        .batch_execute("CREATE TABLE t (n int)")
        .await
        .unwrap();
    for round in 0..3 {
        let sink = client.copy_in("COPY t FROM STDIN").await.unwrap();
        futures_util::pin_mut!(sink);
        let data: String = (0..100).map(|i| format!("{}\n", round * 100 + i)).collect();
        sink.send(bytes::Bytes::from(data)).await.unwrap();
        assert_eq!(sink.finish().await.unwrap(), 100);
        let n: i64 = client
            .query_one("SELECT count(*) FROM t", &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(n, (round + 1) * 100);
    }
    let found = client
        .query("SELECT n FROM t WHERE n < $1", &[&5i32])
        .await
        .unwrap();
    assert_eq!(found.len(), 5);
    // A simple query closes at its own ReadyForQuery: a stale Sync from the COPY would make
    // it wait for the next one, which never comes.
    client.simple_query("SELECT 'last word'").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(client);
    tokio::time::sleep(Duration::from_millis(100)).await;

    let rows = gw.audit_until(|rows| {
        with_statement(rows, "WHERE n <")
            .first()
            .is_some_and(|r| r["status"].is_string())
    });
    let copies = with_statement(&rows, "COPY t FROM STDIN");
    assert_eq!(copies.len(), 3);
    assert!(copies.iter().all(|r| r["tag"] == "COPY 100"), "{copies:#?}");
    let counts = with_statement(&rows, "SELECT count(*) FROM t");
    let tags: Vec<_> = counts.iter().map(|r| r["tag"].clone()).collect();
    assert_eq!(
        tags,
        vec!["SELECT 1"; 3],
        "answers out of step after COPY: {counts:#?}"
    );
    let rows = gw.audit_until(|rows| {
        with_statement(rows, "last word")
            .first()
            .is_some_and(|r| r["status"].is_string())
    });
    let word = with_statement(&rows, "last word");
    assert_eq!(word[0]["status"], "ok", "{word:#?}");
    assert_eq!(word[0]["tag"], "SELECT 1");
    let last = with_statement(&rows, "WHERE n <");
    assert_eq!(last[0]["rows_returned"], 5);
    assert_eq!(last[0]["params"], serde_json::json!(["5"]));
}
