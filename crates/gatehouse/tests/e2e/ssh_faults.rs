//! The SSH wire when things go wrong or around it: a token revoked under a running command ends
//! that session (and only that one) within a second; a client killed in the middle of a 200 MiB
//! upload leaves its file's entry `interrupted` and no session open; and on a connection that
//! allows it, a TCP tunnel (`-W`, `-L`) carries bytes to a server and back and is audited with
//! its destination and its byte counts.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::ssh_support::{random_file, ssh, text, Sshd, SSH_OPTS};
use crate::support::{free_port, run, with_statement, Gateway};

/// Starts an OpenSSH program under sshpass with `token` as the password, in a process group of
/// its own (so sshpass, the program and its ssh can be killed together), stdout piped.
fn spawn_with_token(program: &str, args: &[&str], token: &str) -> Child {
    Command::new("sshpass")
        .arg("-e")
        .arg(program)
        .args(args)
        .env("SSHPASS", token)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .expect("spawn sshpass")
}

/// Sends `signal` to every process of the child's group.
fn kill_group(child: &Child, signal: &str) {
    let group = format!("-{}", child.id());
    let _ = run("kill", &[signal, "--", &group], None, &[]);
}

/// Waits for a child to exit, up to `limit`; kills its group and fails if it does not.
fn wait_exit(child: &mut Child, limit: Duration, what: &str) -> std::process::ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() > deadline {
            kill_group(child, "-KILL");
            let _ = child.wait();
            panic!("{what} still running after {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn rest_of(stream: Option<impl Read>) -> String {
    let mut s = String::new();
    if let Some(mut r) = stream {
        let _ = r.read_to_string(&mut s);
    }
    s
}

fn token_id(gw: &Gateway, identity: &str) -> String {
    let tokens: Vec<Value> = serde_json::from_str(&gw.cli(&["token", "list", "--json"])).unwrap();
    tokens
        .iter()
        .find(|t| t["identity"] == identity)
        .and_then(|t| t["id"].as_str())
        .unwrap_or_else(|| panic!("no token for {identity}: {tokens:#?}"))
        .to_owned()
}

/// The sessions of an identity.
fn sessions_of<'a>(sessions: &'a [Value], identity: &str) -> Vec<&'a Value> {
    sessions
        .iter()
        .filter(|s| s["identity"] == identity)
        .collect()
}

