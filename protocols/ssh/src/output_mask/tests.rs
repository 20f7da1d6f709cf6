//! Tests of the output masker: a stream cut anywhere masks as the whole stream would.

use gatehouse_core::mask::{MaskPolicy, MaskSpec};

use super::*;

const PANS: [&str; 5] = [
    "4111111111111111",
    "4111 1111 1111 1111",
    "4111-1111-1111-1111",
    "3782 822463 10005",
    "4222222222222",
];

fn masker(detect: &[&str], columns: &[&str]) -> Masker {
    let specs = detect
        .iter()
        .map(|d| MaskSpec {
            name: (*d).to_owned(),
            detect: Some((*d).to_owned()),
            regex: None,
            columns: Vec::new(),
            style: "redact".to_owned(),
            exempt_groups: Vec::new(),
        })
        .chain((!columns.is_empty()).then(|| MaskSpec {
            name: "cols".to_owned(),
            detect: None,
            regex: None,
            columns: columns.iter().map(|c| (*c).to_owned()).collect(),
            style: "redact".to_owned(),
            exempt_groups: Vec::new(),
        }))
        .collect();
    MaskPolicy::new(specs, b"gatehouse test key, 32 bytes...!".to_vec())
        .unwrap()
        .for_groups(&[])
}

fn pan() -> Masker {
    masker(&["pan"], &[])
}

fn pan_email() -> Masker {
    masker(&["pan", "email"], &[])
}

/// The stream `pieces` through a fresh masker, flushed at the end.
fn stream(m: &Masker, pieces: &[&[u8]]) -> Vec<u8> {
    let mut om = OutputMasker::new(m, "stdout");
    let mut out = Vec::new();
    for piece in pieces {
        out.extend_from_slice(&om.push(Bytes::copy_from_slice(piece)));
        assert!(om.held_len() <= MAX_HOLD);
    }
    out.extend_from_slice(&om.flush());
    assert!(!om.is_holding());
    out
}

/// `text` masked in one piece.
fn whole(m: &Masker, text: &[u8]) -> Vec<u8> {
    m.mask_bytes(text, &mut MaskCounts::new(), "whole")
        .into_owned()
}

#[test]
fn a_card_split_in_two_anywhere_is_masked() {
    for m in [pan(), pan_email()] {
        for card in PANS {
            let text = format!("paid with {card} today\n");
            let expected = whole(&m, text.as_bytes());
            assert_eq!(expected, b"paid with [redacted] today\n");
            for i in 0..=text.len() {
                let (a, b) = text.as_bytes().split_at(i);
                assert_eq!(stream(&m, &[a, b]), expected, "{card:?} cut at {i}");
            }
        }
    }
}

#[test]
fn a_card_split_in_three_anywhere_is_masked() {
    let m = pan();
    for card in PANS {
        let text = format!("{card}\n{card}");
        let expected = whole(&m, text.as_bytes());
        assert_eq!(expected, b"[redacted]\n[redacted]");
        for i in 0..=text.len() {
            for j in i..=text.len() {
                let t = text.as_bytes();
                let out = stream(&m, &[&t[..i], &t[i..j], &t[j..]]);
                assert_eq!(out, expected, "{card:?} cut at {i} and {j}");
            }
        }
    }
}

#[test]
fn separators_and_neighbours_decide_as_in_one_piece() {
    let m = pan();
    for text in [
        "order 2024 4111 1111 1111 1111 shipped",
        "4111 1111-1111 1111",
        "x4111111111111111 y",
        "4111111111111111x",
        "12 4111111111111111",
        "41111111111111111115",
        "+1 415-555-0123 2024-05-01 12:34:56",
    ] {
        let expected = whole(&m, text.as_bytes());
        for i in 0..=text.len() {
            let (a, b) = text.as_bytes().split_at(i);
            assert_eq!(stream(&m, &[a, b]), expected, "{text:?} cut at {i}");
        }
    }
}

#[test]
fn forty_digits_are_no_card_wherever_cut() {
    let m = pan();
    // Luhn-valid 16-digit windows sit inside it, but a run of 40 holds no card number.
    let text = format!("id {} end", "4111111111111111".repeat(3).get(..40).unwrap());
    assert_eq!(whole(&m, text.as_bytes()), text.as_bytes());
    for i in 0..=text.len() {
        for j in (i..=text.len()).step_by(3) {
            let t = text.as_bytes();
            let out = stream(&m, &[&t[..i], &t[i..j], &t[j..]]);
            assert_eq!(out, text.as_bytes(), "cut at {i} and {j}");
        }
    }
}

