//! PostgreSQL clients see the server they expect through the gateway: the backend pid (BackendKeyData,
//! `pg_backend_pid()`, a notification's sender, `pg_terminate_backend`), LISTEN/NOTIFY while
//! idle, client encodings other than UTF-8, and the server ending a session. Each scenario runs
//! direct and through the gateway in the same test, with psycopg (sync and async) and psql, and
//! the two must agree.

use std::path::Path;

use serde_json::Value;

use crate::boundary::MASK_PAN as PAN_MASK;
use crate::support::*;

/// psycopg scenarios; each prints one JSON object. argv: scenario, DSN, a superuser DSN.
const SCENARIOS: &str = r#"
import asyncio, json, sys, time, psycopg

scenario, dsn, admin_dsn = sys.argv[1], sys.argv[2], sys.argv[3]
out = {}

def failure(e):
    return {"error": type(e).__name__, "sqlstate": getattr(e, "sqlstate", None)}

def terminate(pid):
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        return admin.execute("SELECT pg_terminate_backend(%s, 10000)", (pid,)).fetchone()[0]

if scenario == "pid":
    conn = psycopg.connect(dsn, autocommit=True)
    pid = conn.info.backend_pid
    out["key_pid_is_backend_pid"] = pid == conn.execute("SELECT pg_backend_pid()").fetchone()[0]
    got = []
    conn.add_notify_handler(got.append)
    conn.execute("LISTEN gh_self")
    conn.execute("NOTIFY gh_self, 'mine'")
    conn.execute("SELECT 1")
    out["own_notification_pid_is_mine"] = [n.pid == pid for n in got]
    out["terminated"] = terminate(pid)
    try:
        conn.execute("SELECT 1")
        out["after"] = "no error"
    except psycopg.Error as e:
        out["after"] = failure(e)
    out["closed"], out["broken"] = conn.closed, conn.broken

elif scenario == "pid_async":
    async def main():
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        pid = conn.info.backend_pid
        cur = await conn.execute("SELECT pg_backend_pid()")
        out["key_pid_is_backend_pid"] = pid == (await cur.fetchone())[0]
        out["terminated"] = terminate(pid)
        try:
            await conn.execute("SELECT 1")
            out["after"] = "no error"
        except psycopg.Error as e:
            out["after"] = failure(e)
        out["closed"], out["broken"] = conn.closed, conn.broken
    asyncio.run(main())

elif scenario == "notify_idle":
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("LISTEN gh_idle")
    start = time.monotonic()
    with psycopg.connect(admin_dsn, autocommit=True) as admin:
        admin.execute("NOTIFY gh_idle, 'card 4111111111111111 paid'")
    got = list(conn.notifies(timeout=10, stop_after=1))
    out["payloads"] = [n.payload for n in got]
    out["prompt"] = time.monotonic() - start < 5

elif scenario == "notify_idle_async":
    async def main():
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        await conn.execute("LISTEN gh_idle")
        async def later():
            await asyncio.sleep(0.5)
            async with await psycopg.AsyncConnection.connect(admin_dsn, autocommit=True) as a:
                await a.execute("NOTIFY gh_idle, 'card 4111111111111111 paid'")
        task = asyncio.create_task(later())
        start = time.monotonic()
        payloads = [n.payload async for n in conn.notifies(timeout=10, stop_after=1)]
        await task
        out["payloads"] = payloads
        out["prompt"] = time.monotonic() - start < 5
    asyncio.run(main())

elif scenario == "idle_timeouts":
    conn = psycopg.connect(dsn)
    try:
        conn.execute("SELECT 1 / 0")
    except psycopg.Error as e:
        out["first"] = failure(e)
    try:
        conn.execute("SELECT 1")
    except psycopg.Error as e:
        out["in_failed_transaction"] = failure(e)
    conn.rollback()
    conn.autocommit = True
    conn.execute("SET idle_in_transaction_session_timeout = '300ms'")
    conn.autocommit = False
    try:
        conn.execute("SELECT 1 / 0")
    except psycopg.Error as e:
        out["second"] = failure(e)
    time.sleep(1.5)
    try:
        conn.rollback()
        out["rollback"] = "ok"
    except psycopg.Error as e:
        out["rollback"] = failure(e)
    out["closed"], out["broken"] = conn.closed, conn.broken

