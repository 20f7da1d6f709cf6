//! `gatehouse replay` of an SSH session's terminals: the timeline names each channel's cast,
//! `--play` writes a cast's output with its timing (or at once with `--instant`), and `audit
//! verify` checks the casts' seals. The session is written through the store's own recording
//! and audit writer, as the SSH wire's session would write it; the CLI is the real binary.

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use gatehouse_audit::FileRecordings;
use gatehouse_core::events::{TerminalEvent, TerminalEventKind, TerminalStart};
use gatehouse_core::store::{AuditSink, RecordingEvent, RecordingSink};
use gatehouse_core::{Protocol, SessionEnd, SessionId, SessionInfo, TokenId};

const SESSION: &str = "5e551000000000000000000000c0ffee";

fn gatehouse(config: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .expect("run gatehouse")
}

/// An SSH session with a shell on channel 0 (two lines, 300 ms apart) and `uptime` on
/// channel 1, closed as `Session::close` closes one.
async fn record(dir: &Path, state: &str) {
    let store = gatehouse_audit::testing::open_state(state, &dir.join("var")).unwrap();
    let writer = store.start_writer().unwrap();
    let recordings = FileRecordings::start(&dir.join("var/recordings")).unwrap();
    let id = SessionId(Arc::from(SESSION));
    writer
        .session_opened(&SessionInfo {
            id: id.clone(),
            identity: Arc::from("ops"),
            groups: Arc::from(vec!["ops".to_owned()]),
            token_id: TokenId("tok_1".into()),
            connection: Arc::from("web1"),
            protocol: Protocol::Ssh,
            client_addr: "127.0.0.1:5000".parse().unwrap(),
            claimed_user: "web1".into(),
            settings: Vec::new(),
            started_at: SystemTime::now(),
        })
        .await
        .unwrap();
    let t0 = Instant::now();
    let at = |ms: u64| t0 + Duration::from_millis(ms);
    let event = |channel: u32, at: Instant, kind: TerminalEventKind| {
        recordings.terminal(&id, TerminalEvent { channel, at, kind });
    };
    let start = |term: Option<&str>, command: Option<&str>| {
        TerminalEventKind::Start(TerminalStart {
            width: if term.is_some() { 80 } else { 0 },
            height: if term.is_some() { 24 } else { 0 },
            term: term.map(Into::into),
            command: command.map(Into::into),
        })
    };
    let out = |s: &'static str| TerminalEventKind::Output(Bytes::from_static(s.as_bytes()));
    event(0, at(0), start(Some("xterm-256color"), None));
    event(0, at(0), out("hello\r\n"));
    event(0, at(300), out("world\r\n"));
    event(1, at(350), start(None, Some("uptime")));
    event(1, at(400), out("up 3 days\n"));
    let status = Some("exit-status 0".to_owned());
    event(1, at(400), TerminalEventKind::End { status });
    recordings.append(
        &id,
        RecordingEvent::End {
            at: gatehouse_core::time::display(SystemTime::now()),
            reason: "client closed".into(),
            bytes_from_client: 10,
            bytes_from_server: 30,
        },
    );
    recordings.close(&id);
    let recording_sha256 = recordings.seal(&id);
    writer
        .session_closed(&SessionEnd {
            id,
            ended_at: SystemTime::now(),
            reason: "client closed".into(),
            bytes_from_client: 10,
            bytes_from_server: 30,
            recording_sha256,
        })
        .await
        .unwrap();
    writer.flush().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_lists_an_ssh_sessions_terminals_and_plays_them() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gatehouse.toml");
    let state = crate::support::test_state(dir.path());
    std::fs::write(
        &config,
        format!("[gateway]\nstate = {state:?}\nrecordings = \"var/recordings\"\n"),
    )
    .unwrap();
    let sqlite_state = format!("sqlite:{}", dir.path().join("var/gatehouse.db").display());
    let opened = if state.starts_with("sqlite:") {
        sqlite_state
    } else {
        state.clone()
    };
    record(dir.path(), &opened).await;

    let timeline = gatehouse(&config, &["replay", &SESSION[..10]]);
    assert!(timeline.status.success(), "{timeline:?}");
    let timeline = String::from_utf8(timeline.stdout).unwrap();
    for expected in [
        &format!("ch0     shell (xterm-256color, 80x24) -> {SESSION}.ch0.cast"),
        &format!("ch1     exec uptime (no terminal) -> {SESSION}.ch1.cast"),
        "ch1     exit-status 0 (cast sealed: ",
        "ch0     ended (cast sealed: ",
        "--play [--channel N]",
    ] {
        assert!(
            timeline.contains(expected),
            "{expected:?} not in:\n{timeline}"
        );
    }

    let one = gatehouse(
        &config,
        &["replay", SESSION, "--play", "--instant", "--channel", "0"],
    );
    assert!(one.status.success(), "{one:?}");
    assert_eq!(String::from_utf8_lossy(&one.stdout), "hello\r\nworld\r\n");
    let said = String::from_utf8_lossy(&one.stderr);
    assert!(
        said.contains("channel 0: shell (80x24)") && said.contains("matches its seal"),
        "{said}"
    );

    // Both channels, in order, with their pauses (300 ms at speed 3).
    let started = Instant::now();
    let all = gatehouse(&config, &["replay", SESSION, "--play", "--speed", "3"]);
    assert!(all.status.success(), "{all:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(95),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(
        String::from_utf8_lossy(&all.stdout),
        "hello\r\nworld\r\nup 3 days\n"
    );

    let none = gatehouse(&config, &["replay", SESSION, "--play", "--channel", "9"]);
    assert!(!none.status.success());
    assert!(
        String::from_utf8_lossy(&none.stderr).contains("its channels: 0, 1"),
        "{none:?}"
    );
    let bad = gatehouse(&config, &["replay", SESSION, "--channel", "0"]);
    assert!(!bad.status.success(), "--channel needs --play");

    let verified = gatehouse(&config, &["audit", "verify"]);
    assert!(verified.status.success(), "{verified:?}");
    assert!(String::from_utf8_lossy(&verified.stdout).contains("2 sealed terminal casts"));

    // The evidence package carries the casts beside the recording, each against its seal.
    let package = dir.path().join("evidence");
    let made = gatehouse(
        &config,
        &[
            "evidence",
            "--from",
            "1h",
            "--out",
            package.to_str().unwrap(),
        ],
    );
    assert!(made.status.success(), "{made:?}");
    let rows = std::fs::read_to_string(package.join("sessions.jsonl")).unwrap();
    let row: serde_json::Value = serde_json::from_str(rows.lines().next().unwrap()).unwrap();
    let casts = row["casts"].as_array().unwrap();
    assert_eq!(casts.len(), 2, "{row}");
    for (channel, cast) in casts.iter().enumerate() {
        let file = format!("recordings/{SESSION}.ch{channel}.cast");
        assert_eq!(cast["file"], file.as_str(), "{cast}");
        assert_eq!(cast["seal"], "matches its seal", "{cast}");
        assert!(package.join(&file).exists());
        let sums = std::fs::read_to_string(package.join("SHA256SUMS")).unwrap();
        assert!(sums.contains(&file), "{sums}");
    }
    assert_eq!(casts[1]["command"], "uptime");

    // An edited cast: verify fails, and --play says so before playing it.
    let cast = dir
        .path()
        .join(format!("var/recordings/{SESSION}.ch1.cast"));
    let text = std::fs::read_to_string(&cast)
        .unwrap()
        .replace("3 days", "9 days");
    std::fs::write(&cast, text).unwrap();
    let verified = gatehouse(&config, &["audit", "verify"]);
    assert!(!verified.status.success());
    let edited = gatehouse(
        &config,
        &["replay", SESSION, "--play", "--instant", "--channel", "1"],
    );
    assert!(String::from_utf8_lossy(&edited.stderr).contains("DOES NOT MATCH its seal"));
}
