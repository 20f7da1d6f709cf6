//! Session recordings as JSON Lines: one file per session under the recordings directory,
//! appended by a dedicated thread and flushed after every batch, so a crash loses at most what
//! was still queued in memory, never a torn file.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::thread;

use gatehouse_core::store::{RecordingEvent, RecordingSink};
use gatehouse_core::SessionId;

use crate::error::AuditError;

enum Msg {
    Append(SessionId, RecordingEvent),
    Close(SessionId),
}

/// Writes recordings to `DIR/SESSION_ID.jsonl`.
#[derive(Clone)]
pub struct FileRecordings {
    tx: mpsc::Sender<Msg>,
}

impl FileRecordings {
    /// Starts the recording writer for a directory (created if missing).
    pub fn start(dir: &Path) -> Result<Self, AuditError> {
        std::fs::create_dir_all(dir).map_err(|source| AuditError::Io {
            what: format!(
                "could not create the recordings directory {}",
                dir.display()
            ),
            source,
        })?;
        let (tx, rx) = mpsc::channel();
        let dir = dir.to_owned();
        thread::Builder::new()
            .name("gatehouse-recorder".into())
            .spawn(move || run(&dir, rx))
            .map_err(|source| AuditError::Io {
                what: "could not start the recording thread".into(),
                source,
            })?;
        Ok(Self { tx })
    }
}

/// The file a session's recording lives in.
pub fn recording_path(dir: &Path, session: &str) -> PathBuf {
    dir.join(format!("{session}.jsonl"))
}

impl RecordingSink for FileRecordings {
    fn append(&self, session: &SessionId, event: RecordingEvent) {
        if self.tx.send(Msg::Append(session.clone(), event)).is_err() {
            tracing::error!(session = %session, "recording thread stopped; event lost");
        }
    }

    fn close(&self, session: &SessionId) {
        let _ = self.tx.send(Msg::Close(session.clone()));
    }
}

fn run(dir: &Path, rx: mpsc::Receiver<Msg>) {
    let mut open: HashMap<SessionId, BufWriter<File>> = HashMap::new();
    let mut dirty: Vec<SessionId> = Vec::new();
    while let Ok(first) = rx.recv() {
        let mut next = Some(first);
        while let Some(msg) = next {
            match msg {
                Msg::Append(session, event) => {
                    if !open.contains_key(&session) {
                        match open_file(dir, &session) {
                            Ok(f) => {
                                open.insert(session.clone(), BufWriter::new(f));
                            }
                            Err(e) => {
                                tracing::error!(session = %session, error = %e,
                                    "cannot open recording");
                            }
                        }
                    }
                    if let Some(w) = open.get_mut(&session) {
                        let line = serde_json::to_string(&event).unwrap_or_default();
                        if writeln!(w, "{line}").is_err() {
                            tracing::error!(session = %session, "recording write failed");
                        }
                        dirty.push(session);
                    }
                }
                Msg::Close(session) => {
                    if let Some(mut w) = open.remove(&session) {
                        let _ = w.flush();
                    }
                }
            }
            next = rx.try_recv().ok();
        }
        for session in dirty.drain(..) {
            if let Some(w) = open.get_mut(&session) {
                if let Err(e) = w.flush() {
                    tracing::error!(session = %session, error = %e, "recording flush failed");
                }
            }
        }
    }
}

fn open_file(dir: &Path, session: &SessionId) -> std::io::Result<File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(recording_path(dir, &session.0))
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
