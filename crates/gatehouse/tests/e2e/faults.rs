//! Refusals and bad input: each gets the client a native error, and the gateway goes on
//! serving everyone else.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::*;
use crate::upstream_auth::{error_code, message_types};

/// A hand-driven protocol client on the loopback listener (no TLS).
pub struct Raw {
    stream: TcpStream,
}

impl Raw {
    pub fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Self { stream }
    }

    pub fn login(port: u16, connection: &str, token: &str) -> Self {
        let mut raw = Self::connect(port);
        let mut body = 196_608i32.to_be_bytes().to_vec();
        for s in ["user", "raw", "database", connection, ""] {
            body.extend_from_slice(s.as_bytes());
            body.push(0);
        }
        let mut msg = ((body.len() + 4) as i32).to_be_bytes().to_vec();
        msg.extend(body);
        raw.send(&msg);
        raw.read_until(|b| b.len() >= 9);
        let mut p = vec![b'p'];
        p.extend_from_slice(&((token.len() + 5) as i32).to_be_bytes());
        p.extend_from_slice(token.as_bytes());
        p.push(0);
        raw.send(&p);
        let got =
            raw.read_until(|b| b.ends_with(&[b'Z', 0, 0, 0, 5, b'I']) || b.first() == Some(&b'E'));
        assert!(
            got.ends_with(&[b'Z', 0, 0, 0, 5, b'I']),
            "login failed: {}",
            String::from_utf8_lossy(&got)
        );
        raw
    }

    pub fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).unwrap();
    }

    pub fn read_until(&mut self, done: impl Fn(&[u8]) -> bool) -> Vec<u8> {
        let mut got = Vec::new();
        let mut buf = [0u8; 4096];
        while !done(&got) {
            match self.stream.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        got
    }

    /// Everything until the gateway closes the connection.
    pub fn read_to_close(&mut self) -> Vec<u8> {
        self.read_until(|_| false)
    }
}

pub fn query(text: &str) -> Vec<u8> {
    let mut q = vec![b'Q'];
    q.extend_from_slice(&((text.len() + 5) as i32).to_be_bytes());
    q.extend_from_slice(text.as_bytes());
    q.push(0);
    q
}

fn still_serving(gw: &Gateway, token: &str) {
    let (ok, out, err) = psql(&gw.dsn("app", token), &["-Atc", "SELECT 'alive'"], None);
    assert!(ok, "the gateway stopped serving: {err}");
    assert_eq!(out.trim(), "alive");
}

#[test]
fn wrong_token_and_forbidden_or_unknown_connection_are_refused_alike() {
    let gw = Gateway::start(&[
        Conn::local("app", "test"),
        Conn {
            groups: &["dba"],
            ..Conn::local("restricted", "test")
        },
    ]);
    let token = gw.token("job", &["batch"]);
    let (ok, _, err) = psql(
        &gw.dsn("app", "gh_not-a-real-token"),
        &["-c", "SELECT 1"],
        None,
    );
    assert!(!ok);
    assert!(err.contains("the token is not valid"), "{err}");

    let (_, _, forbidden) = psql(&gw.dsn("restricted", &token), &["-c", "SELECT 1"], None);
    let (_, _, unknown) = psql(&gw.dsn("nonexistent", &token), &["-c", "SELECT 1"], None);
    let normalise = |s: &str| {
        s.replace("restricted", "X")
            .replace("nonexistent", "X")
            .replace(char::is_numeric, "")
    };
    assert!(
        forbidden.contains("does not exist or you are not allowed"),
        "{forbidden}"
    );
    assert_eq!(
        normalise(&forbidden),
        normalise(&unknown),
        "a refusal must not reveal whether the connection exists"
    );

    // Native codes, read off the wire.
    let bad = crate::upstream_auth::raw_login(gw.port, "app", "gh_wrong", "SELECT 1");
    assert_eq!(error_code(&bad).as_deref(), Some("28P01"));
    let forbidden = crate::upstream_auth::raw_login(gw.port, "restricted", &token, "SELECT 1");
    assert_eq!(error_code(&forbidden).as_deref(), Some("28000"));

    let sessions = gw.sessions_until(|rows| {
        rows.iter()
            .filter(|s| {
                s["end_reason"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("refused"))
            })
            .count()
            >= 4
    });
    let reasons: Vec<&str> = sessions
        .iter()
        .filter_map(|s| s["end_reason"].as_str())
        .collect();
    assert!(reasons.contains(&"refused: unknown token"), "{reasons:?}");
    assert!(
        reasons.contains(&"refused: connection not allowed"),
        "{reasons:?}"
    );
    still_serving(&gw, &token);
}

