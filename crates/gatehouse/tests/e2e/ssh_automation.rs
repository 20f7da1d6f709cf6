//! Automation through the SSH wire: a Python paramiko client runs several commands on one
//! connection (stdout, stderr, stdin and exit codes as the host gave them), first with a token
//! as the password, then with a registered key (audited under the key's identity); OpenSSH logs
//! in with the same key; once the key is removed it is refused and the refusal is a session.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

use crate::ssh_support::{text, Sshd};
use crate::support::{run, with_statement, Gateway};

/// Connects once (password or key file) and runs each command of argv[5] (JSON: `[command,
/// stdin or null]`), printing `[command, exit status, stdout, stderr]` for each as JSON.
const PARAMIKO: &str = r#"
import json, sys, paramiko
port, user, secret, mode, commands = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4], json.loads(sys.argv[5])
client = paramiko.SSHClient()
client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
auth = {"password": secret} if mode == "password" else {"key_filename": secret}
try:
    client.connect("127.0.0.1", port=port, username=user, allow_agent=False, look_for_keys=False, timeout=10, **auth)
except paramiko.AuthenticationException as e:
    print("authentication failed:", e, file=sys.stderr)
    sys.exit(5)
results = []
for command, stdin in commands:
    i, o, e = client.exec_command(command, timeout=20)
    if stdin is not None:
        i.write(stdin)
        i.channel.shutdown_write()
    out = o.read().decode()
    err = e.read().decode()
    results.append([command, o.channel.recv_exit_status(), out, err])
client.close()
print(json.dumps(results))
"#;

/// The commands both logins run, with their stdin, and what each must give back.
fn commands() -> (Value, Vec<(&'static str, i64, &'static str, &'static str)>) {
    let sent = serde_json::json!([
        ["echo one; echo two", null],
        ["uname -s", null],
        ["wc -l", "a\nb\nc\n"],
        ["echo oops >&2; exit 7", null],
        ["false", null],
        ["printf '%s\\n' 4111111111111111", null],
    ]);
    let want = vec![
        ("echo one; echo two", 0, "one\ntwo\n", ""),
        ("uname -s", 0, "Linux\n", ""),
        ("wc -l", 0, "3\n", ""),
        ("echo oops >&2; exit 7", 7, "", "oops\n"),
        ("false", 1, "", ""),
        (
            "printf '%s\\n' 4111111111111111",
            0,
            "************1111\n",
            "",
        ),
    ];
    (sent, want)
}

fn paramiko(gw: &Gateway, mode: &str, secret: &str, commands: &Value) -> Output {
    let port = gw.ssh_port.to_string();
    let commands = commands.to_string();
    run(
        "python3",
        &["-c", PARAMIKO, &port, "box", secret, mode, &commands],
        None,
        &[],
    )
}

/// Runs the commands with paramiko and checks every answer.
fn paramiko_runs_them_all(gw: &Gateway, mode: &str, secret: &str) {
    let (sent, want) = commands();
    let out = paramiko(gw, mode, secret, &sent);
    assert!(out.status.success(), "paramiko ({mode}): {out:?}");
    let got: Vec<(String, i64, String, String)> =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"));
    assert_eq!(got.len(), want.len(), "{got:?}");
    for ((command, status, stdout, stderr), (w_command, w_status, w_stdout, w_stderr)) in
        got.iter().zip(&want)
    {
        assert_eq!(command, w_command);
        assert_eq!(status, w_status, "{mode}: {command}: {got:?}");
        assert_eq!(stdout, w_stdout, "{mode}: {command}");
        assert_eq!(stderr, w_stderr, "{mode}: {command}");
    }
}

/// OpenSSH with a key file only (no password, no agent, no other key).
fn ssh_with_key(gw: &Gateway, key: &Path, command: &str) -> Output {
    let port = gw.ssh_port.to_string();
    let key = key.display().to_string();
    run(
        "ssh",
        &[
            "-p",
            &port,
            "-i",
            &key,
            "-o",
            "IdentitiesOnly=yes",
            "-o",
            "PubkeyAuthentication=yes",
            "-o",
            "PasswordAuthentication=no",
            "-o",
            "KbdInteractiveAuthentication=no",
            "-o",
            "BatchMode=yes",
            "-o",
            "IdentityAgent=none",
            "-o",
            "StrictHostKeyChecking=no",
            "-o",
            "UserKnownHostsFile=/dev/null",
            "-o",
            "LogLevel=ERROR",
            "-o",
            "ConnectTimeout=10",
            "box@127.0.0.1",
            command,
        ],
        None,
        &[],
    )
}

fn keygen(path: &Path) {
    let out = run(
        "ssh-keygen",
        &[
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "robot@ci",
            "-f",
            &path.display().to_string(),
        ],
        None,
        &[],
    );
    assert!(out.status.success(), "ssh-keygen: {out:?}");
}

/// The exec entries of one identity.
fn exec_entries<'a>(rows: &'a [Value], identity: &str) -> Vec<&'a Value> {
    rows.iter()
        .filter(|e| e["identity"] == identity && e["class"] == "exec")
        .collect()
}

