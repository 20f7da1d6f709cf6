//! pgbench through the gateway in each query mode; every statement audited.

use crate::support::*;

fn pgbench(gw: &Gateway, token: &str, args: &[&str]) -> String {
    let port = gw.port.to_string();
    let mut all = vec!["-h", "127.0.0.1", "-p", &port, "-U", "bench"];
    all.extend_from_slice(args);
    all.push("bench");
    let out = run(
        "pgbench",
        &all,
        None,
        &[("PGPASSWORD", token), ("PGSSLMODE", "require")],
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "pgbench {args:?} failed:\n{text}");
    text
}

#[test]
fn pgbench_simple_extended_and_prepared_run_clean_and_are_audited() {
    scratch_db("gh_pgbench");
    let gw = Gateway::start(&[Conn::local("bench", "gh_pgbench")]);
    let token = gw.token("pgbench", &["batch"]);
    pgbench(&gw, &token, &["-i", "-s", "1", "-q"]);

    let clients = 2;
    let per_client = 40;
    for mode in ["simple", "extended", "prepared"] {
        let out = pgbench(
            &gw,
            &token,
            &[
                "-M",
                mode,
                "-c",
                &clients.to_string(),
                "-t",
                &per_client.to_string(),
            ],
        );
        assert!(
            out.contains("number of failed transactions: 0"),
            "{mode}: {out}"
        );
    }
    // TPC-B-like: BEGIN, 3 UPDATEs, SELECT, INSERT, END per transaction.
    let per_mode = clients * per_client * 7;
    // The store is filled from the journal in ticks, and the sessions' last statements can be
    // appended in any order: wait for every kind asserted below, not only the UPDATEs.
    let rows = gw.audit_until(|rows| {
        rows.iter().all(|r| r["status"].is_string())
            && rows.iter().filter(|r| r["status"] == "ok").count() >= 3 * per_mode
            && with_statement(rows, "UPDATE pgbench_accounts").len() >= 3 * clients * per_client
            && with_statement(rows, "SELECT abalance FROM pgbench_accounts").len()
                >= 3 * clients * per_client
            && with_statement(rows, "INSERT INTO pgbench_history").len() >= 3 * clients * per_client
    });
    let updates = with_statement(&rows, "UPDATE pgbench_accounts");
    assert_eq!(
        updates.len(),
        3 * clients * per_client,
        "one entry per UPDATE"
    );
    let with_params: Vec<_> = updates
        .iter()
        .filter(|r| r["statement"].as_str().unwrap().contains("$1"))
        .collect();
    assert_eq!(
        with_params.len(),
        2 * clients * per_client,
        "extended + prepared use $n"
    );
    for r in &with_params {
        let params = r["params"].as_array().unwrap();
        assert_eq!(params.len(), 2, "{r}");
        assert!(
            params
                .iter()
                .all(|p| p.as_str().unwrap().parse::<i64>().is_ok()),
            "{r}"
        );
        assert_eq!(r["tag"], "UPDATE 1");
        assert_eq!(r["class"], "update");
    }
    let selects = with_statement(&rows, "SELECT abalance FROM pgbench_accounts");
    assert_eq!(selects.len(), 3 * clients * per_client);
    assert!(selects
        .iter()
        .all(|r| r["rows_returned"] == 1 && r["status"] == "ok"));
    let inserts = with_statement(&rows, "INSERT INTO pgbench_history");
    assert_eq!(
        inserts.len(),
        3 * clients * per_client,
        "one entry per INSERT"
    );
    let failed: Vec<_> = rows.iter().filter(|r| r["status"] != "ok").collect();
    assert!(failed.is_empty(), "unexpected failures: {failed:#?}");
}
