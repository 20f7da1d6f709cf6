//! The packet layer against the real local MariaDB (127.0.0.1:3306, root, empty password):
//! its greeting decodes, a HandshakeResponse41 built here logs in, and a COM_QUERY's text
//! result set splits into packets and rows. Users of the `ed25519` and `mysql_native_password`
//! plugins log in with the answers of `auth`, following the server's AuthSwitchRequest.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use gatehouse_mysql::auth::{self, AuthSwitch, CLIENT_ED25519, NATIVE_PASSWORD};
use gatehouse_mysql::codec::TextRow;
use gatehouse_mysql::frame::{encode_message, split_message, Message};
use gatehouse_mysql::handshake::{caps, Greeting, HandshakeResponse};
use gatehouse_mysql::packets;
use gatehouse_mysql::response::{Outcome, Response, Step};

fn read_message(stream: &mut TcpStream, buf: &mut BytesMut) -> Message {
    loop {
        if let Some(m) = split_message(buf, 64 << 20).unwrap() {
            return m;
        }
        let mut chunk = [0u8; 8192];
        let n = stream.read(&mut chunk).unwrap();
        assert!(n > 0, "MariaDB closed the connection");
        buf.extend_from_slice(&chunk[..n]);
    }
}

#[test]
fn greeting_login_and_a_text_result_set_from_mariadb() {
    let (mut stream, mut buf, _) = login(
        caps::PROTOCOL_41
            | caps::SECURE_CONNECTION
            | caps::PLUGIN_AUTH
            | caps::PLUGIN_AUTH_LENENC_CLIENT_DATA
            | caps::CONNECT_WITH_DB
            | caps::TRANSACTIONS
            | caps::MULTI_RESULTS
            | caps::LONG_PASSWORD,
    );
    let mut query = vec![0x03];
    query.extend_from_slice(b"SELECT 'ada', NULL, 42");
    let (packet, _) = encode_message(&query, 0);
    stream.write_all(&packet).unwrap();
    let columns = read_message(&mut stream, &mut buf);
    assert_eq!(columns.payload[..], [3]);
    for _ in 0..3 {
        read_message(&mut stream, &mut buf); // column definitions
    }
    let eof = read_message(&mut stream, &mut buf);
    assert_eq!(eof.payload.first(), Some(&0xFE));
    let row = read_message(&mut stream, &mut buf);
    let values: Vec<_> = TextRow::new(&row.payload)
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(values, vec![Some(&b"ada"[..]), None, Some(&b"42"[..])]);
}

fn login(capabilities: u32) -> (TcpStream, BytesMut, u32) {
    let login = login_as("root", b"", NATIVE_PASSWORD, capabilities);
    if let Err(e) = &login.outcome {
        panic!("login refused: {e:?}");
    }
    (login.stream, login.buf, login.agreed)
}

/// A login attempt: the connection, the server's last word, and the AuthSwitchRequests on the
/// way (raw payload, decoded).
struct Login {
    stream: TcpStream,
    buf: BytesMut,
    agreed: u32,
    outcome: Result<(), packets::Err>,
    switches: Vec<(Vec<u8>, AuthSwitch)>,
}

/// Logs in as `user` with `password`, claiming `plugin` in the HandshakeResponse41 (answered
/// with the greeting's scramble when it is the greeting's plugin, else with nothing) and
/// answering every AuthSwitchRequest with `auth::answer`.
fn login_as(user: &str, password: &[u8], plugin: &str, capabilities: u32) -> Login {
    let mut stream = TcpStream::connect("127.0.0.1:3306").unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = BytesMut::new();
    let hello = read_message(&mut stream, &mut buf);
    let greeting = Greeting::decode(&hello.payload).unwrap();
    let agreed = capabilities & greeting.capabilities;
    let first = if plugin == greeting.auth_plugin {
        auth::answer(plugin, password, &greeting.scramble).unwrap()
    } else {
        Vec::new()
    };
    let response = HandshakeResponse {
        capabilities: agreed,
        max_packet: 1 << 24,
        charset: 45,
        user: user.into(),
        auth: first,
        database: Some("test".into()),
        auth_plugin: Some(plugin.into()),
    };
    let (packet, _) = encode_message(&response.encode(), hello.last_seq.wrapping_add(1));
    stream.write_all(&packet).unwrap();
    let mut switches = Vec::new();
    let outcome = loop {
        let answer = read_message(&mut stream, &mut buf);
        match answer.payload.first() {
            Some(0x00) => break Ok(()),
            Some(0xFF) => break Err(packets::Err::decode(&answer.payload).unwrap()),
            Some(0xFE) if switches.len() < 3 => {
                let switch = AuthSwitch::decode(&answer.payload).unwrap();
                let reply = switch.answer(password).unwrap();
                switches.push((answer.payload.to_vec(), switch));
                let (packet, _) = encode_message(&reply, answer.last_seq.wrapping_add(1));
                stream.write_all(&packet).unwrap();
            }
            _ => panic!("unexpected answer to a login: {:?}", answer.payload),
        }
    };
    Login {
        stream,
        buf,
        agreed,
        outcome,
        switches,
    }
}

