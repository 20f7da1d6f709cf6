//! Detectors: what a rule looks for in text (a PAN, an e-mail address, a regex match).
//!
//! Detectors work on bytes: values in any ASCII-compatible encoding can be scanned, and nothing
//! they are given can make them panic.

use std::ops::ControlFlow;

use regex::bytes::Regex;

use super::{email, pan};

/// One detector. Cheap to share: the regex is compiled once.
#[derive(Debug, Clone)]
pub(crate) enum Detector {
    /// Card numbers (see [`pan`]).
    Pan,
    /// E-mail addresses (see [`email`]).
    Email,
    /// Matches of a configured regex; empty matches are ignored.
    Regex(Regex),
}

/// How a match is normalised before it is hashed, so equal values hash equally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Normalize {
    /// As found.
    Raw,
    /// Digits only: `4111 1111 1111 1111` hashes like `4111111111111111`.
    Digits,
    /// ASCII lower case: `Bob@Example.com` hashes like `bob@example.com`.
    Lowercase,
}

impl Detector {
    /// The built-in detector called `name`.
    pub(crate) fn builtin(name: &str) -> Option<Self> {
        match name {
            "pan" => Some(Self::Pan),
            "email" => Some(Self::Email),
            _ => None,
        }
    }

    /// Compiles a regex detector; the error says what is wrong.
    pub(crate) fn regex(pattern: &str) -> Result<Self, String> {
        let re = Regex::new(pattern).map_err(|e| e.to_string())?;
        if re.is_match(b"") {
            return Err(
                "it can match an empty string; make it require at least one character".into(),
            );
        }
        Ok(Self::Regex(re))
    }

    /// How matches of this detector are normalised for hashing.
    pub(crate) fn normalize(&self) -> Normalize {
        match self {
            Self::Pan => Normalize::Digits,
            Self::Email => Normalize::Lowercase,
            Self::Regex(_) => Normalize::Raw,
        }
    }

    /// The shortest text this detector can match in: shorter values need no scan.
    pub(crate) fn min_len(&self) -> usize {
        match self {
            Self::Pan => pan::MIN_LEN,
            Self::Email => email::MIN_LEN,
            Self::Regex(_) => 1,
        }
    }

    /// Calls `found(start, end)` for every match in `hay`, left to right, until it breaks.
    #[cfg(test)]
    pub(crate) fn find_each(&self, hay: &[u8], found: impl FnMut(usize, usize) -> ControlFlow<()>) {
        self.find_from(hay, 0, found);
    }

    /// Calls `found(start, end)` for every match from `from` on — 0, or the end of a match found
    /// before — left to right, until it breaks.
    #[inline]
    pub(crate) fn find_from(
        &self,
        hay: &[u8],
        from: usize,
        mut found: impl FnMut(usize, usize) -> ControlFlow<()>,
    ) {
        match self {
            Self::Pan => pan::find_from(hay, from, found),
            Self::Email => email::find_from(hay, from, found),
            Self::Regex(re) => {
                let mut pos = from;
                while let Some(m) = hay.get(pos..).and_then(|_| re.find_at(hay, pos)) {
                    if m.is_empty() {
                        pos = m.end() + 1;
                        continue;
                    }
                    if found(m.start(), m.end()).is_break() {
                        return;
                    }
                    pos = m.end();
                }
            }
        }
    }

    /// The first match in `hay`.
    #[inline]
    pub(crate) fn first(&self, hay: &[u8]) -> Option<(usize, usize)> {
        match self {
            Self::Pan => pan::first(hay),
            _ => {
                let mut first = None;
                self.find_from(hay, 0, |start, end| {
                    first = Some((start, end));
                    ControlFlow::Break(())
                });
                first
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_detector_on_bytes() {
        let ssn = Detector::regex(r"\b\d{3}-\d{2}-\d{4}\b").unwrap();
        let mut found = Vec::new();
        ssn.find_each(b"ssn 123-45-6789 and \xff 987-65-4321", |s, e| {
            found.push((s, e));
            ControlFlow::Continue(())
        });
        assert_eq!(found, [(4, 15), (22, 33)]);
        assert_eq!(ssn.first(b"x 123-45-6789"), Some((2, 13)));
        assert_eq!(ssn.first(b"x 123-45-678"), None);
        // Empty matches are passed over, context before `from` still counts for `\b`.
        let word = Detector::regex(r"\bab|\b").unwrap();
        let mut found = Vec::new();
        word.find_from(b"xab ab", 1, |s, e| {
            found.push((s, e));
            ControlFlow::Continue(())
        });
        assert_eq!(found, [(4, 6)]);
        assert!(Detector::regex("a|").is_err());
        assert!(Detector::builtin("PAN").is_none());
    }
}
