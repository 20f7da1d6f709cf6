//! An interactive shell through the gateway under a real pty (OpenSSH's client inside tmux):
//! every line typed is an audit entry as the user corrected it, a card number the host prints
//! reaches the screen masked, a secret typed at a password prompt is kept nowhere, and the
//! terminal's cast (resize included) plays back in `asciinema cat` and `gatehouse replay`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use crate::ssh_support::{text, Sshd, SSH_OPTS};
use crate::support::{run, Gateway};

const MASK: &str = "[[mask]]\nname = \"pan\"\ndetect = \"pan\"\nstyle = \"keep-last-4\"\n";

/// What is typed at the `read -s` password prompt: it must not be kept anywhere.
const SECRET: &str = "hunter2-Sekr1t-Zq";

/// A tmux server of its own (a socket per test) running one session.
struct Tmux {
    socket: String,
    session: String,
}

impl Tmux {
    /// Starts `command` in a detached `cols`x`rows` session (no status line, so the pane is the
    /// whole window), with `env` in its environment.
    fn start(
        dir: &Path,
        name: &str,
        cols: u16,
        rows: u16,
        command: &str,
        env: &[(&str, &str)],
    ) -> Self {
        let conf = dir.join(format!("{name}.tmux.conf"));
        std::fs::write(&conf, "set -g status off\nset -g history-limit 5000\n").expect("tmux conf");
        let socket = format!("gh-{name}-{}", std::process::id());
        let tmux = Self {
            socket,
            session: name.to_owned(),
        };
        let (cols, rows) = (cols.to_string(), rows.to_string());
        let conf = conf.display().to_string();
        let out = run(
            "tmux",
            &[
                "-L",
                &tmux.socket,
                "-f",
                &conf,
                "new-session",
                "-d",
                "-s",
                name,
                "-x",
                &cols,
                "-y",
                &rows,
                command,
            ],
            None,
            env,
        );
        assert!(out.status.success(), "tmux new-session: {out:?}");
        tmux
    }

    fn tmux(&self, args: &[&str]) -> Output {
        let mut all = vec!["-L", self.socket.as_str()];
        all.extend(args);
        run("tmux", &all, None, &[])
    }

    /// Types `text` literally (no Enter).
    fn type_text(&self, text: &str) {
        let out = self.tmux(&["send-keys", "-t", &self.session, "-l", text]);
        assert!(out.status.success(), "send-keys: {out:?}");
    }

    /// Types `text` one key at a time, `pause` apart, as a person types.
    fn type_slowly(&self, text: &str, pause: Duration) {
        for c in text.chars() {
            self.type_text(&c.to_string());
            std::thread::sleep(pause);
        }
    }

    /// Presses named keys (`Enter`, `BSpace`).
    fn keys(&self, keys: &[&str]) {
        let mut args = vec!["send-keys", "-t", self.session.as_str()];
        args.extend(keys);
        let out = self.tmux(&args);
        assert!(out.status.success(), "send-keys: {out:?}");
    }

    /// Types a line and presses Enter.
    fn line(&self, text: &str) {
        self.type_text(text);
        self.keys(&["Enter"]);
    }

    /// The pane's text, with its scrollback.
    fn screen(&self) -> String {
        text(
            &self
                .tmux(&["capture-pane", "-p", "-J", "-S", "-", "-t", &self.session])
                .stdout,
        )
    }

    /// Waits until the screen holds `needle` `times` times or more; returns the screen.
    fn wait_for(&self, needle: &str, times: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let screen = self.screen();
            if screen.matches(needle).count() >= times {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} did not appear {times} time(s) on the screen:\n{screen}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Whether the session still runs (it ends when its ssh exits).
    fn alive(&self) -> bool {
        self.tmux(&["has-session", "-t", &self.session])
            .status
            .success()
    }
}

impl Drop for Tmux {
    fn drop(&mut self) {
        let _ = self.tmux(&["kill-server"]);
    }
}

/// The casts of the gateway's recordings directory.
fn casts(gw: &Gateway) -> Vec<PathBuf> {
    let dir = gw.dir.path().join("var/recordings");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "cast"))
                .collect()
        })
        .unwrap_or_default();
    found.sort();
    found
}

fn gatehouse(gw: &Gateway, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_gatehouse"))
        .arg("--config")
        .arg(&gw.config)
        .args(args)
        .output()
        .expect("run gatehouse")
}

/// What the host printed in the test's shell (the card number masked), as the screen, the cast
/// and its players must show it.
fn shown() -> Vec<String> {
    vec![
        "first-42".into(),
        "fixed-5".into(),
        "************1111".into(),
        format!("got-{}-chars", SECRET.len()),
        "40 120".into(),
    ]
}

/// A terminal cast as recorded: its header, its output and input streams (each event's text
/// joined, so what was split across events is found too), its resizes and the raw file.
struct Cast {
    header: serde_json::Value,
    output: String,
    input: String,
    resizes: Vec<String>,
    raw: String,
}

