//! Tests of the PAN detector: layouts, lengths, boundaries, Luhn, and probing against a slow scan.

use super::*;

fn pans(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    find_each(text.as_bytes(), |s, e| {
        out.push(&text[s..e]);
        ControlFlow::Continue(())
    });
    out
}

#[test]
fn luhn_check() {
    assert!(luhn(b"4111111111111111"));
    assert!(luhn(b"378282246310005"));
    assert!(luhn(b"79927398713"));
    assert!(luhn(b"4111 1111-1111 1111"));
    assert!(!luhn(b"4111111111111112"));
    assert!(!luhn(b"79927398710"));
}

#[test]
fn plain_and_grouped_pans() {
    assert_eq!(pans("4111111111111111"), ["4111111111111111"]);
    assert_eq!(pans("card 4111 1111 1111 1111."), ["4111 1111 1111 1111"]);
    assert_eq!(pans("(4111-1111-1111-1111)"), ["4111-1111-1111-1111"]);
    assert_eq!(pans("amex 3782 822463 10005 ok"), ["3782 822463 10005"]);
    assert_eq!(pans("13: 4222222222222 x"), ["4222222222222"]);
    assert_eq!(pans("19: 4111111111111111110"), ["4111111111111111110"]);
    assert_eq!(
        pans("a=4111111111111111,b=5555555555554444"),
        ["4111111111111111", "5555555555554444"]
    );
}

#[test]
fn lengths_outside_13_to_19_are_not_pans() {
    // 12 digits (Luhn-valid) and 20 digits (Luhn-valid) are ignored.
    assert!(luhn(b"411111111117"));
    assert!(pans("411111111117").is_empty());
    assert!(pans("4111 1111 117").is_empty());
    assert!(luhn(b"41111111111111111115"));
    assert!(pans("41111111111111111115").is_empty());
    // 4 x 6 digits in 4-digit groups: 24 digits, no window of 13-19 passes Luhn.
    assert!(luhn(b"4111111111111111111111111"));
    assert!(pans("4111111111111111111111111").is_empty());
}

#[test]
fn embedded_runs_are_not_pans() {
    assert!(pans("x4111111111111111").is_empty());
    assert!(pans("4111111111111111abc").is_empty());
    assert!(pans("99994111111111111111").is_empty());
    assert!(pans("41111111111111119999").is_empty());
    // A separate group in front does not hide a PAN behind it.
    assert_eq!(pans("12 4111111111111111"), ["4111111111111111"]);
    assert_eq!(pans("2024 4111 1111 1111 1111"), ["4111 1111 1111 1111"]);
    // Mixed separators and tiny groups are not card layouts.
    assert!(pans("4111 1111-1111 1111").is_empty());
    assert!(pans("4 1 1 1 1 1 1 1 1 1 1 1 1 1 1 1").is_empty());
    assert!(pans("2024-05-01 12:34:56.123456+00").is_empty());
}

#[test]
fn non_luhn_is_not_a_pan() {
    assert!(pans("4111111111111112").is_empty());
    assert!(pans("4111 1111 1111 1112").is_empty());
    assert!(pans("1234567890123").is_empty());
}

#[test]
fn every_offset_is_found() {
    // The probe stride must not skip a PAN wherever it sits.
    for pad in 0..40 {
        for sep in ["", " ", "-"] {
            let pan = ["4111", "1111", "1111", "1111"].join(sep);
            let text = format!("{}{}{}", "a ".repeat(pad / 2), " ".repeat(pad % 2), pan);
            assert_eq!(pans(&text), [pan.as_str()], "{text:?}");
            let text = format!("{pan}{}", ", x".repeat(pad));
            assert_eq!(pans(&text), [pan.as_str()], "{text:?}");
        }
    }
}

#[test]
fn probing_never_skips_a_pan() {
    // Digit-heavy neighbours around PANs of every layout, at every offset near the window.
    let fillers = [
        "2024-05-01 12:34:56",
        "+1 415-555-0123",
        "12 34 56",
        "-- 1 -",
        "x",
    ];
    let layouts = [
        "4111111111111111",
        "4111 1111 1111 1111",
        "3782-822463-10005",
        "4222222222222",
    ];
    for filler in fillers {
        for pan in layouts {
            for pad in 0..34 {
                let text = format!(
                    "{}{}:{pan}:{filler}",
                    filler.repeat(pad / 8),
                    &"abcdefgh"[..pad % 8]
                );
                assert_eq!(pans(&text), [pan], "{text:?}");
            }
        }
    }
}

/// The PANs of `hay` found the slow way: every run, no probing, no fast path.
fn reference(hay: &[u8]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < hay.len() {
        if is_digit(hay[i]) {
            let run = Run::around(hay, i, 0);
            if run.digits >= MIN_DIGITS {
                let _ = run.scan(hay, &mut |s, e| {
                    out.push((s, e));
                    ControlFlow::Continue(())
                });
            }
            i = run.end + 1;
        } else {
            i += 1;
        }
    }
    out
}

#[test]
fn probing_agrees_with_the_slow_way() {
    let alphabet = b"0123456789012345678901234567890123456789  --a:\xc3";
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut next = |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        (state % n as u64) as usize
    };
    let mut found = 0;
    for _ in 0..50_000 {
        let len = next(90);
        let text: Vec<u8> = (0..len).map(|_| alphabet[next(alphabet.len())]).collect();
        let mut fast = Vec::new();
        find_each(&text, |s, e| {
            fast.push((s, e));
            ControlFlow::Continue(())
        });
        assert_eq!(
            fast,
            reference(&text),
            "{:?}",
            String::from_utf8_lossy(&text)
        );
        found += fast.len();
    }
    assert!(found > 100, "the generator should make some PANs ({found})");
}

#[test]
fn odd_bytes_never_panic() {
    let bytes: Vec<u8> = (0..=255u8).cycle().take(4096).collect();
    find_each(&bytes, |_, _| ControlFlow::Continue(()));
    assert_eq!(first(b""), None);
    assert_eq!(first(b"-"), None);
    assert_eq!(first(b"\xff4111111111111111\xfe"), Some((1, 17)));
}
