//! Terminal recordings as asciicast v2 (<https://docs.asciinema.org/manual/asciicast/v2/>):
//! one file per terminal channel (an SSH shell or exec) beside the session's JSON Lines
//! recording, playable by stock players (`asciinema cat`, `asciinema play`).
//!
//! [`CastWriter`] encodes one channel's events; `recording` queues them and writes them out with
//! the session's lines, and seals a cast (SHA-256, computed as it is written) into a line of
//! the session's recording, which the session's own seal then covers. The read side finds a
//! session's casts through those lines ([`casts_of`]) and reads a cast back ([`read_cast`]).

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use gatehouse_core::store::{RecordingEvent, TerminalEventKind, TerminalStart};
use serde::{Deserialize, Serialize};

use crate::error::AuditError;
use crate::recording::read_recording;

/// Columns written in a header when the client asked for no terminal.
pub const DEFAULT_WIDTH: u32 = 80;

/// Rows written in a header when the client asked for no terminal.
pub const DEFAULT_HEIGHT: u32 = 24;

/// Casts of one channel id in one session past which no more are opened (ids are reused
/// after a channel closes; this only bounds the search for a free name).
const MAX_CASTS_PER_CHANNEL: u32 = 100_000;

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

/// One event line of a cast: `[seconds, code, data]`.
#[derive(Debug, Clone, PartialEq)]
pub struct CastFrame {
    /// Seconds since the start of the recording.
    pub offset: f64,
    /// `o` (output), `i` (input), `r` (resize, data `COLSxROWS`) or `m` (marker).
    pub code: String,
    /// The event's data.
    pub data: String,
}

/// A cast of a session, as its recording names it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CastInfo {
    /// The channel (SSH channel id).
    pub channel: u32,
    /// The file name, in the recordings directory.
    pub file: String,
    /// When it started (RFC 3339).
    pub started: String,
    /// Terminal columns at the start.
    pub width: u32,
    /// Terminal rows at the start.
    pub height: u32,
    /// The client's `TERM`.
    pub term: Option<String>,
    /// The command (exec), or none for a shell.
    pub command: Option<String>,
    /// Its seal, once the channel ended.
    pub seal: Option<CastSeal>,
}

/// The seal of a cast, from the session's recording.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CastSeal {
    /// When it was sealed (RFC 3339).
    pub at: String,
    /// SHA-256 (hex) of the file.
    pub sha256: String,
    /// Its size in bytes.
    pub bytes: u64,
    /// How the channel ended.
    pub status: Option<String>,
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

/// One channel's cast being written. Events are encoded into `pending` as they are handed
/// over and written out with [`CastWriter::write_out`]; the SHA-256 is computed on what is
/// written, so sealing never reads the file back.
pub struct CastWriter {
    channel: u32,
    width: u32,
    height: u32,
    file_name: String,
    path: PathBuf,
    file: Option<File>,
    started: Instant,
    /// The last offset written: offsets never go back, even if the wire stamped two events
    /// out of order on its two halves.
    last: f64,
    output: Utf8Stream,
    input: Utf8Stream,
    pending: String,
    digest: aws_lc_rs::digest::Context,
    bytes: u64,
    /// A write failed: the seal is then the hash of the file as it stands.
    failed: bool,
}

