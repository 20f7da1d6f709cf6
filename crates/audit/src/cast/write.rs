//! Writing one channel's cast: the header, an event line per output, input or resize, and the
//! seal.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use gatehouse_core::events::{TerminalEventKind, TerminalStart};
use gatehouse_core::store::RecordingEvent;

use super::{cast_file_name, CastHeader, Utf8Stream, DEFAULT_HEIGHT, DEFAULT_WIDTH};
use crate::error::AuditError;

/// Casts of one channel id in one session past which no more are opened (ids are reused
/// after a channel closes; this only bounds the search for a free name).
const MAX_CASTS_PER_CHANNEL: u32 = 100_000;

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
        // Writing to a `String` cannot fail.
        let _ = writeln!(self.pending, "[{offset:.6}, \"{code}\", {data}]");
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
            let hash = crate::recording_file::file_sha256(&self.path).unwrap_or_else(|e| {
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
