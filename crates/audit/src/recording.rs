//! Session recordings as JSON Lines: one file per session under the recordings directory,
//! appended as the session runs. Events are queued by the session and written out by a flusher
//! every [`FLUSH_EVERY`] (and at once when a session closes or the queue grows long), one write
//! per session per batch: a recording is never more than that behind the session, and the
//! hot path pays no system call for it. (The audit entries themselves are journaled before
//! each command runs; see `writer`.)

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, TryLockError};
use std::thread;
use std::time::Duration;

use gatehouse_core::store::{RecordingEvent, RecordingSink};
use gatehouse_core::SessionId;

use crate::error::AuditError;

/// How often queued recording lines are written out.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// A queue this long is written out at once, without waiting for the flusher.
const WRITE_AT: usize = 512;

enum Msg {
    Line(SessionId, String),
    Close(SessionId),
}

/// Writes recordings to `DIR/SESSION_ID.jsonl`.
#[derive(Clone)]
pub struct FileRecordings {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    queue: Mutex<Vec<Msg>>,
    files: Mutex<HashMap<SessionId, File>>,
}

impl FileRecordings {
    /// Recordings in a directory (created if missing).
    pub fn start(dir: &Path) -> Result<Self, AuditError> {
        std::fs::create_dir_all(dir).map_err(|source| AuditError::Io {
            what: format!(
                "could not create the recordings directory {}",
                dir.display()
            ),
            source,
        })?;
        let recordings = Self {
            inner: Arc::new(Inner {
                dir: dir.to_owned(),
                queue: Mutex::new(Vec::new()),
                files: Mutex::new(HashMap::new()),
            }),
        };
        let weak = Arc::downgrade(&recordings.inner);
        thread::Builder::new()
            .name("gatehouse-recording-flush".into())
            .spawn(move || {
                while let Some(inner) = weak.upgrade() {
                    FileRecordings { inner }.drive();
                    thread::sleep(FLUSH_EVERY);
                }
            })
            .map_err(|source| AuditError::Io {
                what: "could not start the recording flusher".into(),
                source,
            })?;
        Ok(recordings)
    }

    fn push(&self, msg: Msg, now: bool) {
        let queued = {
            let mut queue = self.queue();
            queue.push(msg);
            queue.len()
        };
        if now || queued >= WRITE_AT {
            self.drive();
        }
    }

    /// Writes out everything queued so far.
    pub fn flush(&self) {
        self.drive();
    }

    /// Writes whatever is queued, unless another thread is already doing so (it will).
    fn drive(&self) {
        let mut batch = Vec::new();
        loop {
            let mut files = match self.inner.files.try_lock() {
                Ok(f) => f,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            mem::swap(&mut *self.queue(), &mut batch);
            if batch.is_empty() {
                return;
            }
            self.write_batch(&mut files, &mut batch);
            drop(files);
            if self.queue().is_empty() {
                return;
            }
        }
    }

    fn queue(&self) -> MutexGuard<'_, Vec<Msg>> {
        self.inner.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn write_batch(&self, files: &mut HashMap<SessionId, File>, batch: &mut Vec<Msg>) {
        // Lines of one session in a batch go out in one write.
        let mut pending: Vec<(SessionId, String)> = Vec::new();
        for msg in batch.drain(..) {
            match msg {
                Msg::Line(session, line) => match pending.iter_mut().find(|(s, _)| *s == session) {
                    Some((_, text)) => text.push_str(&line),
                    None => pending.push((session, line)),
                },
                Msg::Close(session) => {
                    if let Some(at) = pending.iter().position(|(s, _)| *s == session) {
                        let (session, text) = pending.remove(at);
                        self.write(files, &session, &text);
                    }
                    files.remove(&session);
                }
            }
        }
        for (session, text) in pending {
            self.write(files, &session, &text);
        }
    }

    fn write(&self, files: &mut HashMap<SessionId, File>, session: &SessionId, text: &str) {
        if !files.contains_key(session) {
            match open_file(&self.inner.dir, session) {
                Ok(f) => {
                    files.insert(session.clone(), f);
                }
                Err(e) => {
                    tracing::error!(session = %session, error = %e, "cannot open recording");
                    return;
                }
            }
        }
        if let Some(file) = files.get_mut(session) {
            if let Err(e) = file.write_all(text.as_bytes()) {
                tracing::error!(session = %session, error = %e, "recording write failed");
            }
        }
    }
}

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

impl RecordingSink for FileRecordings {
    fn append(&self, session: &SessionId, event: RecordingEvent) {
        match serde_json::to_string(&event) {
            Ok(mut line) => {
                line.push('\n');
                self.push(Msg::Line(session.clone(), line), false);
            }
            Err(e) => {
                tracing::error!(session = %session, error = %e, "recording event not encodable")
            }
        }
    }

    fn seal(&self, session: &SessionId) -> Option<String> {
        // Wait for any write in progress, then write out what is still queued: after the
        // session's Close, its file is complete.
        {
            let mut files = self.inner.files.lock().unwrap_or_else(|p| p.into_inner());
            let mut batch = mem::take(&mut *self.queue());
            self.write_batch(&mut files, &mut batch);
        }
        let path = recording_path(&self.inner.dir, &session.0);
        match file_sha256(&path) {
            Ok(hash) => Some(hash),
            Err(e) => {
                tracing::error!(session = %session, error = %e, "recording could not be sealed");
                None
            }
        }
    }

    fn close(&self, session: &SessionId) {
        self.push(Msg::Close(session.clone()), true);
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
