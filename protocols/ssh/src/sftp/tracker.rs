//! Following an SFTP session: which requests are in flight, which handles are open, and how
//! many bytes went through each, so that every audited request gets an outcome.
//!
//! The relay hands the tracker every request before forwarding it and every answer before
//! forwarding that. Requests that change the server's files (and OPEN/OPENDIR, which say what
//! is read) come back as [`Audited`], to be admitted; the answers that end them come back as
//! [`Finished`], keyed by the same [`Key`]. An OPEN ends when its handle is CLOSEd, with the
//! bytes read and written through the handle; READ and WRITE are never audited one by one,
//! only counted: a READ by the DATA the server returned, a WRITE once the server said OK.
//!
//! Every request id is followed, audited or not, so a client that reuses an id still in
//! flight cannot make one answer pass for another's.

use std::collections::HashMap;
use std::fmt;

use super::error::SftpError;
use super::packet::{type_name, Attrs, OpenFlags, Request, Response};
use super::render;
use super::status::StatusCode;
use crate::file_digest::{FileDigest, FileSeen};

/// The most requests followed in flight at once. OpenSSH's client keeps 64 in flight by
/// default; the bound only stops a client from growing the table without end.
pub const MAX_PENDING: usize = 65_536;

/// Names one audited request from its admission to its end: what the relay maps to the
/// permit it holds. Assigned by the tracker, so unlike a client's request id it is never
/// reused within a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(u64);

impl Key {
    /// The number, counting from 1 in the order requests were admitted.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// What an audited request does; its word is the second word of the audit text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// SSH_FXP_OPEN: a file opened for reading and/or writing.
    Open,
    /// SSH_FXP_OPENDIR: a directory opened for listing.
    Opendir,
    /// SSH_FXP_REMOVE.
    Remove,
    /// SSH_FXP_RENAME.
    Rename,
    /// `posix-rename@openssh.com` (replaces an existing target).
    PosixRename,
    /// SSH_FXP_MKDIR.
    Mkdir,
    /// SSH_FXP_RMDIR.
    Rmdir,
    /// SSH_FXP_SETSTAT.
    Setstat,
    /// `lsetstat@openssh.com`.
    Lsetstat,
    /// SSH_FXP_FSETSTAT.
    Fsetstat,
    /// SSH_FXP_SYMLINK.
    Symlink,
    /// `hardlink@openssh.com`.
    Hardlink,
}

impl Op {
    /// The word in the audit text (`open`, `posix-rename`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Open => "open",
            Self::Opendir => "opendir",
            Self::Remove => "remove",
            Self::Rename => "rename",
            Self::PosixRename => "posix-rename",
            Self::Mkdir => "mkdir",
            Self::Rmdir => "rmdir",
            Self::Setstat => "setstat",
            Self::Lsetstat => "lsetstat",
            Self::Fsetstat => "fsetstat",
            Self::Symlink => "symlink",
            Self::Hardlink => "hardlink",
        }
    }
}

/// A request to admit before it is forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Audited {
    key: Key,
    request_id: u32,
    op: Op,
    text: String,
}

impl Audited {
    /// The key its [`Finished`] will carry.
    pub fn key(&self) -> Key {
        self.key
    }

    /// The client's request id: what a refusal's STATUS must answer.
    pub fn request_id(&self) -> u32 {
        self.request_id
    }

    /// What it does.
    pub fn op(&self) -> Op {
        self.op
    }

    /// The audit text: `sftp open /tmp/x write,create,truncate`, `sftp rename /a /b`.
    /// Paths are shown as sent (not normalised; relative ones are relative to the login
    /// directory), quoted and escaped when they are not plain.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// How an audited request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server said SSH_FX_OK (for an OPEN: the handle was opened, then closed with OK).
    Ok,
    /// The server answered with an error status (for an OPEN: at the open or at the close).
    Failed {
        /// The status code.
        code: StatusCode,
        /// The server's message, lossily as UTF-8.
        message: String,
    },
    /// The channel ended before the server answered, or while the handle was open.
    Interrupted,
}

/// The bytes that went through one file handle, and the files they made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transfer {
    /// The file's path, as rendered in the audit text.
    path: String,
    read: u64,
    written: u64,
    writable: bool,
    /// The bytes read, in file order: their SHA-256.
    download: Option<FileSeen>,
    /// The bytes written, in file order: their SHA-256, and a copy of a small upload.
    upload: Option<FileSeen>,
}