#[test]
fn revoking_a_token_ends_its_live_ssh_session_within_a_second_and_only_that_one() {
    let sshd = Sshd::start();
    let gw = Gateway::start_with_policy(&[], &sshd.connection("box", ""), &[]);
    let admin = gw.token("root-admin", &["admin"]);
    let victim = gw.token("leaked-job", &["batch"]);
    let other = gw.token("steady-job", &["batch"]);
    let port = gw.ssh_port.to_string();
    let mut args: Vec<&str> = vec!["-p", &port];
    args.extend(SSH_OPTS);

    let mut live = spawn_with_token(
        "ssh",
        &[&args[..], &["box@127.0.0.1", "echo started; sleep 30"]].concat(),
        &victim,
    );
    let mut bystander = spawn_with_token(
        "ssh",
        &[
            &args[..],
            &["box@127.0.0.1", "echo waiting; sleep 3; echo survived"],
        ]
        .concat(),
        &other,
    );
    // Both commands run on the host before the revocation.
    let mut live_out = BufReader::new(live.stdout.take().unwrap());
    let mut line = String::new();
    live_out.read_line(&mut line).unwrap();
    assert_eq!(line, "started\n");
    let mut bystander_out = BufReader::new(bystander.stdout.take().unwrap());
    let mut line = String::new();
    bystander_out.read_line(&mut line).unwrap();
    assert_eq!(line, "waiting\n");

    let id = token_id(&gw, "leaked-job");
    let revoked_at = Instant::now();
    let out = gw.cli_as(&admin, &["token", "revoke", &id]);
    assert!(out.status.success(), "revoke: {out:?}");
    let status = wait_exit(&mut live, Duration::from_secs(5), "the revoked session");
    let elapsed = revoked_at.elapsed();
    assert!(
        elapsed < Duration::from_millis(1500),
        "the session outlived its token by {elapsed:?}"
    );
    assert_eq!(status.code(), Some(255), "{status:?}");
    let said = rest_of(live.stderr.take());
    assert!(
        said.contains("token revoked"),
        "the client is told why: {said}"
    );

    // The other token's command runs to its end, and the other token still logs in.
    let status = wait_exit(&mut bystander, Duration::from_secs(10), "the bystander");
    assert!(status.success(), "{status:?}");
    assert_eq!(rest_of(Some(bystander_out)), "survived\n");
    let again = ssh(&gw, "box", &other, &["echo still welcome"], None);
    assert_eq!(text(&again.stdout), "still welcome\n", "{again:?}");
    let refused = ssh(&gw, "box", &victim, &["echo should-not-run"], None);
    assert!(!refused.status.success(), "{refused:?}");
    assert!(
        text(&refused.stderr).contains("Permission denied"),
        "{refused:?}"
    );

    let sessions = gw.sessions_until(|s| {
        sessions_of(s, "leaked-job")
            .iter()
            .filter(|r| r["ended_at"].is_string())
            .count()
            >= 2
    });
    let victims = sessions_of(&sessions, "leaked-job");
    assert_eq!(
        victims.len(),
        2,
        "the live one and the refused retry: {victims:#?}"
    );
    assert_eq!(victims[0]["end_reason"], "token revoked", "{victims:#?}");
    assert_eq!(victims[0]["token_id"], id.as_str());
    assert!(
        victims[1]["end_reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("refused:")),
        "{victims:#?}"
    );
    for s in sessions_of(&sessions, "steady-job") {
        assert_ne!(s["end_reason"], "token revoked", "{s:#?}");
    }

    // The cut command's entry is closed as an error that claims no exit status (the host
    // never sent one).
    let rows = gw.audit_until(|r| {
        with_statement(r, "sleep 30")
            .first()
            .is_some_and(|e| e["status"].is_string())
    });
    let cut = with_statement(&rows, "echo started; sleep 30");
    assert_eq!(cut.len(), 1, "{rows:#?}");
    assert_eq!(cut[0]["status"], "error", "{:#?}", cut[0]);
    assert_eq!(cut[0]["sqlstate"], "no exit status", "{:#?}", cut[0]);
    assert_eq!(
        with_statement(&rows, "echo waiting; sleep 3; echo survived")[0]["tag"],
        "exit 0, 17 bytes out, 0 bytes err"
    );
    assert!(with_statement(&rows, "should-not-run").is_empty());
}

#[test]
fn a_client_killed_mid_upload_leaves_its_file_interrupted_and_the_gateway_serving() {
    let sshd = Sshd::start();
    let gw = Gateway::start_with_policy(&[], &sshd.connection("box", ""), &[]);
    let token = gw.token("uploader", &["batch"]);
    let port = gw.ssh_port.to_string();
    let local = sshd.path("big.bin");
    random_file(&local, 200);
    let full = std::fs::metadata(&local).unwrap().len();
    let remote = sshd.path("partial.bin");
    let target = format!("box@127.0.0.1:{}", remote.display());
    let local_s = local.display().to_string();
    let mut args: Vec<&str> = vec!["-q", "-P", &port];
    args.extend(SSH_OPTS);
    args.extend([local_s.as_str(), target.as_str()]);

    let started = Instant::now();
    let mut scp = spawn_with_token("scp", &args, &token);
    // Killed once the upload is under way (the file exists on the host), half a second in at
    // the earliest.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let size = std::fs::metadata(&remote).map(|m| m.len()).unwrap_or(0);
        if size > 0 && started.elapsed() >= Duration::from_millis(500) {
            break;
        }
        assert!(
            scp.try_wait().unwrap().is_none(),
            "scp ended before it could be killed: {}",
            rest_of(scp.stderr.take())
        );
        assert!(Instant::now() < deadline, "the upload never started");
        std::thread::sleep(Duration::from_millis(10));
    }
    kill_group(&scp, "-KILL");
    let status = scp.wait().unwrap();
    assert!(!status.success(), "{status:?}");

    // The gateway goes on serving.
    let ok = ssh(&gw, "box", &token, &["echo ok"], None);
    assert_eq!(text(&ok.stdout), "ok\n", "{ok:?}");

    let open = format!("sftp open {} write", remote.display());
    let rows = gw.audit_until(|r| {
        with_statement(r, &open)
            .first()
            .is_some_and(|e| e["status"].is_string())
    });
    let written = std::fs::metadata(&remote).unwrap().len();
    assert!(written < full, "the upload was cut: {written} of {full}");
    let entry = with_statement(&rows, &open);
    assert_eq!(entry.len(), 1, "{rows:#?}");
    let entry = entry[0];
    assert_eq!(entry["class"], "sftp");
    assert_eq!(entry["status"], "error", "{entry:#?}");
    assert_eq!(entry["sqlstate"], "interrupted", "{entry:#?}");
    let error = entry["error"].as_str().unwrap_or_default();
    let bytes: u64 = error
        .strip_prefix("interrupted after writing ")
        .and_then(|r| r.strip_suffix(" bytes"))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("{entry:#?}"));
    assert!(
        bytes > 0 && bytes <= written,
        "{bytes} bytes acknowledged, {written} on disk"
    );

    // No session is left open: the killed one ended too.
    let sessions = gw.sessions_until(|s| s.iter().all(|r| r["ended_at"].is_string()));
    assert_eq!(sessions.len(), 2, "{sessions:#?}");
    for s in &sessions {
        assert!(s["ended_at"].is_string(), "a session stayed open: {s:#?}");
    }
    let listed = gw.cli(&["sessions", "list", "--open", "--json"]);
    let listed: Vec<Value> = serde_json::from_str(&listed).unwrap();
    assert!(listed.is_empty(), "{listed:#?}");
    let sftp = with_statement(&rows, "sftp session");
    assert_eq!(sftp.len(), 1, "{rows:#?}");
    assert!(sftp[0]["status"].is_string(), "{:#?}", sftp[0]);
}

