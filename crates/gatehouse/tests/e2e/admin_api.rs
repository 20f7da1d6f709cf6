//! The admin HTTP API as scripts and the CLI use it: bearer tokens, groups, tokens issued and
//! revoked online, sessions and audit listed; refusals are clear JSON errors.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

/// One HTTP/1.1 request; the status and the JSON answer.
fn http(gw: &Gateway, method: &str, path: &str, token: Option<&str>, body: &str) -> (u16, Value) {
    let mut s = TcpStream::connect(("127.0.0.1", gw.admin_port)).unwrap();
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: gw\r\n{auth}Content-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    s.read_to_string(&mut answer).unwrap();
    let status = answer[9..12].parse().unwrap();
    let json = answer
        .split_once("\r\n\r\n")
        .map(|(_, b)| serde_json::from_str(b).unwrap_or(Value::Null))
        .unwrap_or(Value::Null);
    (status, json)
}

#[test]
fn tokens_sessions_and_audit_through_the_admin_api() {
    scratch_db("gh_admin_api");
    let gw = Gateway::start(&[Conn::local("db", "gh_admin_api")]);
    let admin = gw.token("root-admin", &["admin"]);
    let worker = gw.token("worker", &["batch"]);

    let (status, err) = http(&gw, "GET", "/v1/tokens", None, "");
    assert_eq!(status, 401, "{err}");
    assert!(err["error"].as_str().unwrap().contains("Bearer"), "{err}");
    let (status, _) = http(&gw, "GET", "/v1/tokens", Some("gh_wrong"), "");
    assert_eq!(status, 401);
    let (status, err) = http(&gw, "GET", "/v1/audit", Some(&worker), "");
    assert_eq!(status, 403, "{err}");
    let (status, err) = http(&gw, "POST", "/v1/tokens", Some(&admin), "{\"identity\": ");
    assert!(status == 400 || status == 422, "{status} {err}");

    let (status, created) = http(
        &gw,
        "POST",
        "/v1/tokens",
        Some(&admin),
        r#"{"identity": "etl", "groups": ["batch"], "ttl": "1h"}"#,
    );
    assert_eq!(status, 200, "{created}");
    let secret = created["token"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let (status, tokens) = http(&gw, "GET", "/v1/tokens", Some(&admin), "");
    assert_eq!(status, 200);
    let listed = tokens
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["id"] == id.as_str())
        .unwrap();
    assert_eq!(listed["identity"], "etl");
    assert_eq!(listed["created_by"], "api:root-admin");
    assert!(listed.get("token").is_none(), "secrets are never listed");

    // The new token works; revoking it online ends its live session at once.
    let mut child = std::process::Command::new("psql")
        .args([
            "-X",
            "-d",
            &gw.dsn("db", &secret),
            "-c",
            "SELECT pg_sleep(20)",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    gw.sessions_until(|s| s.iter().any(|r| r["identity"] == "etl"));
    std::thread::sleep(Duration::from_millis(300));
    let started = Instant::now();
    let out = gw.cli_as(&admin, &["token", "revoke", &id]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status = child.wait().unwrap();
    assert!(!status.success());
    assert!(started.elapsed() < Duration::from_secs(5));
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert!(err.contains("revoked"), "{err}");

    let (status, sessions) = http(&gw, "GET", "/v1/sessions?since=1h", Some(&admin), "");
    assert_eq!(status, 200);
    assert!(sessions
        .as_array()
        .unwrap()
        .iter()
        .any(|s| s["identity"] == "etl"));
    let (status, audit) = http(&gw, "GET", "/v1/audit?limit=5", Some(&admin), "");
    assert_eq!(status, 200);
    assert!(audit
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["statement"] == "SELECT pg_sleep(20)"));
    let (status, err) = http(&gw, "GET", "/v1/audit?since=yesterdayish", Some(&admin), "");
    assert_eq!(status, 400, "{err}");
    let (status, err) = http(&gw, "POST", "/v1/tokens/tok_nope/revoke", Some(&admin), "");
    assert_eq!(status, 404, "{err}");
}
