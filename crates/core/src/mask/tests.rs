//! Tests of the masking engine through its public API: policy, masker, plan, counts.

use std::borrow::Cow;

use super::*;

const KEY: &[u8] = b"gatehouse test key, 32 bytes...!";
const PAN: &str = "4111111111111111";

fn spec(name: &str) -> MaskSpec {
    MaskSpec {
        name: name.to_owned(),
        detect: None,
        regex: None,
        columns: Vec::new(),
        style: "redact".to_owned(),
        exempt_groups: Vec::new(),
    }
}

fn detect(name: &str, what: &str, style: &str) -> MaskSpec {
    MaskSpec {
        detect: Some(what.to_owned()),
        style: style.to_owned(),
        ..spec(name)
    }
}

fn columns(name: &str, selectors: &[&str], style: &str) -> MaskSpec {
    MaskSpec {
        columns: selectors.iter().map(|s| (*s).to_owned()).collect(),
        style: style.to_owned(),
        ..spec(name)
    }
}

fn masker(specs: Vec<MaskSpec>) -> Masker {
    MaskPolicy::new(specs, KEY.to_vec())
        .unwrap()
        .for_groups(&[])
}

fn text(m: &Masker, t: &str) -> String {
    m.mask_text(t, &mut MaskCounts::new(), "statement")
        .into_owned()
}

fn col<'a>(table: Option<&'a str>, name: &'a str, type_oid: u32, binary: bool) -> ColumnMeta<'a> {
    ColumnMeta {
        table,
        name,
        type_oid,
        binary,
    }
}

fn replaced(m: Masked) -> String {
    match m {
        Masked::Replaced(v) => String::from_utf8(v).unwrap(),
        other => panic!("not replaced: {other:?}"),
    }
}

/// numeric_send's layout.
fn numeric(weight: i16, dscale: u16, digits: &[u16]) -> Vec<u8> {
    let mut v = Vec::new();
    for w in [digits.len() as u16, weight as u16, 0, dscale] {
        v.extend_from_slice(&w.to_be_bytes());
    }
    for d in digits {
        v.extend_from_slice(&d.to_be_bytes());
    }
    v
}

#[test]
fn policy_and_masker_are_shareable() {
    fn shareable<T: Send + Sync + 'static>() {}
    shareable::<MaskPolicy>();
    shareable::<Masker>();
    shareable::<MaskPlan>();
}

#[test]
fn free_text_styles() {
    let stmt = format!("SELECT * FROM t WHERE pan = '4111 1111 1111 1111' OR pan = '{PAN}'");
    let redact = masker(vec![detect("pan", "pan", "redact")]);
    assert_eq!(
        text(&redact, &stmt),
        "SELECT * FROM t WHERE pan = '[redacted]' OR pan = '[redacted]'"
    );
    let last4 = masker(vec![detect("pan", "pan", "keep-last-4")]);
    assert_eq!(
        text(&last4, &stmt),
        "SELECT * FROM t WHERE pan = '**** **** **** 1111' OR pan = '************1111'"
    );
    let hash = masker(vec![detect("pan", "pan", "hash")]);
    let hashed = text(&hash, &stmt);
    let h: Vec<&str> = hashed.split('\'').filter(|s| s.starts_with("h:")).collect();
    assert_eq!(h.len(), 2);
    assert_eq!(
        h[0], h[1],
        "formatting of the same PAN does not change its hash"
    );
    let email = masker(vec![detect("email", "email", "redact")]);
    assert_eq!(
        text(&email, "ERROR: duplicate key (email)=(bob@example.com)"),
        "ERROR: duplicate key (email)=([redacted])"
    );
}

#[test]
fn regex_rule() {
    let ssn = masker(vec![MaskSpec {
        regex: Some(r"\b\d{3}-\d{2}-\d{4}\b".into()),
        style: "keep-last-4".into(),
        ..spec("ssn")
    }]);
    assert_eq!(text(&ssn, "ssn=123-45-6789;"), "ssn=***-**-6789;");
    assert_eq!(text(&ssn, "ssn=123-45-678;"), "ssn=123-45-678;");
}

