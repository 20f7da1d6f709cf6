//! Where the piece sent now ends: before the shortest tail that could still be the beginning of
//! a match.
//!
//! The rules follow the core's detectors (`crates/core/src/mask/pan.rs`, `email.rs`), which this
//! crate cannot call: a card number is a run of digit groups joined by single spaces or dashes,
//! 13–19 digits as one group or as groups of 3–6 joined by one kind of separator, Luhn-valid,
//! not glued to a letter, never part of a group of 20 digits or more; an address is made of
//! letters, digits and `. _ % + - ' @`.
//!
//! A *token* is what a match could still grow from; the byte before it is a *break*. Cutting
//! right after a break leaves every match, and every letter a card number's validity depends on,
//! wholly on one side, so each side masks as the whole would. A token longer than [`MAX_HOLD`]
//! is cut inside by [`forced`], at a place where no card number can straddle the cut.

use std::ops::RangeInclusive;

/// Most bytes held back between chunks: room for an e-mail address (254 bytes at most) and far
/// more than a card number (19 digits, 5 separators) with its context.
pub const MAX_HOLD: usize = 256;

/// A digit group this long is part of no card number however it goes on, so it can be cut
/// where at least this many digits lie on each side.
const LONG_GROUP: usize = 20;
/// Digits of a card number.
const DIGITS: RangeInclusive<usize> = 13..=19;
/// Digits of one group of a grouped card number.
const GROUP: RangeInclusive<usize> = 3..=6;
/// Most groups of a grouped card number (19 digits, three or more a group).
const MAX_GROUPS: usize = 6;

/// What the tail of a piece must hold back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Hold {
    /// Runs of digits and separators, and a letter glued in front of a digit: card numbers.
    Digits,
    /// Also words (letters, digits, `. _ % + - ' @`): e-mail addresses.
    Words,
}

fn is_digit(b: u8) -> bool {
    b.is_ascii_digit()
}

fn is_sep(b: u8) -> bool {
    b == b' ' || b == b'-'
}

fn is_letter(b: u8) -> bool {
    b.is_ascii_alphabetic()
}

fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'' | b'@')
}

fn byte(buf: &[u8], i: usize) -> Option<u8> {
    buf.get(i).copied()
}

fn digit_at(buf: &[u8], i: usize) -> bool {
    byte(buf, i).is_some_and(is_digit)
}

/// Whether `buf[i]` belongs to the token it ends (the byte after it is known to be in it, or
/// is not known yet).
fn in_token(hold: Hold, buf: &[u8], i: usize) -> bool {
    let Some(b) = byte(buf, i) else { return false };
    is_digit(b)
        || (is_sep(b) && i > 0 && digit_at(buf, i - 1))
        || match hold {
            Hold::Words => is_word(b),
            Hold::Digits => is_letter(b) && digit_at(buf, i + 1),
        }
}

/// Where the piece to send ends: `buf[..cut]` masks on its own as it would within the whole
/// stream, `buf[cut..]` (at most [`MAX_HOLD`] bytes) waits for what follows.
pub(super) fn cut(hold: Hold, buf: &[u8]) -> usize {
    let len = buf.len();
    let floor = len.saturating_sub(MAX_HOLD);
    let mut start = len;
    while start > floor && in_token(hold, buf, start - 1) {
        start -= 1;
    }
    if start == floor && floor > 0 && in_token(hold, buf, floor - 1) {
        return forced(buf, floor);
    }
    start
}

/// The cut inside a token longer than [`MAX_HOLD`]: the first place from `floor` on (holding
/// as much as allowed) where no card number can straddle it, else `floor` itself.
fn forced(buf: &[u8], floor: usize) -> usize {
    (floor.max(1)..buf.len())
        .find(|&at| card_safe(buf, at))
        .unwrap_or(floor)
}

/// Whether cutting before `buf[at]` leaves every card number, and what decides whether it is
/// one, on one side. `buf[..at]` is whole; what follows `buf` is not known.
fn card_safe(buf: &[u8], at: usize) -> bool {
    let (Some(a), Some(b)) = (byte(buf, at.wrapping_sub(1)), byte(buf, at)) else {
        return false;
    };
    if is_digit(a) && is_digit(b) {
        return digits_before(buf, at) >= LONG_GROUP && digits_from(buf, at) >= LONG_GROUP;
    }
    if is_sep(a) && is_digit(b) && digit_at(buf, at.wrapping_sub(2)) {
        return !card_across(buf, at);
    }
    if is_digit(a) && is_sep(b) && (at + 1 >= buf.len() || digit_at(buf, at + 1)) {
        return false;
    }
    // A letter touching a run's end decides it is no card number: keep the two together.
    let glued = (is_letter(a) && is_digit(b)) || (is_digit(a) && is_letter(b));
    !glued
}

/// Digits in a row ending just before `at`.
fn digits_before(buf: &[u8], at: usize) -> usize {
    buf.get(..at)
        .map_or(0, |s| s.iter().rev().take_while(|&&b| is_digit(b)).count())
}

/// Digits in a row from `at` on.
fn digits_from(buf: &[u8], at: usize) -> usize {
    buf.get(at..)
        .map_or(0, |s| s.iter().take_while(|&&b| is_digit(b)).count())
}

