//! Several gateways, one PostgreSQL store, as a payment environment deploys them behind a
//! load balancer: a command held on one instance is approved through another, a token revoked
//! through one ends a session on another, every instance lists and exports every instance's
//! sessions, `audit verify` walks every instance's chain, an instance killed under load loses
//! nothing, and the store going down refuses commands until it is back.
//!
//! These run on the machine's PostgreSQL whatever `GATEHOUSE_TEST_STORE` says (a new
//! database per test), or on a private cluster that can be stopped.

use std::thread;
use std::time::{Duration, Instant};

use crate::cluster::Cluster;
use crate::support::*;

/// The server the shared stores are made on.
const STORE_SERVER: &str = "postgres://postgres@127.0.0.1:5432/";

const REVIEW: &str = r#"
[[rule]]
name = "unbounded-writes"
when = { class = ["delete-without-where", "update-without-where"] }
action = "review"
approvers = ["dba"]
timeout = "20s"
"#;

/// Two instances, `gw-a` and `gw-b`, on one new store, fronting the scratch database `db`
/// (a table `t` of 3 rows); their local state (keys, journals) and recordings in `shared`.
fn pair(db: &str, policy: &str) -> (tempfile::TempDir, Gateway, Gateway) {
    scratch_db(db);
    admin_sql(
        db,
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 3)",
    );
    let store = gatehouse_audit::testing::fresh_postgres(STORE_SERVER).expect("a store database");
    let shared = tempfile::tempdir().expect("tempdir");
    let conn = Conn {
        groups: &["dev", "dba"],
        ..Conn::local("app", db)
    };
    // One after the other: the first makes the keys both use.
    let a = Gateway::start_instance(&store, "gw-a", shared.path(), &[conn], policy);
    let b = Gateway::start_instance(&store, "gw-b", shared.path(), &[conn], policy);
    (shared, a, b)
}

#[test]
fn a_command_held_on_one_instance_is_approved_through_another_and_runs_at_once() {
    let (_shared, a, b) = pair("gh_inst_review", REVIEW);
    let alice = a.token("alice", &["dev"]);
    let bob = b.token("bob", &["dba"]);

    let dsn = a.dsn("app", &alice);
    let held = thread::spawn(move || {
        let out = psql(&dsn, &["-c", "DELETE FROM t"], None);
        (out, Instant::now())
    });
    // B lists A's request: the desk is the shared store's.
    let id = b.wait_for_request(&bob);
    assert_eq!(b.pending_approvals(&bob)[0]["identity"], "alice");
    assert_eq!(
        admin_sql("gh_inst_review", "SELECT count(*) FROM t"),
        "3",
        "nothing ran while held"
    );
    let approved = b.cli_as(&bob, &["approve", &id, "--reason", "ticket 7"]);
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    let decided = Instant::now();
    let ((ran, stdout, err), finished) = held.join().unwrap();
    assert!(ran, "{err}");
    assert!(stdout.contains("DELETE 3"), "{stdout}");
    let waited = finished.saturating_duration_since(decided);
    eprintln!("approval on B reached A's client in {waited:?}");
    assert!(
        waited < Duration::from_secs(1),
        "the approval reached the other instance in {waited:?}"
    );
    assert_eq!(admin_sql("gh_inst_review", "SELECT count(*) FROM t"), "0");

    // Either instance lists the session and the entry, as approved by bob.
    for gw in [&a, &b] {
        let rows = gw.audit_until(|r| {
            with_statement(r, "DELETE FROM t")
                .iter()
                .any(|e| e["status"] == "ok")
        });
        let entry = with_statement(&rows, "DELETE FROM t");
        assert_eq!(entry.len(), 1, "{rows:#?}");
        assert_eq!(entry[0]["verdict"], "approved");
        assert_eq!(entry[0]["approved_by"], "bob");
        let sessions = gw.sessions();
        assert!(
            sessions.iter().any(|s| s["identity"] == "alice"),
            "{sessions:#?}"
        );
    }
}

