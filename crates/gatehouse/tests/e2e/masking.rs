//! Masking end to end: card numbers, e-mails and a sensitive column, read every way a client
//! can (SELECT *, a join, a view, a function, COPY TO STDOUT, extended protocol in text and
//! binary), never shown in full to an identity that is not exempt, and never stored in clear.

use std::path::Path;

use crate::support::*;

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
style = "hash"
exempt_groups = ["fraud"]

[[mask]]
name = "notes"
columns = ["customers.secret_note"]
exempt_groups = ["fraud", "support"]
"#;

/// The card numbers in the table, in the forms they are stored and typed.
const PANS: [&str; 4] = [
    "4111111111111111",
    "5500 0000 0000 0004",
    "3782-822463-10005",
    "5500000000000004",
];

fn setup(db: &str) -> Gateway {
    scratch_db(db);
    admin_sql(
        db,
        "CREATE TABLE customers (id int, name text, email text, card_number text, \
             card_big bigint, secret_note text);
         INSERT INTO customers VALUES
           (1, 'Ada', 'ada@example.com', '4111111111111111', 4111111111111111, 'likes tea'),
           (2, 'Bob', 'bob@example.org', '5500 0000 0000 0004', 5500000000000004, 'n/a'),
           (3, 'Cy', 'cy@example.net', '3782-822463-10005', 378282246310005, 'vip');
         CREATE TABLE orders (id int, customer_id int, paid_with text);
         INSERT INTO orders VALUES (10, 1, 'card 4111111111111111'), (11, 2, 'cash');
         CREATE VIEW cards AS SELECT name, card_number AS cc FROM customers;
         CREATE FUNCTION all_cards() RETURNS SETOF text LANGUAGE sql
           AS 'SELECT card_number FROM customers';",
    );
    let conn = Conn {
        groups: &["analysts", "fraud", "support"],
        ..Conn::local("shop", db)
    };
    Gateway::start_with_policy(&[conn], MASKS, &[])
}

fn assert_no_pan(what: &str, text: &str) {
    for pan in PANS {
        assert!(!text.contains(pan), "{what} shows {pan}:\n{text}");
    }
}