#[test]
fn multibyte_characters_split_across_chunks_come_out_whole() {
    let text = "Grüße — 💳 carte 4111 1111 1111 1111, ✓ café@exemple.fr 日本語\n";
    for m in [pan(), pan_email()] {
        let expected = whole(&m, text.as_bytes());
        for i in 0..=text.len() {
            let (a, b) = text.as_bytes().split_at(i);
            let out = stream(&m, &[a, b]);
            assert_eq!(out, expected, "cut at {i}");
            assert!(std::str::from_utf8(&out).is_ok());
        }
    }
}

#[test]
fn an_address_split_across_chunks_is_masked() {
    let m = pan_email();
    let text = b"mail alice.smith@example.com or bob@example.org.\n";
    let expected = whole(&m, text);
    assert_eq!(expected, b"mail [redacted] or [redacted].\n");
    for i in 0..=text.len() {
        let (a, b) = text.split_at(i);
        assert_eq!(stream(&m, &[a, b]), expected, "cut at {i}");
    }
}

#[test]
fn binary_data_passes_unharmed() {
    let m = pan_email();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let data: Vec<u8> = (0..200_000).map(|_| rng.below(256) as u8).collect();
    let mut om = OutputMasker::new(&m, "stdout");
    let mut out = Vec::new();
    let mut rest = &data[..];
    while !rest.is_empty() {
        let (chunk, tail) = rest.split_at(rng.below(40_000).min(rest.len()));
        out.extend_from_slice(&om.push(Bytes::copy_from_slice(chunk)));
        rest = tail;
    }
    out.extend_from_slice(&om.flush());
    assert_eq!(out, whole(&m, &data));
    // Every byte value, one at a time.
    let every: Vec<u8> = (0..=255u8).cycle().take(2048).collect();
    let pieces: Vec<&[u8]> = every.chunks(1).collect();
    assert_eq!(stream(&m, &pieces), whole(&m, &every));
}

#[test]
fn flush_sends_the_held_tail() {
    let m = pan();
    let mut om = OutputMasker::new(&m, "stdout");
    // A prompt ending in digits is held until the stream goes quiet.
    assert_eq!(
        om.push(Bytes::from_static(b"listening on port 2222")),
        "listening on port "
    );
    assert!(om.is_holding());
    assert_eq!(om.held_len(), 4);
    assert_eq!(om.flush(), "2222");
    assert!(!om.is_holding());
    assert_eq!(om.flush(), "");
    // A held card number is masked when flushed.
    assert_eq!(om.push(Bytes::from_static(b"4111 1111 1111 1111")), "");
    assert_eq!(om.flush(), "[redacted]");
    // An empty chunk changes nothing.
    assert_eq!(om.push(Bytes::new()), "");
    assert!(!om.is_holding());
}

#[test]
fn counts_pieces_masked_and_takes_the_log() {
    let m = pan();
    let mut om = OutputMasker::new(&m, "stderr");
    assert!(om.take_log().is_empty());
    let _ = om.push(Bytes::from_static(
        b"a 4111111111111111 b 5555555555554444\n",
    ));
    let _ = om.push(Bytes::from_static(b"nothing here\n"));
    let _ = om.push(Bytes::from_static(b"c 4111 1111"));
    let _ = om.push(Bytes::from_static(b" 1111 1111\n"));
    let log = om.take_log();
    assert_eq!(log.len(), 1);
    assert_eq!(log.get("stderr"), Some(&2));
    assert!(om.take_log().is_empty());
}

#[test]
fn clean_chunks_are_not_copied() {
    let m = pan();
    let mut om = OutputMasker::new(&m, "stdout");
    for text in [
        &b"total 0\ndrwxr-xr-x root\n"[..],
        b"ends in a word",
        b"\xff\xfe\x00 binary",
    ] {
        let chunk = Bytes::copy_from_slice(text);
        let out = om.push(chunk.clone());
        assert_eq!(out.as_ptr(), chunk.as_ptr());
        assert_eq!(out, chunk);
    }
    // A chunk ending in digits: the part before them is still a slice of it.
    let chunk = Bytes::from_static(b"file 1 of 12");
    let out = om.push(chunk.clone());
    assert_eq!(out.as_ptr(), chunk.as_ptr());
    assert_eq!(out, "file 1 of ");
}