impl Transfer {
    /// Bytes the server returned in DATA answers to READs on the handle.
    pub fn read(&self) -> u64 {
        self.read
    }

    /// Bytes of WRITEs on the handle that the server answered with SSH_FX_OK.
    pub fn written(&self) -> u64 {
        self.written
    }

    /// The file's path, as the audit text shows it.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// What was known of the bytes read (their SHA-256), if any were.
    pub fn download(&self) -> Option<&FileSeen> {
        self.download.as_ref()
    }

    /// What was known of the bytes written (their SHA-256, a copy of a small file), if the
    /// file was opened for writing.
    pub fn upload(&self) -> Option<&FileSeen> {
        self.upload.as_ref()
    }

    /// `wrote 3 bytes, sha256 …`, `read 1 byte, sha256 …`, both joined by `; `; with nothing
    /// moved, the direction the file was opened for. The hash is of the bytes moved, in file
    /// order (the whole file when it was read or written from start to end).
    fn past(&self) -> String {
        let hash = |seen: &Option<FileSeen>| match seen {
            Some(seen) => format!(", {}", seen.hash_text()),
            None => String::new(),
        };
        let read = format!("read {}{}", bytes(self.read), hash(&self.download));
        let wrote = format!("wrote {}{}", bytes(self.written), hash(&self.upload));
        match (self.read, self.written) {
            (0, 0) if self.writable => wrote,
            (_, 0) => read,
            (0, _) => wrote,
            _ => format!("{read}; {wrote}"),
        }
    }

    /// `writing 3 bytes`, `reading 1 byte`, `reading 5 bytes and writing 2 bytes`.
    fn progressive(&self) -> String {
        match (self.read, self.written) {
            (0, 0) if self.writable => "writing 0 bytes".to_owned(),
            (0, 0) => "reading 0 bytes".to_owned(),
            (read, 0) => format!("reading {}", bytes(read)),
            (0, written) => format!("writing {}", bytes(written)),
            (read, written) => format!("reading {} and writing {}", bytes(read), bytes(written)),
        }
    }
}

/// An audited request that ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    key: Key,
    request_id: u32,
    op: Op,
    outcome: Outcome,
    transfer: Option<Transfer>,
}

impl Finished {
    /// The key its [`Audited`] carried.
    pub fn key(&self) -> Key {
        self.key
    }

    /// The client's id of the request that was audited (for a file: the OPEN's).
    pub fn request_id(&self) -> u32 {
        self.request_id
    }

    /// What it did.
    pub fn op(&self) -> Op {
        self.op
    }

    /// How it ended.
    pub fn outcome(&self) -> &Outcome {
        &self.outcome
    }

    /// For a file that was opened: the bytes read and written through its handle.
    pub fn transfer(&self) -> Option<&Transfer> {
        self.transfer.as_ref()
    }

    /// One line for the audit trail: `ok`, `wrote 3 bytes`,
    /// `SSH_FX_NO_SUCH_FILE: No such file`, `interrupted after writing 65536 bytes`.
    pub fn summary(&self) -> String {
        match (&self.outcome, &self.transfer) {
            (Outcome::Ok, None) => "ok".to_owned(),
            (Outcome::Ok, Some(t)) => t.past(),
            (Outcome::Failed { code, message }, transfer) => {
                let mut s = code.to_string();
                if !message.is_empty() {
                    s.push_str(": ");
                    s.push_str(message);
                }
                if let Some(t) = transfer {
                    s.push_str("; ");
                    s.push_str(&t.past());
                }
                s
            }
            (Outcome::Interrupted, None) => "interrupted".to_owned(),
            (Outcome::Interrupted, Some(t)) => format!("interrupted after {}", t.progressive()),
        }
    }
}

impl fmt::Display for Finished {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.summary())
    }
}

/// The state of one SFTP session: requests in flight and open handles.
#[derive(Debug)]
pub struct Tracker {
    next_key: u64,
    max_pending: usize,
    /// Uploads no larger than this are kept whole (for the recording); 0 keeps none.
    copy_limit: usize,
    pending: HashMap<u32, Pending>,
    /// Open handles, by the server's handle bytes.
    handles: HashMap<Box<[u8]>, Key>,
    /// What each open handle is, by the key of the OPEN that returned it.
    files: HashMap<Key, OpenFile>,
}