impl CastWriter {
    /// Creates the cast file of `channel` (a fresh name if the channel id was used before in
    /// this session) and encodes its header. `wall` is when `started` was, by the clock.
    pub fn create(
        dir: &Path,
        session: &str,
        channel: u32,
        start: &TerminalStart,
        started: Instant,
        wall: SystemTime,
    ) -> Result<Self, AuditError> {
        let mut nth = 1;
        let (file_name, path, file) = loop {
            let name = cast_file_name(session, channel, nth);
            let path = dir.join(&name);
            match OpenOptions::new().write(true).create_new(true).open(&path) {
                Ok(file) => break (name, path, file),
                Err(e)
                    if e.kind() == std::io::ErrorKind::AlreadyExists
                        && nth < MAX_CASTS_PER_CHANNEL =>
                {
                    nth += 1;
                }
                Err(source) => {
                    return Err(AuditError::Io {
                        what: format!("could not create the cast {}", path.display()),
                        source,
                    })
                }
            }
        };
        let size = |n: u32, default: u32| if n == 0 { default } else { n };
        let header = CastHeader {
            version: 2,
            width: size(start.width, DEFAULT_WIDTH),
            height: size(start.height, DEFAULT_HEIGHT),
            timestamp: Some(
                wall.duration_since(UNIX_EPOCH)
                    .map(|d| d.as_secs())
                    .unwrap_or(0),
            ),
            command: start.command.clone(),
            title: Some(format!("gatehouse session {session} channel {channel}")),
            env: start
                .term
                .iter()
                .map(|t| ("TERM".to_owned(), t.clone()))
                .collect(),
        };
        let mut writer = Self {
            channel,
            width: header.width,
            height: header.height,
            file_name,
            path,
            file: Some(file),
            started,
            last: 0.0,
            output: Utf8Stream::default(),
            input: Utf8Stream::default(),
            pending: String::new(),
            digest: aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256),
            bytes: 0,
            failed: false,
        };
        match serde_json::to_string(&header) {
            Ok(line) => {
                writer.pending.push_str(&line);
                writer.pending.push('\n');
            }
            Err(e) => return Err(AuditError::Corrupt(format!("cast header: {e}"))),
        }
        Ok(writer)
    }

    /// The file name, in the recordings directory.
    pub fn file_name(&self) -> &str {
        &self.file_name
    }

    /// The header as the session's recording notes it (the size as the header has it).
    pub fn start_event(&self, at: String, start: &TerminalStart) -> RecordingEvent {
        RecordingEvent::CastStart {
            at,
            channel: self.channel,
            file: self.file_name.clone(),
            width: self.width,
            height: self.height,
            term: start.term.clone(),
            command: start.command.clone(),
        }
    }

    /// Encodes one event (`Start` and `End` are the caller's: they open and seal the cast).
    pub fn push(&mut self, at: Instant, kind: &TerminalEventKind) {
        let mut data = String::new();
        let code = match kind {
            TerminalEventKind::Output(bytes) => {
                self.output.decode(bytes, &mut data);
                "o"
            }
            TerminalEventKind::Input(bytes) => {
                self.input.decode(bytes, &mut data);
                "i"
            }
            TerminalEventKind::Resize { width, height } => {
                data = format!("{width}x{height}");
                "r"
            }
            TerminalEventKind::Start(_) | TerminalEventKind::End { .. } => return,
        };
        self.line(at, code, &data);
    }

    fn line(&mut self, at: Instant, code: &str, data: &str) {
        if data.is_empty() {
            // Only the start of a split character: it goes out with the next chunk.
            return;
        }
        let offset = at
            .saturating_duration_since(self.started)
            .as_secs_f64()
            .max(self.last);
        self.last = offset;
        // A `str` always encodes; escapes control bytes and quotes.
        let data = serde_json::to_string(data).unwrap_or_default();
        self.pending
            .push_str(&format!("[{offset:.6}, \"{code}\", {data}]\n"));
    }

    /// Writes out what is encoded so far.
    pub fn write_out(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        let text = std::mem::take(&mut self.pending);
        let Some(file) = self.file.as_mut() else {
            return;
        };
        match file.write_all(text.as_bytes()) {
            Ok(()) => {
                self.digest.update(text.as_bytes());
                self.bytes += text.len() as u64;
            }
            Err(e) => {
                tracing::error!(cast = %self.path.display(), error = %e, "cast write failed");
                self.failed = true;
            }
        }
    }

    /// Writes out the rest (an unfinished character at the very end included) and closes the
    /// file: the line that seals it in the session's recording (with an empty hash if a write
    /// failed and the file could not be read back either: `verify` then names it).
    pub fn finish(
        mut self,
        at: Instant,
        at_text: String,
        status: Option<String>,
    ) -> RecordingEvent {
        let (mut out, mut inp) = (String::new(), String::new());
        self.output.finish(&mut out);
        self.input.finish(&mut inp);
        self.line(at, "o", &out);
        self.line(at, "i", &inp);
        self.write_out();
        self.file = None;
        let (sha256, bytes) = if self.failed {
            // What was meant to be written is not what is on disk: seal what is.
            let hash = crate::recording::file_sha256(&self.path).unwrap_or_else(|e| {
                tracing::error!(cast = %self.path.display(), error = %e, "cast not hashable");
                String::new()
            });
            let len = std::fs::metadata(&self.path).map(|m| m.len()).unwrap_or(0);
            (hash, len)
        } else {
            let digest = self.digest.finish();
            (gatehouse_core::identity::hex(digest.as_ref()), self.bytes)
        };
        RecordingEvent::Cast {
            at: at_text,
            channel: self.channel,
            file: self.file_name,
            sha256,
            bytes,
            status,
        }
    }
}

