//! Session recordings as JSON Lines: one file per session under the recordings directory,
//! appended as the session runs. Events are queued by the session and written out by a flusher
//! every [`FLUSH_EVERY`] (and at once when a session closes or the queue grows long), one write
//! per session per batch: a recording is never more than that behind the session, and the
//! hot path pays no system call for it. (The audit entries themselves are journaled before
//! each command runs; see `writer`.)
//!
//! Terminal channels (SSH shells and exec) go through the same queue into an asciicast per
//! channel beside the session's file (see [`crate::cast`]); a channel's cast is sealed when it
//! ends, or when the session does, by a line in the session's file.

use std::collections::{HashMap, HashSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::mem;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, TryLockError};
use std::thread::{self, Thread};
use std::time::{Duration, Instant, SystemTime};

use gatehouse_core::events::{TerminalEvent, TerminalEventKind, TerminalStart};
use gatehouse_core::store::{RecordingEvent, RecordingSink};
use gatehouse_core::time::display;
use gatehouse_core::SessionId;

use crate::cast::CastWriter;
use crate::error::AuditError;
pub use crate::recording_file::{file_sha256, read_recording, recording_path};

/// How often queued recording lines are written out.
pub const FLUSH_EVERY: Duration = Duration::from_millis(20);

/// A queue this long is written out at once, without waiting for the flusher.
const WRITE_AT: usize = 512;

/// Terminal bytes queued past which the flusher is woken at once (output comes in bursts:
/// `cat` of a large file).
const WAKE_AT_BYTES: usize = 256 << 10;

/// Terminal bytes queued past which the caller writes them out itself: the relay slows down
/// to the disk's pace rather than the gateway holding unbounded output in memory, or losing
/// it.
const WRITE_AT_BYTES: usize = 64 << 20;

enum Msg {
    /// Encoded by the writer (the flusher, mostly), off the relay's path.
    Event(SessionId, RecordingEvent),
    Terminal(SessionId, TerminalEvent),
    /// Seal the session's open casts (queued before its `End` line, so their seals come
    /// before it).
    SealCasts(SessionId),
    Close(SessionId),
}

#[derive(Default)]
struct Queue {
    msgs: Vec<Msg>,
    /// Terminal bytes in `msgs`.
    bytes: usize,
}

/// What the writing side holds: open files of sessions and of their terminal channels.
#[derive(Default)]
struct Files {
    sessions: HashMap<SessionId, File>,
    casts: HashMap<(SessionId, u32), CastWriter>,
    /// Channels whose cast could not be created: their events are dropped (the session's
    /// recording says so once) until they end.
    unrecorded: HashSet<(SessionId, u32)>,
}

