//! The packet layer against the real local MariaDB (127.0.0.1:3306, root, empty password):
//! its greeting decodes, a HandshakeResponse41 built here logs in, and a COM_QUERY's text
//! result set splits into packets and rows.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use gatehouse_mysql::auth::native_password;
use gatehouse_mysql::codec::TextRow;
use gatehouse_mysql::frame::{encode_message, split_message, Message};
use gatehouse_mysql::handshake::{caps, Greeting, HandshakeResponse};
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
    let mut stream = TcpStream::connect("127.0.0.1:3306").unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut buf = BytesMut::new();
    let hello = read_message(&mut stream, &mut buf);
    let greeting = Greeting::decode(&hello.payload).unwrap();
    let agreed = capabilities & greeting.capabilities;
    let response = HandshakeResponse {
        capabilities: agreed,
        max_packet: 1 << 24,
        charset: 45,
        user: "root".into(),
        auth: native_password(b"", &greeting.scramble),
        database: Some("test".into()),
        auth_plugin: Some("mysql_native_password".into()),
    };
    let (packet, _) = encode_message(&response.encode(), hello.last_seq.wrapping_add(1));
    stream.write_all(&packet).unwrap();
    let answer = read_message(&mut stream, &mut buf);
    assert_eq!(
        answer.payload.first(),
        Some(&0x00),
        "login refused: {}",
        String::from_utf8_lossy(&answer.payload)
    );
    (stream, buf, agreed)
}

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
