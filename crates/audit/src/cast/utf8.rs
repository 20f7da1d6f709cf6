//! Output and input bytes as the text of cast events.

/// Decodes a byte stream as UTF-8 for a cast, lossily: invalid bytes become U+FFFD, and a
/// character split between two chunks is held back until the rest arrives.
#[derive(Debug, Default)]
pub struct Utf8Stream {
    /// The start of a character the last chunk ended in (at most 3 bytes).
    held: Vec<u8>,
}

impl Utf8Stream {
    /// Appends the text of `data` to `out`.
    pub fn decode(&mut self, data: &[u8], out: &mut String) {
        let joined;
        let mut rest: &[u8] = if self.held.is_empty() {
            data
        } else {
            let mut j = std::mem::take(&mut self.held);
            j.extend_from_slice(data);
            joined = j;
            &joined
        };
        loop {
            match std::str::from_utf8(rest) {
                Ok(text) => {
                    out.push_str(text);
                    return;
                }
                Err(e) => {
                    let (valid, after) = rest.split_at(e.valid_up_to());
                    out.push_str(&String::from_utf8_lossy(valid));
                    match e.error_len() {
                        Some(bad) => {
                            out.push(char::REPLACEMENT_CHARACTER);
                            rest = after.get(bad..).unwrap_or_default();
                        }
                        None => {
                            // Incomplete at the end: the next chunk may finish it.
                            self.held = after.to_vec();
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Appends what is held (an unfinished character, so U+FFFD) to `out`.
    pub fn finish(&mut self, out: &mut String) {
        if !self.held.is_empty() {
            self.held.clear();
            out.push(char::REPLACEMENT_CHARACTER);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_chunks(chunks: &[&[u8]]) -> String {
        let mut stream = Utf8Stream::default();
        let mut out = String::new();
        for chunk in chunks {
            stream.decode(chunk, &mut out);
        }
        stream.finish(&mut out);
        out
    }

    #[test]
    fn utf8_is_decoded_across_chunks_and_bad_bytes_replaced() {
        // "é" (C3 A9) and "€" (E2 82 AC) split between chunks stay whole.
        assert_eq!(
            decode_chunks(&[b"caf\xc3", b"\xa9 \xe2", b"\x82", b"\xac"]),
            "café €"
        );
        // Invalid bytes, anywhere, become U+FFFD without eating their neighbours.
        assert_eq!(decode_chunks(&[b"a\xffb\xc3(c"]), "a\u{fffd}b\u{fffd}(c");
        // A character never finished is one U+FFFD at the end.
        assert_eq!(decode_chunks(&[b"ok\xe2\x82"]), "ok\u{fffd}");
        assert_eq!(decode_chunks(&[b"", b"\x1b[0m"]), "\x1b[0m");
    }
}
