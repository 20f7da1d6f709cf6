//! MySQL refusals and bad input: malformed, out-of-sequence and oversized packets, commands
//! the gateway does not relay, a wrong token, a forbidden connection, an upstream that is
//! down, `LOAD DATA LOCAL INFILE` — each a MySQL error packet with its code and state, and the
//! gateway goes on serving. Messages past 16 MiB cross in continuation packets both ways.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use crate::mysql_support::{mysql, mysql_connection, root_sql, scratch_mysql_db, shown};
use crate::support::{free_port, path_in, with_statement, Gateway};

/// A hand-driven MySQL client on the loopback listener (no TLS).
pub struct RawMy {
    pub stream: TcpStream,
    /// The gateway's id of this connection, from its greeting (what `KILL` takes).
    pub connection_id: u32,
}

/// Capabilities of the raw client: protocol 4.1, plugin auth, a database in the handshake.
const RAW_CAPS: u32 = 0x0000_0001
    | 0x0000_0008
    | 0x0000_0200
    | 0x0000_2000
    | 0x0000_8000
    | 0x0002_0000
    | 0x0008_0000
    | 0x0020_0000;

impl RawMy {
    pub fn connect(port: u16) -> Self {
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut raw = Self {
            stream,
            connection_id: 0,
        };
        let (seq, greeting) = raw.read().expect("greeting");
        assert_eq!((seq, greeting[0]), (0, 10), "a protocol 10 greeting");
        let version_end = greeting.iter().position(|b| *b == 0).expect("version");
        let id = &greeting[version_end + 1..version_end + 5];
        raw.connection_id = u32::from_le_bytes([id[0], id[1], id[2], id[3]]);
        raw
    }

    /// Logs in with the token sent as `mysql_clear_password` right away.
    pub fn login(port: u16, connection: &str, token: &str) -> Self {
        let mut raw = Self::connect(port);
        let mut p = RAW_CAPS.to_le_bytes().to_vec();
        p.extend_from_slice(&(1u32 << 24).to_le_bytes());
        p.push(45);
        p.extend_from_slice(&[0; 23]);
        p.extend_from_slice(b"raw\0");
        p.push((token.len() + 1) as u8);
        p.extend_from_slice(token.as_bytes());
        p.push(0);
        p.extend_from_slice(connection.as_bytes());
        p.push(0);
        p.extend_from_slice(b"mysql_clear_password\0");
        raw.send(1, &p);
        let (_, ok) = raw.read().expect("login answer");
        assert_eq!(
            ok[0],
            0x00,
            "login failed: {}",
            String::from_utf8_lossy(&ok)
        );
        raw
    }

    pub fn send(&mut self, seq: u8, payload: &[u8]) {
        let len = payload.len() as u32;
        let mut bytes = len.to_le_bytes()[..3].to_vec();
        bytes.push(seq);
        bytes.extend_from_slice(payload);
        self.stream.write_all(&bytes).unwrap();
    }

    /// The next packet, or `None` once the gateway hung up.
    pub fn read(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut header = [0u8; 4];
        self.stream.read_exact(&mut header).ok()?;
        let len = u32::from_le_bytes([header[0], header[1], header[2], 0]) as usize;
        let mut payload = vec![0u8; len];
        self.stream.read_exact(&mut payload).ok()?;
        Some((header[3], payload))
    }

    /// Reads an ERR packet: (code, state, message).
    pub fn error(&mut self) -> (u16, String, String) {
        let (_, p) = self.read().expect("an error packet");
        assert_eq!(p[0], 0xFF, "not an ERR packet: {p:?}");
        let code = u16::from_le_bytes([p[1], p[2]]);
        let state = String::from_utf8_lossy(&p[4..9]).into_owned();
        let message = String::from_utf8_lossy(&p[9..]).into_owned();
        (code, state, message)
    }

