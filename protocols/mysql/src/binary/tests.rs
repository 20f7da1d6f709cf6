//! Packets built by hand from the protocol documentation (MySQL's "Binary Protocol Value" and
//! "Binary Protocol Resultset Row", MariaDB's COM_STMT_EXECUTE): bytes in, values out.

use gatehouse_core::mask::{MaskPolicy, MaskSpec, Masker};

use super::field_type as t;
use super::*;
use crate::columns::plan;

/// A parameter as a client binds it: type, flags, encoded value (`None`: NULL in the bitmap).
type Bound = (u8, u8, Option<Vec<u8>>);

/// A COM_STMT_EXECUTE of statement 7, types sent when `send_types`.
fn execute(params: &[Bound], send_types: bool) -> Vec<u8> {
    let mut p = vec![0x17, 7, 0, 0, 0, 0x00, 1, 0, 0, 0];
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
    p.push(u8::from(send_types));
    if send_types {
        for (type_code, flags, _) in params {
            p.extend([*type_code, *flags]);
        }
    }
    for v in params.iter().filter_map(|(_, _, v)| v.as_ref()) {
        p.extend(v);
    }
    p
}

fn lenenc(bytes: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    put_lenenc_bytes(&mut out, Some(bytes));
    out
}

/// A DATE/DATETIME/TIMESTAMP value of `len` bytes (0, 4, 7, 11).
fn datetime(len: u8, ymd: (u16, u8, u8), hms: (u8, u8, u8), micros: u32) -> Vec<u8> {
    let mut v = vec![len];
    if len >= 4 {
        v.extend(ymd.0.to_le_bytes());
        v.extend([ymd.1, ymd.2]);
    }
    if len >= 7 {
        v.extend([hms.0, hms.1, hms.2]);
    }
    if len == 11 {
        v.extend(micros.to_le_bytes());
    }
    v
}

/// A TIME value of `len` bytes (0, 8, 12).
fn time(len: u8, negative: bool, days: u32, hms: (u8, u8, u8), micros: u32) -> Vec<u8> {
    let mut v = vec![len];
    if len >= 8 {
        v.push(u8::from(negative));
        v.extend(days.to_le_bytes());
        v.extend([hms.0, hms.1, hms.2]);
    }
    if len == 12 {
        v.extend(micros.to_le_bytes());
    }
    v
}

fn decode(params: &[Bound]) -> Vec<Option<String>> {
    let mut types = Vec::new();
    let (header, values) = decode_execute(&execute(params, true), params.len(), &mut types, &[])
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        header,
        ExecuteHeader {
            statement_id: 7,
            flags: 0
        }
    );
    assert_eq!(types.len(), params.len());
    values
}

#[test]
fn prepare_ok_decodes_and_refuses_errors_and_truncation() {
    let ok = [0x00, 0x2A, 0, 0, 0, 3, 0, 2, 0, 0x00, 0, 0];
    assert_eq!(
        PrepareOk::decode(&ok).unwrap(),
        PrepareOk {
            statement_id: 42,
            columns: 3,
            params: 2
        }
    );
    assert!(PrepareOk::decode(&ok[..8]).is_err());
    assert!(PrepareOk::decode(&[0xFF, 0x28, 0x04, b'#']).is_err());
    assert!(PrepareOk::decode(&[]).is_err());
}