/// Runs a statement that answers OK or ERR.
fn run(stream: &mut TcpStream, buf: &mut BytesMut, sql: &str) -> Result<(), packets::Err> {
    let mut query = vec![0x03];
    query.extend_from_slice(sql.as_bytes());
    let (packet, _) = encode_message(&query, 0);
    stream.write_all(&packet).unwrap();
    let answer = read_message(stream, buf);
    match answer.payload.first() {
        Some(0x00) => Ok(()),
        Some(0xFF) => Err(packets::Err::decode(&answer.payload).unwrap()),
        _ => panic!("{sql}: neither OK nor ERR: {:?}", answer.payload),
    }
}

/// The one value of a one-column, one-row text result (without DEPRECATE_EOF).
fn value_of(stream: &mut TcpStream, buf: &mut BytesMut, sql: &str) -> String {
    let mut query = vec![0x03];
    query.extend_from_slice(sql.as_bytes());
    let (packet, _) = encode_message(&query, 0);
    stream.write_all(&packet).unwrap();
    assert_eq!(read_message(stream, buf).payload[..], [1], "{sql}");
    read_message(stream, buf); // the column definition
    read_message(stream, buf); // EOF
    let row = read_message(stream, buf);
    let value = TextRow::new(&row.payload).next().unwrap().unwrap().unwrap();
    let value = String::from_utf8(value.to_vec()).unwrap();
    assert_eq!(read_message(stream, buf).payload.first(), Some(&0xFE));
    value
}

/// As root: (re)creates `user`@'%' with the SQL after `IDENTIFIED`.
fn create_user(user: &str, identified: &str) {
    let (mut stream, mut buf, _) = login(BASE);
    run(
        &mut stream,
        &mut buf,
        &format!("CREATE OR REPLACE USER {user}@'%' IDENTIFIED {identified}"),
    )
    .unwrap();
}

/// Capabilities for the test users: no database named (they have no grants on any).
const NO_DB: u32 = BASE & !caps::CONNECT_WITH_DB;

fn answer_of(sql: &str, capabilities: u32) -> (Vec<Step>, Outcome) {
    let (mut stream, mut buf, agreed) = login(capabilities);
    let mut query = vec![0x03];
    query.extend_from_slice(sql.as_bytes());
    let (packet, _) = encode_message(&query, 0);
    stream.write_all(&packet).unwrap();
    let mut response = Response::new(agreed);
    let mut steps = Vec::new();
    loop {
        let m = read_message(&mut stream, &mut buf);
        match response.feed(&m.payload).unwrap() {
            Step::Done(outcome) => return (steps, outcome),
            step => steps.push(step),
        }
    }
}

const BASE: u32 = caps::PROTOCOL_41
    | caps::SECURE_CONNECTION
    | caps::PLUGIN_AUTH
    | caps::PLUGIN_AUTH_LENENC_CLIENT_DATA
    | caps::CONNECT_WITH_DB
    | caps::TRANSACTIONS
    | caps::LONG_PASSWORD
    | caps::MULTI_STATEMENTS
    | caps::MULTI_RESULTS;