#[test]
fn hash_is_stable_across_policies_and_depends_on_the_key() {
    let a = masker(vec![detect("pan", "pan", "hash")]);
    let b = masker(vec![detect("pan", "pan", "hash")]);
    let other = MaskPolicy::new(
        vec![detect("pan", "pan", "hash")],
        b"another key of 16+ bytes".to_vec(),
    )
    .unwrap()
    .for_groups(&[]);
    assert_eq!(text(&a, PAN), text(&b, PAN));
    assert_ne!(text(&a, PAN), text(&other, PAN));
    assert_ne!(text(&a, PAN), text(&a, "5555555555554444"));
    // A whole-column hash of the same bare value agrees with the detector's hash: joins line up.
    let whole = masker(vec![columns("c", &["card_number"], "hash")]);
    let plan = whole.plan(&[col(Some("cards"), "card_number", 25, false)]);
    let out = replaced(plan.apply(0, Some(PAN.as_bytes()), &mut MaskCounts::new()));
    assert_eq!(out, text(&a, PAN));
}

#[test]
fn nothing_matched_borrows_and_counts_nothing() {
    let m = masker(vec![
        detect("pan", "pan", "keep-last-4"),
        detect("email", "email", "redact"),
    ]);
    let mut counts = MaskCounts::new();
    let t = "SELECT id, name FROM customers WHERE created_at > '2024-05-01 12:00:00' LIMIT 10";
    assert!(matches!(
        m.mask_text(t, &mut counts, "statement"),
        Cow::Borrowed(_)
    ));
    assert!(matches!(
        m.mask_bytes(t.as_bytes(), &mut counts, "statement"),
        Cow::Borrowed(_)
    ));
    let plan = m.plan(&[
        col(Some("c"), "note", 25, false),
        col(Some("c"), "amount", 1700, true),
    ]);
    assert_eq!(
        plan.apply(0, Some(b"call me at noon"), &mut counts),
        Masked::Unchanged
    );
    assert_eq!(
        plan.apply(1, Some(&numeric(0, 2, &[12, 3400])), &mut counts),
        Masked::Unchanged
    );
    assert_eq!(plan.apply(0, None, &mut counts), Masked::Unchanged);
    assert!(counts.is_empty());
}

#[test]
fn exempt_groups_escape_the_rule() {
    let policy = MaskPolicy::new(
        vec![
            MaskSpec {
                exempt_groups: vec!["fraud-investigators".into()],
                ..detect("pan", "pan", "redact")
            },
            detect("email", "email", "redact"),
        ],
        KEY.to_vec(),
    )
    .unwrap();
    let t = format!("{PAN} bob@example.com");
    let everyone = policy.for_groups(&["dba".into()]);
    assert_eq!(text(&everyone, &t), "[redacted] [redacted]");
    let fraud = policy.for_groups(&["dba".into(), "fraud-investigators".into()]);
    assert_eq!(text(&fraud, &t), format!("{PAN} [redacted]"));
    assert_eq!(fraud.rule_names().collect::<Vec<_>>(), ["email"]);
    let all_exempt = MaskPolicy::new(
        vec![MaskSpec {
            exempt_groups: vec!["x".into()],
            ..detect("pan", "pan", "redact")
        }],
        KEY.to_vec(),
    )
    .unwrap()
    .for_groups(&["x".into()]);
    assert!(all_exempt.is_empty());
    assert!(all_exempt.plan(&[col(None, "pan", 25, false)]).is_noop());
}