#[test]
fn a_token_revoked_through_one_instance_ends_a_session_on_another_within_a_second() {
    let (_shared, a, b) = pair("gh_inst_revoke", "");
    let carol = a.token("carol", &["dev"]);
    let admin = b.token("root-admin", &["admin"]);
    let id = b
        .cli(&["token", "list", "--json"])
        .parse::<serde_json::Value>()
        .unwrap()
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["identity"] == "carol")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let dsn = a.dsn("app", &carol);
    let session = thread::spawn(move || {
        let out = psql(&dsn, &["-c", "SELECT pg_sleep(30)"], None);
        (out, Instant::now())
    });
    // Wait until the statement runs on the server.
    let deadline = Instant::now() + Duration::from_secs(15);
    while admin_sql(
        "postgres",
        "SELECT count(*) FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(30)'",
    ) != "1"
    {
        assert!(Instant::now() < deadline, "the session never started");
        thread::sleep(Duration::from_millis(50));
    }
    let revoked = b.cli_as(&admin, &["token", "revoke", &id]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let at = Instant::now();
    let ((ok, _, err), ended) = session.join().unwrap();
    assert!(!ok, "the session on the other instance went on");
    assert!(err.contains("revoked"), "{err}");
    let took = ended.saturating_duration_since(at);
    eprintln!("revocation on B ended A's session in {took:?}");
    assert!(took < Duration::from_secs(1), "ended after {took:?}");
}

