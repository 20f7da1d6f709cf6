//! The e-mail detector: `local@domain.tld`, found from each `@` (memchr) outwards.
//!
//! The local part is letters, digits and `. _ % + - '`; the domain is two or more labels of
//! letters, digits and `-` joined by dots, the last (the TLD) two or more letters. Dots at the
//! start of the local part and dots or dashes at the end of the domain are left out of the match
//! (`"mail bob@example.com."` matches `bob@example.com`).

use std::ops::ControlFlow;

#[inline(always)]
fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-' | b'\'')
}

#[inline(always)]
fn is_domain(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'.'
}

/// The shortest text that can hold an address (`a@b.cd`).
pub(crate) const MIN_LEN: usize = 6;

/// Calls `found(start, end)` for every address in `hay` whose `@` is at or after `from`, left to
/// right, until it breaks.
pub(crate) fn find_from(
    hay: &[u8],
    from: usize,
    mut found: impl FnMut(usize, usize) -> ControlFlow<()>,
) {
    let mut pos = from;
    while let Some(i) = hay.get(pos..).and_then(|rest| memchr::memchr(b'@', rest)) {
        let at = pos + i;
        match address_around(hay, at) {
            Some((start, end)) => {
                if found(start, end).is_break() {
                    return;
                }
                pos = end;
            }
            None => pos = at + 1,
        }
    }
}

/// The address whose `@` is at `at`, if the bytes around it make one.
fn address_around(hay: &[u8], at: usize) -> Option<(usize, usize)> {
    let mut start = at;
    while start > 0 && hay.get(start - 1).is_some_and(|&b| is_local(b)) {
        start -= 1;
    }
    while start < at && hay.get(start) == Some(&b'.') {
        start += 1;
    }
    if start == at {
        return None;
    }
    let mut end = at + 1;
    while hay.get(end).is_some_and(|&b| is_domain(b)) {
        end += 1;
    }
    while end > at + 1 && hay.get(end - 1).is_some_and(|&b| b == b'.' || b == b'-') {
        end -= 1;
    }
    let domain = hay.get(at + 1..end)?;
    valid_domain(domain).then_some((start, end))
}

/// Two or more non-empty labels, the last two or more letters.
fn valid_domain(domain: &[u8]) -> bool {
    let mut labels = 0usize;
    let mut last: &[u8] = &[];
    for label in domain.split(|&b| b == b'.') {
        if label.is_empty() || label.first() == Some(&b'-') {
            return false;
        }
        labels += 1;
        last = label;
    }
    labels >= 2 && last.len() >= 2 && last.iter().all(u8::is_ascii_alphabetic)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn emails(text: &str) -> Vec<&str> {
        let mut out = Vec::new();
        find_from(text.as_bytes(), 0, |s, e| {
            out.push(&text[s..e]);
            ControlFlow::Continue(())
        });
        out
    }

    #[test]
    fn finds_addresses() {
        assert_eq!(emails("alice@example.com"), ["alice@example.com"]);
        assert_eq!(
            emails("to: Bob.O'Neil+tag@mail.example.co.uk, cc x_y%z@a-b.io."),
            ["Bob.O'Neil+tag@mail.example.co.uk", "x_y%z@a-b.io"]
        );
        assert_eq!(emails("<carol@example.org>"), ["carol@example.org"]);
        assert_eq!(emails("\"dave@example.net\""), ["dave@example.net"]);
        assert_eq!(emails("..eve@example.com"), ["eve@example.com"]);
        assert_eq!(emails("a@b@example.com"), ["b@example.com"]);
    }

    #[test]
    fn rejects_non_addresses() {
        assert!(emails("@example.com").is_empty());
        assert!(emails("user@localhost").is_empty());
        assert!(emails("user@example.c").is_empty());
        assert!(emails("user@example.123").is_empty());
        assert!(emails("user@.example.com").is_empty());
        assert!(emails("user@example..com").is_empty());
        assert!(emails("user@-example.com").is_empty());
        assert!(emails("SELECT 1 @ 2").is_empty());
        assert!(emails("no at sign here").is_empty());
        assert!(emails("@").is_empty());
        assert!(emails("x@").is_empty());
    }
}
