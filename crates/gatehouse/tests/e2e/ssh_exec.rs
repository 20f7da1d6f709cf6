//! `ssh CONNECTION@gateway 'command'` against a real OpenSSH sshd: exit codes and signals come
//! back as the host gave them, every exec is an audit entry with its outcome, card numbers are
//! masked in output, and the refusals — a wrong token, a forbidden connection, a host that is
//! down or whose key changed, a denied or held command, a tunnel — each tell the client why
//! while the gateway goes on serving.

use std::time::Duration;

use crate::ssh_support::{ssh, text, Sshd};
use crate::support::{with_statement, Gateway};

const POLICY: &str = r#"
[[rule]]
name = "sudo-needs-approval"
when = { command = "^sudo\\b" }
action = "review"
approvers = ["dba"]
timeout = "30s"

[[rule]]
name = "no-shutdown"
when = { command = "\\b(shutdown|reboot)\\b" }
action = "deny"
message = "the platform team reboots hosts"

[[mask]]
name = "pan"
detect = "pan"
style = "keep-last-4"
"#;

#[test]
fn exec_commands_keep_their_exit_codes_and_are_audited_with_their_outcome() {
    let sshd = Sshd::start();
    let policy = format!("{}{POLICY}", sshd.connection("box", ""));
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let alice = gw.token("alice", &["batch"]);

    let out = ssh(
        &gw,
        "box",
        &alice,
        &["echo hello; echo oops >&2; exit 3"],
        None,
    );
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    assert_eq!(text(&out.stdout), "hello\n");
    assert!(text(&out.stderr).contains("oops"), "{out:?}");

    // Output goes through the detectors: a card number printed by the host is masked.
    let out = ssh(
        &gw,
        "box",
        &alice,
        &["printf '%s\\n' 4111111111111111"],
        None,
    );
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "************1111\n");

    // stdin reaches the command; the command's stdout comes back whole.
    let out = ssh(&gw, "box", &alice, &["wc -l"], Some("a\nb\nc\n"));
    assert_eq!(text(&out.stdout).trim(), "3", "{out:?}");

    let rows = gw.audit_until(|r| {
        with_statement(r, "exit 3")
            .first()
            .is_some_and(|e| e["status"] == "error")
            && with_statement(r, "wc -l")
                .first()
                .is_some_and(|e| e["status"] == "ok")
    });
    let failed = with_statement(&rows, "echo hello; echo oops >&2; exit 3");
    assert_eq!(failed.len(), 1, "{rows:#?}");
    assert_eq!(failed[0]["identity"], "alice");
    assert_eq!(failed[0]["protocol"], "ssh");
    assert_eq!(failed[0]["connection"], "box");
    assert_eq!(failed[0]["class"], "exec");
    assert_eq!(failed[0]["sqlstate"], "exit 3", "{:#?}", failed[0]);
    assert!(
        failed[0]["error"].as_str().unwrap_or("").contains("oops"),
        "{:#?}",
        failed[0]
    );
    let masked = with_statement(&rows, "printf");
    assert_eq!(masked[0]["status"], "ok", "{:#?}", masked[0]);
    assert!(
        masked[0]["masked"].to_string().contains("output"),
        "the masking log names the output: {:#?}",
        masked[0]
    );
}