elif scenario == "latin9":
    conn = psycopg.connect(dsn, autocommit=True)
    conn.execute("SET client_encoding TO 'LATIN9'")
    out["encoding"] = conn.info.encoding
    out["echo"] = conn.execute("SELECT %s::text || ' ' || %s", ("été", "€")).fetchone()[0]
    out["card"] = conn.execute("SELECT 'réf ' || '4111111111111111'").fetchone()[0]
    try:
        conn.execute("SELECT %s::int", ("né",))
    except psycopg.Error as e:
        out["error"] = failure(e)
        out["message"] = e.diag.message_primary

elif scenario == "latin9_async":
    async def main():
        conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
        await conn.execute("SET client_encoding TO 'LATIN9'")
        out["encoding"] = conn.info.encoding
        cur = await conn.execute("SELECT %s::text || ' ' || %s", ("été", "€"))
        out["echo"] = (await cur.fetchone())[0]
        cur = await conn.execute("SELECT 'réf ' || '4111111111111111'")
        out["card"] = (await cur.fetchone())[0]
        try:
            await conn.execute("SELECT %s::int", ("né",))
        except psycopg.Error as e:
            out["error"] = failure(e)
            out["message"] = e.diag.message_primary
    asyncio.run(main())

print(json.dumps(out, sort_keys=True))
"#;

fn direct_dsn(db: &str) -> String {
    format!("host=127.0.0.1 port=5432 dbname={db} user=postgres sslmode=disable")
}

