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
mod tests;