#[test]
fn expired_and_revoked_tokens_are_refused_and_revocation_ends_live_sessions() {
    let gw = Gateway::start(&[Conn::local("app", "test")]);
    let token = gw.token("job", &["batch"]);
    let short = gw.cli(&[
        "token",
        "create",
        "--identity",
        "temp",
        "--group",
        "batch",
        "--ttl",
        "1s",
    ]);
    std::thread::sleep(Duration::from_millis(1500));
    let (ok, _, err) = psql(&gw.dsn("app", short.trim()), &["-c", "SELECT 1"], None);
    assert!(
        !ok && err.contains("the token is not valid"),
        "expired token accepted: {err}"
    );

    let victim = gw.token("leaked-job", &["batch"]);
    let mut live = Raw::login(gw.port, "app", &victim);
    live.send(&query("SELECT 1"));
    live.read_until(|b| b.ends_with(&[b'Z', 0, 0, 0, 5, b'I']));
    let tokens: Vec<serde_json::Value> =
        serde_json::from_str(&gw.cli(&["token", "list", "--json"])).unwrap();
    let id = tokens
        .iter()
        .find(|t| t["identity"] == "leaked-job")
        .and_then(|t| t["id"].as_str())
        .unwrap()
        .to_owned();
    let revoked_at = Instant::now();
    gw.cli(&["token", "revoke", &id]);
    let goodbye = live.read_to_close();
    let elapsed = revoked_at.elapsed();
    assert!(
        elapsed < Duration::from_millis(1500),
        "session outlived revocation by {elapsed:?}"
    );
    assert_eq!(error_code(&goodbye).as_deref(), Some("57P01"));
    assert!(String::from_utf8_lossy(&goodbye).contains("token revoked"));
    let (ok, _, err) = psql(&gw.dsn("app", &victim), &["-c", "SELECT 1"], None);
    assert!(
        !ok && err.contains("the token is not valid"),
        "revoked token accepted: {err}"
    );
    let listed = gw.cli(&["token", "list"]);
    assert!(
        listed
            .lines()
            .any(|l| l.contains(&id) && l.contains("revoked")),
        "{listed}"
    );
    still_serving(&gw, &token);
}

