//! The boundary: nothing reaches the server unjudged. Each test tries a way around the rules
//! with a real client and checks the server's own tables afterwards (the rows are still
//! there), not only the gateway's answer.

use crate::mysql_support::{mysql, mysql_connection, root_sql, scratch_mysql_db, shown};
use crate::support::*;

const DENY_UNBOUNDED: &str = r#"
[[rule]]
name = "no-unbounded-deletes"
when = { class = ["delete-without-where", "update-without-where", "unknown"] }
action = "deny"
message = "unbounded writes and statements the gateway cannot read are refused"
"#;

fn pg_gateway(db: &str) -> (Gateway, String) {
    scratch_db(db);
    admin_sql(
        db,
        "CREATE TABLE accounts (id int, owner text); \
         INSERT INTO accounts VALUES (1, 'ada'), (2, 'grace'), (3, 'alan')",
    );
    let gw = Gateway::start_with_policy(&[Conn::local("app", db)], DENY_UNBOUNDED, &[]);
    let token = gw.token("job", &["batch"]);
    (gw, token)
}

fn rows_left(db: &str) -> String {
    admin_sql(db, "SELECT count(*) FROM accounts")
}

#[test]
fn a_statement_prepared_by_the_protocol_is_judged_when_sql_executes_it() {
    let (gw, token) = pg_gateway("gh_bound_exec");
    // libpq's PQprepare (a protocol Parse), then EXECUTE in SQL, under EXPLAIN ANALYZE, and
    // after a PREPARE of the same name that the server refuses (the name is taken).
    let script = r#"
import sys, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
res = conn.pgconn.prepare(b"s1", b"DELETE FROM accounts")
print("prepared", res.status)
for sql in ["EXECUTE s1", "EXPLAIN ANALYZE EXECUTE s1", "PREPARE s1 AS SELECT 1",
            "EXECUTE s1", "EXECUTE never_prepared", "SELECT 1"]:
    try:
        conn.execute(sql)
        print("ran", sql)
    except psycopg.Error as e:
        print("refused", sql, "|", e.sqlstate, "|", str(e).splitlines()[0])
"#;
    let out = run(
        "python3",
        &["-c", script, &gw.dsn("app", &token)],
        None,
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", shown(&out));
    for refused in [
        "refused EXECUTE s1 | 42501",
        "refused EXPLAIN ANALYZE EXECUTE s1 | 42501",
        "refused EXECUTE never_prepared | 42501",
    ] {
        assert!(stdout.contains(refused), "{refused}: {stdout}");
    }
    // The refused PREPARE did not replace s1 in the gateway's reading either.
    assert!(
        stdout.contains("refused PREPARE s1 AS SELECT 1 | 42P05"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("refused EXECUTE s1 | 42501").count(),
        2,
        "{stdout}"
    );
    assert!(
        stdout.contains("ran SELECT 1"),
        "the session goes on: {stdout}"
    );
    assert_eq!(rows_left("gh_bound_exec"), "3");

    // The audit entry of an EXECUTE names what it would have run.
    let rows =
        gw.audit_until(|rows| !with_statement(rows, "EXPLAIN ANALYZE EXECUTE s1").is_empty());
    let explain = with_statement(&rows, "EXPLAIN ANALYZE EXECUTE s1");
    let text = explain[0]["statement"].as_str().unwrap_or_default();
    assert!(
        text.contains("EXECUTE s1 runs: DELETE FROM accounts"),
        "{text}"
    );
    assert_eq!(explain[0]["verdict"], "deny", "{explain:#?}");
}

#[test]
fn sql_prepare_counts_only_once_the_server_accepted_it() {
    let (gw, token) = pg_gateway("gh_bound_prep");
    // A PREPARE the gateway allows is executed by name; DEALLOCATE forgets it, so a later
    // EXECUTE of the name is unknown (refused here).
    let (ok, out, err) = psql(
        &gw.dsn("app", &token),
        &[
            "-c",
            "PREPARE one(int) AS DELETE FROM accounts WHERE id = $1",
            "-c",
            "EXECUTE one(1)",
            "-c",
            "DEALLOCATE one",
            "-c",
            "EXECUTE one(2)",
        ],
        None,
    );
    assert!(!ok, "{out}");
    assert!(err.contains("unbounded writes"), "{err}");
    assert_eq!(rows_left("gh_bound_prep"), "2", "only EXECUTE one(1) ran");
    // A whole-table PREPARE is itself judged as what it runs.
    let (ok, _, err) = psql(
        &gw.dsn("app", &token),
        &["-c", "PREPARE every AS DELETE FROM accounts"],
        None,
    );
    assert!(!ok && err.contains("unbounded writes"), "{err}");
    assert_eq!(rows_left("gh_bound_prep"), "2");
}

#[test]
fn the_gateway_reads_comments_and_strings_as_the_server_does() {
    let (gw, token) = pg_gateway("gh_bound_lex");
    let dsn = gw.dsn("app", &token);
    for sql in [
        // PostgreSQL nests block comments: this is a SELECT and then a DELETE.
        "SELECT /* /* */ ' */ 1; DELETE FROM accounts; -- '",
        // With standard_conforming_strings on, the backslash is a character: the DELETE runs.
        r"SELECT 'a\'; DELETE FROM accounts; -- '",
        // An E'' string's backslash escapes the quote.
        r"SELECT E'\''; DELETE FROM accounts WHERE true; -- '",
        "MERGE INTO accounts a USING accounts b ON true WHEN MATCHED THEN DELETE",
        "DELETE FROM accounts WHERE 1 = 1 OR id = 2",
        "DO $$ BEGIN DELETE FROM accounts; END $$",
    ] {
        let (ok, out, err) = psql(&dsn, &["-c", sql], None);
        assert!(!ok, "{sql} ran: {out}");
        assert!(err.contains("unbounded writes"), "{sql}: {err}");
    }
    // Settings that would change how text is read are refused, whatever the rules.
    for sql in [
        "SET standard_conforming_strings = off",
        "SELECT set_config('standard_conforming_strings', 'off', false)",
        "SET client_encoding = 'SJIS'",
    ] {
        let (ok, _, err) = psql(&dsn, &["-c", sql], None);
        assert!(!ok, "{sql} was allowed");
        assert!(
            err.contains("gateway") && (err.contains("read") || err.contains("backslash")),
            "{sql}: {err}"
        );
    }
    assert_eq!(rows_left("gh_bound_lex"), "3");
    // Ordinary text still goes through.
    let (ok, out, err) = psql(
        &dsn,
        &[
            "-Atc",
            r"SELECT 'it''s', E'a\tb', $q$ ' $q$, count(*) FROM accounts",
        ],
        None,
    );
    assert!(ok, "{err}");
    assert!(out.contains("it's|a\tb| ' |3"), "{out}");
}

#[test]
fn explain_variants_never_share_a_cached_class() {
    let (gw, token) = pg_gateway("gh_bound_cache");
    let (ok, out, err) = psql(
        &gw.dsn("app", &token),
        &[
            "-c",
            "EXPLAIN (ANALYZE 0) DELETE FROM accounts",
            "-c",
            "EXPLAIN (ANALYZE 1) DELETE FROM accounts",
        ],
        None,
    );
    assert!(!ok, "{out}");
    assert!(
        out.contains("Delete on accounts"),
        "the plain EXPLAIN ran: {out}"
    );
    assert!(err.contains("unbounded writes"), "{err}");
    assert_eq!(rows_left("gh_bound_cache"), "3");
}

#[test]
fn startup_parameters_are_allow_listed_and_options_need_the_connection_to_allow_them() {
    let db = "gh_bound_startup";
    scratch_db(db);
    let open = format!(
        "[[connection]]\nname = \"opts\"\nprotocol = \"postgres\"\naddress = \"127.0.0.1:5432\"\n\
         database = \"{db}\"\nusername = \"postgres\"\ngroups = [\"batch\"]\nstartup_options = true\n"
    );
    let gw = Gateway::start_with_policy(&[Conn::local("app", db)], &open, &[]);
    let token = gw.token("job", &["batch"]);
    let (ok, _, err) = psql(
        &format!(
            "{} options='-c session_replication_role=replica'",
            gw.dsn("app", &token)
        ),
        &["-c", "SELECT 1"],
        None,
    );
    assert!(!ok);
    assert!(err.contains("startup_options = true"), "{err}");
    let (ok, _, err) = psql(
        &format!("{} client_encoding=SJIS", gw.dsn("app", &token)),
        &["-c", "SELECT 1"],
        None,
    );
    assert!(!ok);
    assert!(err.contains("client encoding SJIS"), "{err}");
    // Where the connection allows options, they apply, but never to the pinned settings.
    let (ok, out, err) = psql(
        &format!(
            "{} options='-c statement_timeout=1234'",
            gw.dsn("opts", &token)
        ),
        &["-Atc", "SELECT current_setting('statement_timeout')"],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "1234ms");
    let (ok, _, err) = psql(
        &format!(
            "{} options='-c standard_conforming_strings=off'",
            gw.dsn("opts", &token)
        ),
        &["-c", "SELECT 1"],
        None,
    );
    assert!(!ok);
    assert!(err.contains("standard_conforming_strings"), "{err}");
    // The gateway keeps serving.
    let (ok, out, err) = psql(&gw.dsn("app", &token), &["-Atc", "SELECT 42"], None);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "42");

    // Every session's entry records what the client asked for, refused or not, and the
    // refused ones end saying why.
    let sessions =
        gw.sessions_until(|s| s.len() >= 5 && s.iter().all(|r| !r["ended_at"].is_null()));
    let with = |name: &str, value: &str| -> Vec<&serde_json::Value> {
        sessions
            .iter()
            .filter(|s| {
                s["settings"].as_array().is_some_and(|kv| {
                    kv.iter()
                        .any(|p| p[0] == name && p[1].as_str().is_some_and(|v| v.contains(value)))
                })
            })
            .collect()
    };
    let replica = with("options", "session_replication_role=replica");
    assert_eq!(replica.len(), 1, "{sessions:#?}");
    assert!(
        replica[0]["end_reason"]
            .as_str()
            .is_some_and(|r| r.contains("refused")),
        "{:#?}",
        replica[0]
    );
    assert_eq!(with("client_encoding", "SJIS").len(), 1, "{sessions:#?}");
    assert_eq!(
        with("options", "statement_timeout=1234").len(),
        1,
        "{sessions:#?}"
    );
    assert!(
        sessions.iter().all(|s| s["settings"]
            .as_array()
            .is_some_and(|kv| kv.iter().any(|p| {
                p[0].as_str()
                    .is_some_and(|k| k.ends_with("application_name"))
                    && p[1] == "psql"
            }))),
        "{sessions:#?}"
    );
}

fn my_gateway(db: &str) -> (Gateway, String) {
    scratch_mysql_db(db);
    root_sql(&format!(
        "CREATE TABLE {db}.t (id INT, s TEXT); INSERT INTO {db}.t VALUES (1,'a'),(2,'b'),(3,'c')"
    ));
    let policy = format!("{}\n{DENY_UNBOUNDED}", mysql_connection("my", db, ""));
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let token = gw.token("job", &["batch"]);
    (gw, token)
}

fn my_rows_left(db: &str) -> String {
    root_sql(&format!("SELECT count(*) FROM {db}.t"))
        .trim()
        .to_owned()
}

#[test]
fn mysql_executable_comments_modes_and_prepares_are_read_as_the_server_reads_them() {
    let db = "gh_bound_my";
    let (gw, token) = my_gateway(db);
    // Multi-statement texts through PyMySQL, so no client splits them first.
    let script = r#"
import sys, pymysql
from pymysql.constants import CLIENT
port, token, db = int(sys.argv[1]), sys.argv[2], sys.argv[3]
conn = pymysql.connect(host="127.0.0.1", port=port, user="tester", password=token,
                       database="my", connect_timeout=10, client_flag=CLIENT.MULTI_STATEMENTS,
                       autocommit=True)
def attempt(sql):
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            while cur.nextset():
                pass
        print("ran", sql)
    except pymysql.MySQLError as e:
        print("refused", sql, "|", e.args[0], "|", e.args[1])
attempt("/*!32302 DELETE FROM t */")
attempt("/*M!100000 DELETE FROM t */")
attempt("SELECT 1 /*!99999 ; DELETE FROM t */")
attempt("SELECT 'x' # ; DELETE FROM t\n; DELETE FROM t")
attempt("SET @q = 'DELETE FROM t'; PREPARE s FROM @q; EXECUTE s")
attempt("SET sql_mode = 'NO_BACKSLASH_ESCAPES'")
attempt("SELECT 'a\\'; DELETE FROM t; -- '")
attempt("SET sql_mode = ''")
attempt("SET NAMES gbk")
attempt("KILL 1")
attempt("/* x */ KILL 1")
attempt("SELECT 'a\\'; DELETE FROM t; -- '")
"#;
    let port = gw.mysql_port.to_string();
    let out = run("python3", &["-c", script, &port, &token, db], None, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", shown(&out));
    let lines: Vec<&str> = stdout.lines().collect();
    let refused = |sql: &str| {
        lines
            .iter()
            .any(|l| l.starts_with(&format!("refused {sql} |")))
    };
    assert!(refused("/*!32302 DELETE FROM t */"), "{stdout}");
    assert!(refused("/*M!100000 DELETE FROM t */"), "{stdout}");
    assert!(
        refused("SELECT 'x' # ; DELETE FROM t\n; DELETE FROM t")
            || stdout.contains("refused SELECT 'x' #"),
        "{stdout}"
    );
    assert!(
        refused("SET @q = 'DELETE FROM t'; PREPARE s FROM @q; EXECUTE s"),
        "{stdout}"
    );
    assert!(
        stdout.contains("ran SET sql_mode = 'NO_BACKSLASH_ESCAPES'"),
        "{stdout}"
    );
    assert!(refused("SET NAMES gbk"), "{stdout}");
    assert!(refused("KILL 1"), "{stdout}");
    assert!(refused("/* x */ KILL 1"), "{stdout}");
    // Under NO_BACKSLASH_ESCAPES the DELETE is a statement; with the mode back off it is
    // inside the string, and the SELECT runs.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("refused SELECT 'a\\'; DELETE FROM t; -- ' |")),
        "{stdout}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("ran SELECT 'a\\'; DELETE FROM t; -- '")),
        "{stdout}"
    );
    // MariaDB runs `/*!99999` (version 9.99.99 is older than it): the DELETE is code.
    assert!(refused("SELECT 1 /*!99999 ; DELETE FROM t */"), "{stdout}");
    assert_eq!(my_rows_left(db), "3");
    // The mysql CLI still works, and a dump's executable comments read as code.
    let out = mysql(
        &gw,
        "my",
        &token,
        &["-N", "-e", "/*!40101 SELECT count(*) FROM t */"],
        None,
    );
    assert!(out.status.success(), "{}", shown(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "3");
}

/// The card detector alone, keeping the last four digits.
pub(crate) const MASK_PAN: &str = r#"
[[mask]]
name = "pan"
detect = "pan"
style = "keep-last-4"
"#;

#[test]
fn an_exec_line_that_only_looks_like_a_transfer_is_masked_and_recorded() {
    use crate::ssh_support::{ssh, text, Sshd};
    let sshd = Sshd::start();
    let cards = sshd.path("cards.csv");
    std::fs::write(&cards, "ada,4111111111111111\n").expect("cards");
    let policy = format!("{}{MASK_PAN}", sshd.connection("box", ""));
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let token = gw.token("job", &["batch"]);

    for line in [
        format!(" scp x; cat {}", cards.display()),
        format!("scp -t /tmp/x; cat {}", cards.display()),
        format!(
            "rsync --server . /tmp/y >/dev/null; cat {}",
            cards.display()
        ),
    ] {
        let out = ssh(&gw, "box", &token, &[&line], None);
        let shown = text(&out.stdout);
        assert!(shown.contains("ada,************1111"), "{line}: {out:?}");
        assert!(!shown.contains("4111111111111111"), "{line}: {out:?}");
    }
    // Each was recorded as a terminal cast, masked there too (written out within moments of
    // the channel's end).
    let dir = gw.dir.path().join("var/recordings");
    let read_casts = || -> Vec<String> {
        std::fs::read_dir(&dir)
            .map(|entries| {
                entries
                    .filter_map(Result::ok)
                    .filter(|e| e.path().extension().is_some_and(|x| x == "cast"))
                    .map(|e| read(&e.path()))
                    .collect()
            })
            .unwrap_or_default()
    };
    let masked = |casts: &[String]| {
        casts
            .iter()
            .filter(|c| c.contains("************1111"))
            .count()
    };
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let mut casts = read_casts();
    while masked(&casts) < 3 && std::time::Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(100));
        casts = read_casts();
    }
    assert_eq!(masked(&casts), 3, "{casts:#?}");
    assert!(casts.iter().all(|c| !c.contains("4111111111111111")));
}

