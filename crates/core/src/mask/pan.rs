//! The PAN detector: Luhn-valid card numbers of 13 to 19 digits, plain or grouped.
//!
//! A candidate is a *run*: digits, possibly in groups joined by one space or one dash
//! (`4111111111111111`, `4111 1111 1111 1111`, `3782-822463-10005`). Within a run a PAN is
//!
//! - one group of 13–19 digits, or
//! - two or more consecutive groups of 3–6 digits each, joined by the same separator, 13–19
//!   digits in all (the printed layouts: 4-4-4-4, 4-6-5, 4-4-4-4-3),
//!
//! whose digits pass the Luhn check, and which does not touch an ASCII letter at the run's ends
//! (`id4111111111111111` is an identifier, not a card). A group is never split: 20 or more
//! digits in a row hold no PAN, wherever one would start. A PAN may sit among other groups of its
//! run (`order 2024 4111 1111 1111 1111`); the leftmost candidate wins, then the longest.
//!
//! Speed: a PAN is at least 13 bytes long, so the scanner probes one byte in 13 and only looks
//! around a probe that lands on a digit (or on a separator before a digit). Text without long
//! digit runs costs about one comparison per 13 bytes; Luhn runs only on runs of 13+ digits.

use std::ops::ControlFlow;

/// Fewest digits in a PAN.
const MIN_DIGITS: usize = 13;
/// Most digits in a PAN.
const MAX_DIGITS: usize = 19;
/// Group sizes accepted in a grouped PAN.
const GROUP: std::ops::RangeInclusive<usize> = 3..=6;

#[inline(always)]
fn is_digit(b: u8) -> bool {
    b.wrapping_sub(b'0') < 10
}

#[inline(always)]
fn is_sep(b: u8) -> bool {
    b == b' ' || b == b'-'
}

#[inline(always)]
fn is_letter(b: u8) -> bool {
    (b | 0x20).wrapping_sub(b'a') < 26
}

#[inline(always)]
fn digit_at(hay: &[u8], i: usize) -> bool {
    hay.get(i).is_some_and(|&b| is_digit(b))
}

/// The shortest text that can hold a PAN.
pub(crate) const MIN_LEN: usize = MIN_DIGITS;

/// Calls `found(start, end)` for every PAN in `hay`, left to right, until it breaks.
#[cfg(test)]
pub(crate) fn find_each(hay: &[u8], found: impl FnMut(usize, usize) -> ControlFlow<()>) {
    find_from(hay, 0, found);
}

/// Calls `found(start, end)` for every PAN at or after `from` — 0, or the end of a PAN found
/// before: the bytes before `from` are not looked at again — until it breaks.
#[inline]
pub(crate) fn find_from(
    hay: &[u8],
    from: usize,
    found: impl FnMut(usize, usize) -> ControlFlow<()>,
) {
    if hay.len() >= from.saturating_add(MIN_LEN) {
        scan(hay, from, found);
    }
}

/// The first PAN in `hay`.
#[inline]
pub(crate) fn first(hay: &[u8]) -> Option<(usize, usize)> {
    let mut first = None;
    find_from(hay, 0, |start, end| {
        first = Some((start, end));
        ControlFlow::Break(())
    });
    first
}

fn scan(hay: &[u8], floor: usize, mut found: impl FnMut(usize, usize) -> ControlFlow<()>) {
    // Every PAN starts at or after `from`; the shortest one starting there covers `from + 12`.
    let mut from = floor;
    loop {
        let probe = from + MIN_DIGITS - 1;
        let Some(&b) = hay.get(probe) else { return };
        let at = if is_digit(b) {
            probe
        } else if is_sep(b) && digit_at(hay, probe + 1) {
            probe + 1
        } else {
            // No PAN covers `probe`, so none starts at or before it.
            from = probe + 1;
            continue;
        };
        let run = Run::around(hay, at, floor);
        if run.digits >= MIN_DIGITS && run.scan(hay, &mut found).is_break() {
            return;
        }
        // The byte at `run.end` belongs to no run, so no PAN starts there.
        from = run.end + 1;
    }
}

