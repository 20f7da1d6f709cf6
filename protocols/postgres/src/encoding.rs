//! The session's client encoding, as the server last reported it (`ParameterStatus
//! client_encoding`): how the gateway decodes what it reads — statement texts, names, bind
//! parameters, the server's messages. The bytes themselves are relayed as they came; nothing
//! is decoded and encoded again on its way through.
//!
//! The gateway admits only encodings in which an ASCII byte is always that ASCII character
//! (`gatehouse_core::classify::postgres::encoding_is_safe`). Under every one of them the SQL
//! structure of a text — quotes, backslashes, keywords, separators — lies in its ASCII bytes
//! alone, so the reading cannot depend on which of them the server uses. [`ClientEncoding::
//! decode`] keeps that true of its own output: a decoding that would merge an ASCII byte into
//! another character (a malformed or foreign sequence) is replaced by one that keeps every
//! ASCII byte and turns each other byte into U+FFFD. A text the server would reject as invalid
//! in its encoding is then still read with the structure any server would give it.

use std::borrow::Cow;

use encoding_rs::Encoding;

/// How the gateway decodes a session's texts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ClientEncoding {
    /// UTF8 (and SQL_ASCII, whose bytes the server checks against its own UTF-8).
    #[default]
    Utf8,
    /// ISO 8859-1 or -9: the windows code page that is its superset above 0x9F, and the C1
    /// controls U+0080..U+009F below it (where the code page has printable characters).
    IsoWithC1(&'static Encoding),
    /// An encoding the WHATWG tables give exactly (ISO 8859-2..16, windows-125x, KOI8, EUC).
    Table(&'static Encoding),
    /// An ASCII-safe encoding the gateway has no table for (EUC_TW, EUC_JIS_2004,
    /// MULE_INTERNAL): ASCII as is, every other byte U+FFFD.
    AsciiOnly,
}

impl ClientEncoding {
    /// The decoding of a PostgreSQL encoding name (as ParameterStatus reports it: `UTF8`,
    /// `LATIN9`, `WIN1252`...; case, `-` and `_` are ignored, as the server ignores them).
    pub fn from_name(name: &str) -> Self {
        let key = gatehouse_core::classify::postgres::encoding_key(name);
        let key = match key.strip_prefix("windows") {
            Some(number) => format!("win{number}"),
            None => key,
        };
        use encoding_rs as e;
        match key.as_str() {
            "utf8" | "unicode" | "sqlascii" => Self::Utf8,
            "latin1" | "iso88591" => Self::IsoWithC1(e::WINDOWS_1252),
            "latin5" | "iso88599" => Self::IsoWithC1(e::WINDOWS_1254),
            "latin2" | "iso88592" => Self::Table(e::ISO_8859_2),
            "latin3" | "iso88593" => Self::Table(e::ISO_8859_3),
            "latin4" | "iso88594" => Self::Table(e::ISO_8859_4),
            "latin6" | "iso885910" => Self::Table(e::ISO_8859_10),
            "latin7" | "iso885913" => Self::Table(e::ISO_8859_13),
            "latin8" | "iso885914" => Self::Table(e::ISO_8859_14),
            "latin9" | "iso885915" => Self::Table(e::ISO_8859_15),
            "latin10" | "iso885916" => Self::Table(e::ISO_8859_16),
            "iso88595" => Self::Table(e::ISO_8859_5),
            "iso88596" => Self::Table(e::ISO_8859_6),
            "iso88597" => Self::Table(e::ISO_8859_7),
            "iso88598" => Self::Table(e::ISO_8859_8),
            "win866" | "alt" => Self::Table(e::IBM866),
            "win874" => Self::Table(e::WINDOWS_874),
            "win1250" => Self::Table(e::WINDOWS_1250),
            "win1251" | "win" => Self::Table(e::WINDOWS_1251),
            "win1252" => Self::Table(e::WINDOWS_1252),
            "win1253" => Self::Table(e::WINDOWS_1253),
            "win1254" => Self::Table(e::WINDOWS_1254),
            "win1255" => Self::Table(e::WINDOWS_1255),
            "win1256" => Self::Table(e::WINDOWS_1256),
            "win1257" => Self::Table(e::WINDOWS_1257),
            "win1258" | "abc" | "tcvn" | "tcvn5712" | "vscii" => Self::Table(e::WINDOWS_1258),
            "koi8r" | "koi8" => Self::Table(e::KOI8_R),
            "koi8u" => Self::Table(e::KOI8_U),
            "eucjp" => Self::Table(e::EUC_JP),
            "euckr" => Self::Table(e::EUC_KR),
            // EUC_CN is GB 2312 in EUC form, which GBK's table contains.
            "euccn" => Self::Table(e::GBK),
            _ => Self::AsciiOnly,
        }
    }

    /// Whether this is UTF-8, the case every hot path is tuned for.
    pub fn is_utf8(self) -> bool {
        self == Self::Utf8
    }

    /// Decodes a text exactly: `None` if any byte sequence is not a character of the encoding,
    /// or if decoding would merge an ASCII byte into another character (which PostgreSQL
    /// rejects in every encoding the gateway admits). Distinct texts that decode stay distinct,
    /// so names decoded this way never collide; the server rejects what this rejects.
    pub fn decode_exact(self, bytes: &[u8]) -> Option<Cow<'_, str>> {
        if let Ok(text) = std::str::from_utf8(bytes) {
            if self.is_utf8() || text.is_ascii() {
                return Some(Cow::Borrowed(text));
            }
        }
        let decoded: String = match self {
            Self::Utf8 | Self::AsciiOnly => return None,
            Self::IsoWithC1(_) => self.decode(bytes).into_owned(),
            Self::Table(table) => table
                .decode_without_bom_handling_and_without_replacement(bytes)?
                .into_owned(),
        };
        (ascii_count(decoded.as_bytes()) == ascii_count(bytes)).then_some(Cow::Owned(decoded))
    }

    /// Decodes a text for the gateway's reading. Borrowed when the bytes are already UTF-8 as
    /// they should read; never merges an ASCII byte into another character (module doc).
    pub fn decode(self, bytes: &[u8]) -> Cow<'_, str> {
        if let Ok(text) = std::str::from_utf8(bytes) {
            if self.is_utf8() || text.is_ascii() {
                return Cow::Borrowed(text);
            }
        }
        let decoded = match self {
            // Lossy UTF-8 decoding replaces bad sequences and never swallows an ASCII byte.
            Self::Utf8 => return String::from_utf8_lossy(bytes),
            Self::IsoWithC1(table) => {
                let (text, _) = table.decode_without_bom_handling(bytes);
                // Single-byte: one character per byte, in order.
                text.chars()
                    .zip(bytes)
                    .map(|(c, &b)| {
                        if (0x80..0xa0).contains(&b) {
                            char::from(b)
                        } else {
                            c
                        }
                    })
                    .collect()
            }
            Self::Table(table) => table.decode_without_bom_handling(bytes).0.into_owned(),
            Self::AsciiOnly => return Cow::Owned(ascii_only(bytes)),
        };
        if ascii_count(decoded.as_bytes()) == ascii_count(bytes) {
            Cow::Owned(decoded)
        } else {
            Cow::Owned(ascii_only(bytes))
        }
    }
}