/// Waits for `session` to end and reads its one cast.
fn session_cast(gw: &Gateway, session: &str) -> (PathBuf, Cast) {
    gw.sessions_until(|s| {
        s.iter()
            .any(|r| r["id"] == session && r["ended_at"].is_string())
    });
    let casts = casts(gw);
    let mine: Vec<&PathBuf> = casts
        .iter()
        .filter(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(session))
        })
        .collect();
    assert_eq!(mine.len(), 1, "one cast of {session} in {casts:?}");
    let raw = std::fs::read_to_string(mine[0]).unwrap();
    let mut lines = raw.lines();
    let header = serde_json::from_str(lines.next().unwrap()).unwrap();
    let events: Vec<serde_json::Value> = lines.map(|l| serde_json::from_str(l).unwrap()).collect();
    let stream = |code: &str| -> Vec<String> {
        events
            .iter()
            .filter(|e| e[1] == code)
            .filter_map(|e| e[2].as_str().map(str::to_owned))
            .collect()
    };
    let cast = Cast {
        header,
        output: stream("o").concat(),
        input: stream("i").concat(),
        resizes: stream("r"),
        raw,
    };
    (mine[0].clone(), cast)
}

/// `ssh -tt box@gateway` in a 100x30 tmux session named `name`, at the host's root prompt.
fn shell(gw: &Gateway, sshd: &Sshd, name: &str, token: &str) -> Tmux {
    let command = format!(
        "sshpass -e ssh -tt -p {} {} box@127.0.0.1",
        gw.ssh_port,
        SSH_OPTS.join(" ")
    );
    let term = Tmux::start(
        sshd.dir.path(),
        name,
        100,
        30,
        &command,
        &[("SSHPASS", token)],
    );
    term.wait_for("# ", 1);
    term
}