    /// Runs a query and returns the first value of its first row.
    pub fn query_value(&mut self, sql: &str) -> String {
        let mut payload = vec![0x03];
        payload.extend_from_slice(sql.as_bytes());
        self.send(0, &payload);
        let (_, count) = self.read().expect("column count");
        assert_ne!(count[0], 0xFF, "{}", String::from_utf8_lossy(&count));
        for _ in 0..count[0] {
            self.read().expect("column definition");
        }
        self.read().expect("EOF after the columns");
        let (_, row) = self.read().expect("a row");
        let len = usize::from(row[0]);
        let value = String::from_utf8_lossy(&row[1..=len]).into_owned();
        self.read().expect("EOF after the rows");
        value
    }

    pub fn closed(&mut self) -> bool {
        self.read().is_none()
    }
}

#[test]
fn mysql_bad_input_gets_error_packets_and_the_gateway_serves_on() {
    scratch_mysql_db("gh_my_faults");
    let dead = format!("127.0.0.1:{}", free_port());
    let policy = format!(
        "{}{}[[connection]]\nname = \"gone\"\nprotocol = \"mysql\"\naddress = {dead:?}\n\
         database = \"x\"\nusername = \"root\"\ngroups = [\"dba\"]\n",
        mysql_connection("app", "gh_my_faults", ""),
        mysql_connection("secret", "gh_my_faults", "groups = [\"ops\"]")
            .replace("groups = [\"dba\", \"batch\"]\n", "")
    );
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let token = gw.token("alice", &["dba"]);
    let port = gw.mysql_port;

    // A handshake that is not one.
    let mut raw = RawMy::connect(port);
    raw.send(1, &[1, 2, 3]);
    let (code, state, message) = raw.error();
    assert_eq!((code, state.as_str()), (1835, "HY000"), "{message}");
    assert!(raw.closed());

    // A handshake out of sequence.
    let mut raw = RawMy::connect(port);
    raw.send(5, &[0; 40]);
    let (code, state, message) = raw.error();
    assert_eq!((code, state.as_str()), (1156, "08S01"), "{message}");

    // A handshake announcing a megabyte before anyone authenticated.
    let mut raw = RawMy::connect(port);
    raw.stream.write_all(&[0, 0, 0x10, 1, 0, 0]).unwrap();
    let (code, _, message) = raw.error();
    assert_eq!(code, 1153, "{message}");

    // Logged in: commands the gateway does not relay are refused, the session goes on.
    let mut raw = RawMy::login(port, "app", &token);
    raw.send(0, &[0x1D]);
    let (code, state, message) = raw.error();
    assert_eq!((code, state.as_str()), (1047, "08S01"), "{message}");
    raw.send(0, &[0x12, 4, 0, 0, 0]);
    let (code, _, message) = raw.error();
    assert_eq!(code, 1047);
    assert!(message.contains("replication"), "{message}");
    raw.send(0, &[0x11, b'r', b'o', b'o', b't', 0, 0]);
    let (code, _, message) = raw.error();
    assert_eq!(code, 1227);
    assert!(message.contains("token decides who you are"), "{message}");
    assert_eq!(raw.query_value("SELECT 6 * 7"), "42");
    // An empty command packet is malformed; a command out of sequence ends the session.
    raw.send(0, &[]);
    let (code, _, message) = raw.error();
    assert_eq!(code, 1835, "{message}");
    assert!(raw.closed());
    let mut raw = RawMy::login(port, "app", &token);
    raw.send(3, b"\x03SELECT 1");
    let (code, _, message) = raw.error();
    assert_eq!(code, 1156, "{message}");
    assert!(raw.closed());

    // Refusals the stock client shows.
    let out = mysql(&gw, "app", "gh_not_a_token", &["-e", "SELECT 1"], None);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("ERROR 1045 (28000)"),
        "{}",
        shown(&out)
    );
    for forbidden in ["nosuch", "secret"] {
        let out = mysql(&gw, forbidden, &token, &["-e", "SELECT 1"], None);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("ERROR 1044 (42000)"), "{}", shown(&out));
        assert!(
            err.contains("does not exist or you are not allowed"),
            "{err}"
        );
    }
    let out = mysql(&gw, "gone", &token, &["-e", "SELECT 1"], None);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ERROR 1429 (HY000)"), "{}", shown(&out));
    assert!(err.contains("connection \"gone\" is unavailable"), "{err}");

    // And everyone else is still served.
    let out = mysql(
        &gw,
        "app",
        &token,
        &["-N", "-e", "SELECT 'still here'"],
        None,
    );
    assert!(out.status.success(), "{}", shown(&out));
    assert!(String::from_utf8_lossy(&out.stdout).contains("still here"));
    let sessions = gw.sessions_until(|rows| rows.iter().any(|s| s["end_reason"].is_string()));
    assert!(
        sessions.iter().any(|s| s["end_reason"]
            .as_str()
            .is_some_and(|r| r.contains("unavailable"))),
        "the upstream failure is in the session's end: {sessions:#?}"
    );
}