/// A request in flight, by what its answer means.
#[derive(Debug)]
enum Pending {
    /// An OPEN or OPENDIR: a HANDLE opens the file, a STATUS ends it.
    Open {
        key: Key,
        op: Op,
        path: String,
        flags: OpenFlags,
    },
    /// Another audited request: its STATUS ends it.
    Status { key: Key, op: Op },
    /// A READ on an open file: DATA counts as read, and is hashed at its offset.
    Read { file: Key, offset: u64 },
    /// A WRITE on an open file: an OK counts it as written.
    Write { file: Key, len: u32 },
    /// A CLOSE of an open file or directory: its STATUS ends the OPEN.
    Close { file: Key },
    /// Anything else: any answer ends it.
    Passed,
}

impl Pending {
    /// The request's name in errors.
    fn name(&self) -> &'static str {
        match self {
            Self::Open { op, .. } | Self::Status { op, .. } => op.as_str(),
            Self::Read { .. } => "read",
            Self::Write { .. } => "write",
            Self::Close { .. } => "close",
            Self::Passed => "passed-through",
        }
    }
}

/// An open handle.
#[derive(Debug)]
struct OpenFile {
    request_id: u32,
    op: Op,
    /// The path as rendered in the audit text (for FSETSTAT's).
    path: String,
    flags: OpenFlags,
    handle: Box<[u8]>,
    read: u64,
    written: u64,
    /// The bytes read through the handle, hashed in file order.
    download: FileDigest,
    /// The bytes written through the handle (a file opened for writing), hashed in file order.
    upload: Option<FileDigest>,
}

impl OpenFile {
    /// Its end, with the bytes moved if it is a file.
    fn finish(self, key: Key, outcome: Outcome) -> Finished {
        let transfer = (self.op == Op::Open).then(|| Transfer {
            path: self.path,
            read: self.read,
            written: self.written,
            writable: self.flags.writes(),
            download: (self.read > 0).then(|| self.download.finish()),
            upload: self.upload.map(FileDigest::finish),
        });
        Finished {
            key,
            request_id: self.request_id,
            op: self.op,
            outcome,
            transfer,
        }
    }
}

impl Tracker {
    /// A tracker for a new session, bounded by [`MAX_PENDING`].
    pub fn new() -> Self {
        Self::with_max_pending(MAX_PENDING)
    }

    /// A tracker that refuses more than `max` requests in flight.
    pub fn with_max_pending(max: usize) -> Self {
        Self {
            next_key: 0,
            max_pending: max,
            copy_limit: 0,
            pending: HashMap::new(),
            handles: HashMap::new(),
            files: HashMap::new(),
        }
    }

    /// Keeps a copy of each upload no larger than `limit` bytes (0: none), for the recording.
    pub fn keep_uploads_up_to(mut self, limit: usize) -> Self {
        self.copy_limit = limit;
        self
    }

