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
    #[inline]
    pub(crate) fn find_each(
        &self,
        hay: &[u8],
        mut found: impl FnMut(usize, usize) -> ControlFlow<()>,
    ) {
        match self {
            Self::Pan => pan::find_each(hay, found),
            Self::Email => email::find_each(hay, found),
            Self::Regex(re) => {
                for m in re.find_iter(hay) {
                    if !m.is_empty() && found(m.start(), m.end()).is_break() {
                        return;
                    }
                }
            }
        }
    }

    /// Whether `hay` holds at least one match.
    pub(crate) fn is_match(&self, hay: &[u8]) -> bool {
        match self {
            Self::Pan => pan::contains(hay),
            _ => {
                let mut any = false;
                self.find_each(hay, |_, _| {
                    any = true;
                    ControlFlow::Break(())
                });
                any
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
        assert!(ssn.is_match(b"x 123-45-6789"));
        assert!(!ssn.is_match(b"x 123-45-678"));
        assert!(Detector::regex("a|").is_err());
        assert!(Detector::builtin("PAN").is_none());
    }
}
