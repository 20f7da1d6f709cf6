//! The web console in Debian's Chromium, driven by Playwright (`console/tests/console.mjs`):
//! sign-in (a wrong token refused), a held psql DELETE appearing in the inbox without a reload
//! and approved there (the client gets its result, the rows are gone), another denied (the
//! rows are still there), the requester and a non-approver shown no button and refused by the
//! API, a change without the CSRF token refused, the sessions pages, sign-out; and an SSH
//! session's terminal replayed in the page. Screenshots of each page are written to
//! `target/tmp/console-screenshots/`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use crate::ssh_support::{ssh, text, Sshd};
use crate::support::*;

const POLICY: &str = r#"
[[rule]]
name = "unbounded-writes"
when = { class = ["delete-without-where", "update-without-where", "truncate", "drop"] }
action = "review"
approvers = ["dba"]
timeout = "90s"
"#;

fn console_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../console")
}

/// Where the screenshots go.
pub fn screenshots() -> PathBuf {
    PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("console-screenshots")
}

/// The browser script, running a scene, and its `STEP` lines as they come.
struct Browser {
    child: Child,
    lines: mpsc::Receiver<String>,
}

impl Browser {
    fn start(gw: &Gateway, scene: &str, tokens: &[(&str, &str)], env: &[(&str, &str)]) -> Self {
        let dir = console_dir();
        assert!(
            dir.join("dist/index.html").exists() && dir.join("node_modules").exists(),
            "the console is not built: run `bash scripts/console.sh` (scripts/setup.sh does)"
        );
        let tokens: serde_json::Map<String, serde_json::Value> = tokens
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::Value::from(*v)))
            .collect();
        let mut child = Command::new("node")
            .arg("tests/console.mjs")
            .arg(scene)
            .current_dir(&dir)
            .env("CONSOLE_URL", format!("http://127.0.0.1:{}", gw.admin_port))
            .env("SHOTS", screenshots())
            .env("TOKENS", serde_json::Value::Object(tokens).to_string())
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .spawn()
            .expect("node (the console's browser tests need Node.js)");
        let stdout: ChildStdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                eprintln!("browser: {line}");
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        Self { child, lines }
    }

    /// Waits for `STEP name ...`; returns the rest of the line. A `FAIL` fails the test.
    fn step(&self, name: &str) -> String {
        loop {
            let line = self
                .lines
                .recv_timeout(Duration::from_secs(120))
                .unwrap_or_else(|_| panic!("the browser never reached step {name}"));
            if let Some(why) = line.strip_prefix("FAIL ") {
                panic!("browser: {why}");
            }
            if let Some(rest) = line.strip_prefix(&format!("STEP {name}")) {
                return rest.trim().to_owned();
            }
        }
    }

    fn finish(mut self) {
        let done = self
            .lines
            .iter()
            .find(|l| l == "DONE" || l.starts_with("FAIL "));
        let status = self.child.wait().expect("node");
        assert!(
            done.as_deref() == Some("DONE") && status.success(),
            "the browser script failed: {done:?}"
        );
    }
}

/// A local webhook receiver: every POST's path and JSON body, in order. The first request
/// is answered 500, so the gateway's retry is exercised.
fn webhook_receiver() -> (u16, mpsc::Receiver<(String, serde_json::Value)>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for (n, stream) in listener.incoming().enumerate() {
            let Ok(mut stream) = stream else { return };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            reader.read_line(&mut request_line).unwrap();
            let mut length = 0;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line.trim().is_empty() {
                    break;
                }
                if let Some((k, v)) = line.split_once(':') {
                    if k.eq_ignore_ascii_case("content-length") {
                        length = v.trim().parse().unwrap();
                    }
                }
            }
            let mut body = vec![0; length];
            reader.read_exact(&mut body).unwrap();
            if n == 0 {
                let _ = stream.write_all(b"HTTP/1.1 500 Oops\r\nContent-Length: 0\r\n\r\n");
                continue;
            }
            let _ = stream.write_all(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n");
            let path = request_line
                .split(' ')
                .nth(1)
                .unwrap_or_default()
                .to_owned();
            let json = serde_json::from_slice(&body).unwrap_or_default();
            if tx.send((path, json)).is_err() {
                return;
            }
        }
    });
    (port, rx)
}