#[test]
fn column_rules_select_by_glob() {
    let m = masker(vec![
        columns("cards", &["*.card_number"], "keep-last-4"),
        columns("customers", &["customers.*"], "redact"),
        columns("prefix", &["card_*"], "redact"),
        columns("bare", &["email"], "hash"),
    ]);
    let cols = [
        col(Some("payments"), "card_number", 25, false),
        col(Some("customers"), "name", 1043, false),
        col(Some("orders"), "card_holder", 25, false),
        col(Some("users"), "email", 25, false),
        col(Some("orders"), "id", 23, false),
        col(None, "card_number", 25, false),
    ];
    let plan = m.plan(&cols);
    assert!(!plan.is_noop());
    let touched: Vec<bool> = (0..cols.len()).map(|i| plan.touches(i)).collect();
    assert_eq!(touched, [true, true, true, true, false, true]);
    let mut counts = MaskCounts::new();
    let pan = "4111 1111 1111 1111".as_bytes();
    assert_eq!(
        replaced(plan.apply(0, Some(pan), &mut counts)),
        "***************1111"
    );
    assert_eq!(
        replaced(plan.apply(1, Some(b"Alice"), &mut counts)),
        "[redacted]"
    );
    assert_eq!(
        replaced(plan.apply(2, Some(b"Alice"), &mut counts)),
        "[redacted]"
    );
    assert!(replaced(plan.apply(3, Some(b"a@b.io"), &mut counts)).starts_with("h:"));
    assert_eq!(plan.apply(4, Some(b"42"), &mut counts), Masked::Unchanged);
    assert_eq!(
        replaced(plan.apply(5, Some(pan), &mut counts)),
        "***************1111"
    );
    assert_eq!(
        counts.iter().collect::<Vec<_>>(),
        [
            ("card_number", 1),
            ("customers.name", 1),
            ("orders.card_holder", 1),
            ("payments.card_number", 1),
            ("users.email", 1)
        ]
    );
    // The first column rule that selects a column decides it.
    let first = masker(vec![
        columns("a", &["pan"], "redact"),
        columns("b", &["*.pan"], "hash"),
    ]);
    let plan = first.plan(&[col(Some("t"), "pan", 25, false)]);
    assert_eq!(
        replaced(plan.apply(0, Some(b"x"), &mut MaskCounts::new())),
        "[redacted]"
    );
}

#[test]
fn column_rules_without_detectors_leave_other_columns_alone() {
    let m = masker(vec![columns("cards", &["*.card_number"], "redact")]);
    assert!(!m.has_detectors());
    let plan = m.plan(&[
        col(Some("t"), "note", 25, false),
        col(Some("t"), "id", 20, true),
    ]);
    assert!(plan.is_noop());
    assert!(!plan.touches(0));
    assert_eq!(
        plan.apply(7, Some(b"x"), &mut MaskCounts::new()),
        Masked::Unchanged
    );
    assert!(matches!(
        m.mask_text(PAN, &mut MaskCounts::new(), "s"),
        Cow::Borrowed(_)
    ));
}

#[test]
fn detect_with_columns_masks_columns_whole_and_detects_elsewhere() {
    let m = masker(vec![MaskSpec {
        columns: vec!["*.card_number".into()],
        ..detect("pan", "pan", "keep-last-4")
    }]);
    assert!(m.has_detectors());
    let plan = m.plan(&[
        col(Some("cards"), "card_number", 25, false),
        col(Some("cards"), "note", 25, false),
    ]);
    let mut counts = MaskCounts::new();
    // Whole: even a value that is no PAN.
    assert_eq!(
        replaced(plan.apply(0, Some(b"not a card 12"), &mut counts)),
        "*********d 12"
    );
    assert_eq!(
        replaced(plan.apply(1, Some(format!("paid with {PAN}").as_bytes()), &mut counts)),
        "paid with ************1111"
    );
    assert_eq!(
        plan.apply(1, Some(b"paid cash"), &mut counts),
        Masked::Unchanged
    );
    assert_eq!(text(&m, &format!("x = {PAN}")), "x = ************1111");
    assert_eq!(counts.get("cards.card_number"), 1);
    assert_eq!(counts.get("cards.note"), 1);
}