#[test]
fn ssh_env_requests_pass_only_the_locale_and_every_one_is_audited() {
    use crate::ssh_support::{ssh, text, Sshd};
    let sshd = Sshd::start();
    let gw = Gateway::start_with_policy(&[], &sshd.connection("box", ""), &[]);
    let token = gw.token("job", &["batch"]);
    // The host accepts LANG and GH_* (its AcceptEnv); the gateway passes only the locale.
    let out = ssh(
        &gw,
        "box",
        &token,
        &[
            "-o",
            "SetEnv=LANG=C.UTF-8 GH_PRELOAD=/tmp/evil.so",
            "echo \"[$LANG][$GH_PRELOAD]\"",
        ],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "[C.UTF-8][]\n", "{out:?}");
    let rows = gw.audit_until(|r| with_statement(r, "env GH_PRELOAD").len() == 1);
    // LANG may come twice: from the client's SendEnv and from its SetEnv.
    let passed = with_statement(&rows, "env LANG=C.UTF-8");
    assert!(!passed.is_empty(), "{rows:#?}");
    assert!(passed.iter().all(|e| e["tag"] == "passed"), "{passed:#?}");
    let refused = with_statement(&rows, "env GH_PRELOAD");
    assert_eq!(refused.len(), 1, "{rows:#?}");
    assert_eq!(refused[0]["tag"], "refused", "{:#?}", refused[0]);
    assert!(
        refused[0]["statement"]
            .as_str()
            .is_some_and(|s| s.contains("/tmp/evil.so")),
        "{:#?}",
        refused[0]
    );
}