#[test]
fn mysql_messages_past_16_mib_cross_in_continuations_both_ways() {
    scratch_mysql_db("gh_my_big");
    root_sql(
        "SET GLOBAL max_allowed_packet = 67108864; \
         CREATE TABLE gh_my_big.blobs (id INT PRIMARY KEY, body LONGTEXT)",
    );
    let gw = Gateway::start_with_policy(&[], &mysql_connection("big", "gh_my_big", ""), &[]);
    let token = gw.token("loader", &["batch"]);
    // 17.5 MiB of text in one statement: more than one 16 MiB packet from the client.
    let body: String = "0123456789abcdef".repeat(17 * 65_536 + 32_768);
    let script = format!("INSERT INTO blobs VALUES (1, '{body}');\n");
    let out = mysql(
        &gw,
        "big",
        &token,
        &["--max-allowed-packet=64M"],
        Some(&script),
    );
    assert!(out.status.success(), "{}", shown(&out));
    assert_eq!(
        root_sql("SELECT LENGTH(body) FROM gh_my_big.blobs").trim(),
        body.len().to_string()
    );
    // And the row back: more than one packet from the server.
    let out = mysql(
        &gw,
        "big",
        &token,
        &[
            "--max-allowed-packet=64M",
            "-N",
            "-B",
            "-e",
            "SELECT body FROM blobs",
        ],
        None,
    );
    assert!(out.status.success(), "{}", shown(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim_end(), body);

    let rows = gw.audit_until(|rows| {
        with_statement(rows, "SELECT body FROM blobs")
            .first()
            .is_some_and(|r| r["status"].is_string())
    });
    let insert = with_statement(&rows, "INSERT INTO blobs VALUES (1, '0123");
    assert_eq!(insert.len(), 1);
    let text = insert[0]["statement"].as_str().unwrap();
    assert!(
        text.len() < 2 << 20 && text.ends_with("bytes in all)"),
        "audited text is cut to a bound: {} bytes",
        text.len()
    );
    assert_eq!(insert[0]["rows_affected"], 1);
    let select = with_statement(&rows, "SELECT body FROM blobs");
    assert_eq!(select[0]["rows_returned"], 1);
}

#[test]
fn load_data_local_infile_is_refused_unless_the_connection_allows_it() {
    scratch_mysql_db("gh_my_infile");
    root_sql("CREATE TABLE gh_my_infile.t (id INT, name VARCHAR(20))");
    let policy = format!(
        "{}{}",
        mysql_connection("plain", "gh_my_infile", ""),
        mysql_connection("loader", "gh_my_infile", "local_infile = true")
    );
    let gw = Gateway::start_with_policy(&[], &policy, &[]);
    let token = gw.token("etl", &["batch"]);
    let csv = path_in(&gw, "people.csv");
    std::fs::write(&csv, "1,ada\n2,bob\n3,cy\n").unwrap();
    let load = format!(
        "LOAD DATA LOCAL INFILE '{}' INTO TABLE t FIELDS TERMINATED BY ','",
        csv.display()
    );

    // Refused; the same session goes on with the next statement (--force, on stdin).
    let both = format!("{load};\nSELECT 'after the refusal';\n");
    let out = mysql(
        &gw,
        "plain",
        &token,
        &["--local-infile=1", "--force", "-N"],
        Some(&both),
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("ERROR 1148 (42000)"), "{}", shown(&out));
    assert!(err.contains("not allowed on connection \"plain\""), "{err}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("after the refusal"),
        "{}",
        shown(&out)
    );
    assert_eq!(root_sql("SELECT COUNT(*) FROM gh_my_infile.t").trim(), "0");

    let out = mysql(
        &gw,
        "loader",
        &token,
        &["--local-infile=1", "-e", &load],
        None,
    );
    assert!(out.status.success(), "{}", shown(&out));
    assert_eq!(root_sql("SELECT COUNT(*) FROM gh_my_infile.t").trim(), "3");

    let rows = gw.audit_until(|rows| {
        rows.iter()
            .filter(|r| r["connection"] == "loader")
            .any(|r| {
                r["status"].is_string() && with_statement(&[(*r).clone()], "LOAD DATA").len() == 1
            })
    });
    let refused: Vec<_> = with_statement(&rows, "LOAD DATA LOCAL INFILE")
        .into_iter()
        .filter(|r| r["connection"] == "plain")
        .collect();
    assert_eq!(refused.len(), 1, "{rows:#?}");
    assert_eq!(refused[0]["status"], "error");
    let loaded: Vec<_> = with_statement(&rows, "LOAD DATA LOCAL INFILE")
        .into_iter()
        .filter(|r| r["connection"] == "loader")
        .collect();
    assert_eq!(loaded.len(), 1, "{rows:#?}");
    let tag = loaded[0]["tag"].as_str().unwrap_or_default();
    assert!(
        tag.contains("people.csv") && tag.contains("17 bytes"),
        "file name and size in the outcome: {tag}"
    );
    assert_eq!(loaded[0]["rows_affected"], 3);
}

#[test]
fn revoking_a_token_ends_its_mysql_session_even_mid_statement() {
    scratch_mysql_db("gh_my_revoke");
    let gw = Gateway::start_with_policy(&[], &mysql_connection("rv", "gh_my_revoke", ""), &[]);
    let token = gw.token("leaver", &["batch"]);
    let tokens: Vec<serde_json::Value> =
        serde_json::from_str(&gw.cli(&["token", "list", "--json"])).unwrap();
    let id = tokens
        .iter()
        .find(|t| t["identity"] == "leaver")
        .and_then(|t| t["id"].as_str())
        .unwrap()
        .to_owned();
    std::thread::scope(|s| {
        let running = s.spawn(|| {
            let started = std::time::Instant::now();
            let out = mysql(&gw, "rv", &token, &["-e", "SELECT SLEEP(30)"], None);
            (out, started.elapsed())
        });
        // The statement is on its way once its audit entry is.
        gw.audit_until(|rows| !with_statement(rows, "SELECT SLEEP(30)").is_empty());
        gw.cli(&["token", "revoke", &id]);
        let (out, took) = running.join().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("1927") && err.contains("revoked"),
            "{}",
            shown(&out)
        );
        assert!(took < Duration::from_secs(20), "ended after {took:?}");
    });
    let sessions = gw.sessions_until(|rows| {
        rows.iter()
            .any(|s| s["identity"] == "leaver" && s["end_reason"].is_string())
    });
    let ended = sessions.iter().find(|s| s["identity"] == "leaver").unwrap();
    assert!(
        ended["end_reason"].as_str().unwrap().contains("revoked"),
        "{ended:#?}"
    );
}