#[test]
fn multi_statement_answers_are_followed_to_their_end_with_and_without_deprecate_eof() {
    for extra in [0, caps::DEPRECATE_EOF] {
        let (steps, outcome) = answer_of(
            "SELECT 1 UNION SELECT 2; SELECT 'a', 'b'; DO 1",
            BASE | extra,
        );
        assert_eq!(
            outcome,
            Outcome::Ok {
                rows: 3,
                affected: 0,
                sets: 2
            },
            "{steps:?}"
        );
        assert_eq!(steps.iter().filter(|s| **s == Step::ResultEnd).count(), 2);
        let (_, failed) = answer_of("SELECT 1; SELECT * FROM no_such_table_here", BASE | extra);
        assert!(
            matches!(&failed, Outcome::Failed(e) if e.code == 1146 && e.state == "42S02"),
            "{failed:?}"
        );
    }
}

#[test]
fn an_ed25519_user_logs_in_with_the_signature_of_the_switched_challenge() {
    {
        let (mut stream, mut buf, _) = login(BASE);
        match run(&mut stream, &mut buf, "INSTALL SONAME 'auth_ed25519'") {
            Ok(()) => {}
            // ER_PLUGIN_INSTALLED: a run before this one installed it.
            Err(e) if e.code == 1968 => {}
            Err(e) => panic!("INSTALL SONAME 'auth_ed25519': {e:?}"),
        }
    }
    create_user("gh_ed", "VIA ed25519 USING PASSWORD('ed-secret-1')");

    let mut ok = login_as("gh_ed", b"ed-secret-1", NATIVE_PASSWORD, NO_DB);
    assert!(ok.outcome.is_ok(), "{:?}", ok.outcome);
    let [(raw, switch)] = &ok.switches[..] else {
        panic!("{:?}", ok.switches)
    };
    assert_eq!(switch.plugin, CLIENT_ED25519);
    // MariaDB sends the 32-byte challenge with nothing after it.
    assert_eq!(switch.data.len(), 32);
    assert_eq!(raw.len(), 1 + CLIENT_ED25519.len() + 1 + 32);
    assert_eq!(
        value_of(&mut ok.stream, &mut ok.buf, "SELECT CURRENT_USER()"),
        "gh_ed@%"
    );

    for wrong in [&b"ed-secret-2"[..], b""] {
        let refused = login_as("gh_ed", wrong, NATIVE_PASSWORD, NO_DB);
        assert_eq!(refused.switches.len(), 1);
        let e = refused.outcome.unwrap_err();
        assert_eq!((e.code, e.state.as_str()), (1045, "28000"), "{e:?}");
    }
}

#[test]
fn a_native_user_logs_in_directly_and_after_a_switch() {
    create_user(
        "gh_native",
        "VIA mysql_native_password USING PASSWORD('native-secret-1')",
    );

    // Answering the greeting's scramble: no switch.
    let mut direct = login_as("gh_native", b"native-secret-1", NATIVE_PASSWORD, NO_DB);
    assert!(direct.outcome.is_ok(), "{:?}", direct.outcome);
    assert!(direct.switches.is_empty());
    assert_eq!(
        value_of(&mut direct.stream, &mut direct.buf, "SELECT CURRENT_USER()"),
        "gh_native@%"
    );

    // Claiming another plugin: the server switches to mysql_native_password with a fresh
    // scramble, sent as 20 bytes and a NUL.
    let switched = login_as("gh_native", b"native-secret-1", CLIENT_ED25519, NO_DB);
    assert!(switched.outcome.is_ok(), "{:?}", switched.outcome);
    let [(raw, switch)] = &switched.switches[..] else {
        panic!("{:?}", switched.switches)
    };
    assert_eq!(switch.plugin, NATIVE_PASSWORD);
    assert_eq!(switch.data.len(), 20);
    assert_eq!(raw.len(), 1 + NATIVE_PASSWORD.len() + 1 + 21);
    assert_eq!(raw.last(), Some(&0));

    for (wrong, plugin) in [
        (&b"native-secret-2"[..], NATIVE_PASSWORD),
        (b"", NATIVE_PASSWORD),
        (b"native-secret-2", CLIENT_ED25519),
    ] {
        let e = login_as("gh_native", wrong, plugin, NO_DB)
            .outcome
            .unwrap_err();
        assert_eq!((e.code, e.state.as_str()), (1045, "28000"), "{e:?}");
    }
}
