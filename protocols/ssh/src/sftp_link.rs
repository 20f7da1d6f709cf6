//! What the two halves of an SFTP channel share: the [`Tracker`] that follows both directions,
//! and the audit permits of the operations admitted and not yet finished (an OPEN's lasts until
//! its file is closed, so its entry carries the bytes moved and their SHA-256, and the
//! recording the file: its hash, and the text of a small upload).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::Bytes;
use gatehouse_core::files::FileDirection;
use gatehouse_core::{Admitted, Outcome, Session};

use crate::sftp::{Audited, Finished, Request, Response, SftpError, Tracker};

/// The shared state of one SFTP channel. Never locked across an `.await`.
#[derive(Clone)]
pub(crate) struct SftpLink(Arc<Mutex<Shared>>);

struct Shared {
    tracker: Tracker,
    permits: HashMap<u64, Admitted>,
}

impl SftpLink {
    /// A link whose uploads up to `copy_limit` bytes are copied into the recording.
    pub(crate) fn new(copy_limit: u64) -> Self {
        let limit = usize::try_from(copy_limit).unwrap_or(usize::MAX);
        Self(Arc::new(Mutex::new(Shared {
            tracker: Tracker::new().keep_uploads_up_to(limit),
            permits: HashMap::new(),
        })))
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Follows one client packet; `Some` when it is an operation to admit before forwarding.
    pub(crate) fn request(&self, packet: &Bytes) -> Result<Option<Audited>, SftpError> {
        let request = Request::parse(packet)?;
        self.lock().tracker.on_request(&request)
    }

    /// Keeps an admitted operation's permit until the server's answer (or its file's close).
    pub(crate) fn admitted(&self, audited: &Audited, permit: Admitted) {
        self.lock().permits.insert(audited.key().get(), permit);
    }

    /// Forgets an operation the gateway refused (it was never forwarded).
    pub(crate) fn denied(&self, audited: &Audited) {
        self.lock().tracker.on_denied(audited);
    }

    /// Follows one server packet, finishing the operation it ends, if any.
    pub(crate) fn response(&self, core: &Session, packet: &Bytes) -> Result<(), SftpError> {
        let response = Response::parse(packet)?;
        let finished = {
            let mut shared = self.lock();
            match shared.tracker.on_response(&response)? {
                Some(f) => shared.permits.remove(&f.key().get()).map(|p| (f, p)),
                None => None,
            }
        };
        if let Some((finished, permit)) = finished {
            finish(core, &finished, permit);
        }
        Ok(())
    }

    /// Ends whatever was still in flight or open when the channel ends.
    pub(crate) fn drain(&self, core: &Session) {
        let ended: Vec<(Finished, Admitted)> = {
            let mut shared = self.lock();
            let drained = shared.tracker.drain();
            let mut ended = Vec::with_capacity(drained.len());
            for f in drained {
                if let Some(p) = shared.permits.remove(&f.key().get()) {
                    ended.push((f, p));
                }
            }
            // Permits the tracker no longer knows (a broken stream): ended without counts.
            let rest: Vec<Admitted> = shared.permits.drain().map(|(_, p)| p).collect();
            for permit in rest {
                core.finish(
                    permit,
                    Outcome::NotExecuted {
                        reason: "the SFTP stream ended before the server answered".into(),
                    },
                );
            }
            ended
        };
        for (finished, permit) in ended {
            finish(core, &finished, permit);
        }
    }
}

/// Closes an operation's audit entry with what the server said and the bytes moved.
fn finish(core: &Session, finished: &Finished, permit: Admitted) {
    use crate::sftp::Outcome as Sftp;
    let summary = finished.summary();
    let outcome = match finished.outcome() {
        Sftp::Ok => Outcome::Completed { tag: summary },
        Sftp::Failed { code, .. } => Outcome::Failed {
            code: code.to_string(),
            message: summary,
        },
        Sftp::Interrupted => Outcome::Failed {
            code: "interrupted".into(),
            message: summary,
        },
    };
    if let Some(transfer) = finished.transfer() {
        let files = [
            (FileDirection::Download, transfer.download()),
            (FileDirection::Upload, transfer.upload()),
        ];
        for (direction, seen) in files {
            if let Some(seen) = seen {
                core.record_file(permit.seq(), seen.crossed(direction, transfer.path()));
            }
        }
    }
    core.finish(permit, outcome);
}
