//! Bad input and load: connection limits per client address answered with each wire's own
//! "too many connections", login timeouts that drop silent clients, a cap on the text the
//! gateway parses, and a flood of bad tokens that cannot fill the store.

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::mysql_support::{mysql, mysql_connection, shown};
use crate::support::*;

const TIGHT: &str = "[limits]\nconnections_per_source = 2\nlogin_timeout = \"2s\"\n";

/// Connects and says nothing; returns the stream.
fn silent(port: u16) -> TcpStream {
    let s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    s
}

/// Reads until the gateway closes the connection; how long that took.
fn closed_after(mut s: TcpStream) -> Duration {
    let started = Instant::now();
    let mut sink = Vec::new();
    let _ = s.read_to_end(&mut sink);
    started.elapsed()
}

#[test]
fn each_wire_refuses_connections_past_the_limit_natively_and_drops_silent_clients() {
    let db = "gh_limits_conn";
    scratch_db(db);
    let policy = format!("{TIGHT}{}", mysql_connection("my", "test", ""));
    let gw = Gateway::start_with_policy(&[Conn::local("app", db)], &policy, &[]);
    let token = gw.token("job", &["batch"]);

    // PostgreSQL: two silent connections use this address's places...
    let held = [silent(gw.port), silent(gw.port)];
    std::thread::sleep(Duration::from_millis(200));
    let (ok, _, err) = psql(&gw.dsn("app", &token), &["-c", "SELECT 1"], None);
    assert!(!ok);
    assert!(
        err.contains("53300") || err.contains("too many connections"),
        "{err}"
    );
    // ... until the login timeout drops them; then the address is served again.
    for s in held {
        assert!(closed_after(s) < Duration::from_secs(6));
    }
    std::thread::sleep(Duration::from_millis(200));
    let (ok, out, err) = psql(&gw.dsn("app", &token), &["-Atc", "SELECT 7"], None);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "7");

    // MySQL: the server's own 1040 in place of the greeting.
    let held = [silent(gw.mysql_port), silent(gw.mysql_port)];
    std::thread::sleep(Duration::from_millis(200));
    let out = mysql(&gw, "my", &token, &["-e", "SELECT 1"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("1040"),
        "{}",
        shown(&out)
    );
    for s in held {
        assert!(closed_after(s) < Duration::from_secs(6));
    }
    std::thread::sleep(Duration::from_millis(200));
    let out = mysql(&gw, "my", &token, &["-Nse", "SELECT 8"], None);
    assert!(out.status.success(), "{}", shown(&out));

    // SSH: a client that never finishes logging in is dropped at the timeout.
    let s = silent(gw.ssh_port);
    let took = closed_after(s);
    assert!(
        took >= Duration::from_millis(1500) && took < Duration::from_secs(6),
        "{took:?}"
    );
}

#[test]
fn text_too_long_to_parse_is_unknown_and_still_audited_with_its_length() {
    let db = "gh_limits_parse";
    scratch_db(db);
    admin_sql(
        db,
        "CREATE TABLE accounts (id int); INSERT INTO accounts VALUES (1), (2), (3)",
    );
    let policy =
        "[[rule]]\nname = \"unknown\"\nwhen = { class = [\"unknown\"] }\naction = \"deny\"\n\
                  message = \"the gateway cannot read this\"\n";
    let gw = Gateway::start_with_policy(&[Conn::local("app", db)], policy, &[]);
    let token = gw.token("job", &["batch"]);
    let ids = vec!["1"; 150_000].join(",");
    let huge = format!("DELETE FROM accounts WHERE id IN ({ids})");
    assert!(huge.len() > 256 << 10);
    let (ok, _, err) = psql(&gw.dsn("app", &token), &[], Some(&format!("{huge};\n")));
    assert!(!ok || err.contains("cannot read this"), "{err}");
    assert!(err.contains("cannot read this"), "{err}");
    assert_eq!(admin_sql(db, "SELECT count(*) FROM accounts"), "3");
    let rows = gw.audit_until(|r| !with_statement(r, "DELETE FROM accounts").is_empty());
    let entry = with_statement(&rows, "DELETE FROM accounts");
    assert_eq!(entry[0]["class"], "unknown", "{:?}", entry[0]["class"]);
    assert_eq!(entry[0]["verdict"], "deny");
    assert!(
        entry[0]["statement"]
            .as_str()
            .is_some_and(|s| s.len() >= huge.len() && s.contains(&ids)),
        "stored whole: its length is the evidence"
    );
    // A normal statement is read as before.
    let (ok, out, err) = psql(
        &gw.dsn("app", &token),
        &["-Atc", "SELECT count(*) FROM accounts"],
        None,
    );
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "3");
}

#[test]
fn a_flood_of_bad_tokens_is_counted_not_recorded_without_bound() {
    let db = "gh_limits_flood";
    scratch_db(db);
    let gw = Gateway::start(&[Conn::local("app", db)]);
    let token = gw.token("job", &["batch"]);
    for _ in 0..35 {
        let (ok, _, _) = psql(&gw.dsn("app", "gh_wrong"), &["-c", "SELECT 1"], None);
        assert!(!ok);
    }
    let (ok, out, err) = psql(&gw.dsn("app", &token), &["-Atc", "SELECT 9"], None);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "9");
    let sessions = gw.sessions_until(|s| s.iter().any(|r| r["identity"] == "job"));
    let refused = sessions
        .iter()
        .filter(|s| {
            s["end_reason"]
                .as_str()
                .is_some_and(|r| r.contains("refused"))
        })
        .count();
    assert_eq!(refused, 20, "{sessions:#?}");
}
