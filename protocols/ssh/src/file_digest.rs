//! The SHA-256 and size of a file as it crosses the gateway (an SFTP upload or download, a
//! file in an scp stream), and a copy of it when it is small: what lets an auditor name the
//! exact file a job uploaded and then ran (an Ansible module, a script).
//!
//! SFTP moves a file in pieces, each at an offset; clients send them in order but keep many in
//! flight, and a server may answer a read short, so pieces can arrive out of order. Pieces
//! ahead of the next expected offset wait (within [`MAX_AHEAD`] bytes) until the gap fills.
//! Anything that cannot be one pass from offset 0 — a piece that overlaps one already hashed,
//! a gap that never fills, a resumed transfer — leaves the file without a hash, and the entry
//! says why rather than give a hash of something else.

use std::collections::BTreeMap;
use std::fmt;

use aws_lc_rs::digest;
use gatehouse_core::files::{FileCrossed, FileDirection};

/// Bytes held while waiting for a gap before the next expected offset to fill (a client's
/// window of requests in flight is far smaller: OpenSSH keeps 64 of 32 KiB).
pub const MAX_AHEAD: usize = 8 << 20;

/// Follows one file's bytes, in whatever order they come.
pub struct FileDigest {
    hasher: digest::Context,
    /// Bytes hashed so far: the next offset expected.
    next: u64,
    /// Pieces that came before the gap in front of them filled, by offset.
    ahead: BTreeMap<u64, Vec<u8>>,
    ahead_bytes: usize,
    /// Why there will be no hash, once known.
    broken: Option<&'static str>,
    /// The bytes in order, while they fit under the copy limit.
    copy: Option<Vec<u8>>,
    copy_limit: usize,
    /// Why a copy that was asked for is not kept.
    uncopied: Option<&'static str>,
}

impl fmt::Debug for FileDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileDigest")
            .field("next", &self.next)
            .field("ahead_bytes", &self.ahead_bytes)
            .field("broken", &self.broken)
            .finish_non_exhaustive()
    }
}

/// What is known of a file once it is closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSeen {
    /// Bytes that went through (hashed or not).
    pub bytes: u64,
    /// SHA-256 (hex) of the whole file from offset 0, if it could be computed.
    pub sha256: Option<String>,
    /// Why there is no hash, when there is none.
    pub unhashed: Option<&'static str>,
    /// The bytes, if they were kept: a copy was asked for, it was no larger than the limit,
    /// and the hash holds (so the copy is the file).
    pub copy: Option<Vec<u8>>,
    /// Why a copy that was asked for was not kept.
    pub uncopied: Option<&'static str>,
}

impl FileSeen {
    /// `sha256 9f86…` or `no sha256: pieces out of order`, for the audit entry.
    pub fn hash_text(&self) -> String {
        match (&self.sha256, self.unhashed) {
            (Some(hash), _) => format!("sha256 {hash}"),
            (None, Some(why)) => format!("no sha256: {why}"),
            (None, None) => "no sha256".to_owned(),
        }
    }

    /// The file as the session is told of it (the session decides what of the copy the
    /// recording may keep).
    pub fn crossed(&self, direction: FileDirection, path: &str) -> FileCrossed {
        // The reason for a missing copy is not repeated when it is why there is no hash too.
        let uncopied = self.uncopied.filter(|why| Some(*why) != self.unhashed);
        let note = [
            self.unhashed.map(|why| format!("no sha256: {why}")),
            uncopied.map(str::to_owned),
        ]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join("; ");
        FileCrossed {
            direction,
            path: path.to_owned(),
            bytes: self.bytes,
            sha256: self.sha256.clone(),
            copy: self.copy.clone(),
            note: (!note.is_empty()).then_some(note),
        }
    }
}

impl FileDigest {
    /// A digest that also keeps the bytes of a file no larger than `copy_limit` (0: no copy).
    pub fn new(copy_limit: usize) -> Self {
        Self {
            hasher: digest::Context::new(&digest::SHA256),
            next: 0,
            ahead: BTreeMap::new(),
            ahead_bytes: 0,
            broken: None,
            copy: (copy_limit > 0).then(Vec::new),
            copy_limit,
            uncopied: None,
        }
    }