#[test]
fn paramiko_runs_commands_with_a_token_and_with_a_registered_key_until_it_is_removed() {
    let sshd = Sshd::start();
    let policy = format!(
        "{}[[mask]]\nname = \"pan\"\ndetect = \"pan\"\nstyle = \"keep-last-4\"\n",
        sshd.connection("box", "")
    );
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let token = gw.token("etl", &["batch"]);

    // A token as the password: six commands on one connection.
    paramiko_runs_them_all(&gw, "password", &token);

    // A key registered to an identity.
    let key = gw.dir.path().join("robot_key");
    keygen(&key);
    let public = key.with_extension("pub");
    let added = gw.cli(&[
        "key",
        "add",
        "--identity",
        "robot",
        "--group",
        "batch",
        "--public-key",
        &public.display().to_string(),
    ]);
    let key_id = added.trim().to_owned();
    assert!(key_id.starts_with("key_"), "{added:?}");
    paramiko_runs_them_all(&gw, "key", &key.display().to_string());

    // OpenSSH with the same key.
    let out = ssh_with_key(&gw, &key, "echo via-key; id -un");
    assert!(out.status.success(), "ssh -i: {out:?}");
    assert_eq!(text(&out.stdout), "via-key\nroot\n", "{out:?}");

    // A key nobody registered is refused before it signs anything.
    let stranger = gw.dir.path().join("stranger_key");
    keygen(&stranger);
    let out = ssh_with_key(&gw, &stranger, "true");
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    assert!(text(&out.stderr).contains("Permission denied"), "{out:?}");

    let rows = gw
        .audit_until(|r| exec_entries(r, "etl").len() >= 6 && exec_entries(r, "robot").len() >= 7);
    for identity in ["etl", "robot"] {
        let entries = exec_entries(&rows, identity);
        let by_statement = |s: &str| {
            entries
                .iter()
                .find(|e| e["statement"] == s)
                .unwrap_or_else(|| panic!("{identity}: no entry for {s:?}: {entries:#?}"))
        };
        let ok = by_statement("echo one; echo two");
        assert_eq!(ok["status"], "ok", "{ok:#?}");
        assert_eq!(ok["tag"], "exit 0, 8 bytes out, 0 bytes err", "{ok:#?}");
        let failed = by_statement("echo oops >&2; exit 7");
        assert_eq!(failed["status"], "error", "{failed:#?}");
        assert_eq!(failed["sqlstate"], "exit 7", "{failed:#?}");
        assert!(
            failed["error"]
                .as_str()
                .unwrap_or_default()
                .contains("oops"),
            "{failed:#?}"
        );
        assert_eq!(by_statement("false")["sqlstate"], "exit 1");
        // The card number is masked in the output and in the stored command line.
        let masked = by_statement("printf '%s\\n' ************1111");
        assert_eq!(
            masked["masked"],
            serde_json::json!({"output": 1, "statement": 1}),
            "{masked:#?}"
        );
        // One connection: all the commands in one session.
        let sessions: std::collections::BTreeSet<&str> = entries
            .iter()
            .filter(|e| e["statement"] != "echo via-key; id -un")
            .filter_map(|e| e["session"].as_str())
            .collect();
        assert_eq!(sessions.len(), 1, "{identity}: {entries:#?}");
    }
    assert!(!serde_json::to_string(&rows)
        .unwrap()
        .contains("4111111111111111"));
    let via_key = with_statement(&rows, "echo via-key");
    assert_eq!(via_key.len(), 1, "{rows:#?}");
    assert_eq!(via_key[0]["identity"], "robot");
    assert_eq!(via_key[0]["groups"], serde_json::json!(["batch"]));

    // The sessions opened with the key name it as their credential.
    let sessions = gw.sessions_until(|s| {
        s.iter()
            .filter(|r| r["identity"] == "robot" && r["ended_at"].is_string())
            .count()
            >= 2
    });
    let robot: Vec<&Value> = sessions
        .iter()
        .filter(|r| r["identity"] == "robot")
        .collect();
    assert_eq!(robot.len(), 2, "paramiko and OpenSSH: {sessions:#?}");
    for s in &robot {
        assert_eq!(s["token_id"], key_id.as_str(), "{s:#?}");
        assert_eq!(s["protocol"], "ssh");
        assert_eq!(s["connection"], "box");
    }
    assert!(
        // OpenSSH's session: its command, and an entry per `env` request it sent (LANG
        // and LC_* when the test's environment has them).
        robot.iter().any(|s| s["commands"] == 6)
            && robot
                .iter()
                .any(|s| s["commands"].as_i64().is_some_and(|n| (1..=4).contains(&n))),
        "{robot:#?}"
    );

    // Removed: the key no longer opens anything, and each attempt is a refused session.
    let removed = gw.cli(&["key", "remove", &key_id]);
    assert!(removed.contains(&key_id), "{removed}");
    let out = ssh_with_key(&gw, &key, "echo should-not-run");
    assert_eq!(out.status.code(), Some(255), "{out:?}");
    assert!(text(&out.stderr).contains("Permission denied"), "{out:?}");
    assert!(!text(&out.stdout).contains("should-not-run"));
    let (sent, _) = commands();
    let out = paramiko(&gw, "key", &key.display().to_string(), &sent);
    assert_eq!(
        out.status.code(),
        Some(5),
        "paramiko with a removed key: {out:?}"
    );
    assert!(
        text(&out.stderr).contains("authentication failed"),
        "{out:?}"
    );
    // The token still works.
    paramiko_runs_them_all(&gw, "password", &token);

    let refused = gw.sessions_until(|s| {
        s.iter()
            .filter(|r| {
                r["identity"] == "robot"
                    && r["end_reason"]
                        .as_str()
                        .is_some_and(|e| e.starts_with("refused:"))
            })
            .count()
            >= 2
    });
    let refused: Vec<&Value> = refused
        .iter()
        .filter(|r| {
            r["end_reason"]
                .as_str()
                .is_some_and(|e| e.starts_with("refused:"))
        })
        .collect();
    assert_eq!(
        refused.len(),
        2,
        "OpenSSH and paramiko after the removal: {refused:#?}"
    );
    for r in &refused {
        assert_eq!(r["identity"], "robot", "{r:#?}");
        assert_eq!(r["connection"], "box");
        assert_eq!(r["protocol"], "ssh");
        assert_eq!(r["commands"], 0);
        let reason = r["end_reason"].as_str().unwrap();
        assert!(
            reason.contains(&key_id) && reason.contains("revoked"),
            "{r:#?}"
        );
    }
    let listed = gw.cli(&[
        "sessions",
        "list",
        "--refused",
        "--identity",
        "robot",
        "--json",
    ]);
    let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
    assert_eq!(listed.len(), 2, "{listed:#?}");
    let audit = gw.audit();
    assert!(
        with_statement(&audit, "should-not-run").is_empty(),
        "a refused key runs nothing"
    );
}