/// A raw PostgreSQL client (no driver would send these bytes): logs in, sends `mode`'s
/// messages in one write, prints each error's SQLSTATE and message, each reported
/// client_encoding, and "closed" when the other end hangs up.
const RAW_PG: &str = r#"
import socket, struct, sys
host, port, user, password, database, mode = sys.argv[1:7]
s = socket.create_connection((host, int(port)))
s.settimeout(10)
buf = b""
def read_msg():
    global buf
    while len(buf) < 5 or len(buf) < 1 + struct.unpack("!i", buf[1:5])[0]:
        chunk = s.recv(65536)
        if not chunk:
            return None, None
        buf += chunk
    n = struct.unpack("!i", buf[1:5])[0]
    tag, body, buf = buf[:1], buf[5:1 + n], buf[1 + n:]
    return tag, body
def msg(tag, body):
    return tag + struct.pack("!i", len(body) + 4) + body
params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0\0"
s.sendall(struct.pack("!ii", len(params) + 8, 196608) + params)
while True:
    tag, body = read_msg()
    if tag == b"R" and struct.unpack("!i", body[:4])[0] == 3:
        s.sendall(msg(b"p", password.encode() + b"\0"))
    elif tag == b"E" or tag is None:
        print("login failed", body); sys.exit(1)
    elif tag == b"Z":
        break