#[test]
fn every_type_family_renders_as_a_literal() {
    let s = |v: &str| Some(v.to_owned());
    let cases: Vec<(Bound, Option<String>)> = vec![
        ((t::TINY, 0, Some(vec![0xFB])), s("-5")),
        ((t::TINY, 0x80, Some(vec![250])), s("250")),
        ((t::SHORT, 0, Some((-2i16).to_le_bytes().to_vec())), s("-2")),
        (
            (t::YEAR, 0x80, Some(2024u16.to_le_bytes().to_vec())),
            s("2024"),
        ),
        (
            (t::LONG, 0, Some((-100_000i32).to_le_bytes().to_vec())),
            s("-100000"),
        ),
        (
            (t::INT24, 0, Some((-8_388_608i32).to_le_bytes().to_vec())),
            s("-8388608"),
        ),
        (
            (t::LONG, 0x80, Some(u32::MAX.to_le_bytes().to_vec())),
            s("4294967295"),
        ),
        (
            (t::LONGLONG, 0, Some(i64::MIN.to_le_bytes().to_vec())),
            s("-9223372036854775808"),
        ),
        (
            (t::LONGLONG, 0x80, Some(u64::MAX.to_le_bytes().to_vec())),
            s("18446744073709551615"),
        ),
        ((t::FLOAT, 0, Some(1.5f32.to_le_bytes().to_vec())), s("1.5")),
        (
            (t::DOUBLE, 0, Some((-0.25f64).to_le_bytes().to_vec())),
            s("-0.25"),
        ),
        (
            (
                t::DOUBLE,
                0,
                Some(4111111111111111f64.to_le_bytes().to_vec()),
            ),
            s("4111111111111111"),
        ),
        // Longer than the stack buffer a value's text is built in.
        (
            (t::DOUBLE, 0, Some(1e300f64.to_le_bytes().to_vec())),
            Some(format!("1{}", "0".repeat(300))),
        ),
        (
            (t::VAR_STRING, 0, Some(lenenc("héllo 'x'".as_bytes()))),
            s("héllo 'x'"),
        ),
        (
            (t::STRING, 0, Some(lenenc(&[0xFA; 300]))),
            Some("\u{FFFD}".repeat(300)),
        ),
        ((t::VARCHAR, 0, Some(lenenc(b"caf\xe9"))), s("caf\u{FFFD}")),
        (
            (t::BLOB, 0, Some(lenenc(&[0x01, 0x02, 0xFF]))),
            s("\\x0102ff"),
        ),
        ((t::BLOB, 0, Some(lenenc(b"plain text"))), s("plain text")),
        (
            (t::NEWDECIMAL, 0, Some(lenenc(b"-123.4500"))),
            s("-123.4500"),
        ),
        (
            (t::JSON, 0, Some(lenenc(br#"{"a":[1,2]}"#))),
            s(r#"{"a":[1,2]}"#),
        ),
        ((t::ENUM, 0, Some(lenenc(b"red"))), s("red")),
        ((t::SET, 0, Some(lenenc(b"a,b"))), s("a,b")),
        ((t::BIT, 0, Some(lenenc(&[0x05]))), s("\\x05")),
        (
            (t::GEOMETRY, 0, Some(lenenc(&[0, 0, 0, 0, 1]))),
            s("\\x0000000001"),
        ),
        (
            (t::DATE, 0, Some(datetime(4, (2024, 2, 29), (0, 0, 0), 0))),
            s("2024-02-29"),
        ),
        (
            (t::DATE, 0, Some(datetime(0, (0, 0, 0), (0, 0, 0), 0))),
            s("0000-00-00"),
        ),
        (
            (t::DATETIME, 0, Some(datetime(0, (0, 0, 0), (0, 0, 0), 0))),
            s("0000-00-00 00:00:00"),
        ),
        (
            (
                t::DATETIME,
                0,
                Some(datetime(7, (2024, 2, 29), (13, 5, 9), 0)),
            ),
            s("2024-02-29 13:05:09"),
        ),
        (
            (
                t::TIMESTAMP,
                0,
                Some(datetime(11, (1999, 12, 31), (23, 59, 59), 5)),
            ),
            s("1999-12-31 23:59:59.000005"),
        ),
        (
            (t::TIME, 0, Some(time(0, false, 0, (0, 0, 0), 0))),
            s("00:00:00"),
        ),
        (
            (t::TIME, 0, Some(time(8, true, 34, (22, 59, 59), 0))),
            s("-838:59:59"),
        ),
        (
            (t::TIME, 0, Some(time(12, false, 0, (1, 2, 3), 500_000))),
            s("01:02:03.500000"),
        ),
        (
            (
                t::TIME,
                0,
                Some(time(12, false, u32::MAX, (23, 59, 59), 999_999)),
            ),
            s("103079215103:59:59.999999"),
        ),
        ((t::NULL, 0, Some(vec![])), None),
        ((t::VAR_STRING, 0, None), None),
    ];
    let (params, want): (Vec<Bound>, Vec<Option<String>>) = cases.into_iter().unzip();
    assert_eq!(decode(&params), want);
    // One at a time too: each value's length is right on its own, not only in sequence.
    for (param, want) in params.iter().zip(&want) {
        assert_eq!(&decode(std::slice::from_ref(param))[0], want, "{param:?}");
    }
}

#[test]
fn null_bitmap_spans_bytes_past_eight_parameters() {
    let params: Vec<Bound> = (0..11u8)
        .map(|i| {
            let v = (![0, 7, 8, 10].contains(&i)).then(|| vec![i]);
            (t::TINY, 0, v)
        })
        .collect();
    let values = decode(&params);
    let got: Vec<Option<&str>> = values.iter().map(Option::as_deref).collect();
    assert_eq!(
        got,
        [
            None,
            Some("1"),
            Some("2"),
            Some("3"),
            Some("4"),
            Some("5"),
            Some("6"),
            None,
            None,
            Some("9"),
            None
        ]
    );
}

#[test]
fn later_executes_reuse_the_types_bound_before() {
    let first: Vec<Bound> = vec![
        (t::LONGLONG, 0x80, Some(5u64.to_le_bytes().to_vec())),
        (t::VAR_STRING, 0, Some(lenenc(b"a"))),
    ];
    let mut types = Vec::new();
    let (_, v) = decode_execute(&execute(&first, true), 2, &mut types, &[]).unwrap();
    assert_eq!(v, [Some("5".into()), Some("a".into())]);
    assert_eq!(types, [(t::LONGLONG, 0x80), (t::VAR_STRING, 0)]);
    let second: Vec<Bound> = vec![
        (t::LONGLONG, 0x80, Some(u64::MAX.to_le_bytes().to_vec())),
        (t::VAR_STRING, 0, None),
    ];
    let packet = execute(&second, false);
    let (_, v) = decode_execute(&packet, 2, &mut types, &[]).unwrap();
    assert_eq!(v, [Some("18446744073709551615".into()), None]);
    // Without types ever sent, a flag-0 execute cannot be read.
    assert!(decode_execute(&packet, 2, &mut Vec::new(), &[]).is_err());
    // New types sent with a value that fails are kept: the client will not send them again.
    let mut bad = execute(
        &[(t::TINY, 0, Some(vec![1])), (t::TINY, 0, Some(vec![]))],
        true,
    );
    bad.pop();
    assert!(decode_execute(&bad, 2, &mut types, &[]).is_err());
    assert_eq!(types, [(t::TINY, 0), (t::TINY, 0)]);
}

#[test]
fn long_data_stands_in_for_the_missing_values() {
    let piece = |param: u16, data: &[u8]| {
        let mut p = vec![0x18, 7, 0, 0, 0];
        p.extend(param.to_le_bytes());
        p.extend(data);
        p
    };
    // The caller appends the pieces per parameter, as the server does.
    let mut long_data: Vec<Option<Vec<u8>>> = vec![None; 4];
    for packet in [
        piece(0, b"big "),
        piece(2, &[0xFF, 0x00]),
        piece(0, b"text"),
    ] {
        let (stmt, param, data) = decode_long_data(&packet).unwrap();
        assert_eq!(stmt, 7);
        long_data[usize::from(param)]
            .get_or_insert_with(Vec::new)
            .extend_from_slice(data);
    }
    assert_eq!(decode_long_data(&piece(3, b"")).unwrap().2, b"");
    assert!(decode_long_data(&[0x18, 7, 0, 0, 0, 1]).is_err());
    assert!(decode_long_data(&[0x17, 7, 0, 0, 0, 1, 0]).is_err());
    // Long-data parameters have no value in the execute, whatever their NULL bit says.
    let params: Vec<Bound> = vec![
        (t::VAR_STRING, 0, Some(vec![])),
        (t::LONG, 0, Some(9i32.to_le_bytes().to_vec())),
        (t::BLOB, 0, None),
        (t::VAR_STRING, 0, None),
    ];
    let mut types = Vec::new();
    let (_, v) = decode_execute(&execute(&params, true), 4, &mut types, &long_data).unwrap();
    assert_eq!(
        v,
        [
            Some("big text".into()),
            Some("9".into()),
            Some("\\xff00".into()),
            None
        ]
    );
}

#[test]
fn truncated_or_unknown_parameters_are_errors_that_say_where() {
    let params: Vec<Bound> = vec![
        (t::LONG, 0, Some(1i32.to_le_bytes().to_vec())),
        (t::VAR_STRING, 0, Some(lenenc(b"abc"))),
        (
            t::DATETIME,
            0,
            Some(datetime(11, (2024, 1, 2), (3, 4, 5), 6)),
        ),
        (t::TIME, 0, Some(time(12, true, 1, (2, 3, 4), 5))),
        (t::DOUBLE, 0, None),
    ];
    let full = execute(&params, true);
    for cut in 0..full.len() {
        assert!(
            decode_execute(&full[..cut], params.len(), &mut Vec::new(), &[]).is_err(),
            "{cut}"
        );
    }
    let mut long = full.clone();
    long.push(0);
    assert!(decode_execute(&long, params.len(), &mut Vec::new(), &[]).is_err());
    assert!(decode_execute(&execute(&[], true)[..9], 0, &mut Vec::new(), &[]).is_err());
    let unknown = execute(&[(t::TINY, 0, Some(vec![1])), (42, 0, Some(vec![1]))], true);
    let e = decode_execute(&unknown, 2, &mut Vec::new(), &[]).unwrap_err();
    assert_eq!(
        e.to_string(),
        "parameter 1 (0-based) of type 42 (unknown): unknown type, so where its value ends \
         cannot be told"
    );
    let bad_len = execute(&[(t::DATE, 0, Some(vec![5, 0, 0, 0, 0, 0]))], true);
    let e = decode_execute(&bad_len, 1, &mut Vec::new(), &[]).unwrap_err();
    assert!(
        e.to_string()
            .contains("parameter 0 (0-based) of type 10 (DATE)"),
        "{e}"
    );
    assert!(decode_execute(&[0x03, b'S'], 0, &mut Vec::new(), &[]).is_err());
}

#[test]
fn no_input_panics() {
    // Random packets, and every single-byte corruption of a valid one: errors, never panics.
    let mut seed = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let columns: Vec<Column> = [t::LONG, t::VAR_STRING, t::TIME, t::DATETIME, t::DOUBLE]
        .iter()
        .map(|&tc| column("t", "c", tc, 0))
        .collect();
    let masker = pan_masker();
    let plan = plan(&masker, &columns);
    for _ in 0..5_000 {
        let len = (next() % 40) as usize;
        let mut p: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        if let Some(first) = p.first_mut() {
            *first = [0x00, 0x17, 0x18][(next() % 3) as usize];
        }
        let _ = decode_execute(&p, (next() % 12) as usize, &mut Vec::new(), &[]);
        let _ = decode_long_data(&p);
        let _ = PrepareOk::decode(&p);
        let _ = mask_binary_row(&plan, &columns, &p, &mut MaskCounts::new());
    }
    let valid = execute(
        &[
            (t::TIME, 0, Some(time(8, false, 1, (2, 3, 4), 0))),
            (t::BLOB, 0, Some(lenenc(b"xyz"))),
        ],
        true,
    );
    for i in 0..valid.len() {
        for b in [0x00, 0x01, 0x7F, 0xFB, 0xFC, 0xFE, 0xFF] {
            let mut p = valid.clone();
            p[i] = b;
            let _ = decode_execute(&p, 2, &mut Vec::new(), &[]);
        }
    }
}

/// A column as a ColumnDefinition41 describes it.
fn column(table: &str, name: &str, type_code: u8, flags: u16) -> Column {
    let mut p = Vec::new();
    for s in ["def", "shop", table, table, name, name] {
        put_lenenc_bytes(&mut p, Some(s.as_bytes()));
    }
    p.extend([0x0c, 45, 0, 0, 1, 0, 0, type_code]);
    p.extend(flags.to_le_bytes());
    p.extend([0, 0, 0]);
    Column::decode(&p).unwrap()
}

fn pan_masker() -> Masker {
    let specs: Vec<MaskSpec> = vec![
        toml::from_str("name = \"pan\"\ndetect = \"pan\"\nstyle = \"keep-last-4\"").unwrap(),
        toml::from_str("name = \"pins\"\ncolumns = [\"customers.pin\"]").unwrap(),
    ];
    MaskPolicy::new(specs, vec![1; 32]).unwrap().for_groups(&[])
}

/// A binary row: header, NULL bitmap offset by two bits, the non-NULL values.
fn row(values: &[Option<Vec<u8>>]) -> Vec<u8> {
    let mut bitmap = vec![0u8; (values.len() + 9) / 8];
    for (i, v) in values.iter().enumerate() {
        if v.is_none() {
            bitmap[(i + 2) / 8] |= 1 << ((i + 2) % 8);
        }
    }
    let mut p = vec![0x00];
    p.extend(bitmap);
    for v in values.iter().flatten() {
        p.extend(v);
    }
    p
}

/// Ten columns, so the NULL bitmap (offset by two bits) spans two bytes.
fn customer_columns() -> Vec<Column> {
    vec![
        column("customers", "id", t::LONG, 0),
        column("customers", "name", t::VAR_STRING, 0),
        column("customers", "note", t::BLOB, 0),
        column("customers", "card_big", t::LONGLONG, UNSIGNED),
        column("customers", "pin", t::LONG, 0),
        column("customers", "created", t::DATETIME, 0),
        column("customers", "amount", t::NEWDECIMAL, 0),
        column("customers", "score", t::DOUBLE, 0),
        column("customers", "nick", t::VAR_STRING, 0),
        column("customers", "born", t::YEAR, UNSIGNED),
    ]
}

const UNSIGNED: u16 = crate::columns::UNSIGNED_FLAG;

fn customer_row(name: &[u8], card: u64) -> Vec<Option<Vec<u8>>> {
    vec![
        Some(7i32.to_le_bytes().to_vec()),
        Some(lenenc(name)),
        None,
        Some(card.to_le_bytes().to_vec()),
        Some(1234i32.to_le_bytes().to_vec()),
        Some(datetime(7, (2024, 5, 1), (12, 0, 0), 0)),
        Some(lenenc(b"12.50")),
        Some(2.5f64.to_le_bytes().to_vec()),
        None,
        Some(1990u16.to_le_bytes().to_vec()),
    ]
}

#[test]
fn a_pan_in_a_varchar_is_masked_and_masked_numbers_become_null() {
    let columns = customer_columns();
    assert!(columns[3].unsigned() && !columns[0].unsigned());
    let plan = plan(&pan_masker(), &columns);
    let mut counts = MaskCounts::new();
    let payload = row(&customer_row(b"Ada 4111 1111 1111 1111", 4111111111111111));
    let masked = mask_binary_row(&plan, &columns, &payload, &mut counts)
        .unwrap()
        .unwrap();
    let mut want = customer_row(b"Ada **** **** **** 1111", 0);
    want[3] = None; // a BIGINT holding a card number: NULL, a mask is not a number
    want[4] = None; // a column rule on an INT: NULL
    assert_eq!(masked, row(&want), "every other column byte for byte");
    assert_eq!(counts.total(), 3);
    assert_eq!(counts.get("customers.pin"), 1);
    // Nothing to mask (a clean INT under a detector stays too): forwarded as it came.
    let clean = row(&customer_row(b"Bob", 7));
    let mut counts = MaskCounts::new();
    let plan_without_pins = {
        let specs: Vec<MaskSpec> =
            vec![toml::from_str("name = \"pan\"\ndetect = \"pan\"").unwrap()];
        let m = MaskPolicy::new(specs, vec![1; 32]).unwrap().for_groups(&[]);
        crate::columns::plan(&m, &columns)
    };
    assert!(!plan_without_pins.is_noop());
    assert_eq!(
        mask_binary_row(&plan_without_pins, &columns, &clean, &mut counts).unwrap(),
        None
    );
    assert!(counts.is_empty());
}

#[test]
fn a_mask_that_cannot_be_written_into_a_column_type_makes_it_null() {
    // A column rule on a YEAR (text to the plan, a 2-byte integer on the wire) and on a
    // VARCHAR (written in place, longer than the value it replaces).
    let specs: Vec<MaskSpec> =
        vec![toml::from_str("name = \"c\"\ncolumns = [\"born\", \"name\"]").unwrap()];
    let masker = MaskPolicy::new(specs, vec![1; 32]).unwrap().for_groups(&[]);
    let columns = customer_columns();
    let plan = plan(&masker, &columns);
    let payload = row(&customer_row(b"Al", 1));
    let masked = mask_binary_row(&plan, &columns, &payload, &mut MaskCounts::new())
        .unwrap()
        .unwrap();
    let mut want = customer_row(b"[redacted]", 1);
    want[9] = None;
    assert_eq!(masked, row(&want));
}

#[test]
fn malformed_rows_are_refused() {
    let columns = customer_columns();
    let plan = plan(&pan_masker(), &columns);
    let payload = row(&customer_row(b"Ada", 1));
    for cut in 0..payload.len() {
        assert!(
            mask_binary_row(&plan, &columns, &payload[..cut], &mut MaskCounts::new()).is_err(),
            "{cut}"
        );
    }
    let mut long = payload.clone();
    long.push(0);
    assert!(mask_binary_row(&plan, &columns, &long, &mut MaskCounts::new()).is_err());
    let mut not_a_row = payload.clone();
    not_a_row[0] = 0xFE;
    assert!(mask_binary_row(&plan, &columns, &not_a_row, &mut MaskCounts::new()).is_err());
    let odd = [column("customers", "x", 0x30, 0)];
    let odd_plan = crate::columns::plan(&pan_masker(), &odd);
    let e = mask_binary_row(&odd_plan, &odd, &[0, 0, 1], &mut MaskCounts::new()).unwrap_err();
    assert!(
        e.to_string()
            .starts_with("column 0 (0-based) of type 48 (unknown)"),
        "{e}"
    );
    // A no-op plan forwards rows unread, as for text rows.
    let noop = crate::columns::plan(
        &MaskPolicy::new(vec![], vec![1; 32])
            .unwrap()
            .for_groups(&[]),
        &columns,
    );
    assert_eq!(
        mask_binary_row(&noop, &columns, &long, &mut MaskCounts::new()).unwrap(),
        None
    );
}
