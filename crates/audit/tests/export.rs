//! `Store::export`: JSON Lines and CSV as an auditor's tools read them — quoting of
//! awkward statement text, NULLs, filters, time bounds, order, and write errors passed on.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use gatehouse_audit::{AuditError, AuditFilter, ExportFilter, ExportFormat, Store};
use serde_json::{json, Value};

/// One stored entry, as the tests want it.
struct Row<'a> {
    at_us: i64,
    identity: &'a str,
    connection: &'a str,
    protocol: &'a str,
    statement: &'a str,
    verdict: &'a str,
    finished: bool,
    masked: Option<&'a str>,
}

impl<'a> Row<'a> {
    fn new(at_us: i64, identity: &'a str, statement: &'a str) -> Self {
        Self {
            at_us,
            identity,
            connection: "payments",
            protocol: "postgres",
            statement,
            verdict: "allow",
            finished: true,
            masked: None,
        }
    }
}

const T0: i64 = 1_700_000_000_000_000;

fn store_with(rows: &[Row<'_>]) -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().unwrap();
    let store = gatehouse_audit::testing::fresh_store(dir.path()).unwrap();
    store
        .read(|conn| {
            for (seq, r) in rows.iter().enumerate() {
                let done = r.finished;
                conn.execute(
                    "INSERT INTO audit_entries (session_id, seq, at, identity, groups_json,
                        connection, protocol, client_addr, statement, params_json, class,
                        verdict, status, tag, rows_returned, rows_affected, duration_us,
                        finished_at, rule, masked_json)
                     VALUES ('ses_1', ?1, ?2, ?3, '[\"batch\",\"dba\"]', ?4, ?5,
                        '127.0.0.1:5000', ?6, '[\"1\",null]', 'select', ?7, ?8, ?9, ?10, ?11,
                        ?12, ?13, ?14, ?15)",
                    gatehouse_audit::db::params![
                        seq as i64,
                        r.at_us,
                        r.identity,
                        r.connection,
                        r.protocol,
                        r.statement,
                        r.verdict,
                        done.then_some("ok"),
                        done.then_some("SELECT 1"),
                        done.then_some(1i64),
                        done.then_some(0i64),
                        done.then_some(250i64),
                        done.then_some(r.at_us + 250),
                        (r.verdict == "deny").then_some("no-drops"),
                        r.masked,
                    ],
                )?;
            }
            Ok(())
        })
        .unwrap();
    (dir, store)
}

fn export(store: &Store, filter: &ExportFilter, format: ExportFormat) -> (u64, String) {
    let mut out = Vec::new();
    let n = store.export(filter, format, &mut out).unwrap();
    (n, String::from_utf8(out).unwrap())
}

fn jsonl(store: &Store, filter: &ExportFilter) -> Vec<Value> {
    let (n, text) = export(store, filter, ExportFormat::Jsonl);
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
        .collect();
    assert_eq!(lines.len() as u64, n);
    assert!(text.is_empty() || text.ends_with('\n'));
    lines
}

/// An RFC 4180 reader, strict: a quote inside an unquoted field, or a lone quote inside a
/// quoted one, fails the test.
fn parse_csv(text: &str) -> Vec<Vec<String>> {
    let mut records = Vec::new();
    let mut record = Vec::new();
    let mut field = String::new();
    let mut chars = text.chars().peekable();
    let mut quoted = false;
    let mut was_quoted = false;
    while let Some(c) = chars.next() {
        if quoted {
            match c {
                '"' if chars.peek() == Some(&'"') => {
                    chars.next();
                    field.push('"');
                }
                '"' => {
                    quoted = false;
                    assert!(
                        matches!(chars.peek(), Some(',' | '\r') | None),
                        "text after a closing quote in {text:?}"
                    );
                }
                c => field.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                assert!(field.is_empty() && !was_quoted, "stray quote in {text:?}");
                quoted = true;
                was_quoted = true;
            }
            ',' => {
                record.push(std::mem::take(&mut field));
                was_quoted = false;
            }
            '\r' => {
                assert_eq!(chars.next(), Some('\n'), "CR without LF outside quotes");
                record.push(std::mem::take(&mut field));
                records.push(std::mem::take(&mut record));
                was_quoted = false;
            }
            '\n' => panic!("bare LF outside quotes in {text:?}"),
            c => field.push(c),
        }
    }
    assert!(!quoted, "unterminated quoted field");
    assert!(
        field.is_empty() && record.is_empty(),
        "last record not ended"
    );
    records
}

