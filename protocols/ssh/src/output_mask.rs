//! Masking a channel's output stream (stdout or stderr of an exec or a shell), whose chunks cut
//! card numbers and addresses anywhere.
//!
//! [`OutputMasker`] sends each chunk on at once except its tail when that tail could still be the
//! beginning of a match: a card number whose last digits are in the next chunk must be masked
//! whole. The held tail is masked with what follows it, or sent by
//! [`flush`](OutputMasker::flush) when the stream goes quiet or ends.
//!
//! # What is held back
//!
//! At most [`MAX_HOLD`] bytes: the trailing *token* of what has arrived, i.e. the bytes after the
//! last one no match can contain or touch (`cut.rs` has the rules):
//!
//! - Always: a trailing run of digits and single spaces or dashes between digits, with a letter
//!   glued in front of a digit (a card number is never part of an identifier such as
//!   `id4111…`, so the letter decides whether the run is one). A chunk ending in a letter is
//!   sent whole; a piece that starts with a digit right after it is masked behind that letter.
//! - When the masker masks e-mail addresses: also words, i.e. letters, digits and `. _ % + - ' @`.
//!   Whether it does is asked of the masker once, with a sample address; otherwise text ending in
//!   a letter is sent at once, without a copy.
//!
//! Cut there, the stream is masked exactly as if it had come in one piece, for the built-in
//! detectors (`pan`, `email`). A token longer than [`MAX_HOLD`] (a long line of digits, a
//! base64 blob) is cut inside, where no card number can straddle the cut: between two
//! non-digits, inside a group of 40 digits or more, or between digit groups that no Luhn-valid
//! card layout spans; only a 256-byte stretch of digit groups without any such place is cut
//! blindly. An e-mail address inside a token longer than that may be split.
//!
//! Regex detectors are matched within each piece sent: a match made only of token bytes (digits
//! and separators, such as `123-45-6789`; words too when addresses are masked) is held together
//! like a card number; a longer one, or one containing other bytes (spaces, newlines,
//! punctuation), may be missed when a chunk boundary falls inside it.
//!
//! Masking a shell's output is evidence hygiene, not a boundary: a user with a shell can print a
//! card number in a form no detector knows.
//!
//! # Cost
//!
//! Without detectors a chunk is returned as is. Otherwise each chunk is scanned once by the
//! masker; a chunk that follows no held tail and has nothing masked is returned as a slice of
//! itself (no copy). A held tail (at most [`MAX_HOLD`] bytes) is copied, and the next chunk is
//! copied behind it; so is a chunk starting with a digit right after one ending in a letter.
//! With card numbers alone that is a few chunks in a hundred of binary data (those ending in a
//! digit); with e-mail addresses too, most chunks of text (they end inside a word).
//!
//! # Counts
//!
//! Each piece returned by [`push`](OutputMasker::push) or [`flush`](OutputMasker::flush) in
//! which something was masked counts once under the stream's label, so a count says how many
//! times masking struck, not how many card numbers there were.

use std::borrow::Cow;

use bytes::{Bytes, BytesMut};
use gatehouse_core::mask::{MaskCounts, Masker};
use gatehouse_core::MaskLog;

mod cut;

pub use cut::MAX_HOLD;

use cut::Hold;

/// A sample address: if the masker masks it, words must be held back too.
const EMAIL_PROBE: &[u8] = b"probe@example.com";

/// The masking state of one output stream of one channel (stdout and stderr each have one).
#[derive(Debug)]
pub struct OutputMasker {
    /// The session's masker.
    masker: Masker,
    /// What the masking log counts under (`stdout`, `stderr`).
    label: Box<str>,
    /// Whether the masker scans text at all; without, chunks pass as they are.
    scans: bool,
    /// What a tail must hold back.
    hold: Hold,
    /// The tail not sent yet: at most [`MAX_HOLD`] bytes.
    held: Vec<u8>,
    /// The last byte sent (as it came, before masking): a run of digits starting what is sent
    /// next is no card number if glued to a letter there.
    sent_last: Option<u8>,
    /// Pieces masked since the last [`take_log`](Self::take_log).
    counts: MaskCounts,
}

