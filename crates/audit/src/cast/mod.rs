//! Terminal recordings as asciicast v2 (<https://docs.asciinema.org/manual/asciicast/v2/>):
//! one file per terminal channel (an SSH shell or exec) beside the session's JSON Lines
//! recording, playable by stock players (`asciinema cat`, `asciinema play`).
//!
//! [`CastWriter`] (`write`) encodes one channel's events, decoding output with [`Utf8Stream`]
//! (`utf8`); `recording` queues them and writes them out with the session's lines, and seals a
//! cast (SHA-256, computed as it is written) into a line of the session's recording, which the
//! session's own seal then covers. The read side (`read`) finds a session's casts through those
//! lines ([`casts_of`]) and reads a cast back ([`read_cast`]).

mod read;
mod utf8;
mod write;

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

pub use read::{casts_of, read_cast, CastFrame, CastFrames, CastInfo, CastSeal};
pub use utf8::Utf8Stream;
pub use write::CastWriter;

/// Columns written in a header when the client asked for no terminal.
pub const DEFAULT_WIDTH: u32 = 80;

/// Rows written in a header when the client asked for no terminal.
pub const DEFAULT_HEIGHT: u32 = 24;

/// The header line of a cast.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CastHeader {
    /// Always 2.
    pub version: u8,
    /// Terminal columns.
    pub width: u32,
    /// Terminal rows.
    pub height: u32,
    /// When the recording started (seconds since the Unix epoch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<u64>,
    /// The command the channel ran (exec), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    /// A title for players.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// Environment (`TERM`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub env: BTreeMap<String, String>,
}

/// The cast file of `channel` in `session`: `SESSION.chN.cast`, then `SESSION.chN-2.cast`, ...
/// for a channel id used again within the session.
pub fn cast_file_name(session: &str, channel: u32, nth: u32) -> String {
    if nth <= 1 {
        format!("{session}.ch{channel}.cast")
    } else {
        format!("{session}.ch{channel}-{nth}.cast")
    }
}

/// Whether `file` is a name [`cast_file_name`] gives for `session`. Names are read back from
/// recordings, which are files on disk: one naming anything else (`../x`) is never opened,
/// copied or removed.
pub fn is_cast_file_of(session: &str, file: &str) -> bool {
    let Some(rest) = file
        .strip_prefix(session)
        .and_then(|r| r.strip_prefix(".ch"))
        .and_then(|r| r.strip_suffix(".cast"))
    else {
        return false;
    };
    let digits = |s: &str| !s.is_empty() && s.len() <= 10 && s.bytes().all(|b| b.is_ascii_digit());
    match rest.split_once('-') {
        None => digits(rest),
        Some((channel, nth)) => digits(channel) && digits(nth),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cast_names_are_the_sessions_own_and_nothing_else() {
        let s = "0123abcd";
        assert_eq!(cast_file_name(s, 0, 1), "0123abcd.ch0.cast");
        assert_eq!(cast_file_name(s, 7, 3), "0123abcd.ch7-3.cast");
        assert!(is_cast_file_of(s, "0123abcd.ch0.cast"));
        assert!(is_cast_file_of(s, "0123abcd.ch12-2.cast"));
        for bad in [
            "0123abcd.jsonl",
            "0123abcd.ch.cast",
            "0123abcd.ch1-.cast",
            "0123abcd.ch1/../../x.cast",
            "../0123abcd.ch1.cast",
            "other.ch1.cast",
            "0123abcd.ch1.cast.bak",
            "0123abcd.ch-1.cast",
        ] {
            assert!(!is_cast_file_of(s, bad), "{bad}");
        }
    }
}