    /// Takes the piece of the file at `offset`.
    pub fn add(&mut self, offset: u64, data: &[u8]) {
        if self.broken.is_some() || data.is_empty() {
            return;
        }
        if offset < self.next || self.ahead.contains_key(&offset) {
            self.give_up("a piece was sent twice or overlaps another");
            return;
        }
        if offset > self.next {
            if self.ahead_bytes + data.len() > MAX_AHEAD {
                self.give_up("pieces too far out of order");
                return;
            }
            self.ahead_bytes += data.len();
            self.ahead.insert(offset, data.to_vec());
            return;
        }
        self.take(data);
        while let Some(entry) = self.ahead.first_entry() {
            let at = *entry.key();
            if at > self.next {
                break;
            }
            let piece = entry.remove();
            self.ahead_bytes -= piece.len();
            if at < self.next {
                self.give_up("a piece was sent twice or overlaps another");
                return;
            }
            self.take(&piece);
        }
    }

    /// Marks the file as not hashable (a write the server refused, a piece the tracker could
    /// not place).
    pub fn give_up(&mut self, why: &'static str) {
        if self.broken.is_none() {
            self.broken = Some(why);
        }
        self.ahead.clear();
        self.ahead_bytes = 0;
        self.no_copy(why);
    }

    /// Keeps no copy (e.g. the bytes are a change to an existing file, not a whole file).
    pub fn no_copy(&mut self, why: &'static str) {
        if self.copy.take().is_some() {
            self.uncopied = Some(why);
        }
    }

    fn take(&mut self, data: &[u8]) {
        self.hasher.update(data);
        self.next += data.len() as u64;
        if let Some(copy) = &mut self.copy {
            if copy.len() + data.len() <= self.copy_limit {
                copy.extend_from_slice(data);
            } else {
                self.no_copy("larger than the connection's upload_copy_max_bytes");
            }
        }
    }

    /// What is known once the file is closed.
    pub fn finish(self) -> FileSeen {
        let bytes = self.next + self.ahead_bytes as u64;
        let broken = self
            .broken
            .or((!self.ahead.is_empty()).then_some("a gap never filled"));
        match broken {
            Some(why) => FileSeen {
                bytes,
                sha256: None,
                unhashed: Some(why),
                copy: None,
                uncopied: self.uncopied.or(self.copy.is_some().then_some(why)),
            },
            None => FileSeen {
                bytes,
                sha256: Some(gatehouse_core::identity::hex(self.hasher.finish().as_ref())),
                unhashed: None,
                copy: self.copy,
                uncopied: self.uncopied,
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824";

    #[test]
    fn pieces_in_any_order_hash_as_the_whole_file() {
        let mut d = FileDigest::new(1024);
        d.add(3, b"lo");
        d.add(0, b"hel");
        let seen = d.finish();
        assert_eq!(seen.sha256.as_deref(), Some(HELLO));
        assert_eq!(seen.bytes, 5);
        assert_eq!(seen.copy.as_deref(), Some(&b"hello"[..]));
    }

    #[test]
    fn what_cannot_be_one_pass_from_zero_has_no_hash() {
        let mut resumed = FileDigest::new(0);
        resumed.add(100, b"tail");
        let seen = resumed.finish();
        assert_eq!(seen.sha256, None);
        assert_eq!(seen.unhashed, Some("a gap never filled"));
        assert_eq!(seen.bytes, 4);

        let mut twice = FileDigest::new(1024);
        twice.add(0, b"hello");
        twice.add(2, b"LLO");
        let seen = twice.finish();
        assert_eq!(seen.sha256, None);
        assert_eq!(seen.copy, None);
        assert!(seen.hash_text().starts_with("no sha256: "));
    }

    #[test]
    fn a_file_over_the_limit_is_hashed_not_copied() {
        let mut d = FileDigest::new(4);
        d.add(0, b"hello");
        let seen = d.finish();
        assert_eq!(seen.sha256.as_deref(), Some(HELLO));
        assert_eq!(seen.copy, None);
        assert_eq!(seen.hash_text(), format!("sha256 {HELLO}"));
    }

    #[test]
    fn pieces_held_ahead_are_bounded() {
        let mut d = FileDigest::new(0);
        let piece = vec![0u8; 1 << 20];
        for i in 1..=9u64 {
            d.add(i << 20, &piece);
        }
        assert_eq!(d.finish().unhashed, Some("pieces too far out of order"));
    }
}