/// Types `exit` and waits for the tmux session to end with its ssh.
fn exit(term: Tmux) {
    term.line("exit");
    let deadline = Instant::now() + Duration::from_secs(10);
    while term.alive() {
        assert!(
            Instant::now() < deadline,
            "the shell did not end:\n{}",
            term.screen()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn an_interactive_shell_is_audited_line_by_line_masked_and_replayable() {
    let sshd = Sshd::start();
    let policy = format!("{}{MASK}", sshd.connection("box", ""));
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let token = gw.token("alice", &["batch"]);
    let term = shell(&gw, &sshd, "shell", &token);

    // Output differs from what is typed (arithmetic), so the screen shows the host answered.
    term.line("echo first-$((6*7))");
    term.wait_for("first-42", 1);

    // A typo fixed with Backspace before Enter: the audit has the corrected line.
    term.type_text("echo fixdd");
    term.keys(&["BSpace", "BSpace"]);
    term.type_text("ed-$((2+3))");
    term.keys(&["Enter"]);
    term.wait_for("fixed-5", 1);

    // The host prints a card number (built by the shell, so no keystroke holds it).
    term.line("echo 41111111$((11111111))");
    term.wait_for("************1111", 1);

    // A password prompt: what is typed there is not recorded (the terminal does not echo it).
    term.line("read -s -p 'Password: ' pw");
    let prompts = term.wait_for("Password: ", 2).matches("# ").count();
    term.line(SECRET);
    // The next line waits for the shell's prompt: typed ahead while the host's last output is
    // still the password prompt, it would (rightly) be withheld from the audit too.
    term.wait_for("# ", prompts + 1);
    term.line("echo got-${#pw}-chars");
    term.wait_for(&format!("got-{}-chars", SECRET.len()), 1);

    // The window grows; the host sees the new size.
    let out = term.tmux(&["resize-window", "-t", "shell", "-x", "120", "-y", "40"]);
    assert!(out.status.success(), "resize-window: {out:?}");
    std::thread::sleep(Duration::from_millis(300));
    term.line("stty size");
    term.wait_for("40 120", 1);

    let screen = term.screen();
    for shown in shown() {
        assert!(
            screen.contains(&shown),
            "{shown:?} not on the screen:\n{screen}"
        );
    }
    assert!(
        !screen.contains("4111111111111111"),
        "the card number reached the screen unmasked:\n{screen}"
    );
    assert!(!screen.contains(SECRET), "the secret was echoed:\n{screen}");
    exit(term);

    let typed = [
        "echo first-$((6*7))",
        "echo fixed-$((2+3))",
        "echo 41111111$((11111111))",
        "read -s -p 'Password: ' pw",
        "(typed at a password prompt: not recorded)",
        "echo got-${#pw}-chars",
        "stty size",
        "exit",
    ];
    let rows = gw.audit_until(|r| {
        r.iter()
            .any(|e| e["class"] == "shell" && e["status"].is_string())
            && r.iter().filter(|e| e["class"] == "shell-line").count() >= typed.len()
    });
    let shell: Vec<_> = rows.iter().filter(|e| e["class"] == "shell").collect();
    assert_eq!(shell.len(), 1, "{rows:#?}");
    let shell = shell[0];
    let statement = shell["statement"].as_str().unwrap_or_default();
    assert!(
        statement.starts_with("shell (") && statement.ends_with(" 100x30)"),
        "{shell:#?}"
    );
    assert_eq!(shell["identity"], "alice");
    assert_eq!(shell["connection"], "box");
    assert_eq!(shell["protocol"], "ssh");
    assert_eq!(shell["status"], "ok", "{shell:#?}");
    let session = shell["session"].as_str().unwrap().to_owned();

    let lines: Vec<_> = rows.iter().filter(|e| e["class"] == "shell-line").collect();
    let texts: Vec<&str> = lines
        .iter()
        .map(|e| e["statement"].as_str().unwrap_or_default())
        .collect();
    assert_eq!(texts, typed, "{lines:#?}");
    for line in &lines {
        assert_eq!(line["tag"], "entered", "{line:#?}");
        assert_eq!(line["session"], session.as_str(), "{line:#?}");
        assert_eq!(line["identity"], "alice");
        assert!(
            line["seq"].as_i64() > shell["seq"].as_i64(),
            "each line comes after the shell: {line:#?}"
        );
    }
    let seqs: Vec<i64> = lines.iter().filter_map(|e| e["seq"].as_i64()).collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "in order: {seqs:?}");

    let everything = serde_json::to_string(&rows).unwrap();
    assert!(!everything.contains(SECRET), "the secret is in the audit");
    assert!(!everything.contains("4111111111111111"));

    // The session ended and its cast was sealed.
    let (cast, recorded) = session_cast(&gw, &session);
    assert_eq!(recorded.header["version"], 2, "{:?}", recorded.header);
    assert_eq!(recorded.header["width"], 100, "{:?}", recorded.header);
    assert_eq!(recorded.header["height"], 30, "{:?}", recorded.header);
    assert_eq!(recorded.resizes, ["120x40"], "the resize is in the cast");
    for shown in shown() {
        assert!(
            recorded.output.contains(&shown),
            "{shown:?} not in the cast's output:\n{}",
            recorded.output
        );
    }
    // Keystrokes are recorded, but not those typed at the password prompt.
    assert!(
        recorded.input.contains("echo first-$((6*7))\r"),
        "{}",
        recorded.input
    );
    assert!(recorded.input.contains("stty size\r"), "{}", recorded.input);
    for stream in [&recorded.output, &recorded.input, &recorded.raw] {
        assert!(!stream.contains("4111111111111111"), "{stream}");
        assert!(
            !stream.contains(SECRET),
            "the secret is in the cast: {stream}"
        );
    }

    // A stock player and the gateway's own replay show the same (masked) output.
    let cast_s = cast.display().to_string();
    let played = run("asciinema", &["cat", &cast_s], None, &[]);
    assert!(played.status.success(), "asciinema cat: {played:?}");
    let replayed = gatehouse(&gw, &["replay", &session, "--play", "--instant"]);
    assert!(replayed.status.success(), "replay: {replayed:?}");
    for (who, out) in [("asciinema cat", &played), ("gatehouse replay", &replayed)] {
        let screen = text(&out.stdout);
        for expected in shown() {
            assert!(
                screen.contains(&expected),
                "{who}: {expected:?} not in:\n{screen}"
            );
        }
        assert!(!screen.contains("4111111111111111"), "{who}:\n{screen}");
        assert!(!screen.contains(SECRET), "{who}:\n{screen}");
    }
    assert!(
        text(&replayed.stderr).contains("matches its seal"),
        "{replayed:?}"
    );

    let verified = gatehouse(&gw, &["audit", "verify"]);
    assert!(verified.status.success(), "audit verify: {verified:?}");
}

#[test]
fn a_card_number_typed_by_hand_is_masked_in_the_recording_too() {
    let sshd = Sshd::start();
    let policy = format!("{}{MASK}", sshd.connection("box", ""));
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let token = gw.token("alice", &["batch"]);
    let term = shell(&gw, &sshd, "typed", &token);
    term.type_text("echo ");
    term.type_slowly("4111111111111111", Duration::from_millis(60));
    term.keys(&["Enter"]);
    term.wait_for("************1111", 1);
    exit(term);

    let rows = gw.audit_until(|r| {
        r.iter()
            .any(|e| e["class"] == "shell" && e["status"].is_string())
    });
    let lines: Vec<&str> = rows
        .iter()
        .filter(|e| e["class"] == "shell-line")
        .filter_map(|e| e["statement"].as_str())
        .collect();
    assert_eq!(lines, ["echo ************1111", "exit"], "{rows:#?}");
    let session = rows[0]["session"].as_str().unwrap();
    let (_, recorded) = session_cast(&gw, session);
    assert!(
        !recorded.input.contains("4111111111111111"),
        "the keystrokes: {}",
        recorded.input
    );
    assert!(
        !recorded.output.contains("4111111111111111"),
        "the echo: {}",
        recorded.output
    );
    let replayed = gatehouse(&gw, &["replay", session, "--play", "--instant"]);
    assert!(
        !text(&replayed.stdout).contains("4111111111111111"),
        "{}",
        text(&replayed.stdout)
    );
}
