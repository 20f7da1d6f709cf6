//! Styles: what a masked value or match is replaced with.
//!
//! - `redact`: the marker [`REDACTED`] (`[redacted]`).
//! - `keep-last-4`: for a detector's match, every letter or digit but the last four becomes `*`
//!   and separators stay (`**** **** **** 1111`); for a whole column value every character but
//!   the last four becomes `*`. Fewer than eight characters to hide behind: all are masked, so a
//!   short value (a CVV, a PIN) is never mostly shown.
//! - `hash`: `h:` and the first 16 hex digits of HMAC-SHA256 under the gateway's key. Equal
//!   values give equal outputs (joins and group-bys still line up), across restarts while the key
//!   stays the same; without the key the value cannot be guessed back.
//!
//! Every output is ASCII; a masked character that was several UTF-8 bytes becomes one `*`.

use std::fmt;

use aws_lc_rs::hmac;

use super::detect::Normalize;

/// The marker `redact` writes.
pub(crate) const REDACTED: &[u8] = b"[redacted]";
/// How many characters `keep-last-4` keeps.
const KEEP: usize = 4;
/// Below this many characters `keep-last-4` keeps none.
const KEEP_MIN: usize = 8;
/// Hex digits of the HMAC `hash` shows.
const HASH_HEX: usize = 16;

/// How a rule masks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MaskStyle {
    /// Replace with [`REDACTED`].
    Redact,
    /// Keep the last four characters.
    KeepLast4,
    /// Keyed hash.
    Hash,
}

/// The keyed hash of the `hash` style.
pub(crate) struct Hasher {
    key: hmac::Key,
}

impl fmt::Debug for Hasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Hasher(HMAC-SHA256, key hidden)")
    }
}

impl Hasher {
    /// A hasher under `key` (the gateway's secret).
    pub(crate) fn new(key: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, key),
        }
    }

    /// Appends `h:` and 16 hex digits of the HMAC of `value` (normalised) to `out`.
    fn write(&self, normalize: Normalize, value: &[u8], out: &mut Vec<u8>) {
        let mut ctx = hmac::Context::with_key(&self.key);
        match normalize {
            Normalize::Raw => ctx.update(value),
            Normalize::Digits | Normalize::Lowercase => {
                let mut chunk = [0u8; 64];
                let mut n = 0;
                for &b in value {
                    let b = match normalize {
                        Normalize::Digits if !b.is_ascii_digit() => continue,
                        _ => b.to_ascii_lowercase(),
                    };
                    if let Some(slot) = chunk.get_mut(n) {
                        *slot = b;
                        n += 1;
                    }
                    if n == chunk.len() {
                        ctx.update(&chunk);
                        n = 0;
                    }
                }
                ctx.update(chunk.get(..n).unwrap_or_default());
            }
        }
        let tag = ctx.sign();
        const HEX: &[u8; 16] = b"0123456789abcdef";
        out.extend_from_slice(b"h:");
        for &b in tag.as_ref().iter().take(HASH_HEX / 2) {
            out.push(HEX[usize::from(b >> 4)]);
            out.push(HEX[usize::from(b & 0x0f)]);
        }
    }
}

impl MaskStyle {
    /// Parses the configured name.
    pub(crate) fn parse(name: &str) -> Option<Self> {
        match name {
            "redact" => Some(Self::Redact),
            "keep-last-4" => Some(Self::KeepLast4),
            "hash" => Some(Self::Hash),
            _ => None,
        }
    }

    /// Appends the replacement of a detector's match to `out`.
    pub(crate) fn write_match(
        self,
        hasher: &Hasher,
        normalize: Normalize,
        found: &[u8],
        out: &mut Vec<u8>,
    ) {
        match self {
            Self::Redact => out.extend_from_slice(REDACTED),
            Self::KeepLast4 => keep_last(found, true, out),
            Self::Hash => hasher.write(normalize, found, out),
        }
    }

    /// Appends the replacement of a whole column value to `out`.
    pub(crate) fn write_whole(self, hasher: &Hasher, value: &[u8], out: &mut Vec<u8>) {
        match self {
            Self::Redact => out.extend_from_slice(REDACTED),
            Self::KeepLast4 => keep_last(value, false, out),
            Self::Hash => hasher.write(Normalize::Raw, value, out),
        }
    }
}

/// `keep-last-4`: masks every character but the last four (none if fewer than eight).
fn keep_last(value: &[u8], keep_separators: bool, out: &mut Vec<u8>) {
    if value.is_ascii() {
        keep_last_ascii(value, keep_separators, out);
    } else {
        keep_last_utf8(value, keep_separators, out);
    }
}

/// [`keep_last`] for ASCII (every card number, most of everything else): copy, then overwrite.
fn keep_last_ascii(value: &[u8], keep_separators: bool, out: &mut Vec<u8>) {
    let masks = |b: u8| !keep_separators || b.is_ascii_alphanumeric();
    // `value[split..]` holds the last KEEP maskable characters.
    let (mut split, mut kept) = (value.len(), 0usize);
    for (i, &b) in value.iter().enumerate().rev() {
        if kept == KEEP {
            break;
        }
        if masks(b) {
            split = i;
            kept += 1;
        }
    }
    let base = out.len();
    out.extend_from_slice(value);
    let Some(copy) = out.get_mut(base..) else {
        return;
    };
    let (head, tail) = copy.split_at_mut(split.min(copy.len()));
    let mut hidden = 0usize;
    for b in head.iter_mut().filter(|b| masks(**b)) {
        *b = b'*';
        hidden += 1;
    }
    if hidden + kept < KEEP_MIN {
        tail.iter_mut()
            .filter(|b| masks(**b))
            .for_each(|b| *b = b'*');
    }
}

/// What one byte is to `keep-last-4` outside ASCII.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Byte {
    /// Starts a character that may be masked.
    Char,
    /// Continues a multi-byte character.
    Continuation,
    /// A separator kept as is.
    Separator,
}

#[inline]
fn byte_kind(b: u8, keep_separators: bool) -> Byte {
    match b {
        0x80..=0xbf => Byte::Continuation,
        0xc0..=0xff => Byte::Char,
        _ if keep_separators && !b.is_ascii_alphanumeric() => Byte::Separator,
        _ => Byte::Char,
    }
}

/// [`keep_last`] counting UTF-8 characters: a masked character becomes one `*`.
fn keep_last_utf8(value: &[u8], keep_separators: bool, out: &mut Vec<u8>) {
    let chars = value
        .iter()
        .filter(|&&b| byte_kind(b, keep_separators) == Byte::Char)
        .count();
    let keep = if chars >= KEEP_MIN { KEEP } else { 0 };
    let hide = chars - keep;
    let (mut seen, mut showing) = (0usize, false);
    out.reserve(value.len());
    for &b in value {
        match byte_kind(b, keep_separators) {
            Byte::Char => {
                showing = seen >= hide;
                seen += 1;
                out.push(if showing { b } else { b'*' });
            }
            Byte::Continuation if showing => out.push(b),
            Byte::Continuation => {}
            Byte::Separator => out.push(b),
        }
    }
}

#[cfg(test)]
mod tests;