#[test]
fn every_instance_sees_every_session_and_verify_walks_each_chain() {
    let (shared, a, b) = pair("gh_inst_views", "");
    let dave = a.token("dave", &["dev"]);
    for (gw, text) in [(&a, "SELECT 'via a'"), (&b, "SELECT 'via b'")] {
        let (ok, _, err) = psql(&gw.dsn("app", &dave), &["-c", text], None);
        assert!(ok, "{err}");
    }
    for gw in [&a, &b] {
        let rows = gw.audit_until(|r| {
            !with_statement(r, "via a").is_empty() && !with_statement(r, "via b").is_empty()
        });
        assert_eq!(with_statement(&rows, "via a").len(), 1, "{rows:#?}");
        assert_eq!(with_statement(&rows, "via b").len(), 1, "{rows:#?}");
        let export = gw.cli(&["audit", "export", "--format", "jsonl"]);
        assert!(
            export.contains("via a") && export.contains("via b"),
            "{export}"
        );
    }
    // Each session says which instance served it.
    let served: std::collections::BTreeSet<String> = b
        .sessions()
        .iter()
        .filter(|s| s["identity"] == "dave")
        .filter_map(|s| s["instance"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(served, ["gw-a".to_owned(), "gw-b".to_owned()].into());
    // A session recorded by A replays through B (the recordings directory is shared).
    let via_a = a
        .sessions()
        .into_iter()
        .find(|s| s["identity"] == "dave" && s["commands"] == 1 && s["ended_at"].is_string())
        .expect("dave's session");
    let id = via_a["id"].as_str().unwrap();
    let mut replayed = String::new();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !(replayed.contains("via a") || replayed.contains("via b")) {
        assert!(Instant::now() < deadline, "no replay: {replayed}");
        replayed = String::from_utf8_lossy(&b.cli_output(&["replay", id]).stdout).into_owned();
        thread::sleep(Duration::from_millis(100));
    }
    // Verify from either side walks both instances' chains, and says so.
    let text = a.cli(&["audit", "verify"]);
    assert!(
        text.contains("2 chains, one per gateway instance: gw-a, gw-b"),
        "{text}"
    );
    let report = b.cli(&["audit", "verify", "--json"]);
    let report: serde_json::Value = serde_json::from_str(&report).unwrap();
    let chains: Vec<&str> = report["chains"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c.as_str())
        .collect();
    assert!(
        chains.contains(&"gw-a") && chains.contains(&"gw-b"),
        "{report}"
    );
    assert_eq!(report["problems"].as_array().unwrap().len(), 0, "{report}");
    let evidence = shared.path().join("evidence");
    a.cli(&[
        "evidence",
        "--from",
        "1h",
        "--out",
        evidence.to_str().unwrap(),
    ]);
    let sessions = read(&evidence.join("sessions.jsonl"));
    assert!(sessions.matches("\"dave\"").count() >= 2, "{sessions}");

    // Retention run from one instance, two years on, while both serve: each chain gets its
    // own purge link, and verify from the other still holds.
    let purged = a.cli(&["retention", "run", "--now", "2029-01-01"]);
    assert!(purged.contains("sessions"), "{purged}");
    let report: serde_json::Value =
        serde_json::from_str(&b.cli(&["audit", "verify", "--json"])).unwrap();
    assert_eq!(report["problems"].as_array().unwrap().len(), 0, "{report}");
    assert!(report["purges"].as_u64().unwrap() >= 2, "{report}");
    assert!(a.sessions().iter().all(|s| s["identity"] != "dave"));
}

#[test]
fn an_instance_killed_under_load_loses_no_entry_once_it_restarts() {
    let cluster = Cluster::start("", "log_statement = 'all'\nlog_line_prefix = '%h '");
    let direct = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        cluster.port
    );
    let out = run("pgbench", &["-i", "-s", "1", "-q", &direct], None, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let store = gatehouse_audit::testing::fresh_postgres(STORE_SERVER).unwrap();
    let shared = tempfile::tempdir().unwrap();
    let addr = cluster.address();
    let conn = Conn {
        name: "bench",
        address: &addr,
        database: "postgres",
        username: "postgres",
        password_env: None,
        groups: &["batch"],
        tls: "disable",
        tls_ca: None,
    };
    let mut a = Gateway::start_instance(&store, "gw-a", shared.path(), &[conn], "");
    let b = Gateway::start_instance(&store, "gw-b", shared.path(), &[conn], "");
    let token = a.token("pgbench", &["batch"]);
    let log_start = cluster.log().len();
    let bench = crate::durability::pgbench_through(&a, "bench", &token);
    thread::sleep(Duration::from_secs(3));
    a.kill();
    let _ = bench.join().unwrap();
    thread::sleep(Duration::from_millis(300));
    let executed = crate::durability::server_statements(&cluster.log()[log_start..]);
    let total: usize = executed.values().sum();
    assert!(total > 100, "too little ran to prove anything: {total}");
    // A comes back (same instance, same journal) and ingests what it journaled.
    a.restart();
    let counted = crate::durability::audited_statements(&b.audit_until(|rows| rows.len() >= total));
    let missing: Vec<_> = executed
        .iter()
        .filter(|(k, n)| counted.get(*k).copied().unwrap_or(0) < **n)
        .take(5)
        .collect();
    assert!(missing.is_empty(), "executed but not audited: {missing:?}");
    let report: serde_json::Value =
        serde_json::from_str(&b.cli(&["audit", "verify", "--json"])).unwrap();
    assert_eq!(report["problems"].as_array().unwrap().len(), 0, "{report}");
}

#[test]
fn the_store_down_refuses_new_commands_and_service_resumes_when_it_is_back() {
    scratch_db("gh_inst_down");
    admin_sql("gh_inst_down", "CREATE TABLE ledger (n int)");
    let store_cluster = Cluster::start("", "");
    let store = gatehouse_audit::testing::fresh_postgres(&format!(
        "postgres://postgres@127.0.0.1:{}/",
        store_cluster.port
    ))
    .unwrap();
    let shared = tempfile::tempdir().unwrap();
    let gw = Gateway::start_instance(
        &store,
        "gw-a",
        shared.path(),
        &[Conn {
            groups: &["batch", "dev", "dba"],
            ..Conn::local("app", "gh_inst_down")
        }],
        REVIEW,
    );
    let token = gw.token("job", &["batch"]);
    let dsn = gw.dsn("app", &token);
    // A session open before the outage: its next command, after it, is refused.
    let open_dsn = dsn.clone();
    let open = thread::spawn(move || {
        psql(
            &open_dsn,
            &["-v", "ON_ERROR_STOP=0"],
            Some("INSERT INTO ledger VALUES (1);\n\\! sleep 3\nINSERT INTO ledger VALUES (2);\n"),
        )
    });
    let deadline = Instant::now() + Duration::from_secs(15);
    while admin_sql("gh_inst_down", "SELECT count(*) FROM ledger") != "1" {
        assert!(Instant::now() < deadline, "the first insert never ran");
        thread::sleep(Duration::from_millis(50));
    }
    store_cluster.stop();
    let (_, _, err) = open.join().unwrap();
    // A load balancer's probe sees it too.
    let (status, body) = admin_get(&gw, "/readyz");
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("not ready"), "{body}");
    assert!(err.contains("58000") || err.contains("audit"), "{err}");
    assert_eq!(
        admin_sql("gh_inst_down", "SELECT count(*) FROM ledger"),
        "1",
        "a command ran while its entry could not be stored"
    );
    // A new session cannot be authenticated: refused with PostgreSQL's own error.
    let (ok, _, err) = psql(&dsn, &["-c", "INSERT INTO ledger VALUES (2)"], None);
    assert!(!ok, "a command ran with the store down");
    assert!(err.contains("audit") || err.contains("store"), "{err}");
    // The gateway still answers (refusals are quick, nothing hangs), and nothing ran.
    assert_eq!(
        admin_sql("gh_inst_down", "SELECT count(*) FROM ledger"),
        "1"
    );

    store_cluster.start_again();
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let (ok, _, err) = psql(&dsn, &["-c", "INSERT INTO ledger VALUES (3)"], None);
        if ok {
            break;
        }
        assert!(Instant::now() < deadline, "service did not resume: {err}");
        thread::sleep(Duration::from_millis(300));
    }
    assert_eq!(
        admin_sql("gh_inst_down", "SELECT count(*) FROM ledger"),
        "2"
    );
    let rows = gw.audit_until(|r| !with_statement(r, "VALUES (3)").is_empty());
    assert_eq!(with_statement(&rows, "VALUES (1)").len(), 1, "{rows:#?}");
    assert_eq!(with_statement(&rows, "VALUES (3)").len(), 1, "{rows:#?}");

    // The approvals desk found its way back to the store too: a held command is approved.
    let alice = gw.token("alice", &["dev"]);
    let bob = gw.token("bob", &["dba"]);
    let dsn = gw.dsn("app", &alice);
    let held = thread::spawn(move || psql(&dsn, &["-c", "DELETE FROM ledger"], None));
    let id = gw.wait_for_request(&bob);
    let approved = gw.cli_as(&bob, &["approve", &id]);
    assert!(
        approved.status.success(),
        "{}",
        String::from_utf8_lossy(&approved.stderr)
    );
    let (ok, out, err) = held.join().unwrap();
    assert!(ok && out.contains("DELETE 2"), "{out} {err}");
}