/// Runs a psycopg scenario against `dsn`; its JSON.
fn scenario(name: &str, dsn: &str, db: &str) -> Value {
    let out = run(
        "python3",
        &["-c", SCENARIOS, name, dsn, &direct_dsn(db)],
        None,
        &[],
    );
    assert!(
        out.status.success(),
        "{name} failed (is psycopg installed? scripts/setup.sh does it): {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("scenario json")
}

fn start(db: &str, policy: &str) -> (Gateway, String) {
    scratch_db(db);
    let gw = Gateway::start_with_policy(&[Conn::local("fid", db)], policy, &[]);
    let token = gw.token("fidelity", &["batch"]);
    (gw, token)
}

#[test]
fn the_backend_pid_is_the_servers_and_terminating_it_ends_the_session_as_direct() {
    let (gw, token) = start("gh_fid_pid", "");
    for name in ["pid", "pid_async"] {
        let direct = scenario(name, &direct_dsn("gh_fid_pid"), "gh_fid_pid");
        let through = scenario(name, &gw.dsn("fid", &token), "gh_fid_pid");
        assert_eq!(
            direct, through,
            "{name}: direct and through the gateway differ"
        );
        assert_eq!(through["key_pid_is_backend_pid"], true, "{through}");
        assert_eq!(through["terminated"], true, "{through}");
        assert_eq!(through["broken"], true, "{through}");
        assert_eq!(through["after"]["sqlstate"], "57P01", "{through}");
        if name == "pid" {
            assert_eq!(
                through["own_notification_pid_is_mine"],
                serde_json::json!([true])
            );
        }
    }
    // The audit says who ended the sessions, and why.
    let sessions = gw.sessions_until(|s| {
        s.iter()
            .filter(|s| {
                s["end_reason"]
                    .as_str()
                    .is_some_and(|r| r.contains("57P01"))
            })
            .count()
            == 2
    });
    let ended: Vec<_> = sessions
        .iter()
        .filter_map(|s| s["end_reason"].as_str())
        .filter(|r| r.contains("57P01"))
        .collect();
    assert!(
        ended
            .iter()
            .all(|r| r.starts_with("server ended the session: FATAL 57P01")
                && r.contains("administrator command")),
        "{ended:?}"
    );
}

#[test]
fn a_pid_a_client_was_given_cannot_cancel_another_session() {
    let (gw, token) = start("gh_fid_cancel", "");
    // The cancel key's pid is the server's; a CancelRequest with it and a wrong secret does
    // nothing (the gateway's secret is not the server's, and it is checked first).
    let script = r#"
import socket, struct, sys, threading, time, psycopg
conn = psycopg.connect(sys.argv[1], autocommit=True)
pid = conn.info.backend_pid
result = {}
def run():
    try:
        conn.execute("SELECT pg_sleep(2)")
        result["done"] = "completed"
    except psycopg.Error as e:
        result["done"] = e.sqlstate
t = threading.Thread(target=run); t.start(); time.sleep(0.5)
host, port = sys.argv[2], int(sys.argv[3])
for secret in (0, 1, 12345):
    s = socket.create_connection((host, port)); s.sendall(struct.pack("!iiii", 16, 80877102, pid, secret)); s.close()
t.join()
print(result["done"])
"#;
    let port = gw.port.to_string();
    let out = run(
        "python3",
        &["-c", script, &gw.dsn("fid", &token), "127.0.0.1", &port],
        None,
        &[],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "completed");
}

#[test]
fn notifications_reach_an_idle_listener_promptly_masked_over_tls_and_plain() {
    let (gw, token) = start("gh_fid_notify", PAN_MASK);
    let direct = scenario("notify_idle", &direct_dsn("gh_fid_notify"), "gh_fid_notify");
    assert_eq!(
        direct["payloads"],
        serde_json::json!(["card 4111111111111111 paid"])
    );
    let tls = gw.dsn("fid", &token);
    let plain = tls.replace("sslmode=require", "sslmode=disable");
    for dsn in [&tls, &plain] {
        for name in ["notify_idle", "notify_idle_async"] {
            let through = scenario(name, dsn, "gh_fid_notify");
            assert_eq!(through["prompt"], true, "{name} {dsn}: {through}");
            let payload = through["payloads"][0].as_str().unwrap_or_default();
            assert!(
                payload.starts_with("card ")
                    && payload.ends_with("1111 paid")
                    && !payload.contains("4111111111111111"),
                "{name} {dsn}: {through}"
            );
        }
    }
    let rows = gw.audit_until(|rows| with_statement(rows, "LISTEN gh_idle").len() == 4);
    assert!(with_statement(&rows, "LISTEN gh_idle")
        .iter()
        .all(|r| r["status"] == "ok"));
}

#[test]
fn the_server_ending_a_session_reaches_the_client_as_direct_and_errors_keep_their_code() {
    let (gw, token) = start("gh_fid_idle", "");
    let direct = scenario("idle_timeouts", &direct_dsn("gh_fid_idle"), "gh_fid_idle");
    let through = scenario("idle_timeouts", &gw.dsn("fid", &token), "gh_fid_idle");
    assert_eq!(direct, through, "direct and through the gateway differ");
    assert_eq!(through["first"]["sqlstate"], "22012");
    assert_eq!(through["in_failed_transaction"]["sqlstate"], "25P02");
    assert_eq!(through["rollback"]["sqlstate"], "25P03", "{through}");
    assert_eq!(through["broken"], true);
    // Each failed statement keeps its own error in the audit; the session's end names the
    // server's reason.
    let rows = gw.audit_until(|rows| with_statement(rows, "SELECT 1 / 0").len() == 2);
    for r in with_statement(&rows, "SELECT 1 / 0") {
        assert_eq!(r["sqlstate"], "22012", "{r}");
    }
    let rows = gw.audit();
    let in_failed = with_statement(&rows, "SELECT 1");
    assert!(
        in_failed.iter().any(|r| r["sqlstate"] == "25P02"),
        "{in_failed:#?}"
    );
    let sessions = gw.sessions_until(|s| {
        s.iter().any(|s| {
            s["end_reason"]
                .as_str()
                .is_some_and(|r| r.contains("25P03"))
        })
    });
    assert!(sessions.iter().any(|s| s["end_reason"]
        .as_str()
        .is_some_and(|r| r.starts_with("server ended the session: FATAL 25P03"))));
}

#[test]
fn latin9_clients_read_write_and_see_errors_as_direct_and_the_audit_reads_their_text() {
    let (gw, token) = start("gh_fid_latin9", PAN_MASK);
    for name in ["latin9", "latin9_async"] {
        let direct = scenario(name, &direct_dsn("gh_fid_latin9"), "gh_fid_latin9");
        let through = scenario(name, &gw.dsn("fid", &token), "gh_fid_latin9");
        assert_eq!(direct["echo"], "été €");
        assert_eq!(direct["card"], "réf 4111111111111111");
        let card = through["card"].as_str().unwrap_or_default();
        assert!(
            card.starts_with("réf ")
                && card.ends_with("1111")
                && !card.contains("4111111111111111"),
            "{name}: {through}"
        );
        for key in ["encoding", "echo", "error", "message"] {
            assert_eq!(
                direct[key], through[key],
                "{name} {key}: {direct} / {through}"
            );
        }
        assert_eq!(through["error"]["sqlstate"], "22P02");
    }
    let rows = gw.audit_until(|rows| with_statement(rows, "SELECT $1::int").len() == 2);
    let echo = with_statement(&rows, "SELECT $1::text");
    assert_eq!(
        echo[0]["params"],
        serde_json::json!(["été", "€"]),
        "{echo:?}"
    );
    let bad = with_statement(&rows, "SELECT $1::int");
    assert_eq!(bad[0]["params"], serde_json::json!(["né"]));
    assert_eq!(bad[0]["sqlstate"], "22P02");
}

/// psql with `PGCLIENTENCODING`, running a file of that encoding's bytes: every byte it prints
/// (rows, errors with the client's text in them) the same direct and through the gateway.
fn psql_file(dsn: &str, encoding: &str, file: &Path) -> (Vec<u8>, Vec<u8>) {
    let file = file.to_str().expect("path");
    let out = run(
        "psql",
        &["-X", "-At", "-d", dsn, "-f", file],
        None,
        &[("PGCLIENTENCODING", encoding)],
    );
    (out.stdout, out.stderr)
}

#[test]
fn psql_in_latin9_and_win1252_is_relayed_byte_exact() {
    let (gw, token) = start("gh_fid_psql_enc", "");
    let dir = tempfile::tempdir().expect("tempdir");
    // 'été €' is E9 74 E9 20 A4 in LATIN9; '€' is 80 in WIN1252.
    let cases: [(&str, &[u8], &[u8]); 2] = [
        ("LATIN9", b"\xe9t\xe9 \xa4", b"|5\n"),
        ("WIN1252", b"caf\xe9 \x80", b"|6\n"),
    ];
    for (encoding, word, length) in cases {
        let mut sql = Vec::new();
        sql.extend_from_slice(b"CREATE TEMP TABLE words (w text);\nINSERT INTO words VALUES ('");
        sql.extend_from_slice(word);
        sql.extend_from_slice(b"');\nSELECT w, length(w) FROM words;\nSELECT '");
        sql.extend_from_slice(word);
        sql.extend_from_slice(b"'::int;\nSELECT 'after the error';\n");
        let file = dir.path().join(format!("{encoding}.sql"));
        std::fs::write(&file, &sql).expect("write sql");
        let direct = psql_file(&direct_dsn("gh_fid_psql_enc"), encoding, &file);
        let through = psql_file(&gw.dsn("fid", &token), encoding, &file);
        assert_eq!(
            String::from_utf8_lossy(&direct.0),
            String::from_utf8_lossy(&through.0),
            "{encoding} stdout"
        );
        assert_eq!(
            direct.0, through.0,
            "{encoding}: rows differ in their bytes"
        );
        assert_eq!(
            direct.1, through.1,
            "{encoding}: errors differ in their bytes"
        );
        let mut row = word.to_vec();
        row.extend_from_slice(length);
        assert!(
            through.0.windows(row.len()).any(|w| w == row.as_slice()),
            "{encoding}: {:?}",
            String::from_utf8_lossy(&through.0)
        );
        assert!(String::from_utf8_lossy(&through.0).contains("after the error"));
    }
    // The audit holds the statements as the server read them.
    let rows = gw.audit_until(|rows| with_statement(rows, "SELECT 'after the error'").len() == 2);
    assert_eq!(
        with_statement(&rows, "INSERT INTO words VALUES ('été €')").len(),
        1,
        "{rows:#?}"
    );
    assert_eq!(
        with_statement(&rows, "INSERT INTO words VALUES ('café €')").len(),
        1
    );
}

#[test]
fn a_server_restart_reaches_the_client_as_direct() {
    use std::io::{BufRead, BufReader, Write};
    let cluster = crate::cluster::Cluster::start("", "");
    let address = cluster.address();
    let gw = Gateway::start(&[Conn {
        address: &address,
        database: "postgres",
        ..Conn::local("restarted", "postgres")
    }]);
    let token = gw.token("fidelity", &["batch"]);
    let direct = format!(
        "host=127.0.0.1 port={} dbname=postgres user=postgres sslmode=disable",
        cluster.port
    );
    // Both connections open before the restart; the script waits for a line on stdin.
    let script = r#"
import json, sys, psycopg
conns = {"direct": psycopg.connect(sys.argv[1], autocommit=True),
         "through": psycopg.connect(sys.argv[2], autocommit=True)}
for c in conns.values():
    c.execute("SELECT 1")
print("connected", flush=True)
sys.stdin.readline()
out = {}
for name, c in conns.items():
    try:
        c.execute("SELECT 1")
        out[name] = {"after": "no error"}
    except psycopg.Error as e:
        out[name] = {"error": type(e).__name__, "sqlstate": e.sqlstate}
    out[name]["broken"] = c.broken
print(json.dumps(out, sort_keys=True))
"#;
    let mut child = std::process::Command::new("python3")
        .args(["-c", script, &direct, &gw.dsn("restarted", &token)])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("python3");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    assert_eq!(first, "connected");
    cluster.restart();
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"go\n")
        .expect("go");
    let result = lines.next().and_then(Result::ok).unwrap_or_default();
    assert!(child.wait().expect("wait").success());
    let out: Value = serde_json::from_str(&result).expect("json");
    assert_eq!(out["direct"], out["through"], "{out}");
    assert_eq!(out["through"]["broken"], true, "{out}");
    assert_eq!(out["through"]["sqlstate"], "57P01", "{out}");
    let sessions = gw.sessions_until(|s| {
        s.iter().any(|s| {
            s["end_reason"]
                .as_str()
                .is_some_and(|r| r.contains("57P01"))
        })
    });
    assert!(sessions.iter().any(|s| s["end_reason"]
        .as_str()
        .is_some_and(|r| r.starts_with("server ended the session: FATAL 57P01"))));
}