    /// Notes a request the client sent; call it for every request, before forwarding it.
    /// Returns the audit text and key if the request must be admitted first.
    pub fn on_request(&mut self, request: &Request<'_>) -> Result<Option<Audited>, SftpError> {
        let Some(id) = request.id() else {
            return Ok(None);
        };
        if self.pending.contains_key(&id) {
            return Err(SftpError::DuplicateRequestId { id });
        }
        if self.pending.len() >= self.max_pending {
            return Err(SftpError::TooManyPending {
                max: self.max_pending,
            });
        }
        let (pending, audited) = match *request {
            Request::Open {
                path, flags, attrs, ..
            } => {
                let key = self.key();
                let path = render::path(path);
                let mut text = format!("sftp open {path} {flags}");
                push_attrs(&mut text, &attrs);
                let pending = Pending::Open {
                    key,
                    op: Op::Open,
                    path,
                    flags,
                };
                (pending, Some((key, Op::Open, text)))
            }
            Request::Opendir { path, .. } => {
                let key = self.key();
                let path = render::path(path);
                let text = format!("sftp opendir {path}");
                let pending = Pending::Open {
                    key,
                    op: Op::Opendir,
                    path,
                    flags: OpenFlags::default(),
                };
                (pending, Some((key, Op::Opendir, text)))
            }
            Request::Read { handle, offset, .. } => match self.handles.get(handle) {
                Some(&file) => (Pending::Read { file, offset }, None),
                None => (Pending::Passed, None),
            },
            Request::Write {
                handle,
                offset,
                data,
                ..
            } => match self.handles.get(handle) {
                // The framer's bound keeps a packet, and so its data, far below u32::MAX.
                Some(&file) => {
                    // Hashed as sent; a write the server refuses voids the hash.
                    if let Some(upload) = self.files.get_mut(&file).and_then(|f| f.upload.as_mut())
                    {
                        upload.add(offset, data);
                    }
                    let len = u32::try_from(data.len()).unwrap_or(u32::MAX);
                    (Pending::Write { file, len }, None)
                }
                None => (Pending::Passed, None),
            },
            Request::Close { handle, .. } => match self.handles.get(handle) {
                Some(&file) => (Pending::Close { file }, None),
                None => (Pending::Passed, None),
            },
            Request::Remove { path, .. } => self.simple(Op::Remove, &[path], None),
            Request::Rmdir { path, .. } => self.simple(Op::Rmdir, &[path], None),
            Request::Mkdir { path, attrs, .. } => self.simple(Op::Mkdir, &[path], Some(&attrs)),
            Request::Setstat { path, attrs, .. } => self.simple(Op::Setstat, &[path], Some(&attrs)),
            Request::Lsetstat { path, attrs, .. } => {
                self.simple(Op::Lsetstat, &[path], Some(&attrs))
            }
            Request::Rename { from, to, .. } => self.simple(Op::Rename, &[from, to], None),
            Request::PosixRename { from, to, .. } => {
                self.simple(Op::PosixRename, &[from, to], None)
            }
            Request::Hardlink { from, to, .. } => self.simple(Op::Hardlink, &[from, to], None),
            // Target first, as `ln -s` takes it.
            Request::Symlink { target, link, .. } => {
                self.simple(Op::Symlink, &[target, link], None)
            }
            Request::Fsetstat { handle, attrs, .. } => {
                let key = self.key();
                let mut text = String::from("sftp fsetstat ");
                match self.handles.get(handle).and_then(|k| self.files.get(k)) {
                    Some(file) => text.push_str(&file.path),
                    None => push_handle(&mut text, handle),
                }
                push_attrs(&mut text, &attrs);
                let pending = Pending::Status {
                    key,
                    op: Op::Fsetstat,
                };
                (pending, Some((key, Op::Fsetstat, text)))
            }
            Request::Init { .. } | Request::Extended { .. } | Request::Other { .. } => {
                (Pending::Passed, None)
            }
        };
        self.pending.insert(id, pending);
        Ok(audited.map(|(key, op, text)| Audited {
            key,
            request_id: id,
            op,
            text,
        }))
    }

    /// Forgets a request the gateway refused and answered itself, so it is not waited for.
    pub fn on_denied(&mut self, audited: &Audited) {
        self.pending.remove(&audited.request_id);
    }

    /// Notes an answer the server sent; call it for every answer. Returns the end of an
    /// audited request, if this answer ends one.
    pub fn on_response(&mut self, response: &Response<'_>) -> Result<Option<Finished>, SftpError> {
        let Some(id) = response.id() else {
            return Ok(None);
        };
        let Some(pending) = self.pending.remove(&id) else {
            return Err(SftpError::UnknownResponseId { id });
        };
        match (pending, response) {
            (Pending::Passed, _) => Ok(None),
            (Pending::Read { file, offset }, Response::Data { data, .. }) => {
                if let Some(f) = self.files.get_mut(&file) {
                    f.read += data.len() as u64;
                    f.download.add(offset, data);
                }
                Ok(None)
            }
            // EOF, or a failed read: nothing moved.
            (Pending::Read { .. }, Response::Status { .. }) => Ok(None),
            (Pending::Write { file, len }, Response::Status { code, .. }) => {
                if let Some(f) = self.files.get_mut(&file) {
                    if code.is_ok() {
                        f.written += u64::from(len);
                    } else if let Some(upload) = &mut f.upload {
                        upload.give_up("the server refused a write");
                    }
                }
                Ok(None)
            }
            // OpenSSH's sftp-server releases a handle even when its close fails, so either
            // answer ends the file.
            (Pending::Close { file }, Response::Status { code, message, .. }) => {
                let Some(f) = self.files.remove(&file) else {
                    return Ok(None);
                };
                self.handles.remove(&f.handle);
                Ok(Some(f.finish(file, outcome(*code, message))))
            }
            (
                Pending::Open {
                    key,
                    op,
                    path,
                    flags,
                },
                Response::Handle { handle, .. },
            ) => {
                if self.handles.contains_key(*handle) {
                    return Err(SftpError::HandleReused);
                }
                let handle: Box<[u8]> = Box::from(*handle);
                self.handles.insert(handle.clone(), key);
                let upload = flags.writes().then(|| {
                    let mut digest = FileDigest::new(self.copy_limit);
                    if flags.contains(OpenFlags::APPEND) {
                        digest.give_up("appended to the file, not written from its start");
                    } else if !flags.contains(OpenFlags::TRUNC)
                        && !flags.contains(OpenFlags::CREAT | OpenFlags::EXCL)
                    {
                        // Bytes written into an existing file that was not truncated are a
                        // change to it, not the whole file: still hashed (the bytes sent),
                        // never copied as if they were the file.
                        digest.no_copy("written into an existing file, not a whole file");
                    }
                    digest
                });
                self.files.insert(
                    key,
                    OpenFile {
                        request_id: id,
                        op,
                        path,
                        flags,
                        handle,
                        read: 0,
                        written: 0,
                        download: FileDigest::new(0),
                        upload,
                    },
                );
                Ok(None)
            }
            (
                Pending::Open { key, op, .. } | Pending::Status { key, op },
                Response::Status { code, message, .. },
            ) => Ok(Some(Finished {
                key,
                request_id: id,
                op,
                outcome: outcome(*code, message),
                transfer: None,
            })),
            (pending, response) => Err(SftpError::UnexpectedResponse {
                request: pending.name(),
                response: type_name(response.kind()),
            }),
        }
    }

