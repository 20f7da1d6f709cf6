//! `gatehouse key add | list | remove`, the real binary against its own store: offline, and
//! `remove` through a running gateway's admin API. No database server needed (the SSH wire's
//! own end-to-end tests log in with the keys).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

const ED25519: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../fixtures/ssh/ed25519.pub"
);
const ED25519_FP: &str = "SHA256:2TGVr39c88cuJae2B/zXeB10cgF90VV3k6vy8ARxqlE";
const RSA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fixtures/ssh/rsa.pub");
const RSA_FP: &str = "SHA256:HijGrf++ZgWQ8/ganc1/FYMYHFlJX1f5rvQlejZzScA";

/// A configuration of its own: the store, and an admin listener on a free port.
fn config(dir: &Path) -> PathBuf {
    let path = dir.join("gatehouse.toml");
    // SQLite beside the configuration, or a database of its own on the PostgreSQL server
    // `GATEHOUSE_TEST_STORE` names.
    let state = if gatehouse_audit::testing::on_postgres() {
        gatehouse_audit::testing::fresh_state(dir).unwrap()
    } else {
        "sqlite:var/gatehouse.db".into()
    };
    std::fs::write(
        &path,
        format!(
            "[gateway]\nstate = {state:?}\nrecordings = \"var/recordings\"\n\n\
             [listen]\nadmin = \"127.0.0.1:0\"\n"
        ),
    )
    .unwrap();
    path
}

/// Runs the CLI with `stdin` fed in, without `GATEHOUSE_TOKEN` unless given.
fn run(config: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.arg("--config")
        .arg(config)
        .args(args)
        .env_remove("GATEHOUSE_TOKEN")
        .env_remove("GATEHOUSE_SERVER")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

/// Runs the CLI; it must succeed; its stdout.
fn ok(config: &Path, args: &[&str], stdin: &str) -> String {
    let out = run(config, args, stdin, &[]);
    assert!(
        out.status.success(),
        "gatehouse {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Runs the CLI; it must fail; its stderr.
fn fails(config: &Path, args: &[&str], stdin: &str, env: &[(&str, &str)]) -> String {
    let out = run(config, args, stdin, env);
    assert!(!out.status.success(), "gatehouse {args:?} succeeded");
    assert!(out.stdout.is_empty(), "a failure prints nothing on stdout");
    String::from_utf8(out.stderr).unwrap()
}

fn keys(config: &Path) -> Vec<Value> {
    serde_json::from_str(&ok(config, &["key", "list", "--json"], "")).unwrap()
}

#[test]
fn keys_are_added_listed_and_removed_offline() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());

    // From a file: the id alone on stdout.
    let out = ok(
        &config,
        &[
            "key",
            "add",
            "--identity",
            "alice",
            "--group",
            "ops",
            "--group",
            "dba",
            "--public-key",
            ED25519,
        ],
        "",
    );
    let alice = out.trim().to_owned();
    assert!(
        alice.starts_with("key_") && out == format!("{alice}\n"),
        "{out:?}"
    );
    // From stdin, scoped and expiring; comments and blank lines around the key are fine.
    let line = std::fs::read_to_string(RSA).unwrap();
    let out = ok(
        &config,
        &[
            "key",
            "add",
            "--identity",
            "deploy",
            "--connection",
            "box",
            "--ttl",
            "30d",
            "--public-key",
            "-",
        ],
        &format!("# the deploy bot\n\n{line}\n"),
    );
    let deploy = out.trim().to_owned();

    let table = ok(&config, &["key", "list"], "");
    let header = table.lines().next().unwrap();
    for column in [
        "ID",
        "IDENTITY",
        "GROUPS",
        "FINGERPRINT",
        "CONNECTIONS",
        "STATE",
        "CREATED",
        "EXPIRES",
    ] {
        assert!(header.contains(column), "{table}");
    }
    let row = |id: &str| {
        table
            .lines()
            .find(|l| l.starts_with(id))
            .unwrap()
            .to_owned()
    };
    for needle in ["alice", "ops,dba", ED25519_FP, "*", "active", "never"] {
        assert!(row(&alice).contains(needle), "{needle}: {table}");
    }
    for needle in ["deploy", RSA_FP, "box", "active"] {
        assert!(row(&deploy).contains(needle), "{needle}: {table}");
    }

    let listed = keys(&config);
    let json = listed.iter().find(|k| k["id"] == deploy.as_str()).unwrap();
    assert_eq!(json["identity"], "deploy");
    assert_eq!(json["fingerprint"], RSA_FP);
    assert_eq!(json["key_type"], "ssh-rsa");
    assert_eq!(json["public_key"], line.trim());
    assert_eq!(json["connections"], serde_json::json!(["box"]));
    assert!(json["expires_at"].is_string() && json["revoked_at"].is_null());
    assert!(json["created_at"].is_string() && json["created_by"].is_string());

    // Tokens and keys are listed and revoked apart.
    assert_eq!(ok(&config, &["token", "list", "--json"], "").trim(), "[]");
    let err = fails(&config, &["token", "revoke", &alice], "", &[]);
    assert!(err.contains("no token with id"), "{err}");

    // The same key twice, under any identity, is refused until removed.
    let err = fails(
        &config,
        &[
            "key",
            "add",
            "--identity",
            "mallory",
            "--public-key",
            ED25519,
        ],
        "",
        &[],
    );
    assert!(
        err.contains("already registered") && err.contains(&alice),
        "{err}"
    );

    assert_eq!(
        ok(&config, &["key", "remove", &alice], ""),
        format!("removed {alice}\n")
    );
    let json = keys(&config);
    let removed = json.iter().find(|k| k["id"] == alice.as_str()).unwrap();
    assert!(removed["revoked_at"].is_string());
    assert!(ok(&config, &["key", "list"], "")
        .lines()
        .any(|l| l.starts_with(&alice) && l.contains("revoked")));
    let err = fails(&config, &["key", "remove", "key_000000000000"], "", &[]);
    assert!(err.contains("no key with id"), "{err}");

    // Removed, it may be registered again (a new id).
    let again = ok(
        &config,
        &["key", "add", "--identity", "alice", "--public-key", ED25519],
        "",
    );
    assert_ne!(again.trim(), alice);
}

#[test]
fn what_is_not_one_public_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let add = ["key", "add", "--identity", "alice", "--public-key", "-"];
    let private = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5vbmU=\n-----END OPENSSH PRIVATE KEY-----\n";
    let two = format!(
        "{}{}",
        std::fs::read_to_string(ED25519).unwrap(),
        std::fs::read_to_string(RSA).unwrap()
    );
    for (stdin, why) in [
        (private, "private key"),
        ("", "no key"),
        ("# only a comment\n", "no key"),
        (two.as_str(), "one key"),
        ("ssh-ed25519 AAAA", "not an OpenSSH public key"),
        ("ssh-dss AAAAB3NzaC1kc3M=", "not supported"),
    ] {
        let err = fails(&config, &add, stdin, &[]);
        assert!(err.contains(why), "{stdin:?}: {err}");
    }
    let err = fails(
        &config,
        &[
            "key",
            "add",
            "--identity",
            "a",
            "--ttl",
            "soon",
            "--public-key",
            ED25519,
        ],
        "",
        &[],
    );
    assert!(err.contains("--ttl soon"), "{err}");
    let err = fails(
        &config,
        &[
            "key",
            "add",
            "--identity",
            "a",
            "--public-key",
            "/nonexistent.pub",
        ],
        "",
        &[],
    );
    assert!(err.contains("/nonexistent.pub"), "{err}");
    assert!(keys(&config).is_empty());
}