/// Writes recordings to `DIR/SESSION_ID.jsonl`, and terminal channels to
/// `DIR/SESSION_ID.chN.cast` (see [`crate::cast::cast_file_name`]).
#[derive(Clone)]
pub struct FileRecordings {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    queue: Mutex<Queue>,
    files: Mutex<Files>,
    /// The flusher thread, woken early when terminal output piles up.
    flusher: OnceLock<Thread>,
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
                queue: Mutex::new(Queue::default()),
                files: Mutex::new(Files::default()),
                flusher: OnceLock::new(),
            }),
        };
        let weak = Arc::downgrade(&recordings.inner);
        let flusher = thread::Builder::new()
            .name("gatehouse-recording-flush".into())
            .spawn(move || {
                while let Some(inner) = weak.upgrade() {
                    FileRecordings { inner }.drive();
                    thread::park_timeout(FLUSH_EVERY);
                }
            })
            .map_err(|source| AuditError::Io {
                what: "could not start the recording flusher".into(),
                source,
            })?;
        let _ = recordings.inner.flusher.set(flusher.thread().clone());
        Ok(recordings)
    }

    fn push(&self, msg: Msg, now: bool) {
        let (terminal, added) = match &msg {
            Msg::Terminal(_, event) => match &event.kind {
                TerminalEventKind::Output(data) | TerminalEventKind::Input(data) => {
                    (true, data.len())
                }
                _ => (true, 0),
            },
            _ => (false, 0),
        };
        let (queued, bytes) = {
            let mut queue = self.queue();
            queue.msgs.push(msg);
            queue.bytes += added;
            (queue.msgs.len(), queue.bytes)
        };
        // The relay's events wake the flusher; the relay itself writes only when the flusher
        // has fallen far behind.
        let inline = if terminal {
            bytes >= WRITE_AT_BYTES || queued >= WRITE_AT * 64
        } else {
            queued >= WRITE_AT
        };
        if now || inline {
            self.drive();
        } else if terminal && (bytes >= WAKE_AT_BYTES || queued >= WRITE_AT) {
            if let Some(flusher) = self.inner.flusher.get() {
                flusher.unpark();
            }
        }
    }

    /// Writes out everything queued so far.
    pub fn flush(&self) {
        self.drive();
    }

    /// Writes whatever is queued, unless another thread is already doing so (it will).
    fn drive(&self) {
        loop {
            let mut files = match self.inner.files.try_lock() {
                Ok(f) => f,
                Err(TryLockError::Poisoned(p)) => p.into_inner(),
                Err(TryLockError::WouldBlock) => return,
            };
            let mut batch = self.take_queue();
            if batch.is_empty() {
                return;
            }
            self.write_batch(&mut files, &mut batch);
            drop(files);
            if self.queue().msgs.is_empty() {
                return;
            }
        }
    }

    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.inner.queue.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Everything queued, leaving the queue empty.
    fn take_queue(&self) -> Vec<Msg> {
        let mut queue = self.queue();
        queue.bytes = 0;
        mem::take(&mut queue.msgs)
    }

    fn write_batch(&self, files: &mut Files, batch: &mut Vec<Msg>) {
        // Lines of one session in a batch go out in one write; so do events of one channel.
        let mut pending = Pending::default();
        for msg in batch.drain(..) {
            match msg {
                Msg::Event(session, event) => pending.event(&session, &event),
                Msg::Terminal(session, event) => {
                    self.terminal_event(files, &mut pending, session, event)
                }
                Msg::SealCasts(session) => self.seal_casts(files, &mut pending, &session),
                Msg::Close(session) => {
                    self.seal_casts(files, &mut pending, &session);
                    if let Some(text) = pending.take(&session) {
                        self.write(files, &session, &text);
                    }
                    files.sessions.remove(&session);
                    files.unrecorded.retain(|(s, _)| *s != session);
                }
            }
        }
        for cast in files.casts.values_mut() {
            cast.write_out();
        }
        for (session, text) in pending.0 {
            self.write(files, &session, &text);
        }
    }

    /// Opens, feeds or seals a channel's cast; what the session's file should say of it goes
    /// to `pending`, in order with its other lines.
    fn terminal_event(
        &self,
        files: &mut Files,
        pending: &mut Pending,
        session: SessionId,
        event: TerminalEvent,
    ) {
        let key = (session, event.channel);
        match event.kind {
            TerminalEventKind::Start(start) => {
                // A channel id used again without an end: the old cast is complete.
                if let Some(old) = files.casts.remove(&key) {
                    seal(old, event.at, None, pending, &key.0);
                }
                files.unrecorded.remove(&key);
                self.open_cast(files, pending, key, &start, event.at);
            }
            TerminalEventKind::End { status } => {
                if let Some(cast) = files.casts.remove(&key) {
                    seal(cast, event.at, status, pending, &key.0);
                }
                files.unrecorded.remove(&key);
            }
            _ if files.unrecorded.contains(&key) => {}
            kind => {
                if !files.casts.contains_key(&key) {
                    // Output before any start (a wire's slip): keep it rather than lose it.
                    tracing::warn!(session = %key.0, channel = key.1, "terminal event before its start");
                    self.open_cast(
                        files,
                        pending,
                        key.clone(),
                        &TerminalStart::default(),
                        event.at,
                    );
                }
                if let Some(cast) = files.casts.get_mut(&key) {
                    cast.push(event.at, &kind);
                }
            }
        }
    }

    fn open_cast(
        &self,
        files: &mut Files,
        pending: &mut Pending,
        key: (SessionId, u32),
        start: &TerminalStart,
        at: Instant,
    ) {
        let wall = wall_clock(at);
        match CastWriter::create(&self.inner.dir, &key.0 .0, key.1, start, at, wall) {
            Ok(cast) => {
                pending.event(&key.0, &cast.start_event(display(wall), start));
                files.casts.insert(key, cast);
            }
            Err(e) => {
                tracing::error!(session = %key.0, channel = key.1, error = %e, "cannot open cast");
                pending.event(
                    &key.0,
                    &RecordingEvent::Notice {
                        at: display(wall),
                        text: format!("the terminal of channel {} is not recorded: {e}", key.1),
                    },
                );
                files.unrecorded.insert(key);
            }
        }
    }

    /// Seals every open cast of `session`, in channel order.
    fn seal_casts(&self, files: &mut Files, pending: &mut Pending, session: &SessionId) {
        let mut keys: Vec<(SessionId, u32)> = files
            .casts
            .keys()
            .filter(|(s, _)| s == session)
            .cloned()
            .collect();
        keys.sort_by_key(|(_, channel)| *channel);
        let now = Instant::now();
        for key in keys {
            if let Some(cast) = files.casts.remove(&key) {
                seal(cast, now, None, pending, session);
            }
        }
    }

    fn write(&self, files: &mut Files, session: &SessionId, text: &str) {
        if !files.sessions.contains_key(session) {
            match open_file(&self.inner.dir, session) {
                Ok(f) => {
                    files.sessions.insert(session.clone(), f);
                }
                Err(e) => {
                    tracing::error!(session = %session, error = %e, "cannot open recording");
                    return;
                }
            }
        }
        if let Some(file) = files.sessions.get_mut(session) {
            if let Err(e) = file.write_all(text.as_bytes()) {
                tracing::error!(session = %session, error = %e, "recording write failed");
            }
        }
    }
}

