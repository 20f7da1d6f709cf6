//! Keeping `json`/`jsonb` values valid JSON after masking.
//!
//! A match inside a JSON string is replaced in place (every style writes plain ASCII without
//! quotes or backslashes). A match outside a string — a card number stored as a JSON number —
//! is replaced by a JSON string, and a whole value masked by a column rule becomes a JSON string.

/// Appends `text` as a JSON string literal.
pub(crate) fn write_string(text: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push(b'"');
    for &b in text {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            0..=0x1f => {
                out.extend_from_slice(b"\\u00");
                out.push(HEX[usize::from(b >> 4)]);
                out.push(HEX[usize::from(b & 0x0f)]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

/// Walks a JSON text left to right, telling whether a position is inside a string.
#[derive(Debug, Default)]
pub(crate) struct Cursor {
    pos: usize,
    in_string: bool,
    escaped: bool,
}

impl Cursor {
    /// Advances to `to` (never backwards) and says whether `text[to]` is inside a string.
    pub(crate) fn inside_string_at(&mut self, text: &[u8], to: usize) -> bool {
        if let Some(span) = text.get(self.pos..to) {
            for &b in span {
                if self.escaped {
                    self.escaped = false;
                } else if self.in_string && b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = !self.in_string;
                }
            }
            self.pos = to;
        }
        self.in_string
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn string_literals_escape() {
        let mut out = Vec::new();
        write_string(b"a\"b\\c\n", &mut out);
        assert_eq!(out, b"\"a\\\"b\\\\c\\u000a\"");
    }

    #[test]
    fn cursor_tracks_strings_and_escapes() {
        let text = br#"{"a": "x\"y 42", "n": 42}"#;
        let mut c = Cursor::default();
        assert!(!c.inside_string_at(text, 1));
        assert!(c.inside_string_at(text, 2)); // a
        assert!(c.inside_string_at(text, 12)); // 42 inside "x\"y 42"
        assert!(!c.inside_string_at(text, 22)); // 42 the number
        assert!(!c.inside_string_at(text, 5)); // backwards: stays where it is
    }
}