/// `gatehouse serve` with only the admin listener: its first admin token and its address.
struct Serve {
    child: Child,
    token: String,
    server: String,
}

impl Serve {
    fn start(config: &Path) -> Self {
        let mut child = Command::new(env!("CARGO_BIN_EXE_gatehouse"))
            .arg("--config")
            .arg(config)
            .arg("serve")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let stdout = child.stdout.take().unwrap();
        let stderr = child.stderr.take().unwrap();
        let tx2 = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(token) = line.split_whitespace().find(|w| w.starts_with("gh_")) {
                    let _ = tx.send(("token", token.to_owned()));
                }
            }
        });
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(addr) = line.strip_prefix("gatehouse: admin listening on ") {
                    let _ = tx2.send(("server", format!("http://{addr}")));
                }
            }
        });
        let (mut token, mut server) = (String::new(), String::new());
        while token.is_empty() || server.is_empty() {
            match rx.recv_timeout(Duration::from_secs(30)) {
                Ok(("token", t)) => token = t,
                Ok((_, s)) => server = s,
                Err(_) => panic!("the gateway did not start"),
            }
        }
        Self {
            child,
            token,
            server,
        }
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn removing_a_key_goes_through_a_running_gateway() {
    let dir = tempfile::tempdir().unwrap();
    let config = config(dir.path());
    let id = ok(
        &config,
        &["key", "add", "--identity", "alice", "--public-key", ED25519],
        "",
    );
    let id = id.trim();
    let other = ok(
        &config,
        &["key", "add", "--identity", "bob", "--public-key", RSA],
        "",
    );
    let other = other.trim();
    // Only keys in the store: the first start still issues an admin token.
    let serve = Serve::start(&config);
    let server = serve.server.as_str();

    // A bad token proves the command went online: offline it would have succeeded.
    let err = fails(
        &config,
        &["--server", server, "key", "remove", id],
        "",
        &[("GATEHOUSE_TOKEN", "gh_not-a-token")],
    );
    assert!(err.contains("HTTP 401"), "{err}");
    assert!(keys(&config).iter().all(|k| k["revoked_at"].is_null()));

    let env = [("GATEHOUSE_TOKEN", serve.token.as_str())];
    let out = run(
        &config,
        &["--server", server, "key", "remove", id],
        "",
        &env,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        format!("removed {id}\n")
    );
    let err = fails(
        &config,
        &["--server", server, "key", "remove", "key_000000000000"],
        "",
        &env,
    );
    assert!(
        err.contains("no key with id") && err.contains("HTTP 404"),
        "{err}"
    );

    // The evidence package's register lists keys beside tokens (who removed this one: the
    // API), and the report counts them.
    let out = dir.path().join("evidence");
    ok(
        &config,
        &["evidence", "--from", "1h", "--out", out.to_str().unwrap()],
        "",
    );
    let register = std::fs::read_to_string(out.join("tokens.jsonl")).unwrap();
    let rows: Vec<Value> = register
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let row = |id: &str| rows.iter().find(|r| r["id"] == id).unwrap();
    assert_eq!(row(id)["kind"], "ssh-key");
    assert_eq!(row(id)["fingerprint"], ED25519_FP);
    assert_eq!(row(id)["state"], "revoked");
    assert_eq!(row(id)["revoked_by"], "api:admin");
    assert_eq!(row(other)["state"], "active");
    assert!(rows.iter().any(|r| r["kind"] == "token"), "the admin token");
    assert!(std::fs::read_to_string(out.join("tokens.csv"))
        .unwrap()
        .contains(RSA_FP));
    let report = std::fs::read_to_string(out.join("report.md")).unwrap();
    for figure in ["| ssh keys active | 1 |", "| ssh keys revoked | 1 |"] {
        assert!(report.contains(figure), "{figure}: {report}");
    }
}