/// Whether a SQL text could read differently were the server, unknown to the gateway, in a
/// client encoding whose characters can end in an ASCII byte (SJIS, BIG5, GBK...): a function
/// can switch the session to one, and the gateway hears of it only at the next
/// ReadyForQuery. Such an encoding can merge a byte from 0x40 to 0x7E into the non-ASCII
/// character before it. Letters and `_` stay in the identifier, string or comment they were
/// in either way; a backslash (which escapes a quote in an `E''` string) or a symbol (which
/// ends a dollar-quote tag, or an operator) would not. Quotes, comment and dollar-quote
/// delimiters are all below 0x40, which no such encoding merges.
pub fn may_read_differently(text: &[u8]) -> bool {
    text.windows(2).any(|w| {
        w[0] >= 0x80 && matches!(w[1], b'@' | b'[' | b'\\' | b']' | b'^' | b'`' | b'{'..=b'~')
    })
}

fn ascii_count(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| b.is_ascii()).count()
}

/// Every ASCII byte as itself, every other byte U+FFFD.
fn ascii_only(bytes: &[u8]) -> String {
    bytes
        .iter()
        .map(|&b| {
            if b.is_ascii() {
                char::from(b)
            } else {
                '\u{fffd}'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf8_and_ascii_are_borrowed() {
        assert!(matches!(
            ClientEncoding::Utf8.decode("é".as_bytes()),
            Cow::Borrowed("é")
        ));
        let latin9 = ClientEncoding::from_name("LATIN9");
        assert!(matches!(
            latin9.decode(b"SELECT 1"),
            Cow::Borrowed("SELECT 1")
        ));
    }

    #[test]
    fn single_byte_encodings_read_as_the_server_does() {
        let latin9 = ClientEncoding::from_name("LATIN9");
        assert_eq!(latin9.decode(b"SELECT '\xe9t\xe9 \xa4'"), "SELECT 'été €'");
        let win1252 = ClientEncoding::from_name("WIN1252");
        assert_eq!(win1252.decode(b"'\x80'"), "'€'");
        // LATIN1's 0x80 is a C1 control, not windows-1252's euro sign.
        let latin1 = ClientEncoding::from_name("latin1");
        assert_eq!(latin1.decode(b"'\x80\xe9'"), "'\u{80}é'");
        let koi8 = ClientEncoding::from_name("KOI8R");
        assert_eq!(koi8.decode(b"'\xf0\xd2\xc9'"), "'При'");
    }

    #[test]
    fn multibyte_encodings_decode_and_bad_bytes_keep_ascii() {
        let eucjp = ClientEncoding::from_name("EUC_JP");
        assert_eq!(eucjp.decode(b"'\xc6\xfc\xcb\xdc'"), "'日本'");
        // A lead byte before a backslash: EUC_CN's table (GBK) would merge them into one
        // character, PostgreSQL's EUC_CN rejects the pair. The backslash stays a backslash.
        let euccn = ClientEncoding::from_name("EUC_CN");
        assert_eq!(euccn.decode(b"E'\xb0\\' x"), "E'\u{fffd}\\' x");
        // Invalid UTF-8 never swallows the quote after it.
        assert_eq!(ClientEncoding::Utf8.decode(b"'\xe3\x81' x"), "'\u{fffd}' x");
    }

    #[test]
    fn only_a_backslash_or_symbol_after_a_non_ascii_byte_may_read_differently() {
        assert!(may_read_differently(
            b"SELECT E'\xc3\x83\\'; DELETE FROM t; --'"
        ));
        assert!(!may_read_differently("SELECT 'été', E'\\n'".as_bytes()));
        assert!(!may_read_differently(b"SELECT E'\\\\'"));
        // A symbol that would end a dollar-quote tag under UTF-8, and be part of a character
        // under SJIS.
        assert!(may_read_differently(b"SELECT $\xc3\x83|$ x"));
        assert!(!may_read_differently("SELECT café_x".as_bytes()));
    }

    #[test]
    fn exact_decoding_refuses_what_the_server_would_and_keeps_texts_apart() {
        let utf8 = ClientEncoding::Utf8;
        assert!(utf8.decode_exact(b"s\xc4\xa1").is_some());
        assert!(utf8.decode_exact(b"s\xff").is_none());
        let euckr = ClientEncoding::from_name("EUC_KR");
        // A UHC pair (lead, ASCII letter) is no EUC_KR character.
        assert!(euckr.decode_exact(b"s\xb0A").is_none());
        assert_eq!(euckr.decode_exact(b"\xb0\xa1").as_deref(), Some("가"));
        let latin1 = ClientEncoding::from_name("LATIN1");
        assert_ne!(latin1.decode_exact(b"s\x80"), latin1.decode_exact(b"s\x81"));
        assert!(ClientEncoding::AsciiOnly.decode_exact(b"s\xc4").is_none());
        assert_eq!(
            ClientEncoding::from_name("windows-1252"),
            ClientEncoding::from_name("WIN1252")
        );
    }

    #[test]
    fn unknown_encodings_keep_ascii_only() {
        let tw = ClientEncoding::from_name("EUC_TW");
        assert_eq!(tw.decode(b"'\xc4\xa1'; x"), "'\u{fffd}\u{fffd}'; x");
    }

    #[test]
    fn every_decoding_keeps_every_ascii_byte_in_place() {
        let names = [
            "UTF8", "LATIN1", "LATIN9", "WIN1251", "EUC_JP", "EUC_KR", "EUC_CN", "EUC_TW",
        ];
        for name in names {
            let enc = ClientEncoding::from_name(name);
            for seed in 0u32..2000 {
                let bytes: Vec<u8> = (0..12u32)
                    .map(|i| (seed.wrapping_mul(2_654_435_761).rotate_left(i * 5) >> 3) as u8)
                    .collect();
                let ascii_in: Vec<u8> = bytes.iter().copied().filter(u8::is_ascii).collect();
                let decoded = enc.decode(&bytes);
                let ascii_out: Vec<u8> = decoded.bytes().filter(u8::is_ascii).collect();
                assert_eq!(ascii_in, ascii_out, "{name} {bytes:x?} -> {decoded:?}");
            }
        }
    }
}