#[test]
fn binary_numbers_holding_a_pan_become_null() {
    let m = masker(vec![detect("pan", "pan", "keep-last-4")]);
    let plan = m.plan(&[
        col(Some("t"), "n8", 20, true),
        col(Some("t"), "num", 1700, true),
        col(Some("t"), "n4", 23, true),
        col(Some("t"), "ts", 1184, true),
        col(Some("t"), "n8text", 20, false),
    ]);
    assert!(plan.touches(0) && plan.touches(1) && plan.touches(2) && plan.touches(4));
    assert!(!plan.touches(3), "a binary timestamp cannot hold a PAN");
    let mut counts = MaskCounts::new();
    let pan: i64 = 4111111111111111;
    assert_eq!(
        plan.apply(0, Some(&pan.to_be_bytes()), &mut counts),
        Masked::Null
    );
    assert_eq!(
        plan.apply(0, Some(&(pan + 1).to_be_bytes()), &mut counts),
        Masked::Unchanged
    );
    assert_eq!(
        plan.apply(0, Some(&[1, 2, 3]), &mut counts),
        Masked::Null,
        "malformed int8"
    );
    let num = numeric(3, 0, &[4111, 1111, 1111, 1111]);
    assert_eq!(plan.apply(1, Some(&num), &mut counts), Masked::Null);
    let num_cents = numeric(3, 2, &[4111, 1111, 1111, 1111]);
    assert_eq!(plan.apply(1, Some(&num_cents), &mut counts), Masked::Null);
    let amount = numeric(1, 2, &[1, 2345, 6700]);
    assert_eq!(plan.apply(1, Some(&amount), &mut counts), Masked::Unchanged);
    assert_eq!(
        plan.apply(2, Some(&7i32.to_be_bytes()), &mut counts),
        Masked::Unchanged
    );
    // A number in text format cannot carry a mask either.
    assert_eq!(
        plan.apply(4, Some(PAN.as_bytes()), &mut counts),
        Masked::Null
    );
    assert_eq!(counts.get("t.n8"), 2);
    assert_eq!(counts.get("t.num"), 2);
    assert_eq!(counts.get("t.n8text"), 1);
    assert_eq!(counts.total(), 5);
}

#[test]
fn column_rules_on_types_that_cannot_hold_a_mask_give_null() {
    let m = masker(vec![columns("c", &["*.card_number"], "keep-last-4")]);
    let plan = m.plan(&[
        col(Some("t"), "card_number", 20, true),
        col(Some("t"), "card_number", 1700, false),
        col(Some("t"), "card_number", 17, true),
        col(Some("t"), "card_number", 25, true),
    ]);
    let mut counts = MaskCounts::new();
    assert_eq!(
        plan.apply(0, Some(&4111111111111111i64.to_be_bytes()), &mut counts),
        Masked::Null
    );
    assert_eq!(
        plan.apply(1, Some(PAN.as_bytes()), &mut counts),
        Masked::Null
    );
    assert_eq!(
        plan.apply(2, Some(PAN.as_bytes()), &mut counts),
        Masked::Null
    );
    assert_eq!(
        replaced(plan.apply(3, Some(PAN.as_bytes()), &mut counts)),
        "************1111"
    );
    assert_eq!(
        plan.apply(0, None, &mut counts),
        Masked::Unchanged,
        "NULL stays NULL"
    );
    assert_eq!(counts.get("t.card_number"), 4);
}