switch = b"SELECT switch_encoding()\0"
# Under SJIS, C3 is a character and 83 5C another: the string ends at the quote after them.
# Read as UTF-8, 83 ends the character C3 83 and the backslash escapes that quote.
hidden = b"SELECT E'\xc3\x83\\' ; DELETE FROM accounts; --'\0"
single = b"SELECT E'\xc3\x83\\' AS s, 1 --'\0"
def extended(text):
    return (msg(b"P", b"\0" + text + b"\0\0") + msg(b"B", b"\0\0\0\0\0\0\0\0")
            + msg(b"E", b"\0\0\0\0\0"))
if mode == "simple":
    s.sendall(msg(b"Q", switch) + msg(b"Q", hidden))
elif mode == "extended":
    s.sendall(extended(switch) + extended(single) + msg(b"S", b""))
elif mode == "alone":
    s.sendall(msg(b"Q", single))
elif mode == "bind":
    # A Bind runs user code too: a domain's CHECK, here one that switches to SJIS.
    s.sendall(msg(b"Q", b"SELECT 'switching'::regtype::oid\0"))
    oid = None
    while True:
        tag, body = read_msg()
        if tag == b"D":
            oid = int(body[6:].decode())
        if tag == b"Z":
            break
    s.sendall(msg(b"P", b"s1\0SELECT $1\0" + struct.pack("!hi", 1, oid))
              + msg(b"B", b"\0s1\0\0\0\0\x01" + struct.pack("!i", 1) + b"x\0\0")
              + extended(single) + msg(b"S", b""))