#[test]
fn the_store_is_reached_over_verified_tls_and_a_stranger_is_refused() {
    let certs = tempfile::tempdir().unwrap();
    let (ca, cert, key) = crate::upstream_auth::certificates(certs.path(), "store");
    let (other_ca, _, _) = crate::upstream_auth::certificates(certs.path(), "other");
    for path in [&cert, &key] {
        let owned = std::process::Command::new("chown")
            .args(["postgres", path])
            .status()
            .unwrap();
        assert!(owned.success());
    }
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    std::fs::set_permissions(
        certs.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let store_cluster = Cluster::start(
        "",
        &format!("ssl = on\nssl_cert_file = '{cert}'\nssl_key_file = '{key}'"),
    );
    let server = format!("postgres://postgres@127.0.0.1:{}/", store_cluster.port);
    let store = gatehouse_audit::testing::fresh_postgres(&server).unwrap();
    scratch_db("gh_inst_tls");
    let shared = tempfile::tempdir().unwrap();
    let verified = format!("{store}?sslmode=verify-full&sslrootcert={ca}");
    let gw = Gateway::start_instance(
        &verified,
        "gw-a",
        shared.path(),
        &[Conn::local("app", "gh_inst_tls")],
        "",
    );
    let token = gw.token("job", &["batch"]);
    let (ok, _, err) = psql(&gw.dsn("app", &token), &["-c", "SELECT 'over tls'"], None);
    assert!(ok, "{err}");
    gw.audit_until(|r| !with_statement(r, "over tls").is_empty());
    // Every connection the gateway holds to the store is encrypted.
    let plain = store_cluster.sql(
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE a.client_addr IS NOT NULL AND NOT s.ssl",
    );
    let encrypted = store_cluster.sql(
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid)
         WHERE a.client_addr IS NOT NULL AND s.ssl",
    );
    assert_eq!(plain, "0");
    assert!(encrypted.parse::<u32>().unwrap() >= 2, "{encrypted}");

    // A store whose certificate the configured CA did not sign: the gateway does not start.
    let stranger = format!("{store}?sslmode=verify-full&sslrootcert={other_ca}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("g.toml");
    std::fs::write(
        &config,
        format!("[gateway]\nstate = {stranger:?}\ninstance = \"gw-x\"\n[listen]\nadmin = \"127.0.0.1:0\"\n"),
    )
    .unwrap();
    let out = run(
        "timeout",
        &[
            "20",
            gatehouse_bin(),
            "--config",
            config.to_str().unwrap(),
            "serve",
        ],
        None,
        &[],
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("certificate") || err.contains("UnknownIssuer"),
        "{err}"
    );
}
