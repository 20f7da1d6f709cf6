//! Tests of the styles: the markers, keep-last-4 on matches and whole values, the keyed hash.

use super::*;

fn whole(style: MaskStyle, v: &str) -> String {
    let mut out = Vec::new();
    style.write_whole(&Hasher::new(b"0123456789abcdef"), v.as_bytes(), &mut out);
    String::from_utf8(out).unwrap()
}

fn matched(style: MaskStyle, n: Normalize, v: &str, key: &[u8]) -> String {
    let mut out = Vec::new();
    style.write_match(&Hasher::new(key), n, v.as_bytes(), &mut out);
    String::from_utf8(out).unwrap()
}

const KEY: &[u8] = b"0123456789abcdef";

#[test]
fn redact() {
    assert_eq!(whole(MaskStyle::Redact, "anything"), "[redacted]");
    assert_eq!(
        matched(MaskStyle::Redact, Normalize::Raw, "x", KEY),
        "[redacted]"
    );
}

#[test]
fn keep_last_4() {
    let k = MaskStyle::KeepLast4;
    assert_eq!(
        matched(k, Normalize::Digits, "4111 1111 1111 1111", KEY),
        "**** **** **** 1111"
    );
    assert_eq!(
        matched(k, Normalize::Digits, "3782-822463-10005", KEY),
        "****-******-*0005"
    );
    assert_eq!(
        matched(k, Normalize::Raw, "bob@example.com", KEY),
        "***@******e.com"
    );
    assert_eq!(whole(k, "4111 1111 1111 1111"), "***************1111");
    assert_eq!(whole(k, "Zoë Washington"), "**********gton");
    assert_eq!(whole(k, "abcdefgé"), "****efgé");
    // Short values are masked entirely.
    assert_eq!(whole(k, "123"), "***");
    assert_eq!(whole(k, "1234567"), "*******");
    assert_eq!(whole(k, "12345678"), "****5678");
    assert_eq!(whole(k, "é"), "*");
    assert_eq!(whole(k, ""), "");
}

#[test]
fn ascii_fast_path_agrees_with_the_general_one() {
    let samples = [
        "",
        "a",
        "1234",
        "1234567",
        "12345678",
        "4111 1111 1111 1111",
        "--12-34--56-78--",
        "a b c d e f g h i",
        "bob@example.com",
        "  x  ",
        "12 34 56 7",
        "h:0123456789abcdef",
    ];
    for s in samples {
        for keep_separators in [true, false] {
            let (mut fast, mut general) = (b"prefix".to_vec(), b"prefix".to_vec());
            keep_last_ascii(s.as_bytes(), keep_separators, &mut fast);
            keep_last_utf8(s.as_bytes(), keep_separators, &mut general);
            assert_eq!(fast, general, "{s:?} keep_separators={keep_separators}");
        }
    }
}

#[test]
fn hash_is_stable_and_keyed() {
    let h = matched(
        MaskStyle::Hash,
        Normalize::Digits,
        "4111 1111 1111 1111",
        KEY,
    );
    assert!(h.starts_with("h:") && h.len() == 18, "{h}");
    assert!(h[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    // Same value, same key: same output; formatting of a PAN does not matter.
    assert_eq!(
        h,
        matched(MaskStyle::Hash, Normalize::Digits, "4111111111111111", KEY)
    );
    assert_eq!(
        h,
        matched(
            MaskStyle::Hash,
            Normalize::Digits,
            "4111-1111-1111-1111",
            KEY
        )
    );
    // Another key, another output; another value, another output.
    assert_ne!(
        h,
        matched(
            MaskStyle::Hash,
            Normalize::Digits,
            "4111111111111111",
            b"another key, 16+"
        )
    );
    assert_ne!(
        h,
        matched(MaskStyle::Hash, Normalize::Digits, "5555555555554444", KEY)
    );
    // E-mails are case-folded; raw values are not.
    assert_eq!(
        matched(
            MaskStyle::Hash,
            Normalize::Lowercase,
            "Bob@Example.COM",
            KEY
        ),
        matched(
            MaskStyle::Hash,
            Normalize::Lowercase,
            "bob@example.com",
            KEY
        )
    );
    assert_ne!(whole(MaskStyle::Hash, "Bob"), whole(MaskStyle::Hash, "bob"));
    // A whole value hashes like the same bytes found by a raw detector.
    assert_eq!(
        whole(MaskStyle::Hash, "x"),
        matched(MaskStyle::Hash, Normalize::Raw, "x", KEY)
    );
    // Long normalised inputs go through in chunks.
    let long = "A".repeat(200);
    assert_eq!(
        matched(MaskStyle::Hash, Normalize::Lowercase, &long, KEY),
        matched(MaskStyle::Hash, Normalize::Raw, &long.to_lowercase(), KEY)
    );
}

#[test]
fn hash_matches_a_reference_hmac() {
    // python3: hmac.new(b"0123456789abcdef", b"4111111111111111", sha256).hexdigest()[:16]
    assert_eq!(
        whole(MaskStyle::Hash, "4111111111111111"),
        "h:6ab68ca2a9a5093a"
    );
}
