//! SIGKILL of the gateway under load loses no audit entry for a statement the server ran:
//! every statement in the server's own statement log has its entry.

use std::collections::HashMap;
use std::time::Duration;

use crate::cluster::Cluster;
use crate::support::*;

/// pgbench (extended protocol, 4 clients, 20 s) through the gateway's connection `connection`
/// with `token`, in a thread: to be killed under.
pub fn pgbench_through(
    gw: &Gateway,
    connection: &str,
    token: &str,
) -> std::thread::JoinHandle<std::process::Output> {
    let (port, connection, token) = (gw.port.to_string(), connection.to_owned(), token.to_owned());
    std::thread::spawn(move || {
        run(
            "pgbench",
            &[
                "-h",
                "127.0.0.1",
                "-p",
                &port,
                "-U",
                "x",
                "-M",
                "extended",
                "-c",
                "4",
                "-T",
                "20",
                &connection,
            ],
            None,
            &[("PGPASSWORD", &token)],
        )
    })
}

/// (statement, parameters) of every audit entry, counted.
pub fn audited_statements(rows: &[serde_json::Value]) -> HashMap<(String, Vec<String>), usize> {
    let mut audited = HashMap::new();
    for row in rows {
        let params = row["params"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .map(|p| p.as_str().unwrap_or("NULL").to_owned())
                    .collect()
            })
            .unwrap_or_default();
        let statement = row["statement"].as_str().unwrap_or_default().to_owned();
        *audited.entry((statement, params)).or_insert(0) += 1;
    }
    audited
}

/// (statement, parameters) of every statement the server logged from TCP clients.
pub fn server_statements(log: &str) -> HashMap<(String, Vec<String>), usize> {
    let mut out = HashMap::new();
    let lines: Vec<&str> = log.lines().collect();
    for (i, line) in lines.iter().enumerate() {
        if !line.starts_with("127.0.0.1") {
            continue;
        }
        let statement = if let Some((_, s)) = line.split_once("LOG:  statement: ") {
            s
        } else if let Some((_, rest)) = line.split_once("LOG:  execute ") {
            match rest.split_once(": ") {
                Some((_, s)) => s,
                None => continue,
            }
        } else {
            continue;
        };
        let mut params = Vec::new();
        if let Some(detail) = lines
            .get(i + 1)
            .and_then(|l| l.split_once("DETAIL:  parameters: "))
        {
            for (n, piece) in detail.1.split('\'').enumerate() {
                if n % 2 == 1 {
                    params.push(piece.to_owned());
                }
            }
        }
        *out.entry((statement.to_owned(), params)).or_insert(0) += 1;
    }
    out
}

#[test]
fn sigkill_under_pgbench_loses_no_entry_for_an_executed_statement() {
    let cluster = Cluster::start("", "log_statement = 'all'\nlog_line_prefix = '%h '");
    let dsn_direct = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        cluster.port
    );
    let out = run("pgbench", &["-i", "-s", "1", "-q", &dsn_direct], None, &[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let addr = cluster.address();
    let mut gw = Gateway::start(&[Conn {
        name: "killme",
        address: &addr,
        database: "postgres",
        username: "postgres",
        password_env: None,
        groups: &["batch"],
        tls: "disable",
        tls_ca: None,
    }]);
    let token = gw.token("pgbench", &["batch"]);
    let log_start = cluster.log().len();

    let bench = pgbench_through(&gw, "killme", &token);
    std::thread::sleep(Duration::from_secs(3));
    gw.kill();
    let out = bench.join().unwrap();
    let text = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() || text.contains("server closed"),
        "pgbench should see the gateway die: {text}"
    );
    std::thread::sleep(Duration::from_millis(500));

    let executed = server_statements(&cluster.log()[log_start..]);
    let total: usize = executed.values().sum();
    assert!(
        total > 100,
        "too little ran before the kill to prove anything: {total}"
    );
    let audited = audited_statements(&gw.audit());
    let mut missing = Vec::new();
    for (key, count) in &executed {
        let have = audited.get(key).copied().unwrap_or(0);
        if have < *count {
            missing.push((key.clone(), *count, have));
        }
    }
    assert!(
        missing.is_empty(),
        "statements the server executed without an audit entry: {missing:#?}"
    );
    eprintln!("{total} statements executed by the server, all audited");
    // The journal a killed gateway left was replayed into the store with its chain links:
    // the evidence still verifies.
    let verified = gw.cli_output(&["audit", "verify"]);
    assert!(
        verified.status.success(),
        "{}",
        String::from_utf8_lossy(&verified.stdout)
    );
}