impl OutputMasker {
    /// A stream masked with `masker` (cloned: one `Arc`), counted under `label` in the masking log.
    pub fn new(masker: &Masker, label: &str) -> Self {
        let scans = masker.has_detectors();
        let masks_email = scans
            && matches!(
                masker.mask_bytes(EMAIL_PROBE, &mut MaskCounts::new(), "probe"),
                Cow::Owned(_)
            );
        Self {
            masker: masker.clone(),
            label: label.into(),
            scans,
            hold: if masks_email {
                Hold::Words
            } else {
                Hold::Digits
            },
            held: Vec::new(),
            sent_last: None,
            counts: MaskCounts::new(),
        }
    }

    /// Takes the next chunk of the stream and returns what may be sent now, masked: the chunk
    /// after any tail held from before, less the tail it holds back itself. May be empty.
    /// A slice of `chunk` when nothing was held before and nothing was masked.
    pub fn push(&mut self, chunk: Bytes) -> Bytes {
        if !self.scans || chunk.is_empty() {
            return chunk;
        }
        let buf = if self.held.is_empty() {
            chunk
        } else {
            let mut joined = BytesMut::with_capacity(self.held.len() + chunk.len());
            joined.extend_from_slice(&self.held);
            joined.extend_from_slice(&chunk);
            self.held.clear();
            joined.freeze()
        };
        let cut = cut::cut(self.hold, &buf);
        self.held
            .extend_from_slice(buf.get(cut..).unwrap_or_default());
        self.send(buf.slice(..cut.min(buf.len())))
    }

    /// Returns the held tail, masked as it stands (empty if nothing is held). Call it when the
    /// stream has been quiet for a few milliseconds — a prompt or a progress line may end in
    /// digits — and when it ends, before EOF or the exit status is sent on.
    pub fn flush(&mut self) -> Bytes {
        if self.held.is_empty() {
            return Bytes::new();
        }
        let tail = Bytes::from(std::mem::take(&mut self.held));
        self.send(tail)
    }

    /// Whether a tail is held back: a [`flush`](Self::flush) is due if the stream stays quiet.
    pub fn is_holding(&self) -> bool {
        !self.held.is_empty()
    }

    /// How many bytes are held back (at most [`MAX_HOLD`]).
    pub fn held_len(&self) -> usize {
        self.held.len()
    }

    /// What was masked since the last call, for the audit entry, and starts counting afresh.
    pub fn take_log(&mut self) -> MaskLog {
        let log = self.counts.to_log();
        self.counts.clear();
        log
    }

    /// Masks the next piece of the stream to send.
    fn send(&mut self, piece: Bytes) -> Bytes {
        let before = std::mem::replace(&mut self.sent_last, piece.last().copied());
        match before {
            Some(letter)
                if letter.is_ascii_alphabetic()
                    && piece.first().is_some_and(u8::is_ascii_digit) =>
            {
                self.mask_after(letter, piece)
            }
            // Nothing sent: the last byte sent stays what it was.
            _ if piece.is_empty() => {
                self.sent_last = before;
                piece
            }
            _ => self.mask(piece),
        }
    }

    /// Masks one piece on its own; the piece itself when nothing matched.
    fn mask(&mut self, piece: Bytes) -> Bytes {
        if piece.is_empty() {
            return piece;
        }
        match self
            .masker
            .mask_bytes(&piece, &mut self.counts, &self.label)
        {
            Cow::Borrowed(_) => piece,
            Cow::Owned(masked) => Bytes::from(masked),
        }
    }

    /// Masks a piece that starts with a digit right after `letter` was sent: masked behind the
    /// letter, so a run glued to it is not taken for a card number, as in one piece.
    fn mask_after(&mut self, letter: u8, piece: Bytes) -> Bytes {
        let mut glued = Vec::with_capacity(piece.len() + 1);
        glued.push(letter);
        glued.extend_from_slice(&piece);
        let mut counts = MaskCounts::new();
        match self.masker.mask_bytes(&glued, &mut counts, &self.label) {
            Cow::Borrowed(_) => piece,
            Cow::Owned(masked) if masked.first() == Some(&letter) => {
                self.counts.merge(&counts);
                Bytes::from(masked).slice(1..)
            }
            // A detector took the letter itself: mask the piece alone (never less than that).
            Cow::Owned(_) => self.mask(piece),
        }
    }
}

#[cfg(test)]
mod tests;
