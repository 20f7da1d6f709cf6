//! Recording files as they are read back: where a session's file is, its events, and the
//! SHA-256 its seal is compared with (shared by the recordings' writer, casts, verification,
//! retention and replay).

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use gatehouse_core::store::RecordingEvent;

use crate::error::AuditError;

/// SHA-256 (hex) of a file's contents, read in blocks.
pub fn file_sha256(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    let mut file = File::open(path)?;
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    let mut block = vec![0u8; 64 << 10];
    loop {
        let n = file.read(&mut block)?;
        if n == 0 {
            break;
        }
        ctx.update(&block[..n]);
    }
    Ok(gatehouse_core::identity::hex(ctx.finish().as_ref()))
}

/// The file a session's recording lives in.
pub fn recording_path(dir: &Path, session: &str) -> PathBuf {
    dir.join(format!("{session}.jsonl"))
}

/// Reads a session's recording back, event by event.
pub fn read_recording(dir: &Path, session: &str) -> Result<Vec<RecordingEvent>, AuditError> {
    let path = recording_path(dir, session);
    let file = File::open(&path).map_err(|source| AuditError::Io {
        what: format!("could not open the recording {}", path.display()),
        source,
    })?;
    let mut events = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|source| AuditError::Io {
            what: format!("could not read {}", path.display()),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let event = serde_json::from_str(&line)
            .map_err(|e| AuditError::Corrupt(format!("{} line {}: {e}", path.display(), n + 1)))?;
        events.push(event);
    }
    Ok(events)
}
