//! What an operator wires up: `/metrics` in Prometheus's text format counts sessions,
//! refusals, commands by verdict, the gateway's latency per statement, bytes and the audit
//! write path; `/healthz` and `/readyz` answer probes without a token.

use crate::support::*;

const DENY_DROPS: &str = r#"
[[rule]]
name = "no-drops"
when = { class = ["drop"] }
action = "deny"
"#;

#[test]
fn metrics_count_what_happened_and_probes_answer() {
    let db = "gh_ops_metrics";
    scratch_db(db);
    let gw = Gateway::start_with_policy(&[Conn::local("app", db)], DENY_DROPS, &[]);
    let (status, body) = admin_get(&gw, "/healthz");
    assert_eq!((status, body.trim()), (200, "ok"));
    let (status, body) = admin_get(&gw, "/readyz");
    assert_eq!((status, body.trim()), (200, "ready"), "{body}");

    let token = gw.token("job", &["batch"]);
    let (ok, _, err) = psql(
        &gw.dsn("app", &token),
        &["-v", "ON_ERROR_STOP=0"],
        Some("SELECT 1;\nSELECT 2;\nDROP TABLE nothing;\n"),
    );
    assert!(ok, "{err}");
    assert!(err.contains("no-drops"), "{err}");
    let (ok, _, _) = psql(&gw.dsn("app", "gh_not_a_token"), &["-c", "SELECT 1"], None);
    assert!(!ok);
    gw.sessions_until(|s| s.iter().filter(|r| !r["ended_at"].is_null()).count() >= 2);

    let (status, text) = admin_get(&gw, "/metrics");
    assert_eq!(status, 200);
    let pg = "protocol=\"postgres\"";
    let value = |name: &str, labels: &[&str]| {
        metric(&text, name, labels).unwrap_or_else(|| panic!("{name} {labels:?} in:\n{text}"))
    };
    assert_eq!(value("gatehouse_sessions_opened_total", &[pg]), 1.0);
    assert_eq!(
        value(
            "gatehouse_sessions_refused_total",
            &[pg, "reason=\"bad_token\""]
        ),
        1.0
    );
    assert!(value("gatehouse_commands_total", &[pg, "verdict=\"allow\""]) >= 2.0);
    assert_eq!(
        value("gatehouse_commands_total", &[pg, "verdict=\"deny\""]),
        1.0
    );
    // The latency histogram: every allowed statement in its count, in buckets.
    let admitted = value("gatehouse_admission_seconds_count", &[pg]);
    assert!(admitted >= 2.0, "{admitted}");
    assert_eq!(
        value("gatehouse_admission_seconds_bucket", &[pg, "le=\"+Inf\""]),
        admitted
    );
    assert!(value("gatehouse_admission_seconds_bucket", &[pg, "le=\"0.1\""]) >= 1.0);
    assert!(
        value(
            "gatehouse_bytes_relayed_total",
            &[pg, "direction=\"from_server\""]
        ) > 0.0
    );
    assert!(value("gatehouse_ingested_entries_total", &[]) >= 4.0);
    // The statements' admissions were journaled before they ran.
    assert!(value("gatehouse_journal_appends_total", &[]) >= 1.0);
    assert_eq!(value("gatehouse_sessions_live", &[]), 0.0);
    assert!(value("gatehouse_journal_backlog_entries", &[]) >= 0.0);
    assert!(value("gatehouse_ingest_lag_seconds", &[]) >= 0.0);
    assert!(
        text.contains("# TYPE gatehouse_admission_seconds histogram"),
        "{text}"
    );
}
