//! Rewriting text with detector rules: every match replaced by its rule's style.

use std::ops::ControlFlow;

use super::detect::Detector;
use super::json;
use super::style::{Hasher, MaskStyle};

/// A detector with the style its rule masks matches with.
#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    /// What to find.
    pub(crate) detector: Detector,
    /// How to mask it.
    pub(crate) style: MaskStyle,
}

/// Applies each scanner in turn (a later one sees the earlier ones' output).
/// `None` when nothing matched: the caller keeps its bytes, and nothing was allocated.
/// With `json`, matches outside JSON strings are written as JSON strings.
#[inline]
pub(crate) fn rewrite(
    scanners: &[Scanner],
    hasher: &Hasher,
    input: &[u8],
    json: bool,
) -> Option<Vec<u8>> {
    let mut current: Option<Vec<u8>> = None;
    for scanner in scanners {
        let hay: &[u8] = current.as_deref().unwrap_or(input);
        // The common case, nothing to mask, costs a bare scan for the first match.
        let Some(first) = scanner.detector.first(hay) else {
            continue;
        };
        current = Some(rewrite_from(scanner, hasher, hay, json, first));
    }
    current
}

/// Whether any scanner matches `hay`.
#[inline]
pub(crate) fn any_match(scanners: &[Scanner], hay: &[u8]) -> bool {
    scanners.iter().any(|s| s.detector.first(hay).is_some())
}

/// Rewrites `hay` whose first match is `first`: replaces it, then every later match.
fn rewrite_from(
    scanner: &Scanner,
    hasher: &Hasher,
    hay: &[u8],
    json: bool,
    first: (usize, usize),
) -> Vec<u8> {
    let normalize = scanner.detector.normalize();
    let mut out = Vec::with_capacity(hay.len() + 16);
    let mut last = 0usize;
    let mut cursor = json::Cursor::default();
    let mut replace = |out: &mut Vec<u8>, start: usize, end: usize| {
        out.extend_from_slice(hay.get(last..start).unwrap_or_default());
        let found = hay.get(start..end).unwrap_or_default();
        if json && !cursor.inside_string_at(hay, start) {
            let mut styled = Vec::with_capacity(24);
            scanner
                .style
                .write_match(hasher, normalize, found, &mut styled);
            json::write_string(&styled, out);
        } else {
            scanner.style.write_match(hasher, normalize, found, out);
        }
        if json {
            cursor.inside_string_at(hay, end);
        }
        last = end;
    };
    replace(&mut out, first.0, first.1);
    scanner.detector.find_from(hay, first.1, |start, end| {
        replace(&mut out, start, end);
        ControlFlow::Continue(())
    });
    out.extend_from_slice(hay.get(last..).unwrap_or_default());
    out
}