/// The Luhn check over the digits of `bytes` (anything else is skipped).
pub(crate) fn luhn(bytes: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    for &b in bytes.iter().rev() {
        let d = b.wrapping_sub(b'0');
        if d > 9 {
            continue;
        }
        let d = u32::from(d);
        sum += if double {
            let x = d * 2;
            if x > 9 {
                x - 9
            } else {
                x
            }
        } else {
            d
        };
        double = !double;
    }
    sum.is_multiple_of(10)
}

/// A maximal run of digit groups joined by single separators: `hay[start..end]`.
struct Run {
    start: usize,
    end: usize,
    digits: usize,
    groups: usize,
}

impl Run {
    /// The run containing the digit at `at`, not reaching back before `floor`.
    #[inline]
    fn around(hay: &[u8], at: usize, floor: usize) -> Self {
        let mut start = at;
        let mut groups = 1usize;
        loop {
            while start > floor && digit_at(hay, start - 1) {
                start -= 1;
            }
            if start >= floor + 2
                && hay.get(start - 1).is_some_and(|&b| is_sep(b))
                && digit_at(hay, start - 2)
            {
                start -= 2;
                groups += 1;
            } else {
                break;
            }
        }
        let mut end = at + 1;
        loop {
            while digit_at(hay, end) {
                end += 1;
            }
            if hay.get(end).is_some_and(|&b| is_sep(b)) && digit_at(hay, end + 1) {
                end += 2;
                groups += 1;
            } else {
                break;
            }
        }
        Self {
            start,
            end,
            digits: end - start - (groups - 1),
            groups,
        }
    }

    /// Reports the PANs in this run.
    fn scan(
        &self,
        hay: &[u8],
        found: &mut impl FnMut(usize, usize) -> ControlFlow<()>,
    ) -> ControlFlow<()> {
        let left_letter = self.start > 0 && hay.get(self.start - 1).is_some_and(|&b| is_letter(b));
        let right_letter = hay.get(self.end).is_some_and(|&b| is_letter(b));
        if self.groups == 1 {
            // The common case: one plain run of digits.
            let ok = self.digits <= MAX_DIGITS
                && !left_letter
                && !right_letter
                && hay.get(self.start..self.end).is_some_and(luhn);
            return if ok {
                found(self.start, self.end)
            } else {
                ControlFlow::Continue(())
            };
        }
        let mut start = self.start;
        while start < self.end {
            let first_end = group_end(hay, start, self.end);
            let best = if start == self.start && left_letter {
                None
            } else {
                self.longest_from(hay, start, first_end, right_letter)
            };
            match best {
                Some(end) => {
                    if found(start, end).is_break() {
                        return ControlFlow::Break(());
                    }
                    start = end + 1;
                }
                None => start = first_end + 1,
            }
        }
        ControlFlow::Continue(())
    }

    /// The end of the longest PAN starting at the group `hay[start..first_end]`.
    fn longest_from(
        &self,
        hay: &[u8],
        start: usize,
        first_end: usize,
        right_letter: bool,
    ) -> Option<usize> {
        let valid = |end: usize| {
            !(end == self.end && right_letter) && hay.get(start..end).is_some_and(luhn)
        };
        let first_len = first_end - start;
        if (MIN_DIGITS..=MAX_DIGITS).contains(&first_len) {
            return valid(first_end).then_some(first_end);
        }
        if !GROUP.contains(&first_len) {
            return None;
        }
        let sep = hay.get(first_end).copied()?;
        let (mut end, mut digits, mut best) = (first_end, first_len, None);
        while end < self.end && hay.get(end) == Some(&sep) {
            let next_end = group_end(hay, end + 1, self.end);
            let len = next_end - (end + 1);
            digits += len;
            if !GROUP.contains(&len) || digits > MAX_DIGITS {
                break;
            }
            end = next_end;
            if digits >= MIN_DIGITS && valid(end) {
                best = Some(end);
            }
        }
        best
    }
}

/// The end of the digit group starting at `start`, no further than `limit`.
#[inline]
fn group_end(hay: &[u8], start: usize, limit: usize) -> usize {
    let mut end = start;
    while end < limit && digit_at(hay, end) {
        end += 1;
    }
    end
}

#[cfg(test)]
mod tests {
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
}