fn csv(store: &Store, filter: &ExportFilter) -> Vec<Vec<String>> {
    let (n, text) = export(store, filter, ExportFormat::Csv);
    let records = parse_csv(&text);
    assert_eq!(
        records.len() as u64,
        n + 1,
        "header and one record per entry"
    );
    assert!(records.iter().all(|r| r.len() == 24), "{records:?}");
    records
}

const AWKWARD: &str = "SELECT 1 AS \"a,b\", 'it''s \"quoted\"'\n  , 'line\r\nbreak' AS x";

#[test]
fn csv_quotes_commas_quotes_and_line_breaks_and_round_trips() {
    let (_dir, store) = store_with(&[
        Row::new(T0, "alice", AWKWARD),
        Row::new(T0 + 1, "bob", "SELECT 2"),
    ]);
    let records = csv(&store, &ExportFilter::default());
    assert_eq!(
        records[0].join(","),
        "id,at,session,seq,identity,groups,connection,protocol,client,statement,params,class,\
         verdict,status,tag,sqlstate,error,rows_returned,rows_affected,duration_us,rule,\
         approval,masked,approved_by"
    );
    let col = |name: &str| records[0].iter().position(|h| h == name).unwrap();
    assert_eq!(records[1][col("statement")], AWKWARD);
    assert_eq!(records[2][col("statement")], "SELECT 2");
    assert_eq!(records[1][col("identity")], "alice");
    assert_eq!(records[1][col("groups")], r#"["batch","dba"]"#);
    assert_eq!(records[1][col("params")], r#"["1",null]"#);
    assert_eq!(records[1][col("masked")], "{}");
    assert_eq!(records[1][col("at")], "2023-11-14T22:13:20.000000Z");
    assert_eq!(records[2][col("at")], "2023-11-14T22:13:20.000001Z");

    // Byte for byte: only the cells that need it are quoted, quotes doubled, CRLF between
    // records, line breaks inside a quoted cell kept as they are.
    let (_, text) = export(&store, &ExportFilter::default(), ExportFormat::Csv);
    let (_header, second) = text.split_once("\r\n").unwrap();
    assert!(
        second.starts_with("1,2023-11-14T22:13:20.000000Z,ses_1,0,alice,\"[\"\"batch\"\",\"\"dba\"\"]\",payments,postgres,127.0.0.1:5000,\"SELECT 1 AS \"\"a,b\"\", 'it''s \"\"quoted\"\"'\n  , 'line\r"),
        "{second:?}"
    );
    assert!(
        text.ends_with(
            ":5000,SELECT 2,\"[\"\"1\"\",null]\",select,allow,ok,SELECT 1,,,1,0,250,,,{},\r\n"
        ),
        "{text:?}"
    );
}

#[test]
fn nulls_are_empty_cells_and_json_nulls() {
    let (_dir, store) = store_with(&[Row {
        finished: false,
        ..Row::new(T0, "alice", "SELECT pg_sleep(60)")
    }]);
    let records = csv(&store, &ExportFilter::default());
    let get = |name: &str| {
        let i = records[0].iter().position(|h| h == name).unwrap();
        records[1][i].clone()
    };
    for name in [
        "status",
        "tag",
        "sqlstate",
        "error",
        "rows_returned",
        "rows_affected",
        "duration_us",
        "rule",
        "approval",
        "approved_by",
    ] {
        assert_eq!(get(name), "", "{name}");
    }
    assert_eq!(get("masked"), "{}");

    let entry = &jsonl(&store, &ExportFilter::default())[0];
    let object = entry.as_object().unwrap();
    assert_eq!(object.len(), 24, "every field present: {entry}");
    for name in ["status", "tag", "rows_returned", "duration_us", "approval"] {
        assert_eq!(entry[name], Value::Null, "{name}");
    }
    assert_eq!(entry["masked"], json!({}));
}

#[test]
fn jsonl_has_the_listing_fields_with_microsecond_times() {
    let (_dir, store) = store_with(&[
        Row {
            masked: Some(r#"{"cards.pan":3}"#),
            ..Row::new(T0 + 123_456, "alice", AWKWARD)
        },
        Row {
            verdict: "deny",
            ..Row::new(T0 + 2_000_000, "bob", "DROP TABLE cards")
        },
    ]);
    let exported = jsonl(&store, &ExportFilter::default());
    let listed = store.list_audit(&AuditFilter::default()).unwrap();
    assert_eq!(exported.len(), listed.len());
    for (e, l) in exported.iter().zip(&listed) {
        let mut l = serde_json::to_value(l).unwrap();
        let (e_at, l_at) = (e["at"].as_str().unwrap(), l["at"].as_str().unwrap());
        // The listing shows milliseconds; the export keeps the stored microseconds.
        assert_eq!(&e_at[..23], &l_at[..23]);
        assert_eq!(e_at.len(), l_at.len() + 3);
        l["at"] = e["at"].clone();
        assert_eq!(e, &l);
    }
    assert_eq!(exported[0]["at"], "2023-11-14T22:13:20.123456Z");
    assert_eq!(exported[0]["statement"], AWKWARD);
    assert_eq!(exported[0]["masked"], json!({"cards.pan": 3}));
    assert_eq!(exported[0]["params"], json!(["1", null]));
    assert_eq!(exported[1]["verdict"], "deny");
    assert_eq!(exported[1]["rule"], "no-drops");
    let text = export(&store, &ExportFilter::default(), ExportFormat::Jsonl).1;
    assert_eq!(
        text.lines().count(),
        2,
        "a statement's line breaks stay escaped"
    );
}

#[test]
fn filters_select_exact_matches_and_combine() {
    let (_dir, store) = store_with(&[
        Row::new(T0, "alice", "SELECT 1"),
        Row {
            verdict: "deny",
            ..Row::new(T0 + 1, "alice", "DROP TABLE t")
        },
        Row {
            connection: "crm",
            ..Row::new(T0 + 2, "bob", "SELECT 3")
        },
        Row {
            protocol: "mysql",
            ..Row::new(T0 + 3, "alice-admin", "SELECT 4")
        },
    ]);
    let statements = |filter: ExportFilter| -> Vec<String> {
        jsonl(&store, &filter)
            .iter()
            .map(|e| e["statement"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(statements(ExportFilter::default()).len(), 4);
    assert_eq!(
        statements(ExportFilter {
            identity: Some("alice".into()),
            ..Default::default()
        }),
        ["SELECT 1", "DROP TABLE t"],
        "exact identity, not a prefix"
    );
    assert_eq!(
        statements(ExportFilter {
            verdict: Some("deny".into()),
            ..Default::default()
        }),
        ["DROP TABLE t"]
    );
    assert_eq!(
        statements(ExportFilter {
            connection: Some("crm".into()),
            ..Default::default()
        }),
        ["SELECT 3"]
    );
    assert_eq!(
        statements(ExportFilter {
            protocol: Some("mysql".into()),
            ..Default::default()
        }),
        ["SELECT 4"]
    );
    assert_eq!(
        statements(ExportFilter {
            identity: Some("alice".into()),
            verdict: Some("allow".into()),
            connection: Some("payments".into()),
            protocol: Some("postgres".into()),
            ..Default::default()
        }),
        ["SELECT 1"]
    );
    assert!(statements(ExportFilter {
        identity: Some("nobody".into()),
        ..Default::default()
    })
    .is_empty());
    // Pages: a limit, then the next page after the last id seen.
    let first = jsonl(
        &store,
        &ExportFilter {
            limit: Some(3),
            ..Default::default()
        },
    );
    assert_eq!(first.len(), 3);
    let rest = jsonl(
        &store,
        &ExportFilter {
            after_id: first[2]["id"].as_i64(),
            limit: Some(3),
            ..Default::default()
        },
    );
    assert_eq!(rest.len(), 1);
    assert!(rest[0]["id"].as_i64() > first[2]["id"].as_i64());
    // No match still gives a CSV header.
    let (n, text) = export(
        &store,
        &ExportFilter {
            identity: Some("%".into()),
            ..Default::default()
        },
        ExportFormat::Csv,
    );
    assert_eq!(n, 0);
    assert!(text.starts_with("id,at,") && text.ends_with("masked,approved_by\r\n"));
}

#[test]
fn from_is_inclusive_to_is_exclusive_and_order_is_by_id() {
    // Stored out of time order (as concurrent sessions can be): the export follows the store's
    // order (id), and the window is on the admission time.
    let (_dir, store) = store_with(&[
        Row::new(T0 + 10, "a", "t10"),
        Row::new(T0 + 30, "a", "t30"),
        Row::new(T0 + 20, "a", "t20"),
        Row::new(T0 + 40, "a", "t40"),
        Row::new(T0, "a", "t0"),
    ]);
    let at = |us: i64| Some(UNIX_EPOCH + Duration::from_micros(us as u64));
    let window = |from: Option<SystemTime>, to: Option<SystemTime>| -> Vec<String> {
        let filter = ExportFilter {
            from,
            to,
            ..Default::default()
        };
        let from_jsonl: Vec<String> = jsonl(&store, &filter)
            .iter()
            .map(|e| e["statement"].as_str().unwrap().to_owned())
            .collect();
        let from_csv: Vec<String> = csv(&store, &filter)[1..]
            .iter()
            .map(|r| r[9].clone())
            .collect();
        assert_eq!(from_jsonl, from_csv);
        from_jsonl
    };
    assert_eq!(window(None, None), ["t10", "t30", "t20", "t40", "t0"]);
    assert_eq!(window(at(T0 + 10), at(T0 + 30)), ["t10", "t20"]);
    assert_eq!(window(at(T0 + 11), at(T0 + 31)), ["t30", "t20"]);
    assert_eq!(window(at(T0 + 20), None), ["t30", "t20", "t40"]);
    assert_eq!(window(None, at(T0 + 20)), ["t10", "t0"]);
    assert!(window(at(T0 + 41), None).is_empty());
    assert!(window(at(T0 + 20), at(T0 + 20)).is_empty());
    // Adjacent windows cover everything once.
    let mut halves = window(None, at(T0 + 25));
    halves.extend(window(at(T0 + 25), None));
    halves.sort();
    assert_eq!(halves, ["t0", "t10", "t20", "t30", "t40"]);
}

#[test]
fn an_empty_store_exports_nothing() {
    let (_dir, store) = store_with(&[]);
    assert_eq!(
        export(&store, &ExportFilter::default(), ExportFormat::Jsonl),
        (0, String::new())
    );
    let (n, text) = export(&store, &ExportFilter::default(), ExportFormat::Csv);
    assert_eq!((n, text.lines().count()), (0, 1));
}

/// A writer that takes `limit` bytes, then fails as a closed pipe does.
struct ClosedPipe {
    limit: usize,
}

impl std::io::Write for ClosedPipe {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.limit == 0 {
            return Err(std::io::ErrorKind::BrokenPipe.into());
        }
        let n = buf.len().min(self.limit);
        self.limit -= n;
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn a_failing_writer_ends_the_export_with_its_own_error() {
    let statement = "SELECT 'x' || repeat('y', 200)";
    let rows: Vec<Row<'_>> = (0..2000)
        .map(|i| Row::new(T0 + i, "a", statement))
        .collect();
    let (_dir, store) = store_with(&rows);
    for format in [ExportFormat::Jsonl, ExportFormat::Csv] {
        let err = store
            .export(
                &ExportFilter::default(),
                format,
                &mut ClosedPipe { limit: 1000 },
            )
            .unwrap_err();
        match err {
            AuditError::Io { source, .. } => {
                assert_eq!(source.kind(), std::io::ErrorKind::BrokenPipe)
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn an_export_runs_beside_the_stores_own_reader() {
    // The export has its own connection: the shared reader stays free while it runs.
    let (_dir, store) = store_with(&[Row::new(T0, "a", "SELECT 1")]);
    store
        .read(|_conn| {
            let (n, _) = export(&store, &ExportFilter::default(), ExportFormat::Jsonl);
            assert_eq!(n, 1);
            Ok(())
        })
        .unwrap();
}