#[test]
fn without_detectors_chunks_pass_as_they_are() {
    let m = masker(&[], &["cards.pan"]);
    let mut om = OutputMasker::new(&m, "stdout");
    let chunk = Bytes::from_static(b"4111 1111 1111 1111");
    let out = om.push(chunk.clone());
    assert_eq!(out.as_ptr(), chunk.as_ptr());
    assert!(!om.is_holding());
}

#[test]
fn a_letter_before_a_chunk_boundary_still_glues() {
    // Text ending in a letter goes out at once; a run starting the next chunk is still seen as
    // glued to it, as in one piece.
    for m in [pan(), pan_email()] {
        assert_eq!(whole(&m, b"id4111111111111111"), b"id4111111111111111");
        assert_eq!(
            stream(&m, &[b"id", b"4111111111111111"]),
            b"id4111111111111111"
        );
        assert_eq!(
            stream(&m, &[b"id", b"4111111111111111 ", b"4111111111111111"]),
            b"id4111111111111111 [redacted]"
        );
        assert_eq!(stream(&m, &[b"id ", b"4111111111111111"]), b"id [redacted]");
    }
}

/// A small deterministic generator (xorshift).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n as u64) as usize
    }
}

/// Random text from `alphabet`, cut at random places: the same as masking it in one piece.
fn agree_with_one_piece(m: &Masker, alphabet: &[&str], rounds: usize, seed: u64) {
    let mut rng = Rng(seed);
    for _ in 0..rounds {
        let mut text = Vec::new();
        let len = 1 + rng.below(1200);
        while text.len() < len {
            text.extend_from_slice(alphabet[rng.below(alphabet.len())].as_bytes());
        }
        let mut cuts: Vec<usize> = (0..rng.below(8))
            .map(|_| rng.below(text.len() + 1))
            .collect();
        cuts.sort_unstable();
        let mut pieces = Vec::new();
        let mut from = 0;
        for c in cuts {
            pieces.push(&text[from..c]);
            from = c;
        }
        pieces.push(&text[from..]);
        assert_eq!(
            String::from_utf8_lossy(&stream(m, &pieces)),
            String::from_utf8_lossy(&whole(m, &text)),
            "text {:?} in pieces {:?}",
            String::from_utf8_lossy(&text),
            pieces.iter().map(|p| p.len()).collect::<Vec<_>>()
        );
    }
}

#[test]
fn digit_heavy_streams_agree_with_one_piece() {
    let alphabet = [
        "0",
        "1",
        "4",
        "5",
        "9",
        " ",
        "-",
        "\n",
        ":",
        ".",
        "x",
        "id",
        "4111",
        "1111",
        "4111 1111 1111 1111",
        "4111111111111111",
        "3782-822463-10005",
        "5555",
        "0000 ",
        "é",
    ];
    agree_with_one_piece(&pan(), &alphabet, 3000, 7);
}

#[test]
fn wordy_streams_agree_with_one_piece() {
    let alphabet = [
        "a",
        "b",
        "x",
        "Z",
        "0",
        "1",
        "4",
        " ",
        "-",
        ".",
        "@",
        "_",
        "\n",
        "'",
        "\t",
        "ü",
        "alice",
        "@example.com",
        "4111 1111 1111 1111",
        "4111111111111111",
        "mail ",
    ];
    agree_with_one_piece(&pan_email(), &alphabet, 3000, 11);
}

#[test]
fn long_tokens_agree_with_one_piece() {
    // Long digit lines and long words force cuts inside tokens.
    let digits = [
        "1",
        "2",
        "3",
        "4",
        "7",
        "0",
        " ",
        "-",
        "4111 1111 1111 1111 ",
    ];
    agree_with_one_piece(&pan(), &digits, 1500, 13);
    let words = ["ab", "cd", "e", "1", "4111111111111111", "-"];
    agree_with_one_piece(&pan(), &words, 1000, 17);
    agree_with_one_piece(&pan_email(), &words, 1000, 19);
}