elif mode == "bad_name":
    # A statement name that is not UTF-8: the server rejects it, and the gateway never keys
    # anything by a lossy copy of it.
    s.sendall(msg(b"P", b"s\xff\0SELECT 1\0\0\0") + msg(b"S", b""))
readies = 0
while readies < 2:
    tag, body = read_msg()
    if tag is None:
        print("closed"); break
    if tag == b"E":
        fields = dict((f[:1], f[1:]) for f in body.split(b"\0") if f)
        print("error", fields.get(b"C", b"").decode(), fields.get(b"M", b"").decode("utf-8", "replace"))
    elif tag == b"S" and body.startswith(b"client_encoding\0"):
        print("encoding", body.split(b"\0")[1].decode())
    elif tag == b"Z":
        readies += 1
        if mode != "simple":
            break
"#;

fn raw_pg(port: u16, user: &str, password: &str, database: &str, mode: &str) -> String {
    let port = port.to_string();
    let out = run(
        "python3",
        &[
            "-c",
            RAW_PG,
            "127.0.0.1",
            &port,
            user,
            password,
            database,
            mode,
        ],
        None,
        &[],
    );
    assert!(out.status.success(), "{}", shown(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn a_pipelined_text_that_another_client_encoding_would_read_differently_is_refused() {
    // Direct, the server reads the hidden DELETE: a function switches the session to SJIS
    // (a SELECT to the gateway, which cannot see inside it) and the next message of the same
    // write is read in it.
    const SWITCH: &str = "CREATE FUNCTION switch_encoding() RETURNS void LANGUAGE plpgsql AS \
        $$ BEGIN PERFORM set_config('client_encoding', 'SJIS', false); END $$";
    scratch_db("gh_bound_enc_direct");
    admin_sql(
        "gh_bound_enc_direct",
        "CREATE TABLE accounts (id int); INSERT INTO accounts VALUES (1), (2), (3)",
    );
    admin_sql("gh_bound_enc_direct", SWITCH);
    let direct = raw_pg(5432, "postgres", "", "gh_bound_enc_direct", "simple");
    assert!(direct.contains("encoding SJIS"), "{direct}");
    assert_eq!(
        admin_sql("gh_bound_enc_direct", "SELECT count(*) FROM accounts"),
        "0",
        "the attack no longer works direct, so this test proves nothing: {direct}"
    );

    // Through the gateway the same bytes delete nothing: the second text has a backslash
    // after a non-ASCII byte and the call before it may have changed the encoding. (The
    // client hears the session end first: the server reports SJIS, which the gateway does
    // not read, before it answers the refused text's stand-in.)
    let (gw, token) = pg_gateway("gh_bound_enc");
    admin_sql("gh_bound_enc", SWITCH);
    let through = raw_pg(gw.port, "job", &token, "app", "simple");
    assert!(through.contains("error 0A000"), "{through}");
    assert_eq!(rows_left("gh_bound_enc"), "3", "{through}");
    // The extended protocol: a Parse pipelined behind the function's Execute is never run.
    let through = raw_pg(gw.port, "job", &token, "app", "extended");
    assert!(through.contains("error 42501"), "{through}");
    assert!(
        through.contains("backslash or symbol right after a non-ASCII"),
        "{through}"
    );
    // A Bind whose parameter's domain CHECK switches the encoding unsettles the pipeline too.
    admin_sql(
        "gh_bound_enc",
        "CREATE FUNCTION switch_check(text) RETURNS bool LANGUAGE plpgsql AS \
         $$ BEGIN PERFORM switch_encoding(); RETURN true; END $$; \
         CREATE DOMAIN switching AS text CHECK (switch_check(VALUE))",
    );
    let through = raw_pg(gw.port, "job", &token, "app", "bind");
    assert!(through.contains("error 42501"), "{through}");
    // A name the gateway cannot decode exactly ends the session with the reason.
    let through = raw_pg(gw.port, "job", &token, "app", "bad_name");
    assert!(through.contains("statement or portal name"), "{through}");
    // Alone, nothing can have changed the encoding: the same kind of text runs.
    let alone = raw_pg(gw.port, "job", &token, "app", "alone");
    assert!(!alone.contains("error"), "{alone}");
    assert_eq!(rows_left("gh_bound_enc"), "3");
    let rows = gw.audit_until(|r| with_statement(r, "DELETE FROM accounts; --").len() == 1);
    let hidden = with_statement(&rows, "DELETE FROM accounts; --");
    assert_eq!(hidden[0]["verdict"], "deny", "{:#?}", hidden[0]);
    assert!(
        hidden[0]
            .to_string()
            .contains("backslash or symbol right after a non-ASCII"),
        "{:#?}",
        hidden[0]
    );
}

#[test]
fn mysql_after_an_unreadable_statement_a_text_another_charset_would_read_differently_is_refused() {
    // Direct, the server reads the hidden DELETE: a statement prepared from a variable switches
    // the client character set to sjis (nothing in the protocol says so), and the next text is
    // read in it: C3 is a character and 83 5C another, so the string ends at the quote.
    let hidden = "SELECT '\u{c3}\\'; DELETE FROM t; -- '";
    let script = r#"
import sys, pymysql
from pymysql.constants import CLIENT
port, user, password, db, hidden = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5]
conn = pymysql.connect(host="127.0.0.1", port=port, user=user, password=password, database=db,
                       connect_timeout=10, client_flag=CLIENT.MULTI_STATEMENTS, autocommit=True)
# Built from pieces: the gateway refuses a text that names the client character set.
for sql in ["SELECT 'still served'",
            "SET @s = CONCAT('SET charac', 'ter_set_client = sjis')", "PREPARE st FROM @s",
            "EXECUTE st", hidden, "SELECT 'still served'"]:
    try:
        with conn.cursor() as cur:
            cur.execute(sql)
            while cur.nextset():
                pass
        print("ran", sql)
    except pymysql.MySQLError as e:
        print("refused", sql, "|", e.args[0], "|", e.args[1])
"#;
    let db = "gh_bound_my_charset";
    scratch_mysql_db(db);
    root_sql(&format!(
        "CREATE TABLE {db}.t (id INT); INSERT INTO {db}.t VALUES (1),(2),(3)"
    ));
    let out = run(
        "python3",
        &["-c", script, "3306", "root", "", db, hidden],
        None,
        &[],
    );
    assert!(out.status.success(), "{}", shown(&out));
    assert_eq!(
        my_rows_left(db),
        "0",
        "the attack no longer works direct, so this test proves nothing: {}",
        shown(&out)
    );

    // Through the gateway, whose rules allow what it cannot read here, the same texts delete
    // nothing: after the unreadable EXECUTE, the hidden text is refused.
    root_sql(&format!("INSERT INTO {db}.t VALUES (1),(2),(3)"));
    let policy = mysql_connection("my", db, "");
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let token = gw.token("job", &["batch"]);
    let port = gw.mysql_port.to_string();
    let out = run(
        "python3",
        &["-c", script, &port, "tester", &token, "my", hidden],
        None,
        &[],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", shown(&out));
    assert!(stdout.contains("ran EXECUTE st"), "{stdout}");
    assert!(stdout.contains("backslash or backtick"), "{stdout}");
    // The same folded text before and after: the refusal never leaks into the cache.
    assert_eq!(
        stdout.matches("ran SELECT 'still served'").count(),
        2,
        "{stdout}"
    );
    assert_eq!(my_rows_left(db), "3", "{stdout}");
    // All of it in one text: the server would read its end after the EXECUTE switched.
    let one_text = format!(
        "SET @s = CONCAT('SET charac', 'ter_set_client = sjis'); PREPARE st FROM @s; \
         EXECUTE st; {hidden}"
    );
    let one = r#"
import sys, pymysql
from pymysql.constants import CLIENT
conn = pymysql.connect(host="127.0.0.1", port=int(sys.argv[1]), user="tester",
                       password=sys.argv[2], database="my", connect_timeout=10,
                       client_flag=CLIENT.MULTI_STATEMENTS, autocommit=True)
try:
    with conn.cursor() as cur:
        cur.execute(sys.argv[3])
        while cur.nextset():
            pass
    print("ran")
except pymysql.MySQLError as e:
    print("refused", e.args[0], e.args[1])
"#;
    let out = run("python3", &["-c", one, &port, &token, &one_text], None, &[]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("refused"), "{}", shown(&out));
    assert_eq!(my_rows_left(db), "3", "{stdout}");
}