fn held_delete(
    gw: &Gateway,
    token: &str,
    marker: &str,
) -> thread::JoinHandle<(bool, String, String)> {
    let dsn = gw.dsn("app", token);
    let sql = format!("/* {marker} */ DELETE FROM t");
    thread::spawn(move || psql(&dsn, &["-c", &sql], None))
}

fn rows_left(db: &str) -> String {
    admin_sql(db, "SELECT count(*) FROM t").trim().to_owned()
}

#[test]
fn approvers_decide_held_commands_in_the_browser_and_the_console_guards_itself() {
    let db = "gh_console";
    scratch_db(db);
    admin_sql(
        db,
        "CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 3)",
    );
    let conn = Conn {
        groups: &["dev", "dba"],
        ..Conn::local("app", db)
    };
    let (hook_port, hooks) = webhook_receiver();
    let policy = format!(
        "{POLICY}\n[[webhook]]\nurl = \"http://127.0.0.1:{hook_port}/generic\"\n\n\
         [[webhook]]\nurl = \"http://127.0.0.1:{hook_port}/slack\"\nformat = \"slack\"\n\
         rules = [\"unbounded-writes\"]\n"
    );
    let gw = Gateway::start_with_policy(&[conn], &policy, &[]);
    let alice = gw.token("alice", &["dev", "dba"]);
    let bob = gw.token("bob", &["dba"]);
    let carol = gw.token("carol", &["dev"]);
    let root = gw.token("root", &["admin"]);
    let browser = Browser::start(
        &gw,
        "inbox",
        &[
            ("alice", &alice),
            ("bob", &bob),
            ("carol", &carol),
            ("root", &root),
        ],
        &[],
    );

    let refused = browser.step("wrong-token");
    assert!(!refused.is_empty());
    browser.step("inbox-open");
    let first = held_delete(&gw, &alice, "first");
    browser.step("csrf-refused");
    let approved = browser.step("approved");
    let (ran, stdout, err) = first.join().unwrap();
    assert!(ran && stdout.contains("DELETE 3"), "{stdout} {err}");
    assert!(
        err.contains(&approved),
        "the client was told the request id: {err}"
    );
    assert_eq!(rows_left(db), "0", "the approved DELETE ran on the server");

    admin_sql(db, "INSERT INTO t SELECT generate_series(1, 3)");
    let second = held_delete(&gw, &alice, "second");
    browser.step("denied");
    let (ran, stdout, err) = second.join().unwrap();
    assert!(!ran, "a denied DELETE ran: {stdout}");
    assert!(err.contains("denied") || err.contains("rejected"), "{err}");
    assert_eq!(
        rows_left(db),
        "3",
        "the denied DELETE never reached the server"
    );

    let third = held_delete(&gw, &alice, "third");
    let id = browser.step("refused");
    // Nobody the console let through decided it: it is still pending; bob denies it here.
    let pending = gw.pending_approvals(&bob);
    assert!(
        pending.iter().any(|p| p["id"] == id.as_str()),
        "{pending:?}"
    );
    let out = gw.cli_as(&bob, &["deny", &id, "--reason", "test over"]);
    assert!(out.status.success());
    let (ran, _, _) = third.join().unwrap();
    assert!(!ran);
    assert_eq!(rows_left(db), "3");
    // What the audit page downloaded: the export as filtered, and the evidence package.
    let jsonl = read(&PathBuf::from(browser.step("downloaded")));
    let lines: Vec<serde_json::Value> = jsonl
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!lines.is_empty() && lines.iter().all(|e| e["identity"] == "alice"));
    assert!(lines.iter().any(
        |e| e["statement"].as_str().is_some_and(|s| s.contains("first"))
            && e["verdict"] == "approved"
    ));
    let csv = read(&PathBuf::from(browser.step("downloaded")));
    assert!(csv.starts_with("id,at,session,"), "{csv}");
    assert_eq!(csv.lines().count(), lines.len() + 1);
    let evidence = browser.step("downloaded");
    let listing = run("tar", &["-tzf", &evidence], None, &[]);
    assert!(listing.status.success(), "{listing:?}");
    let listing = String::from_utf8_lossy(&listing.stdout).into_owned();
    for file in ["manifest.json", "SHA256SUMS", "audit.jsonl", "report.html"] {
        assert!(
            listing.lines().any(|l| l.ends_with(&format!("/{file}"))),
            "{file} not in the package: {listing}"
        );
    }
    browser.step("signed-out");
    browser.finish();

    // The store tells the same story as the page.
    let trail = gw.cli_as(&bob, &["approvals", "list", "--json"]);
    let trail: serde_json::Value = serde_json::from_slice(&trail.stdout).unwrap();
    let decided = |id: &str| {
        trail
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    let first = decided(&approved);
    assert_eq!(first["state"], "approved");
    assert_eq!(first["decided_by"], "bob");
    assert_eq!(first["reason"], "ticket 42");

    // Each webhook heard of each request and each decision, with a link to the request.
    let mut heard = Vec::new();
    while let Ok(hook) = hooks.recv_timeout(Duration::from_secs(45)) {
        heard.push(hook);
        let generic = heard.iter().filter(|(p, _)| p == "/generic").count();
        let slack = heard.iter().filter(|(p, _)| p == "/slack").count();
        if generic >= 6 && slack >= 6 {
            break;
        }
    }
    let event = |kind: &str, id: &str| {
        heard
            .iter()
            .find(|(p, j)| p == "/generic" && j["event"] == kind && j["id"] == id)
            .map(|(_, j)| j.clone())
            .unwrap_or_else(|| panic!("no {kind} for {id} in {heard:#?}"))
    };
    let asked = event("approval.requested", &approved);
    assert_eq!(asked["identity"], "alice");
    assert_eq!(asked["connection"], "app");
    assert_eq!(asked["rule"], "unbounded-writes");
    assert!(asked["statement"].as_str().unwrap().contains("first"));
    assert!(asked["expires_at"].is_string());
    assert_eq!(
        asked["url"],
        format!("http://127.0.0.1:{}/#/approvals/{approved}", gw.admin_port)
    );
    let decision = event("approval.decided", &approved);
    assert_eq!(decision["state"], "approved");
    assert_eq!(decision["decided_by"], "bob");
    assert_eq!(decision["reason"], "ticket 42");
    let slack: Vec<&str> = heard
        .iter()
        .filter(|(p, _)| p == "/slack")
        .filter_map(|(_, j)| j["text"].as_str())
        .collect();
    assert!(
        slack
            .iter()
            .any(|t| t.contains("*alice* asks to run on *app*") && t.contains(&approved)),
        "{slack:#?}"
    );
    assert!(
        slack
            .iter()
            .any(|t| t.contains("*denied* by bob (not during business hours)")),
        "{slack:#?}"
    );
    for shot in [
        "01-sign-in",
        "03-inbox-pending",
        "04-inbox-approved",
        "07-not-an-approver",
    ] {
        let png = screenshots().join(format!("{shot}.png"));
        assert!(
            std::fs::metadata(&png).is_ok_and(|m| m.len() > 1000),
            "{}",
            png.display()
        );
    }
}

