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
        // The common case, nothing to mask, costs a bare scan; matches are then found again.
        if !scanner.detector.is_match(hay) {
            continue;
        }
        if let Some(out) = rewrite_one(&scanner.detector, scanner.style, hasher, hay, json) {
            current = Some(out);
        }
    }
    current
}

/// Whether any scanner matches `hay`.
#[inline]
pub(crate) fn any_match(scanners: &[Scanner], hay: &[u8]) -> bool {
    scanners.iter().any(|s| s.detector.is_match(hay))
}

fn rewrite_one(
    detector: &Detector,
    style: MaskStyle,
    hasher: &Hasher,
    hay: &[u8],
    json: bool,
) -> Option<Vec<u8>> {
    let normalize = detector.normalize();
    let mut out: Option<Vec<u8>> = None;
    let mut last = 0usize;
    let mut cursor = json::Cursor::default();
    detector.find_each(hay, |start, end| {
        let o = out.get_or_insert_with(|| Vec::with_capacity(hay.len() + 16));
        o.extend_from_slice(hay.get(last..start).unwrap_or_default());
        let found = hay.get(start..end).unwrap_or_default();
        if json && !cursor.inside_string_at(hay, start) {
            let mut styled = Vec::with_capacity(24);
            style.write_match(hasher, normalize, found, &mut styled);
            json::write_string(&styled, o);
        } else {
            style.write_match(hasher, normalize, found, o);
        }
        if json {
            cursor.inside_string_at(hay, end);
        }
        last = end;
        ControlFlow::Continue(())
    });
    let mut o = out?;
    o.extend_from_slice(hay.get(last..).unwrap_or_default());
    Some(o)
}
