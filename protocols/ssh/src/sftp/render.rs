//! Paths and handles rendered for the audit trail: readable when they are plain, exact when
//! they are not.

use std::fmt::Write;

/// Appends `path` to `out`: bare when it is non-empty UTF-8 without spaces, quotes,
/// backslashes or control characters; otherwise double-quoted, with `\"`, `\\`, `\n`, `\t`,
/// `\r`, `\u{..}` for other control characters and `\xNN` for bytes that are not UTF-8.
///
/// Quoting keeps an audit line such as `sftp rename A B` unambiguous when a path holds a
/// space, and escaping (rather than a lossy conversion) keeps two different byte paths from
/// looking the same in the trail.
pub(crate) fn push_path(out: &mut String, path: &[u8]) {
    if let Ok(text) = std::str::from_utf8(path) {
        if !text.is_empty() && !text.chars().any(needs_escape) {
            out.push_str(text);
            return;
        }
    }
    out.push('"');
    for chunk in path.utf8_chunks() {
        for c in chunk.valid().chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                '\r' => out.push_str("\\r"),
                c if c.is_control() => {
                    let _ = write!(out, "\\u{{{:x}}}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
    out.push('"');
}

/// A path rendered by [`push_path`], as a new string.
pub(crate) fn path(path: &[u8]) -> String {
    let mut out = String::with_capacity(path.len() + 2);
    push_path(&mut out, path);
    out
}

/// Whether a character forces a path into quotes.
fn needs_escape(c: char) -> bool {
    c.is_whitespace() || c.is_control() || c == '"' || c == '\\'
}

#[cfg(test)]
mod tests {
    use super::path;

    #[test]
    fn plain_paths_stay_bare() {
        assert_eq!(path(b"/tmp/x"), "/tmp/x");
        assert_eq!(path("/tmp/ünïcode".as_bytes()), "/tmp/ünïcode");
    }

    #[test]
    fn awkward_paths_are_quoted_and_escaped() {
        assert_eq!(path(b""), "\"\"");
        assert_eq!(path(b"/tmp/a b"), "\"/tmp/a b\"");
        assert_eq!(path(b"a\"b\\c"), "\"a\\\"b\\\\c\"");
        assert_eq!(path(b"a\nb\tc\x01"), "\"a\\nb\\tc\\u{1}\"");
        assert_eq!(path(b"/tmp/\xff\xfe"), "\"/tmp/\\xff\\xfe\"");
    }
}