#[test]
fn malformed_and_oversized_frames_get_08p01_and_others_are_unaffected() {
    let gw = Gateway::start(&[Conn::local("app", "test")]);
    let token = gw.token("job", &["batch"]);
    let cases: [(&str, Vec<u8>); 4] = [
        ("negative length", vec![b'Q', 0xff, 0xff, 0xff, 0xf0]),
        ("length below four", vec![b'Q', 0, 0, 0, 2]),
        ("oversized", vec![b'Q', 0x7f, 0xff, 0xff, 0xff, b'S']),
        ("unknown message type", vec![b'!', 0, 0, 0, 4]),
    ];
    for (what, bytes) in cases {
        let mut raw = Raw::login(gw.port, "app", &token);
        raw.send(&bytes);
        let answer = raw.read_to_close();
        assert_eq!(
            error_code(&answer).as_deref(),
            Some("08P01"),
            "{what}: {}",
            String::from_utf8_lossy(&answer)
        );
        still_serving(&gw, &token);
    }
    // A Bind whose contents lie about their lengths.
    let mut raw = Raw::login(gw.port, "app", &token);
    raw.send(&[b'B', 0, 0, 0, 12, 0, 0, 0, 1, 0, 0, 0, 9]);
    assert_eq!(error_code(&raw.read_to_close()).as_deref(), Some("08P01"));
    // Garbage before authentication, and a startup packet that is far too long.
    let mut raw = Raw::connect(gw.port);
    raw.send(&[0, 0, 0, 3, 1, 2, 3]);
    assert_eq!(error_code(&raw.read_to_close()).as_deref(), Some("08P01"));
    let mut raw = Raw::connect(gw.port);
    raw.send(&[0, 0x10, 0, 0, 0, 3, 0, 0]);
    assert_eq!(error_code(&raw.read_to_close()).as_deref(), Some("08P01"));
    // A client that vanishes mid-frame.
    let mut raw = Raw::login(gw.port, "app", &token);
    raw.send(&[b'Q', 0, 0, 1, 0, b'S', b'E']);
    drop(raw);
    still_serving(&gw, &token);
    let types: Vec<u8> = message_types(&crate::upstream_auth::raw_login(
        gw.port, "app", &token, "SELECT 1",
    ))
    .iter()
    .map(|(t, _)| *t)
    .collect();
    assert!(types.contains(&b'D'), "{types:?}");
}