/// Lines of a batch, per session, in the order they came.
#[derive(Default)]
struct Pending(Vec<(SessionId, String)>);

impl Pending {
    fn add(&mut self, session: &SessionId, line: &str) {
        match self.0.iter_mut().find(|(s, _)| s == session) {
            Some((_, text)) => text.push_str(line),
            None => self.0.push((session.clone(), line.to_owned())),
        }
    }

    fn event(&mut self, session: &SessionId, event: &RecordingEvent) {
        if let Some(line) = encode(session, event) {
            self.add(session, &line);
        }
    }

    fn take(&mut self, session: &SessionId) -> Option<String> {
        let at = self.0.iter().position(|(s, _)| s == session)?;
        Some(self.0.remove(at).1)
    }
}

/// Seals a cast: its last bytes written, its hash into the session's lines.
fn seal(
    cast: CastWriter,
    at: Instant,
    status: Option<String>,
    pending: &mut Pending,
    session: &SessionId,
) {
    let event = cast.finish(at, display(wall_clock(at)), status);
    pending.event(session, &event);
}

/// When `at` was by the clock (events are stamped with a monotonic `Instant`).
fn wall_clock(at: Instant) -> SystemTime {
    let now = SystemTime::now();
    now.checked_sub(Instant::now().saturating_duration_since(at))
        .unwrap_or(now)
}

/// One line of a session's file.
fn encode(session: &SessionId, event: &RecordingEvent) -> Option<String> {
    match serde_json::to_string(event) {
        Ok(mut line) => {
            line.push('\n');
            Some(line)
        }
        Err(e) => {
            tracing::error!(session = %session, error = %e, "recording event not encodable");
            None
        }
    }
}

impl RecordingSink for FileRecordings {
    fn append(&self, session: &SessionId, event: RecordingEvent) {
        if matches!(event, RecordingEvent::End { .. }) {
            // The session ends: its casts' seals go before its last line.
            self.push(Msg::SealCasts(session.clone()), false);
        }
        self.push(Msg::Event(session.clone(), event), false);
    }

    fn terminal(&self, session: &SessionId, event: TerminalEvent) {
        self.push(Msg::Terminal(session.clone(), event), false);
    }

    fn seal(&self, session: &SessionId) -> Option<String> {
        // Wait for any write in progress, then write out what is still queued: after the
        // session's Close, its file is complete.
        {
            let mut files = self.inner.files.lock().unwrap_or_else(|p| p.into_inner());
            let mut batch = self.take_queue();
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
