//! Rewriting text with detector rules: every match replaced by its rule's style.

use std::ops::ControlFlow;
use std::sync::Arc;

use super::detect::Detector;
use super::json;
use super::spec::Rule;
use super::style::{Hasher, MaskStyle};

/// Applies each detector rule in turn (a later rule sees the earlier rules' output).
/// `None` when nothing matched: the caller keeps its bytes, and nothing was allocated.
/// With `json`, matches outside JSON strings are written as JSON strings.
pub(crate) fn rewrite(
    rules: &[Arc<Rule>],
    hasher: &Hasher,
    input: &[u8],
    json: bool,
) -> Option<Vec<u8>> {
    let mut current: Option<Vec<u8>> = None;
    for rule in rules {
        let Some(detector) = &rule.detector else {
            continue;
        };
        let hay: &[u8] = current.as_deref().unwrap_or(input);
        if let Some(out) = rewrite_one(detector, rule.style, hasher, hay, json) {
            current = Some(out);
        }
    }
    current
}

/// Whether any detector rule matches `hay`.
pub(crate) fn any_match(rules: &[Arc<Rule>], hay: &[u8]) -> bool {
    rules
        .iter()
        .filter_map(|r| r.detector.as_ref())
        .any(|d| d.is_match(hay))
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
