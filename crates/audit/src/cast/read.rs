//! Reading casts back: which a session has (from its recording's lines), and their events.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use gatehouse_core::store::RecordingEvent;
use serde::Serialize;

use super::{is_cast_file_of, CastHeader};
use crate::error::AuditError;
use crate::recording_file::read_recording;

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