/// Whether a grouped card number could span the separator before the digit group at `at`: some
/// groups before it and some after, 3–6 digits each, joined by that one separator, 13–19 digits
/// in all and Luhn-valid. Groups not fully known yet (at the end of `buf`) count as spanning.
///
/// When none can, the core's scan (leftmost candidate, then longest) finds the same cards on
/// either side of the cut as in the whole: every window it weighs that crosses the cut fails, and
/// the group at `at` is where it starts looking again either way.
fn card_across(buf: &[u8], at: usize) -> bool {
    let Some(sep) = at.checked_sub(1).and_then(|i| byte(buf, i)) else {
        return true;
    };
    // Groups before the separator, nearest first.
    let mut left = [(0usize, 0usize); MAX_GROUPS];
    let mut n_left = 0;
    let mut end = at - 1;
    while n_left < MAX_GROUPS {
        let start = end - digits_before(buf, end);
        if !GROUP.contains(&(end - start)) {
            break;
        }
        if let Some(slot) = left.get_mut(n_left) {
            *slot = (start, end);
        }
        n_left += 1;
        if start >= 2 && byte(buf, start - 1) == Some(sep) && digit_at(buf, start - 2) {
            end = start - 1;
        } else {
            break;
        }
    }
    let Some(&(nearest_start, nearest_end)) = left.get(..n_left).and_then(<[_]>::first) else {
        return false;
    };
    // Groups from `at` on, as far as a window with the nearest left group can reach.
    let mut right = [(0usize, 0usize); MAX_GROUPS];
    let mut n_right = 0;
    let mut digits = nearest_end - nearest_start;
    let mut start = at;
    while n_right < MAX_GROUPS && digits + GROUP.start() <= *DIGITS.end() {
        if start >= buf.len() {
            // A separator ends what is known: another group may follow.
            return true;
        }
        let end = start + digits_from(buf, start);
        if end >= buf.len() {
            // The group may go on.
            return true;
        }
        let len = end - start;
        digits += len;
        if !GROUP.contains(&len) || digits > *DIGITS.end() {
            break;
        }
        if let Some(slot) = right.get_mut(n_right) {
            *slot = (start, end);
        }
        n_right += 1;
        if byte(buf, end) != Some(sep) || (end + 1 < buf.len() && !digit_at(buf, end + 1)) {
            break;
        }
        start = end + 1;
    }
    let left = left.get(..n_left).unwrap_or_default();
    let right = right.get(..n_right).unwrap_or_default();
    left.iter().any(|&(from, _)| {
        right.iter().any(|&(_, to)| {
            buf.get(from..to).is_some_and(|window| {
                DIGITS.contains(&window.iter().filter(|&&b| is_digit(b)).count()) && luhn(window)
            })
        })
    })
}

/// The Luhn check over the digits of `bytes` (separators skipped).
fn luhn(bytes: &[u8]) -> bool {
    let mut sum = 0u32;
    let mut double = false;
    for &b in bytes.iter().rev().filter(|&&b| is_digit(b)) {
        let d = u32::from(b - b'0');
        sum += match (double, d * 2) {
            (false, _) => d,
            (true, x) if x > 9 => x - 9,
            (true, x) => x,
        };
        double = !double;
    }
    sum.is_multiple_of(10)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn held(hold: Hold, text: &str) -> &str {
        &text[cut(hold, text.as_bytes())..]
    }

    #[test]
    fn holds_the_trailing_token() {
        use Hold::*;
        assert_eq!(held(Digits, "total 12"), "12");
        assert_eq!(held(Digits, "card 4111 1111 "), "4111 1111 ");
        assert_eq!(held(Digits, "card 4111-1111-"), "4111-1111-");
        assert_eq!(held(Digits, "ref x4111"), "x4111");
        assert_eq!(held(Digits, "done.\n"), "");
        assert_eq!(held(Digits, "hello world"), "");
        assert_eq!(held(Digits, "12 -"), "");
        assert_eq!(held(Words, "mail alice@exa"), "alice@exa");
        assert_eq!(held(Words, "mail alice"), "alice");
        assert_eq!(held(Words, "x 4111 1111"), "4111 1111");
        assert_eq!(held(Words, "Grüße"), "e");
        assert_eq!(held(Words, "line\n"), "");
    }

    #[test]
    fn long_tokens_are_cut_where_no_card_straddles() {
        // A plain group: at least 20 digits stay on each side.
        let digits = "7".repeat(600);
        let at = cut(Hold::Digits, digits.as_bytes());
        assert_eq!(at, 600 - MAX_HOLD);
        // Groups of four: the cut lands after a separator no Luhn-valid window spans.
        let groups = "1234 ".repeat(100);
        let at = cut(Hold::Digits, groups.as_bytes());
        assert!((500 - MAX_HOLD..500).contains(&at));
        assert_eq!(&groups.as_bytes()[at - 1..at], b" ");
        assert!(!card_across(groups.as_bytes(), at));
        // A long word: cut between two letters.
        let word = "ab".repeat(300);
        assert_eq!(cut(Hold::Words, word.as_bytes()), 600 - MAX_HOLD);
    }

    #[test]
    fn card_across_sees_spanning_cards() {
        let text = b"4111 1111 1111 1111 x";
        // Every separator inside the card is spanned by it.
        for at in [5, 10, 15] {
            assert!(card_across(text, at), "{at}");
        }
        // Groups reaching the end of what is known may still grow into a card.
        assert!(card_across(b"4111 1111", 5));
        assert!(card_across(b"4111 1111 ", 5));
        // Two groups that cannot make 13 digits with anything after them.
        assert!(!card_across(b"12 34 x", 3));
        assert!(luhn(b"4111-1111-1111-1111") && !luhn(b"4111111111111112"));
    }
}