    /// Ends everything still in flight or open, as the channel closes: each audited request
    /// not yet answered and each handle not yet closed gets [`Outcome::Interrupted`], with
    /// the bytes moved so far, in the order they were admitted.
    pub fn drain(&mut self) -> Vec<Finished> {
        let mut out = Vec::new();
        for (id, pending) in self.pending.drain() {
            if let Pending::Open { key, op, .. } | Pending::Status { key, op } = pending {
                out.push(Finished {
                    key,
                    request_id: id,
                    op,
                    outcome: Outcome::Interrupted,
                    transfer: None,
                });
            }
        }
        self.handles.clear();
        for (key, file) in self.files.drain() {
            out.push(file.finish(key, Outcome::Interrupted));
        }
        out.sort_by_key(|f| f.key);
        out
    }

    /// Requests in flight (audited or not).
    pub fn in_flight(&self) -> usize {
        self.pending.len()
    }

    /// Handles opened by an audited OPEN/OPENDIR and not yet closed.
    pub fn open_handles(&self) -> usize {
        self.files.len()
    }

    /// The next key.
    fn key(&mut self) -> Key {
        self.next_key += 1;
        Key(self.next_key)
    }

    /// An audited request that its STATUS ends: `sftp OP PATH.. [ATTRS]`.
    fn simple(
        &mut self,
        op: Op,
        paths: &[&[u8]],
        attrs: Option<&Attrs>,
    ) -> (Pending, Option<(Key, Op, String)>) {
        let key = self.key();
        let mut text = format!("sftp {}", op.as_str());
        for path in paths {
            text.push(' ');
            render::push_path(&mut text, path);
        }
        if let Some(attrs) = attrs {
            push_attrs(&mut text, attrs);
        }
        (Pending::Status { key, op }, Some((key, op, text)))
    }
}

impl Default for Tracker {
    fn default() -> Self {
        Self::new()
    }
}

/// The outcome a STATUS gives.
fn outcome(code: StatusCode, message: &[u8]) -> Outcome {
    if code.is_ok() {
        Outcome::Ok
    } else {
        Outcome::Failed {
            code,
            message: String::from_utf8_lossy(message).into_owned(),
        }
    }
}

/// ` ATTRS` if any attribute is present.
fn push_attrs(text: &mut String, attrs: &Attrs) {
    if !attrs.is_empty() {
        text.push(' ');
        text.push_str(&attrs.to_string());
    }
}

/// A handle the tracker does not know, as `handle:` and its bytes in hex.
fn push_handle(text: &mut String, handle: &[u8]) {
    use std::fmt::Write;
    text.push_str("handle:");
    for b in handle {
        let _ = write!(text, "{b:02x}");
    }
}

/// `1 byte`, `N bytes`.
fn bytes(n: u64) -> String {
    if n == 1 {
        "1 byte".to_owned()
    } else {
        format!("{n} bytes")
    }
}

#[cfg(test)]
mod tests;