/// A TCP echo server on a free loopback port, answering `connections` connections (each until
/// its client closes its side).
fn echo_server(connections: usize) -> (u16, std::thread::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        for _ in 0..connections {
            let Ok((mut stream, _)) = listener.accept() else {
                return;
            };
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                loop {
                    match stream.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if stream.write_all(&buf[..n]).is_err() {
                                break;
                            }
                        }
                    }
                }
            });
        }
    });
    (port, handle)
}

/// `ssh -N -L LOCAL:to` through the gateway to connection `fwd`, listening; returns the ssh
/// (in its own process group) and the local port.
fn local_forward(gw: &Gateway, token: &str, to: &str) -> (Child, u16) {
    let local = free_port();
    let spec = format!("{local}:{to}");
    let port = gw.ssh_port.to_string();
    let mut args: Vec<&str> = vec![
        "-N",
        "-o",
        "ExitOnForwardFailure=yes",
        "-L",
        &spec,
        "-p",
        &port,
    ];
    args.extend(SSH_OPTS);
    args.push("fwd@127.0.0.1");
    let mut forward = spawn_with_token("ssh", &args, token);
    let deadline = Instant::now() + Duration::from_secs(15);
    // Listening once a connection is accepted (closed at once: the next one is the test's).
    while TcpStream::connect(("127.0.0.1", local)).is_err() {
        if let Some(status) = forward.try_wait().unwrap() {
            panic!(
                "ssh -L exited: {status:?} {}",
                rest_of(forward.stderr.take())
            );
        }
        assert!(Instant::now() < deadline, "ssh -L never listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    (forward, local)
}

/// Sends `message` through a local port, closes the sending side and reads the answer to its end.
fn echo_through(local: u16, message: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(("127.0.0.1", local)).unwrap();
    stream.write_all(message).unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut back = Vec::new();
    stream.read_to_end(&mut back).unwrap();
    back
}

/// The connection section of a fronted sshd that allows tunnels (`fwd`) and one that does not
/// (`box`).
fn tunnel_policy(sshd: &Sshd) -> String {
    format!(
        "{}{}",
        sshd.connection("fwd", "port_forwarding = true"),
        sshd.connection("box", "")
    )
}

/// The tag of a closed tunnel that carried `n` bytes each way.
fn closed(to: &str, n: usize) -> String {
    format!("tunnel to {to} closed, {n} bytes sent, {n} bytes received")
}

#[test]
fn tunnels_carry_bytes_where_port_forwarding_is_allowed_and_are_audited() {
    let sshd = Sshd::start();
    let gw = Gateway::start_with_policy(&[], &tunnel_policy(&sshd), &[]);
    let token = gw.token("tunneler", &["batch"]);
    // The -W tunnel, the probe of ssh -L's listener and the -L tunnel.
    let (echo_port, echo) = echo_server(3);
    let to = format!("127.0.0.1:{echo_port}");

    // `-W`: the client's stdin and stdout are the tunnel.
    let out = ssh(&gw, "fwd", &token, &["-W", &to], Some("hello\n"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(text(&out.stdout), "hello\n", "{out:?}");

    // Not on a connection without port forwarding.
    let out = ssh(&gw, "box", &token, &["-W", &to], Some("hello\n"));
    assert!(!out.status.success(), "{out:?}");
    assert!(text(&out.stdout).is_empty(), "{out:?}");

    // `-L`: a local port forwarded through the gateway to the echo server.
    let (mut forward, local) = local_forward(&gw, &token, &to);
    let message = b"through a local forward\n";
    assert_eq!(echo_through(local, message), message);
    kill_group(&forward, "-TERM");
    wait_exit(&mut forward, Duration::from_secs(10), "ssh -L");
    echo.join().unwrap();

    let rows = gw.audit_until(|r| {
        r.iter()
            .filter(|e| e["class"] == "tunnel")
            .all(|e| e["status"].is_string())
            && r.iter().filter(|e| e["class"] == "tunnel").count() >= 3
    });
    let tunnels: Vec<&Value> = rows.iter().filter(|e| e["class"] == "tunnel").collect();
    assert_eq!(tunnels.len(), 3, "{rows:#?}");
    for (tunnel, bytes) in tunnels.iter().zip([6, 0, message.len()]) {
        assert!(
            tunnel["statement"]
                .as_str()
                .is_some_and(|s| s.starts_with(&format!("tunnel to {to} from 127.0.0.1:"))),
            "{tunnel:#?}"
        );
        assert_eq!(tunnel["connection"], "fwd");
        assert_eq!(tunnel["identity"], "tunneler");
        assert_eq!(tunnel["status"], "ok", "{tunnel:#?}");
        assert_eq!(tunnel["tag"], closed(&to, bytes).as_str(), "{tunnel:#?}");
    }
    assert!(
        rows.iter().all(|e| e["connection"] != "box"),
        "the refused tunnel opened nothing: {rows:#?}"
    );

    // The refused tunnel is noted in its session's recording.
    let sessions = gw.sessions_until(|s| s.iter().all(|r| r["ended_at"].is_string()));
    let boxed: Vec<&Value> = sessions
        .iter()
        .filter(|s| s["connection"] == "box")
        .collect();
    assert_eq!(boxed.len(), 1, "{sessions:#?}");
    let recording = gw.dir.path().join(format!(
        "var/recordings/{}.jsonl",
        boxed[0]["id"].as_str().unwrap()
    ));
    let recording = std::fs::read_to_string(&recording).unwrap();
    assert!(
        recording.contains(&format!("tunnel to {to} refused: port forwarding is off")),
        "{recording}"
    );
}

#[test]
fn a_local_forwards_tunnel_is_closed_in_the_audit_when_its_tcp_connection_closes() {
    let sshd = Sshd::start();
    let gw = Gateway::start_with_policy(&[], &tunnel_policy(&sshd), &[]);
    let token = gw.token("tunneler", &["batch"]);
    let (echo_port, echo) = echo_server(2);
    let to = format!("127.0.0.1:{echo_port}");
    let (mut forward, local) = local_forward(&gw, &token, &to);
    let message = b"through a local forward\n";
    assert_eq!(echo_through(local, message), message);

    // ssh -L stays connected; the tunnel's TCP connection is over at both ends.
    let rows = gw.audit_until(|r| {
        r.iter()
            .filter(|e| e["class"] == "tunnel")
            .all(|e| e["status"].is_string())
    });
    let still_connected = forward.try_wait().unwrap().is_none();
    kill_group(&forward, "-TERM");
    wait_exit(&mut forward, Duration::from_secs(10), "ssh -L");
    echo.join().unwrap();
    assert!(still_connected, "ssh -L ended on its own");
    let tunnels: Vec<&Value> = rows.iter().filter(|e| e["class"] == "tunnel").collect();
    assert_eq!(
        tunnels.len(),
        2,
        "the listener probe and the echo: {rows:#?}"
    );
    assert_eq!(tunnels[0]["tag"], closed(&to, 0).as_str(), "{tunnels:#?}");
    assert_eq!(
        tunnels[1]["tag"],
        closed(&to, message.len()).as_str(),
        "{tunnels:#?}"
    );
}
