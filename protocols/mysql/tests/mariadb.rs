//! The packet layer against the real local MariaDB (127.0.0.1:3306, root, empty password):
//! its greeting decodes, a HandshakeResponse41 built here logs in, and a COM_QUERY's text
//! result set splits into packets and rows. Users of the `ed25519` and `mysql_native_password`
//! plugins log in with the answers of `auth`, following the server's AuthSwitchRequest.
//! Prepared statements' binary parameters and rows decode (and mask) as the text protocol
//! shows the same values.
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::BytesMut;
use gatehouse_core::mask::{MaskCounts, MaskPolicy, MaskSpec};
use gatehouse_mysql::auth::{self, AuthSwitch, CLIENT_ED25519, NATIVE_PASSWORD};
use gatehouse_mysql::binary::{
    decode_execute, decode_long_data, field_type, mask_binary_row, PrepareOk, Value,
};
use gatehouse_mysql::codec::{put_lenenc_bytes, Reader, TextRow};
use gatehouse_mysql::columns::{mask_text_row, plan, Column};
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

/// Sends one command (sequence id 0).
fn send(stream: &mut TcpStream, payload: &[u8]) {
    let (packet, _) = encode_message(payload, 0);
    stream.write_all(&packet).unwrap();
}

/// Follows a command's answer: the columns and rows of its (one) result set, and the outcome.
fn answer(
    stream: &mut TcpStream,
    buf: &mut BytesMut,
    capabilities: u32,
) -> (Vec<Column>, Vec<Vec<u8>>, Outcome) {
    let mut response = Response::new(capabilities);
    let (mut columns, mut rows) = (Vec::new(), Vec::new());
    loop {
        let m = read_message(stream, buf);
        match response.feed(&m.payload).unwrap() {
            Step::Column(_) => columns.push(Column::decode(&m.payload).unwrap()),
            Step::Row => rows.push(m.payload.to_vec()),
            Step::Done(outcome) => return (columns, rows, outcome),
            _ => {}
        }
    }
}

/// COM_STMT_PREPARE and its answer: PREPARE_OK, the parameter and column definitions (each
/// group closed by an EOF, as `DEPRECATE_EOF` is not asked for).
fn prepare(stream: &mut TcpStream, buf: &mut BytesMut, sql: &str) -> PrepareOk {
    let mut p = vec![0x16];
    p.extend_from_slice(sql.as_bytes());
    send(stream, &p);
    let m = read_message(stream, buf);
    let ok = PrepareOk::decode(&m.payload)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&m.payload)));
    for count in [ok.params, ok.columns] {
        if count > 0 {
            for _ in 0..=count {
                read_message(stream, buf);
            }
        }
    }
    ok
}

/// A COM_STMT_EXECUTE of `stmt` with these parameters (`None`: NULL; types sent if `types`).
fn execute(stmt: u32, params: &[(u8, u8, Option<Vec<u8>>)], types: bool) -> Vec<u8> {
    let mut p = vec![0x17];
    p.extend(stmt.to_le_bytes());
    p.extend([0, 1, 0, 0, 0]);
    if params.is_empty() {
        return p;
    }
    let mut bitmap = vec![0u8; params.len().div_ceil(8)];
    for (i, (_, _, v)) in params.iter().enumerate() {
        if v.is_none() {
            bitmap[i / 8] |= 1 << (i % 8);
        }
    }
    p.extend(bitmap);
    p.push(u8::from(types));
    if types {
        params.iter().for_each(|(t, f, _)| p.extend([*t, *f]));
    }
    params
        .iter()
        .filter_map(|(_, _, v)| v.as_ref())
        .for_each(|v| p.extend(v));
    p
}

fn lenenc(v: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_lenenc_bytes(&mut out, Some(v));
    out
}

/// A binary row's values: string bytes as sent, anything else as its text.
fn binary_values(columns: &[Column], payload: &[u8]) -> Vec<Option<Vec<u8>>> {
    let mut r = Reader::new(payload);
    assert_eq!(r.u8().unwrap(), 0x00);
    let bitmap = r.take((columns.len() + 9) / 8).unwrap().to_vec();
    let values = columns
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let bit = i + 2;
            if bitmap[bit / 8] & (1 << (bit % 8)) != 0 {
                return None;
            }
            match Value::read(&mut r, c.type_code, c.unsigned()).unwrap() {
                Value::Bytes(b) => Some(b.to_vec()),
                v => Some(v.to_string().into_bytes()),
            }
        })
        .collect();
    assert_eq!(r.remaining(), 0);
    values
}