#[test]
fn card_numbers_never_show_in_full_to_identities_that_are_not_exempt() {
    let gw = setup("gh_mask_psql");
    let analyst = gw.token("ana", &["analysts"]);
    let support = gw.token("sam", &["support"]);
    let fraud = gw.token("fay", &["fraud"]);
    let queries = [
        "SELECT * FROM customers ORDER BY id",
        "SELECT c.name, c.card_number AS x, o.paid_with FROM customers c \
         JOIN orders o ON o.customer_id = c.id",
        "SELECT * FROM cards",
        "SELECT all_cards()",
        "SELECT card_big::text || '' AS sneaky FROM customers",
        "SELECT name FROM customers WHERE card_number = '4111111111111111'",
        "LISTEN payments",
        "NOTIFY payments, 'refund to 4111111111111111'",
    ];
    let mut args = Vec::new();
    for q in &queries {
        args.extend(["-c", q]);
    }
    let (ok, out, err) = psql(&gw.dsn("shop", &analyst), &args, None);
    assert!(ok, "{err}");
    assert_no_pan("psql", &out);
    assert!(out.contains("************1111"), "{out}");
    assert!(
        !out.contains("ada@example.com") && out.contains("h:"),
        "{out}"
    );
    assert!(
        !out.contains("likes tea") && out.contains("[redacted]"),
        "{out}"
    );
    assert!(out.contains("Ada"), "names are not masked: {out}");
    assert!(out.contains("refund to ************1111"), "{out}");

    // A server error quoting a card number is masked too.
    let (_, _, err) = psql(
        &gw.dsn("shop", &analyst),
        &["-c", "SELECT '4111111111111111'::int"],
        None,
    );
    // (psql's own "LINE 1:" echo of the query it typed is not the server's.)
    let server_says = err.lines().next().unwrap_or_default();
    assert!(
        server_says.contains("\"************1111\" is out of range"),
        "{err}"
    );
    assert_no_pan("error", server_says);

    // COPY: the analyst is subject to a column rule COPY cannot carry, so it is refused;
    // support is subject only to the detectors, which scan COPY's rows.
    let (ok, out, err) = psql(
        &gw.dsn("shop", &analyst),
        &["-c", "\\copy customers TO STDOUT"],
        None,
    );
    assert!(!ok && err.contains("withheld"), "{out} {err}");
    assert_no_pan("refused copy", &out);
    let (ok, out, err) = psql(
        &gw.dsn("shop", &support),
        &[
            "-c",
            "\\copy (SELECT * FROM customers ORDER BY id) TO STDOUT WITH CSV",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_no_pan("copy", &out);
    assert!(out.contains("likes tea") && out.contains("1111"), "{out}");
    // A letter as delimiter would glue a card number to it: such a COPY is withheld.
    let (ok, out, err) = psql(
        &gw.dsn("shop", &support),
        &["-c", "\\copy (SELECT id, card_number FROM customers) TO STDOUT WITH (FORMAT csv, DELIMITER 'x')"],
        None,
    );
    assert!(!ok && err.contains("withheld"), "{out} {err}");
    assert_no_pan("copy with a letter delimiter", &out);

    // Exempt: clear values.
    let (ok, out, err) = psql(
        &gw.dsn("shop", &fraud),
        &[
            "-Atc",
            "SELECT card_number, email FROM customers WHERE id = 1",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "4111111111111111|ada@example.com");
    // What an exempt identity types is still stored masked (the grep below covers it).
    let (ok, out, err) = psql(
        &gw.dsn("shop", &fraud),
        &[
            "-Atc",
            "SELECT name FROM customers WHERE card_big = 5500000000000004",
        ],
        None,
    );
    assert!(ok && out.trim() == "Bob", "{out} {err}");

    // The audit entries count what was masked, and carry no card number.
    let rows = gw.audit_until(|rows| {
        rows.iter()
            .any(|r| r["identity"] == "fay" && r["status"] == "ok")
    });
    let star = with_statement(&rows, "SELECT * FROM customers ORDER BY id")[0];
    assert_eq!(star["masked"]["customers.card_number"], 3, "{star}");
    assert_eq!(star["masked"]["customers.email"], 3, "{star}");
    assert_eq!(star["masked"]["customers.secret_note"], 3, "{star}");
    let view = with_statement(&rows, "SELECT * FROM cards")[0];
    assert_eq!(view["masked"]["cards.cc"], 3, "{view}");
    let typed = with_statement(&rows, "WHERE card_number =")[0];
    assert_eq!(typed["masked"]["statement"], 1, "{typed}");
    let fay = rows.iter().find(|r| r["identity"] == "fay").unwrap();
    assert!(
        fay["masked"].as_object().is_none_or(|m| m.is_empty()),
        "{fay}"
    );
    assert_store_has_no_pan(&gw);
}

/// Greps every file the gateway wrote: the database, its journal and the recordings.
fn assert_store_has_no_pan(gw: &Gateway) {
    let mut files = Vec::new();
    collect(&gw.dir.path().join("var"), &mut files);
    assert!(files.len() >= 3, "{files:?}");
    for file in files {
        let bytes = std::fs::read(&file).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert_no_pan(&file.display().to_string(), &text);
    }
}

fn collect(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_protocol_rows_are_masked_in_text_and_binary() {
    let gw = setup("gh_mask_ext");
    let analyst = gw.token("ana", &["analysts"]);
    let dsn = gw
        .dsn("shop", &analyst)
        .replace("sslmode=require", "sslmode=disable");
    let (client, connection) = tokio_postgres::connect(&dsn, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    // tokio-postgres prepares (Describe of the statement), then binds every result column in
    // binary format: rows arrive without a RowDescription of their own.
    let rows = client
        .query(
            "SELECT card_number, card_big, email, name FROM customers WHERE id = $1",
            &[&1i32],
        )
        .await
        .unwrap();
    let card: String = rows[0].get(0);
    let big: Option<i64> = rows[0].get(1);
    let email: String = rows[0].get(2);
    let name: String = rows[0].get(3);
    assert_eq!(card, "************1111");
    assert_eq!(big, None, "a bigint card number cannot hold a mask: NULL");
    assert!(email.starts_with("h:"), "{email}");
    assert_eq!(name, "Ada");

    // psycopg in binary format, and a plain text-format execute.
    let script = r#"
import sys, psycopg
with psycopg.connect(sys.argv[1]) as conn:
    cur = conn.cursor(binary=True)
    cur.execute("SELECT card_number, card_big, paid_with FROM customers c JOIN orders o ON o.customer_id = c.id ORDER BY c.id")
    print(cur.fetchall())
    print(conn.execute("SELECT all_cards()").fetchall())
"#;
    let out = run(
        "python3",
        &["-c", script, &gw.dsn("shop", &analyst)],
        None,
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_pan("psycopg", &stdout);
    assert!(stdout.contains("************1111"), "{stdout}");
    assert!(stdout.contains("None"), "{stdout}");
    assert_store_has_no_pan(&gw);
}

use crate::pipelines::{cstrs, msg};

/// Parse + Bind (no parameters; result format `format` for all columns).
fn parse_bind(statement: &str, portal: &str, sql: &str, format: i16) -> Vec<u8> {
    let mut out = msg(b'P', &[cstrs(&[statement, sql]), vec![0, 0]].concat());
    let mut bind = cstrs(&[portal, statement]);
    bind.extend_from_slice(&[0, 0, 0, 0, 0, 1]);
    bind.extend_from_slice(&format.to_be_bytes());
    out.extend(msg(b'B', &bind));
    out
}

#[test]
fn a_plan_is_never_borrowed_from_another_portal_or_an_earlier_execute() {
    let gw = setup("gh_mask_raw");
    let analyst = gw.token("ana", &["analysts"]);
    let mut raw = crate::faults::Raw::login(gw.port, "shop", &analyst);
    let mut pipeline = Vec::new();
    // Describe a harmless portal, then execute a different one: its rows must be planned on
    // their own (here: refused, since nothing described them and they are binary).
    pipeline.extend(parse_bind("s1", "p1", "SELECT true", 1));
    pipeline.extend(parse_bind(
        "s2",
        "p2",
        "SELECT card_number FROM customers",
        1,
    ));
    pipeline.extend(msg(b'D', &[vec![b'P'], cstrs(&["p1"])].concat()));
    pipeline.extend(msg(b'E', &[cstrs(&["p2"]), vec![0, 0, 0, 0]].concat()));
    pipeline.extend(msg(b'S', &[]));
    // A suspended portal's plan does not carry over to the next portal.
    pipeline.extend(parse_bind("s3", "p3", "SELECT name FROM customers", 0));
    pipeline.extend(parse_bind(
        "s4",
        "p4",
        "SELECT card_number FROM customers",
        0,
    ));
    pipeline.extend(msg(b'D', &[vec![b'P'], cstrs(&["p3"])].concat()));
    pipeline.extend(msg(
        b'E',
        &[cstrs(&["p3"]), 1i32.to_be_bytes().to_vec()].concat(),
    ));
    pipeline.extend(msg(b'D', &[vec![b'P'], cstrs(&["p4"])].concat()));
    pipeline.extend(msg(b'E', &[cstrs(&["p4"]), vec![0, 0, 0, 0]].concat()));
    pipeline.extend(msg(b'S', &[]));
    raw.send(&pipeline);
    let mut got = Vec::new();
    while got
        .windows(6)
        .filter(|w| *w == [b'Z', 0, 0, 0, 5, b'I'])
        .count()
        < 2
    {
        let more = raw.read_until(|b| !b.is_empty());
        assert!(!more.is_empty(), "{}", String::from_utf8_lossy(&got));
        got.extend(more);
    }
    let text = String::from_utf8_lossy(&got);
    assert_no_pan("raw pipeline", &text);
    assert!(
        text.contains("withheld"),
        "the first result is refused: {text}"
    );
    assert!(
        text.contains("************1111"),
        "the last one is masked: {text}"
    );
}