#[test]
fn refusals_tell_the_client_why_and_the_gateway_keeps_serving() {
    let sshd = Sshd::start();
    let down = crate::support::free_port();
    let mut policy = format!("{}{POLICY}", sshd.connection("box", ""));
    // A host that is not listening, and one whose pinned key is not the key it shows.
    policy.push_str(&sshd.connection("gone", "").replace(
        &format!("127.0.0.1:{}", sshd.port),
        &format!("127.0.0.1:{down}"),
    ));
    let other_key = Sshd::start();
    policy.push_str(
        &sshd
            .connection("moved", "")
            .replace(&sshd.host_pub, &other_key.host_pub),
    );
    policy.push_str(
        &sshd
            .connection("admins-only", "")
            .replace("groups = [\"dba\", \"batch\"]", "groups = [\"admin\"]"),
    );
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let alice = gw.token("alice", &["batch"]);

    let bad = ssh(&gw, "box", "gh_not_a_token", &["true"], None);
    assert!(!bad.status.success());
    assert!(text(&bad.stderr).contains("Permission denied"), "{bad:?}");
    let forbidden = ssh(&gw, "admins-only", &alice, &["true"], None);
    assert!(!forbidden.status.success());
    assert!(
        text(&forbidden.stderr).contains("Permission denied"),
        "{forbidden:?}"
    );

    let gone = ssh(&gw, "gone", &alice, &["true"], None);
    assert_eq!(gone.status.code(), Some(255), "{gone:?}");
    assert!(
        text(&gone.stderr).contains("connection \"gone\" is unavailable"),
        "{gone:?}"
    );
    let moved = ssh(&gw, "moved", &alice, &["true"], None);
    assert_eq!(moved.status.code(), Some(255), "{moved:?}");
    assert!(text(&moved.stderr).contains("host key"), "{moved:?}");
    assert!(text(&moved.stderr).contains("changed"), "{moved:?}");

    let denied = ssh(&gw, "box", &alice, &["shutdown -h now"], None);
    assert_eq!(
        denied.status.code(),
        Some(gatehouse_ssh::REFUSED_EXIT as i32),
        "{denied:?}"
    );
    assert!(
        text(&denied.stderr).contains("the platform team reboots hosts"),
        "{denied:?}"
    );

    // Tunnels are refused unless the connection allows them.
    let tunnel = ssh(&gw, "box", &alice, &["-W", "127.0.0.1:5432"], None);
    assert!(!tunnel.status.success(), "{tunnel:?}");
    // OpenSSH says "administratively prohibited" when verbose, "stdio forwarding failed" else.
    let said = text(&tunnel.stderr);
    assert!(
        said.contains("administratively prohibited") || said.contains("forwarding failed"),
        "{tunnel:?}"
    );

    // After all that, the gateway still serves.
    let ok = ssh(&gw, "box", &alice, &["echo still here"], None);
    assert_eq!(text(&ok.stdout), "still here\n", "{ok:?}");

    let rows = gw.audit_until(|r| !with_statement(r, "shutdown -h now").is_empty());
    let refused = with_statement(&rows, "shutdown -h now");
    assert!(
        refused
            .iter()
            .any(|e| e["verdict"] == "deny" && e["status"] == "not-run"),
        "{rows:#?}"
    );
    let unavailable = with_statement(&rows, "true");
    assert!(
        unavailable
            .iter()
            .any(|e| e["connection"] == "gone" && e["status"] == "not-run"),
        "{rows:#?}"
    );
}

#[test]
fn a_sudo_exec_waits_for_approval_with_the_request_id_on_stderr() {
    let sshd = Sshd::start();
    let policy = format!("{}{POLICY}", sshd.connection("box", ""));
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let alice = gw.token("alice", &["batch"]);
    let bob = gw.token("bob", &["dba"]);
    // sudo is not installed in every image: the approved command only has to reach the host.
    let command = "sudo -n true 2>/dev/null; echo approved-and-ran";

    std::thread::scope(|s| {
        let held = s.spawn(|| ssh(&gw, "box", &alice, &[command], None));
        let id = gw.wait_for_request(&bob);
        std::thread::sleep(Duration::from_millis(200));
        let out = gw.cli_as(&bob, &["approve", &id, "--reason", "patch window"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let out = held.join().unwrap();
        assert!(out.status.success(), "{out:?}");
        assert!(text(&out.stdout).contains("approved-and-ran"), "{out:?}");
        assert!(
            text(&out.stderr).contains(&id),
            "the client saw the request id: {out:?}"
        );
    });

    // Denied by the approver: the command never runs.
    std::thread::scope(|s| {
        let held = s.spawn(|| ssh(&gw, "box", &alice, &["sudo touch /tmp/never"], None));
        let id = gw.wait_for_request(&bob);
        let out = gw.cli_as(&bob, &["deny", &id, "--reason", "not today"]);
        assert!(out.status.success(), "{}", text(&out.stderr));
        let out = held.join().unwrap();
        assert_eq!(
            out.status.code(),
            Some(gatehouse_ssh::REFUSED_EXIT as i32),
            "{out:?}"
        );
        assert!(text(&out.stderr).contains(&id), "{out:?}");
    });

    // Both entries reach the store from the journal a few milliseconds behind the clients.
    let rows = gw.audit_until(|r| {
        with_statement(r, "approved-and-ran")
            .first()
            .is_some_and(|e| e["status"] == "ok")
            && with_statement(r, "sudo touch /tmp/never")
                .first()
                .is_some_and(|e| e["status"].is_string())
    });
    let approved = with_statement(&rows, "approved-and-ran");
    assert_eq!(approved[0]["verdict"], "approved", "{rows:#?}");
    assert_eq!(approved[0]["rule"], "sudo-needs-approval");
    let rejected = with_statement(&rows, "sudo touch /tmp/never");
    assert_eq!(rejected[0]["verdict"], "rejected", "{rows:#?}");
}