#[test]
fn binary_text_and_json() {
    let m = masker(vec![
        detect("pan", "pan", "keep-last-4"),
        detect("email", "email", "redact"),
    ]);
    let plan = m.plan(&[
        col(Some("t"), "v", 1043, true),
        col(Some("t"), "doc", 3802, true),
        col(Some("t"), "doc", 114, false),
        col(Some("t"), "blob", 17, true),
    ]);
    let mut counts = MaskCounts::new();
    let v = format!("{PAN} / bob@example.com");
    assert_eq!(
        replaced(plan.apply(0, Some(v.as_bytes()), &mut counts)),
        "************1111 / [redacted]"
    );

    let mut jsonb = vec![1u8];
    jsonb.extend_from_slice(format!(r#"{{"pan": {PAN}, "note": "card {PAN}"}}"#).as_bytes());
    let out = match plan.apply(1, Some(&jsonb), &mut counts) {
        Masked::Replaced(v) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(out[0], 1);
    let text = std::str::from_utf8(&out[1..]).unwrap();
    assert_eq!(
        text,
        r#"{"pan": "************1111", "note": "card ************1111"}"#
    );
    assert!(serde_json::from_str::<serde_json::Value>(text).is_ok());
    assert_eq!(
        plan.apply(1, Some(&[2, b'{', b'}']), &mut counts),
        Masked::Unchanged
    );
    let unknown_version = [&[2u8][..], PAN.as_bytes()].concat();
    assert_eq!(
        plan.apply(1, Some(&unknown_version), &mut counts),
        Masked::Null
    );

    let json = format!(r#"[{PAN}, "bob@example.com"]"#);
    let out = replaced(plan.apply(2, Some(json.as_bytes()), &mut counts));
    assert_eq!(out, r#"["************1111", "[redacted]"]"#);

    assert_eq!(
        plan.apply(3, Some(PAN.as_bytes()), &mut counts),
        Masked::Null
    );
    assert_eq!(
        plan.apply(3, Some(b"\x00\x01"), &mut counts),
        Masked::Unchanged
    );
}

#[test]
fn whole_json_values_stay_json() {
    let m = masker(vec![columns("doc", &["payload"], "keep-last-4")]);
    let plan = m.plan(&[
        col(None, "payload", 3802, true),
        col(None, "payload", 114, false),
    ]);
    let doc = br#"{"pan": "4111111111111111"}"#;
    let mut counts = MaskCounts::new();
    let out = match plan.apply(0, Some(&[&[1u8][..], doc].concat()), &mut counts) {
        Masked::Replaced(v) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(out[0], 1);
    let v: serde_json::Value = serde_json::from_slice(&out[1..]).unwrap();
    assert_eq!(v, serde_json::json!("***********************11\"}"));
    let v: serde_json::Value =
        serde_json::from_str(&replaced(plan.apply(1, Some(doc), &mut counts))).unwrap();
    assert!(v.is_string());
}

#[test]
fn invalid_utf8_is_masked_without_panic() {
    let m = masker(vec![detect("pan", "pan", "keep-last-4")]);
    let plan = m.plan(&[col(None, "v", 25, false)]);
    let value = b"\xff\xfe 4111-1111-1111-1111 \xc3";
    let out = match plan.apply(0, Some(value), &mut MaskCounts::new()) {
        Masked::Replaced(v) => v,
        other => panic!("{other:?}"),
    };
    assert_eq!(out, b"\xff\xfe ****-****-****-1111 \xc3");
    let bytes = m.mask_bytes(value, &mut MaskCounts::new(), "error");
    assert_eq!(&*bytes, &out[..]);
}

#[test]
fn counts_per_label_in_free_text() {
    let m = masker(vec![detect("pan", "pan", "redact")]);
    let mut counts = MaskCounts::new();
    let _ = m.mask_text(&format!("{PAN} {PAN}"), &mut counts, "statement");
    let _ = m.mask_text(PAN, &mut counts, "param $1");
    let _ = m.mask_text("nothing", &mut counts, "param $2");
    assert_eq!(
        counts.iter().collect::<Vec<_>>(),
        [("param $1", 1), ("statement", 1)]
    );
    assert_eq!(
        serde_json::to_string(&counts).unwrap(),
        r#"{"param $1":1,"statement":1}"#
    );
}

#[test]
fn rows_longer_than_their_plan_are_not_trusted() {
    let m = masker(vec![detect("pan", "pan", "redact")]);
    let plan = m.plan(&[col(None, "v", 25, false)]);
    assert!(!plan.touches(1));
    assert_eq!(
        plan.apply(1, Some(b"x"), &mut MaskCounts::new()),
        Masked::Null
    );
}

#[test]
fn empty_policy() {
    let policy = MaskPolicy::new(Vec::new(), Vec::new()).unwrap();
    assert!(policy.is_empty());
    let m = policy.for_groups(&["any".into()]);
    assert!(m.is_empty() && !m.has_detectors());
    assert!(m.plan(&[col(None, "card_number", 25, false)]).is_noop());
}

#[test]
fn policy_errors_name_the_mask() {
    let err = MaskPolicy::new(vec![detect("p", "pan", "hash")], Vec::new()).unwrap_err();
    assert!(err
        .to_string()
        .starts_with("mask \"p\" uses style \"hash\""));
    // No key is needed when nothing hashes.
    assert!(MaskPolicy::new(vec![detect("p", "pan", "redact")], Vec::new()).is_ok());
}