#[test]
fn an_ssh_sessions_terminal_is_replayed_in_the_page() {
    let sshd = Sshd::start();
    let policy = sshd.connection("box", "");
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let ops = gw.token("ops", &["batch"]);
    let root = gw.token("root", &["admin"]);
    let marker = "replayed-in-the-browser-42";
    let out = ssh(
        &gw,
        "box",
        &ops,
        &[&format!("echo {marker}; echo done")],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    assert!(text(&out.stdout).contains(marker));
    // The session's end (and its cast's seal) reach the store.
    gw.sessions_until(|rows| {
        rows.iter()
            .any(|s| s["protocol"] == "ssh" && s["ended_at"].is_string())
    });
    let browser = Browser::start(&gw, "replay", &[("root", &root)], &[("MARKER", marker)]);
    assert_eq!(browser.step("replayed"), marker);
    browser.finish();
}

/// The console's first load stays small: the scripts `index.html` loads (not the terminal
/// player, which loads on demand) are under 100 KB gzipped.
#[test]
fn the_first_load_is_under_100_kb_of_script_gzipped() {
    use flate2::write::GzEncoder;
    let dist = console_dir().join("dist");
    let index = read(&dist.join("index.html"));
    let scripts: Vec<&str> = index
        .split(['"', '\''])
        .filter(|part| part.starts_with("/assets/") && part.ends_with(".js"))
        .collect();
    assert!(!scripts.is_empty(), "{index}");
    let mut gzipped = 0;
    for script in scripts {
        let bytes = std::fs::read(dist.join(script.trim_start_matches('/'))).unwrap();
        let mut gz = GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&bytes).unwrap();
        gzipped += gz.finish().unwrap().len();
    }
    assert!(
        gzipped < 100 * 1024,
        "{gzipped} bytes of script gzipped on first load"
    );
}