/// The casts a session's recording names, in the order they started, each with its seal if
/// it has one. Names that are not the session's cast names are refused as corrupt.
pub fn casts_of(dir: &Path, session: &str) -> Result<Vec<CastInfo>, AuditError> {
    let mut casts: Vec<CastInfo> = Vec::new();
    for event in read_recording(dir, session)? {
        match event {
            RecordingEvent::CastStart {
                at,
                channel,
                file,
                width,
                height,
                term,
                command,
            } => {
                check_name(session, &file)?;
                casts.push(CastInfo {
                    channel,
                    file,
                    started: at,
                    width,
                    height,
                    term,
                    command,
                    seal: None,
                });
            }
            RecordingEvent::Cast {
                at,
                file,
                sha256,
                bytes,
                status,
                ..
            } => {
                check_name(session, &file)?;
                let seal = CastSeal {
                    at,
                    sha256,
                    bytes,
                    status,
                };
                match casts.iter_mut().find(|c| c.file == file) {
                    Some(cast) => cast.seal = Some(seal),
                    None => {
                        return Err(AuditError::Corrupt(format!(
                            "the recording of session {session} seals a cast {file} it never \
                             started"
                        )))
                    }
                }
            }
            _ => {}
        }
    }
    Ok(casts)
}

fn check_name(session: &str, file: &str) -> Result<(), AuditError> {
    if is_cast_file_of(session, file) {
        Ok(())
    } else {
        Err(AuditError::Corrupt(format!(
            "the recording of session {session} names a cast {file:?} that is not one of its \
             casts"
        )))
    }
}

/// Opens a cast: its header, and its events one by one.
pub fn read_cast(path: &Path) -> Result<(CastHeader, CastFrames), AuditError> {
    let file = File::open(path).map_err(|source| AuditError::Io {
        what: format!("could not open the cast {}", path.display()),
        source,
    })?;
    let mut lines = BufReader::new(file).lines();
    let first = match lines.next() {
        Some(line) => line.map_err(|source| AuditError::Io {
            what: format!("could not read {}", path.display()),
            source,
        })?,
        None => return Err(AuditError::Corrupt(format!("{} is empty", path.display()))),
    };
    let header: CastHeader = serde_json::from_str(&first)
        .map_err(|e| AuditError::Corrupt(format!("{} header: {e}", path.display())))?;
    if header.version != 2 {
        return Err(AuditError::Corrupt(format!(
            "{} is asciicast version {}, not 2",
            path.display(),
            header.version
        )));
    }
    Ok((
        header,
        CastFrames {
            path: path.to_owned(),
            lines,
            line: 1,
        },
    ))
}

/// The events of a cast, read as they are asked for.
pub struct CastFrames {
    path: PathBuf,
    lines: std::io::Lines<BufReader<File>>,
    line: usize,
}

impl Iterator for CastFrames {
    type Item = Result<CastFrame, AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            let line = self.lines.next()?;
            self.line += 1;
            let line = match line {
                Ok(line) => line,
                Err(source) => {
                    return Some(Err(AuditError::Io {
                        what: format!("could not read {}", self.path.display()),
                        source,
                    }))
                }
            };
            if line.trim().is_empty() {
                continue;
            }
            return Some(
                serde_json::from_str::<(f64, String, String)>(&line)
                    .map(|(offset, code, data)| CastFrame { offset, code, data })
                    .map_err(|e| {
                        AuditError::Corrupt(format!(
                            "{} line {}: {e}",
                            self.path.display(),
                            self.line
                        ))
                    }),
            );
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