fn text_values(payload: &[u8]) -> Vec<Option<Vec<u8>>> {
    TextRow::new(payload)
        .map(|v| v.unwrap().map(<[u8]>::to_vec))
        .collect()
}

#[test]
fn prepared_statements_bind_decode_and_mask_alike_with_mariadb() {
    use field_type as t;
    let (mut stream, mut buf, agreed) = login(BASE);
    send(
        &mut stream,
        b"\x03CREATE TEMPORARY TABLE gh_bin (id INT, name VARCHAR(64), note BLOB, \
          card_big BIGINT UNSIGNED, pin INT, created DATETIME(6), amount DECIMAL(10,2), \
          score DOUBLE, nick VARCHAR(10), born YEAR, m MEDIUMINT, t TIME, b BIT(8), f FLOAT, \
          d DATE, ti TINYINT)",
    );
    assert!(matches!(
        answer(&mut stream, &mut buf, agreed).2,
        Outcome::Ok { .. }
    ));
    let insert = prepare(
        &mut stream,
        &mut buf,
        "INSERT INTO gh_bin VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
    );
    assert_eq!((insert.params, insert.columns), (16, 0));
    let id = insert.statement_id;
    let le = |v: &[u8]| Some(v.to_vec());
    let first = vec![
        (t::LONG, 0, le(&1i32.to_le_bytes())),
        (t::VAR_STRING, 0, Some(lenenc(b"Ada 4111 1111 1111 1111"))),
        (t::BLOB, 0, Some(vec![])), // sent as long data
        (t::LONGLONG, 0x80, le(&4111111111111111u64.to_le_bytes())),
        (t::LONG, 0, le(&1234i32.to_le_bytes())),
        (
            t::DATETIME,
            0,
            le(&[11, 0xE8, 0x07, 5, 1, 12, 0, 0, 5, 0, 0, 0]),
        ),
        (t::NEWDECIMAL, 0, Some(lenenc(b"12.50"))),
        (t::DOUBLE, 0, le(&2.5f64.to_le_bytes())),
        (t::VAR_STRING, 0, None),
        (t::SHORT, 0, le(&1990i16.to_le_bytes())),
        (t::LONG, 0, le(&(-8_388_608i32).to_le_bytes())),
        (t::TIME, 0, le(&[8, 1, 34, 0, 0, 0, 22, 59, 59])),
        (t::LONGLONG, 0, le(&5i64.to_le_bytes())),
        (t::FLOAT, 0, le(&1.5f32.to_le_bytes())),
        (t::DATE, 0, le(&[4, 0xE8, 0x07, 2, 29])),
        (t::TINY, 0, le(&[0xFB])),
    ];
    let mut long_data = vec![None; 16];
    for piece in [&b"long "[..], b"note"] {
        let mut p = vec![0x18];
        p.extend(id.to_le_bytes());
        p.extend(2u16.to_le_bytes());
        p.extend(piece);
        let (stmt, param, data) = decode_long_data(&p).unwrap();
        assert_eq!((stmt, param), (id, 2));
        long_data[2]
            .get_or_insert_with(Vec::new)
            .extend_from_slice(data);
        send(&mut stream, &p); // no answer
    }
    let mut types = Vec::new();
    let packet = execute(id, &first, true);
    let (_, rendered_1) = decode_execute(&packet, 16, &mut types, &long_data).unwrap();
    send(&mut stream, &packet);
    let (_, _, outcome) = answer(&mut stream, &mut buf, agreed);
    assert!(
        matches!(outcome, Outcome::Ok { affected: 1, .. }),
        "{outcome:?}"
    );
    // The second execute reuses the types bound by the first.
    let second = vec![
        (t::LONG, 0, le(&2i32.to_le_bytes())),
        (t::VAR_STRING, 0, Some(lenenc(b"Bob"))),
        (t::BLOB, 0, Some(lenenc(&[0xFF, 0x00]))),
        (t::LONGLONG, 0x80, le(&7u64.to_le_bytes())),
        (t::LONG, 0, None),
        (
            t::DATETIME,
            0,
            le(&[11, 0xCF, 0x07, 12, 31, 23, 59, 59, 0x3F, 0x42, 0x0F, 0]),
        ),
        (t::NEWDECIMAL, 0, Some(lenenc(b"-0.01"))),
        (t::DOUBLE, 0, le(&1234.5f64.to_le_bytes())),
        (t::VAR_STRING, 0, Some(lenenc(b"nick"))),
        (t::SHORT, 0, le(&2000i16.to_le_bytes())),
        (t::LONG, 0, le(&8_388_607i32.to_le_bytes())),
        (t::TIME, 0, le(&[8, 0, 0, 0, 0, 0, 1, 2, 3])),
        (t::LONGLONG, 0, le(&255i64.to_le_bytes())),
        (t::FLOAT, 0, le(&(-0.5f32).to_le_bytes())),
        (t::DATE, 0, le(&[0])),
        (t::TINY, 0, le(&[127])),
    ];
    let packet = execute(id, &second, false);
    let (_, rendered_2) = decode_execute(&packet, 16, &mut types, &[]).unwrap();
    send(&mut stream, &packet);
    let (_, _, outcome) = answer(&mut stream, &mut buf, agreed);
    assert!(
        matches!(outcome, Outcome::Ok { affected: 1, .. }),
        "{outcome:?}"
    );

    // What the server stored, through the text protocol...
    send(&mut stream, b"\x03SELECT * FROM gh_bin ORDER BY id");
    let (text_columns, text_rows, _) = answer(&mut stream, &mut buf, agreed);
    let text: Vec<_> = text_rows.iter().map(|r| text_values(r)).collect();
    // ...is what the audit trail shows for the parameters (but BIT, sent as a number, and
    // bytes that are not text, shown as hex)...
    for (row, rendered) in text.iter().zip([&rendered_1, &rendered_2]) {
        for (i, (stored, shown)) in row.iter().zip(rendered.iter()).enumerate() {
            if i == 12 || shown.as_deref() == Some("\\xff00") {
                continue;
            }
            assert_eq!(
                stored.as_deref().map(String::from_utf8_lossy).as_deref(),
                shown.as_deref(),
                "parameter {i}"
            );
        }
    }
    // ...and, value for value, what the binary protocol returns.
    let select = prepare(&mut stream, &mut buf, "SELECT * FROM gh_bin ORDER BY id");
    assert_eq!((select.params, select.columns), (0, 16));
    send(&mut stream, &execute(select.statement_id, &[], false));
    let (bin_columns, bin_rows, _) = answer(&mut stream, &mut buf, agreed);
    assert_eq!(bin_columns, text_columns);
    let binary: Vec<_> = bin_rows
        .iter()
        .map(|r| binary_values(&bin_columns, r))
        .collect();
    assert_eq!(binary, text);

    // Masked by one plan each, text and binary rows show the same values.
    let specs: Vec<MaskSpec> = vec![
        toml::from_str("name = \"pan\"\ndetect = \"pan\"\nstyle = \"keep-last-4\"").unwrap(),
        toml::from_str("name = \"pins\"\ncolumns = [\"gh_bin.pin\"]").unwrap(),
    ];
    let masker = MaskPolicy::new(specs, vec![1; 32]).unwrap().for_groups(&[]);
    let text_plan = plan(&masker, &text_columns);
    let bin_plan = plan(&masker, &bin_columns);
    let (mut text_counts, mut bin_counts) = (MaskCounts::new(), MaskCounts::new());
    let mut masked_rows = Vec::new();
    for (t_row, b_row) in text_rows.iter().zip(&bin_rows) {
        let t_masked = mask_text_row(&text_plan, t_row, &mut text_counts).unwrap();
        let b_masked = mask_binary_row(&bin_plan, &bin_columns, b_row, &mut bin_counts).unwrap();
        let t_values = text_values(t_masked.as_deref().unwrap_or(t_row));
        let b_values = binary_values(&bin_columns, b_masked.as_deref().unwrap_or(b_row));
        assert_eq!(b_values, t_values);
        masked_rows.push(b_values);
    }
    assert_eq!(
        masked_rows[0][1].as_deref(),
        Some(&b"Ada **** **** **** 1111"[..])
    );
    assert_eq!((&masked_rows[0][3], &masked_rows[0][4]), (&None, &None));
    assert_eq!(masked_rows[1][3].as_deref(), Some(&b"7"[..]));
    assert_eq!(text_counts.total(), 3);
    assert_eq!(bin_counts.total(), 3);
}