#[test]
fn an_unwritable_audit_store_refuses_statements_and_runs_nothing() {
    scratch_db("gh_failclosed");
    let gw = Gateway::start(&[Conn::local("app", "gh_failclosed")]);
    let token = gw.token("job", &["batch"]);
    let dsn = gw.dsn("app", &token);
    let (ok, _, err) = psql(&dsn, &["-c", "CREATE TABLE ledger (n int)"], None);
    assert!(ok, "{err}");
    // Make the store refuse new audit entries, as a full disk or a broken volume would.
    let sql = |statement: &str| store_sql(&gw, statement);
    if on_postgres() {
        sql("CREATE FUNCTION refuse() RETURNS trigger AS $$ BEGIN
               RAISE EXCEPTION 'disk full (simulated)'; END $$ LANGUAGE plpgsql;
             CREATE TRIGGER refuse BEFORE INSERT ON audit_entries
               FOR EACH ROW EXECUTE FUNCTION refuse();");
    } else {
        sql("CREATE TRIGGER refuse BEFORE INSERT ON audit_entries BEGIN SELECT RAISE(ABORT, 'disk full (simulated)'); END");
    }

    // One session: the first statement may still be journaled (the journal takes it; the
    // database refuses it a moment later and it is kept for retry). From then on, refused.
    let script = "SELECT 'probe before the failure is noticed';\n\\! sleep 0.5\n\
                  INSERT INTO ledger VALUES (1);\nINSERT INTO ledger VALUES ($1) \\bind 1 \\g\n";
    let (_, _, err) = psql(&dsn, &["-v", "ON_ERROR_STOP=0"], Some(script));
    assert_eq!(
        err.matches("58000").count(),
        2,
        "both inserts refused (simple and extended): {err}"
    );
    assert!(err.contains("could not record this command"), "{err}");
    assert_eq!(
        admin_sql("gh_failclosed", "SELECT count(*) FROM ledger"),
        "0",
        "nothing may run unaudited"
    );
    // New sessions are refused too, with the reason.
    let (ok, _, err) = psql(&dsn, &["-c", "SELECT 1"], None);
    assert!(!ok && err.contains("cannot record this session"), "{err}");

    sql(if on_postgres() {
        "DROP TRIGGER refuse ON audit_entries"
    } else {
        "DROP TRIGGER refuse"
    });
    let (ok, _, err) = psql(&dsn, &["-c", "INSERT INTO ledger VALUES (2)"], None);
    assert!(ok, "after the store recovers statements run again: {err}");
    assert_eq!(
        admin_sql("gh_failclosed", "SELECT count(*) FROM ledger"),
        "1"
    );
}

#[test]
fn gssenc_is_declined_and_the_client_goes_on_in_the_clear_with_its_parameters() {
    let gw = Gateway::start(&[Conn::local("app", "test")]);
    let token = gw.token("job", &["batch"]);
    // GSSENCRequest first, as libpq does when it has Kerberos: the gateway says 'N'.
    let mut raw = Raw::connect(gw.port);
    raw.send(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30]);
    assert_eq!(raw.read_until(|b| !b.is_empty()), b"N");
    // Allowed startup parameters reach the server (the user and database are the
    // connection's); `options` needs the connection to allow it (see boundary.rs).
    let dsn = format!("{} application_name=nightly-etl", gw.dsn("app", &token));
    let (ok, out, err) = psql(
        &dsn,
        &[
            "-Atc",
            "SELECT current_setting('application_name'), current_user, current_database()",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "nightly-etl|postgres|test");
}

#[test]
fn audit_and_session_listings_filter_by_time_and_session() {
    let gw = Gateway::start(&[Conn::local("app", "test")]);
    let token = gw.token("lister", &["batch"]);
    let (ok, _, err) = psql(&gw.dsn("app", &token), &["-c", "SELECT 'early'"], None);
    assert!(ok, "{err}");
    let rows = gw.audit_until(|rows| !with_statement(rows, "'early'").is_empty());
    let session = rows[0]["session"].as_str().unwrap().to_owned();
    std::thread::sleep(Duration::from_millis(1200));
    let (ok, _, err) = psql(&gw.dsn("app", &token), &["-c", "SELECT 'late'"], None);
    assert!(ok, "{err}");
    gw.audit_until(|rows| !with_statement(rows, "'late'").is_empty());

    let recent: Vec<serde_json::Value> =
        serde_json::from_str(&gw.cli(&["audit", "list", "--since", "1s", "--json"])).unwrap();
    assert_eq!(with_statement(&recent, "'late'").len(), 1);
    assert!(
        with_statement(&recent, "'early'").is_empty(),
        "--since kept an older entry"
    );
    let one: Vec<serde_json::Value> =
        serde_json::from_str(&gw.cli(&["audit", "list", "--session", &session[..10], "--json"]))
            .unwrap();
    assert_eq!(one.len(), 1);
    assert_eq!(one[0]["statement"], "SELECT 'early'");
    let table = gw.cli(&["audit", "list"]);
    assert!(table.lines().next().unwrap().starts_with("TIME"), "{table}");
    assert!(
        table.contains("SELECT 'late'") && table.contains("lister"),
        "{table}"
    );
    let sessions = gw.cli(&["sessions", "list", "--since", "1s"]);
    assert_eq!(
        sessions.lines().count(),
        2,
        "header and the one recent session: {sessions}"
    );
    let bad = gw.cli_output(&["audit", "list", "--since", "last tuesday"]);
    assert!(!bad.status.success());
    assert!(String::from_utf8_lossy(&bad.stderr).contains("RFC 3339"));
}

#[test]
fn sigterm_ends_live_sessions_with_a_reason_and_records_their_end() {
    let mut gw = Gateway::start(&[Conn::local("app", "test")]);
    let token = gw.token("job", &["batch"]);
    let mut live = Raw::login(gw.port, "app", &token);
    live.send(&query("SELECT 'before shutdown'"));
    live.read_until(|b| b.ends_with(&[b'Z', 0, 0, 0, 5, b'I']));
    assert!(
        gw.terminate(),
        "the gateway did not exit cleanly on SIGTERM"
    );
    let goodbye = live.read_to_close();
    assert_eq!(error_code(&goodbye).as_deref(), Some("57P01"));
    assert!(String::from_utf8_lossy(&goodbye).contains("gateway shutting down"));
    let sessions = gw.sessions();
    let ended: Vec<_> = sessions.iter().filter(|s| s["identity"] == "job").collect();
    assert_eq!(ended.len(), 1);
    assert_eq!(ended[0]["end_reason"], "gateway shutting down");
    let rows = gw.audit();
    assert_eq!(with_statement(&rows, "before shutdown")[0]["status"], "ok");
}