#[test]
fn psql_sees_its_own_pid_in_notifications_and_a_terminated_backend_as_direct() {
    let (gw, token) = start("gh_fid_psql_pid", "");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pid.sql");
    std::fs::write(
        &file,
        "SELECT pg_backend_pid() AS pid \\gset\n\\echo backend :pid\nLISTEN ch;\nNOTIFY ch, 'hi';\n\
         SELECT pg_terminate_backend(pg_backend_pid());\nSELECT 'not reached';\n",
    )
    .expect("write");
    let file = file.to_str().expect("path");
    let psql = |dsn: &str| {
        let out = run("psql", &["-X", "-At", "-d", dsn, "-f", file], None, &[]);
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    // Plain and TLS each way: libpq words a closed connection by how it was closed.
    for ssl in ["disable", "require"] {
        let direct =
            direct_dsn("gh_fid_psql_pid").replace("sslmode=disable", &format!("sslmode={ssl}"));
        let through = gw
            .dsn("fid", &token)
            .replace("sslmode=require", &format!("sslmode={ssl}"));
        compare_psql(psql(&direct), psql(&through));
    }
}

type PsqlRun = (Option<i32>, String, String);

fn compare_psql(direct: PsqlRun, through: PsqlRun) {
    // The pids differ from run to run; everything else is the same, byte for byte.
    let pid_of = |out: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix("backend "))
            .map(str::to_owned)
            .unwrap_or_default()
    };
    let scrub = |text: &str, pid: &str| text.replace(pid, "PID");
    let (dpid, tpid) = (pid_of(&direct.1), pid_of(&through.1));
    assert!(!tpid.is_empty(), "{through:?}");
    assert_eq!(direct.0, through.0, "exit codes: {direct:?} {through:?}");
    assert_eq!(scrub(&direct.1, &dpid), scrub(&through.1, &tpid));
    assert_eq!(scrub(&direct.2, &dpid), scrub(&through.2, &tpid));
    // The notification names the backend the client was told is its own.
    assert!(
        through
            .1
            .contains(&format!("received from server process with PID {tpid}.")),
        "{through:?}"
    );
    assert!(through
        .2
        .contains("terminating connection due to administrator command"));
    assert!(!through.1.contains("not reached"));
}

#[test]
fn encodings_the_gateway_cannot_read_exactly_are_refused_by_every_name() {
    let (gw, token) = start("gh_fid_enc_names", "");
    let dsn = gw.dsn("fid", &token);
    let psql_in = |encoding: &str| {
        run(
            "psql",
            &["-X", "-At", "-d", &dsn, "-c", "SELECT 1"],
            None,
            &[("PGCLIENTENCODING", encoding)],
        )
    };
    // SJIS under its other names, and the encodings without an exact decoding.
    for name in [
        "SHIFT_JIS_2004",
        "mskanji",
        "windows932",
        "EUC_TW",
        "MULE_INTERNAL",
    ] {
        let out = psql_in(name);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name} was accepted");
        assert!(
            stderr.contains("not supported through the gateway"),
            "{name}: {stderr}"
        );
        let set = format!("SET client_encoding = '{name}'");
        let (ok, _, stderr) = psql(&dsn, &["-c", &set], None);
        assert!(!ok, "{set} was accepted");
        assert!(
            stderr.contains("not supported through the gateway"),
            "{name}: {stderr}"
        );
    }
    // The names it reads stay accepted, however they are spelled.
    for name in ["latin-9", "Windows1252", "koi8"] {
        let out = psql_in(name);
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}
