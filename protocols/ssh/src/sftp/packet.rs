//! Decoding one SFTP v3 packet (draft-ietf-secsh-filexfer-02) into a typed [`Request`] or
//! [`Response`].
//!
//! Decoding borrows from the packet: paths, handles and WRITE/DATA payloads are slices of the
//! bytes the framer split off, so a 32 KiB WRITE costs a few integer reads and no copy. Only
//! the fields the gateway audits or counts are decoded; other packets keep their type and id.
//! Bytes after the last field are ignored, as OpenSSH's sftp-server ignores them.

use std::fmt;

use nom::bytes::complete::take;
use nom::combinator::cond;
use nom::number::complete::{be_u32, be_u64};
use nom::IResult;

use super::error::SftpError;
use super::status::StatusCode;

/// Client hello: the client's protocol version (no request id).
pub const SSH_FXP_INIT: u8 = 1;
/// Server hello: the server's protocol version and extensions (no request id).
pub const SSH_FXP_VERSION: u8 = 2;
/// Open a file.
pub const SSH_FXP_OPEN: u8 = 3;
/// Close a file or directory handle.
pub const SSH_FXP_CLOSE: u8 = 4;
/// Read from a file handle.
pub const SSH_FXP_READ: u8 = 5;
/// Write to a file handle.
pub const SSH_FXP_WRITE: u8 = 6;
/// Attributes of a path, not following a symlink.
pub const SSH_FXP_LSTAT: u8 = 7;
/// Attributes of a handle.
pub const SSH_FXP_FSTAT: u8 = 8;
/// Change a path's attributes.
pub const SSH_FXP_SETSTAT: u8 = 9;
/// Change a handle's attributes.
pub const SSH_FXP_FSETSTAT: u8 = 10;
/// Open a directory for listing.
pub const SSH_FXP_OPENDIR: u8 = 11;
/// Next entries of a directory handle.
pub const SSH_FXP_READDIR: u8 = 12;
/// Remove a file.
pub const SSH_FXP_REMOVE: u8 = 13;
/// Create a directory.
pub const SSH_FXP_MKDIR: u8 = 14;
/// Remove a directory.
pub const SSH_FXP_RMDIR: u8 = 15;
/// Canonicalise a path.
pub const SSH_FXP_REALPATH: u8 = 16;
/// Attributes of a path, following symlinks.
pub const SSH_FXP_STAT: u8 = 17;
/// Rename a path (fails if the target exists).
pub const SSH_FXP_RENAME: u8 = 18;
/// Read a symlink's target.
pub const SSH_FXP_READLINK: u8 = 19;
/// Create a symlink.
pub const SSH_FXP_SYMLINK: u8 = 20;
/// The answer to most requests: a code and a message.
pub const SSH_FXP_STATUS: u8 = 101;
/// The answer to OPEN and OPENDIR: a handle.
pub const SSH_FXP_HANDLE: u8 = 102;
/// The answer to READ: the bytes read.
pub const SSH_FXP_DATA: u8 = 103;
/// The answer to READDIR, REALPATH, READLINK: names.
pub const SSH_FXP_NAME: u8 = 104;
/// The answer to STAT, LSTAT, FSTAT: attributes.
pub const SSH_FXP_ATTRS: u8 = 105;
/// A vendor request, named by a string (`posix-rename@openssh.com`).
pub const SSH_FXP_EXTENDED: u8 = 200;
/// The answer to an EXTENDED request that returns more than a status.
pub const SSH_FXP_EXTENDED_REPLY: u8 = 201;

/// The draft's name of a packet type (`SSH_FXP_OPEN`), `SSH_FXP_UNKNOWN` for others.
pub fn type_name(kind: u8) -> &'static str {
    match kind {
        SSH_FXP_INIT => "SSH_FXP_INIT",
        SSH_FXP_VERSION => "SSH_FXP_VERSION",
        SSH_FXP_OPEN => "SSH_FXP_OPEN",
        SSH_FXP_CLOSE => "SSH_FXP_CLOSE",
        SSH_FXP_READ => "SSH_FXP_READ",
        SSH_FXP_WRITE => "SSH_FXP_WRITE",
        SSH_FXP_LSTAT => "SSH_FXP_LSTAT",
        SSH_FXP_FSTAT => "SSH_FXP_FSTAT",
        SSH_FXP_SETSTAT => "SSH_FXP_SETSTAT",
        SSH_FXP_FSETSTAT => "SSH_FXP_FSETSTAT",
        SSH_FXP_OPENDIR => "SSH_FXP_OPENDIR",
        SSH_FXP_READDIR => "SSH_FXP_READDIR",
        SSH_FXP_REMOVE => "SSH_FXP_REMOVE",
        SSH_FXP_MKDIR => "SSH_FXP_MKDIR",
        SSH_FXP_RMDIR => "SSH_FXP_RMDIR",
        SSH_FXP_REALPATH => "SSH_FXP_REALPATH",
        SSH_FXP_STAT => "SSH_FXP_STAT",
        SSH_FXP_RENAME => "SSH_FXP_RENAME",
        SSH_FXP_READLINK => "SSH_FXP_READLINK",
        SSH_FXP_SYMLINK => "SSH_FXP_SYMLINK",
        SSH_FXP_STATUS => "SSH_FXP_STATUS",
        SSH_FXP_HANDLE => "SSH_FXP_HANDLE",
        SSH_FXP_DATA => "SSH_FXP_DATA",
        SSH_FXP_NAME => "SSH_FXP_NAME",
        SSH_FXP_ATTRS => "SSH_FXP_ATTRS",
        SSH_FXP_EXTENDED => "SSH_FXP_EXTENDED",
        SSH_FXP_EXTENDED_REPLY => "SSH_FXP_EXTENDED_REPLY",
        _ => "SSH_FXP_UNKNOWN",
    }
}

/// The `pflags` of an OPEN request: how the file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OpenFlags(pub u32);

impl OpenFlags {
    /// Open for reading.
    pub const READ: u32 = 0x01;
    /// Open for writing.
    pub const WRITE: u32 = 0x02;
    /// Every write goes to the end of the file.
    pub const APPEND: u32 = 0x04;
    /// Create the file if it does not exist.
    pub const CREAT: u32 = 0x08;
    /// Truncate an existing file to zero length (with CREAT).
    pub const TRUNC: u32 = 0x10;
    /// Fail if the file exists (with CREAT).
    pub const EXCL: u32 = 0x20;

    /// The words the audit text uses, in bit order.
    const WORDS: [(u32, &'static str); 6] = [
        (Self::READ, "read"),
        (Self::WRITE, "write"),
        (Self::APPEND, "append"),
        (Self::CREAT, "create"),
        (Self::TRUNC, "truncate"),
        (Self::EXCL, "exclusive"),
    ];

    /// Whether every bit of `flag` is set.
    pub fn contains(self, flag: u32) -> bool {
        self.0 & flag == flag
    }

    /// Whether the file may be changed through the handle (WRITE or APPEND).
    pub fn writes(self) -> bool {
        self.0 & (Self::WRITE | Self::APPEND) != 0
    }
}

impl fmt::Display for OpenFlags {
    /// `write,create,truncate`; bits the draft does not define as `0x..`; no bit as `none`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 == 0 {
            return f.write_str("none");
        }
        let mut sep = "";
        let mut known = 0;
        for (bit, word) in Self::WORDS {
            known |= bit;
            if self.0 & bit != 0 {
                write!(f, "{sep}{word}")?;
                sep = ",";
            }
        }
        let unknown = self.0 & !known;
        if unknown != 0 {
            write!(f, "{sep}{unknown:#x}")?;
        }
        Ok(())
    }
}

/// File attributes (the draft's ATTRS), as far as they are present.
///
/// Extended attribute pairs are checked for shape and counted but not kept: no SFTP v3
/// server acts on them in a way the audit trail needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Attrs {
    /// File size: SETSTAT with a size truncates or extends the file.
    pub size: Option<u64>,
    /// Owner and group ids.
    pub uid_gid: Option<(u32, u32)>,
    /// Permission bits (may carry the file type bits too).
    pub permissions: Option<u32>,
    /// Access and modification times, in seconds since the epoch.
    pub times: Option<(u32, u32)>,
    /// How many extended attribute pairs followed.
    pub extended: u32,
}

impl Attrs {
    /// Size present.
    pub const SIZE: u32 = 0x01;
    /// Owner and group present.
    pub const UIDGID: u32 = 0x02;
    /// Permissions present.
    pub const PERMISSIONS: u32 = 0x04;
    /// Access and modification times present.
    pub const ACMODTIME: u32 = 0x08;
    /// Extended pairs present.
    pub const EXTENDED: u32 = 0x8000_0000;

    /// Whether no attribute is present.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

impl fmt::Display for Attrs {
    /// `size=0 uid=1000 gid=1000 mode=0644 atime=.. mtime=..`, only what is present; the
    /// mode shows the permission bits, as sftp-server applies only those.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut sep = "";
        if let Some(size) = self.size {
            write!(f, "size={size}")?;
            sep = " ";
        }
        if let Some((uid, gid)) = self.uid_gid {
            write!(f, "{sep}uid={uid} gid={gid}")?;
            sep = " ";
        }
        if let Some(mode) = self.permissions {
            write!(f, "{sep}mode={:04o}", mode & 0o7777)?;
            sep = " ";
        }
        if let Some((atime, mtime)) = self.times {
            write!(f, "{sep}atime={atime} mtime={mtime}")?;
            sep = " ";
        }
        if self.extended > 0 {
            write!(f, "{sep}extended={}", self.extended)?;
        }
        Ok(())
    }
}

/// A client-to-server packet, borrowing from its bytes.
///
/// Paths are bytes as sent (SFTP v3 leaves their encoding to the server); handles are the
/// opaque strings the server returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request<'a> {
    /// SSH_FXP_INIT: the client's hello (no request id).
    Init {
        /// The client's protocol version.
        version: u32,
    },
    /// SSH_FXP_OPEN.
    Open {
        /// Request id.
        id: u32,
        /// The file.
        path: &'a [u8],
        /// How it is opened.
        flags: OpenFlags,
        /// Attributes for a created file.
        attrs: Attrs,
    },
    /// SSH_FXP_CLOSE.
    Close {
        /// Request id.
        id: u32,
        /// The handle closed.
        handle: &'a [u8],
    },
    /// SSH_FXP_READ.
    Read {
        /// Request id.
        id: u32,
        /// The file handle.
        handle: &'a [u8],
        /// Where to read from.
        offset: u64,
        /// How many bytes at most.
        len: u32,
    },
    /// SSH_FXP_WRITE.
    Write {
        /// Request id.
        id: u32,
        /// The file handle.
        handle: &'a [u8],
        /// Where to write.
        offset: u64,
        /// The bytes written (a slice of the packet, not a copy).
        data: &'a [u8],
    },
    /// SSH_FXP_REMOVE.
    Remove {
        /// Request id.
        id: u32,
        /// The file removed.
        path: &'a [u8],
    },
    /// SSH_FXP_RENAME.
    Rename {
        /// Request id.
        id: u32,
        /// The existing path.
        from: &'a [u8],
        /// Its new name.
        to: &'a [u8],
    },
    /// SSH_FXP_MKDIR.
    Mkdir {
        /// Request id.
        id: u32,
        /// The directory created.
        path: &'a [u8],
        /// Its attributes.
        attrs: Attrs,
    },
    /// SSH_FXP_RMDIR.
    Rmdir {
        /// Request id.
        id: u32,
        /// The directory removed.
        path: &'a [u8],
    },
    /// SSH_FXP_OPENDIR.
    Opendir {
        /// Request id.
        id: u32,
        /// The directory listed.
        path: &'a [u8],
    },
    /// SSH_FXP_SETSTAT.
    Setstat {
        /// Request id.
        id: u32,
        /// The path changed.
        path: &'a [u8],
        /// The attributes set.
        attrs: Attrs,
    },
    /// SSH_FXP_FSETSTAT.
    Fsetstat {
        /// Request id.
        id: u32,
        /// The handle changed.
        handle: &'a [u8],
        /// The attributes set.
        attrs: Attrs,
    },
    /// SSH_FXP_SYMLINK, in OpenSSH's argument order: the draft names the link first, but
    /// OpenSSH's client and server both send and read the target first (its PROTOCOL file,
    /// section "sftp: Reversal of arguments to SSH_FXP_SYMLINK"), and the gateway sits
    /// between the two.
    Symlink {
        /// Request id.
        id: u32,
        /// What the link points at.
        target: &'a [u8],
        /// The link created.
        link: &'a [u8],
    },
    /// EXTENDED `posix-rename@openssh.com`: a rename that replaces an existing target.
    PosixRename {
        /// Request id.
        id: u32,
        /// The existing path.
        from: &'a [u8],
        /// Its new name.
        to: &'a [u8],
    },
    /// EXTENDED `hardlink@openssh.com`: `link(from, to)`.
    Hardlink {
        /// Request id.
        id: u32,
        /// The existing path.
        from: &'a [u8],
        /// The new link.
        to: &'a [u8],
    },
    /// EXTENDED `lsetstat@openssh.com`: SETSTAT that does not follow a final symlink.
    Lsetstat {
        /// Request id.
        id: u32,
        /// The path changed.
        path: &'a [u8],
        /// The attributes set.
        attrs: Attrs,
    },
    /// Any other EXTENDED request, passed through unaudited.
    Extended {
        /// Request id.
        id: u32,
        /// The extension's name.
        name: &'a [u8],
    },
    /// Any other request (STAT, LSTAT, FSTAT, REALPATH, READDIR, READLINK, unknown types),
    /// passed through unaudited.
    Other {
        /// Request id.
        id: u32,
        /// Its packet type.
        kind: u8,
    },
}

/// A server-to-client packet, borrowing from its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<'a> {
    /// SSH_FXP_VERSION: the server's hello (no request id).
    Version {
        /// The server's protocol version.
        version: u32,
    },
    /// SSH_FXP_STATUS.
    Status {
        /// Request id answered.
        id: u32,
        /// The code.
        code: StatusCode,
        /// The server's message (empty if it sent none).
        message: &'a [u8],
    },
    /// SSH_FXP_HANDLE.
    Handle {
        /// Request id answered.
        id: u32,
        /// The handle.
        handle: &'a [u8],
    },
    /// SSH_FXP_DATA.
    Data {
        /// Request id answered.
        id: u32,
        /// The bytes read (a slice of the packet, not a copy).
        data: &'a [u8],
    },
    /// Any other answer (NAME, ATTRS, EXTENDED_REPLY, unknown types).
    Other {
        /// Request id answered.
        id: u32,
        /// Its packet type.
        kind: u8,
    },
}

impl<'a> Request<'a> {
    /// Decodes one whole packet, length prefix included, as the framer returns it.
    pub fn parse(packet: &'a [u8]) -> Result<Self, SftpError> {
        let (kind, body) = split(packet)?;
        request(kind, body)
            .map(|(_, r)| r)
            .map_err(|_| SftpError::Truncated {
                packet: type_name(kind),
            })
    }

    /// The packet type (`SSH_FXP_OPEN`), as sent.
    pub fn kind(&self) -> u8 {
        match *self {
            Self::Init { .. } => SSH_FXP_INIT,
            Self::Open { .. } => SSH_FXP_OPEN,
            Self::Close { .. } => SSH_FXP_CLOSE,
            Self::Read { .. } => SSH_FXP_READ,
            Self::Write { .. } => SSH_FXP_WRITE,
            Self::Remove { .. } => SSH_FXP_REMOVE,
            Self::Rename { .. } => SSH_FXP_RENAME,
            Self::Mkdir { .. } => SSH_FXP_MKDIR,
            Self::Rmdir { .. } => SSH_FXP_RMDIR,
            Self::Opendir { .. } => SSH_FXP_OPENDIR,
            Self::Setstat { .. } => SSH_FXP_SETSTAT,
            Self::Fsetstat { .. } => SSH_FXP_FSETSTAT,
            Self::Symlink { .. } => SSH_FXP_SYMLINK,
            Self::PosixRename { .. }
            | Self::Hardlink { .. }
            | Self::Lsetstat { .. }
            | Self::Extended { .. } => SSH_FXP_EXTENDED,
            Self::Other { kind, .. } => kind,
        }
    }

    /// The request id, `None` for INIT.
    pub fn id(&self) -> Option<u32> {
        match *self {
            Self::Init { .. } => None,
            Self::Open { id, .. }
            | Self::Close { id, .. }
            | Self::Read { id, .. }
            | Self::Write { id, .. }
            | Self::Remove { id, .. }
            | Self::Rename { id, .. }
            | Self::Mkdir { id, .. }
            | Self::Rmdir { id, .. }
            | Self::Opendir { id, .. }
            | Self::Setstat { id, .. }
            | Self::Fsetstat { id, .. }
            | Self::Symlink { id, .. }
            | Self::PosixRename { id, .. }
            | Self::Hardlink { id, .. }
            | Self::Lsetstat { id, .. }
            | Self::Extended { id, .. }
            | Self::Other { id, .. } => Some(id),
        }
    }
}

impl<'a> Response<'a> {
    /// Decodes one whole packet, length prefix included, as the framer returns it.
    pub fn parse(packet: &'a [u8]) -> Result<Self, SftpError> {
        let (kind, body) = split(packet)?;
        response(kind, body)
            .map(|(_, r)| r)
            .map_err(|_| SftpError::Truncated {
                packet: type_name(kind),
            })
    }

    /// The packet type (`SSH_FXP_STATUS`), as sent.
    pub fn kind(&self) -> u8 {
        match *self {
            Self::Version { .. } => SSH_FXP_VERSION,
            Self::Status { .. } => SSH_FXP_STATUS,
            Self::Handle { .. } => SSH_FXP_HANDLE,
            Self::Data { .. } => SSH_FXP_DATA,
            Self::Other { kind, .. } => kind,
        }
    }

    /// The request id answered, `None` for VERSION.
    pub fn id(&self) -> Option<u32> {
        match *self {
            Self::Version { .. } => None,
            Self::Status { id, .. }
            | Self::Handle { id, .. }
            | Self::Data { id, .. }
            | Self::Other { id, .. } => Some(id),
        }
    }
}

/// The type byte and the rest of a whole packet, after checking its length prefix.
fn split(packet: &[u8]) -> Result<(u8, &[u8]), SftpError> {
    let (body, said) =
        be_u32::<_, nom::error::Error<&[u8]>>(packet).map_err(|_| SftpError::Truncated {
            packet: type_name(0),
        })?;
    let said = said as usize;
    if said != body.len() {
        return Err(SftpError::LengthMismatch {
            said,
            got: body.len(),
        });
    }
    match body.split_first() {
        Some((&kind, rest)) => Ok((kind, rest)),
        None => Err(SftpError::Empty),
    }
}

/// A draft `string`: a uint32 length and that many bytes.
fn string(i: &[u8]) -> IResult<&[u8], &[u8]> {
    let (i, len) = be_u32(i)?;
    take(len)(i)
}

/// A draft ATTRS structure.
fn attrs(i: &[u8]) -> IResult<&[u8], Attrs> {
    let (i, flags) = be_u32(i)?;
    let (i, size) = cond(flags & Attrs::SIZE != 0, be_u64)(i)?;
    let (i, uid_gid) = cond(flags & Attrs::UIDGID != 0, pair_u32)(i)?;
    let (i, permissions) = cond(flags & Attrs::PERMISSIONS != 0, be_u32)(i)?;
    let (i, times) = cond(flags & Attrs::ACMODTIME != 0, pair_u32)(i)?;
    let (mut i, extended) = cond(flags & Attrs::EXTENDED != 0, be_u32)(i)?;
    let extended = extended.unwrap_or(0);
    // Each pair consumes at least eight bytes or fails, so a huge count ends quickly.
    for _ in 0..extended {
        let (rest, _) = string(i)?;
        let (rest, _) = string(rest)?;
        i = rest;
    }
    Ok((
        i,
        Attrs {
            size,
            uid_gid,
            permissions,
            times,
            extended,
        },
    ))
}

/// Two consecutive uint32s.
fn pair_u32(i: &[u8]) -> IResult<&[u8], (u32, u32)> {
    let (i, a) = be_u32(i)?;
    let (i, b) = be_u32(i)?;
    Ok((i, (a, b)))
}

/// The body of a client packet of type `kind`.
fn request(kind: u8, i: &[u8]) -> IResult<&[u8], Request<'_>> {
    if kind == SSH_FXP_INIT {
        let (i, version) = be_u32(i)?;
        return Ok((i, Request::Init { version }));
    }
    let (i, id) = be_u32(i)?;
    match kind {
        SSH_FXP_OPEN => {
            let (i, path) = string(i)?;
            let (i, flags) = be_u32(i)?;
            let (i, attrs) = attrs(i)?;
            let flags = OpenFlags(flags);
            Ok((
                i,
                Request::Open {
                    id,
                    path,
                    flags,
                    attrs,
                },
            ))
        }
        SSH_FXP_CLOSE => {
            let (i, handle) = string(i)?;
            Ok((i, Request::Close { id, handle }))
        }
        SSH_FXP_READ => {
            let (i, handle) = string(i)?;
            let (i, offset) = be_u64(i)?;
            let (i, len) = be_u32(i)?;
            Ok((
                i,
                Request::Read {
                    id,
                    handle,
                    offset,
                    len,
                },
            ))
        }
        SSH_FXP_WRITE => {
            let (i, handle) = string(i)?;
            let (i, offset) = be_u64(i)?;
            let (i, data) = string(i)?;
            Ok((
                i,
                Request::Write {
                    id,
                    handle,
                    offset,
                    data,
                },
            ))
        }
        SSH_FXP_REMOVE => {
            let (i, path) = string(i)?;
            Ok((i, Request::Remove { id, path }))
        }
        SSH_FXP_RENAME => {
            let (i, (from, to)) = two_strings(i)?;
            Ok((i, Request::Rename { id, from, to }))
        }
        SSH_FXP_MKDIR => {
            let (i, path) = string(i)?;
            let (i, attrs) = attrs(i)?;
            Ok((i, Request::Mkdir { id, path, attrs }))
        }
        SSH_FXP_RMDIR => {
            let (i, path) = string(i)?;
            Ok((i, Request::Rmdir { id, path }))
        }
        SSH_FXP_OPENDIR => {
            let (i, path) = string(i)?;
            Ok((i, Request::Opendir { id, path }))
        }
        SSH_FXP_SETSTAT => {
            let (i, path) = string(i)?;
            let (i, attrs) = attrs(i)?;
            Ok((i, Request::Setstat { id, path, attrs }))
        }
        SSH_FXP_FSETSTAT => {
            let (i, handle) = string(i)?;
            let (i, attrs) = attrs(i)?;
            Ok((i, Request::Fsetstat { id, handle, attrs }))
        }
        SSH_FXP_SYMLINK => {
            let (i, (target, link)) = two_strings(i)?;
            Ok((i, Request::Symlink { id, target, link }))
        }
        SSH_FXP_EXTENDED => extended(id, i),
        _ => Ok((i, Request::Other { id, kind })),
    }
}

/// The body of an EXTENDED request after its id.
fn extended(id: u32, i: &[u8]) -> IResult<&[u8], Request<'_>> {
    let (i, name) = string(i)?;
    match name {
        b"posix-rename@openssh.com" => {
            let (i, (from, to)) = two_strings(i)?;
            Ok((i, Request::PosixRename { id, from, to }))
        }
        b"hardlink@openssh.com" => {
            let (i, (from, to)) = two_strings(i)?;
            Ok((i, Request::Hardlink { id, from, to }))
        }
        b"lsetstat@openssh.com" => {
            let (i, path) = string(i)?;
            let (i, attrs) = attrs(i)?;
            Ok((i, Request::Lsetstat { id, path, attrs }))
        }
        _ => Ok((i, Request::Extended { id, name })),
    }
}

/// Two consecutive strings.
fn two_strings(i: &[u8]) -> IResult<&[u8], (&[u8], &[u8])> {
    let (i, a) = string(i)?;
    let (i, b) = string(i)?;
    Ok((i, (a, b)))
}

/// The body of a server packet of type `kind`.
fn response(kind: u8, i: &[u8]) -> IResult<&[u8], Response<'_>> {
    if kind == SSH_FXP_VERSION {
        // The extension pairs that follow are not needed by the gateway.
        let (i, version) = be_u32(i)?;
        return Ok((i, Response::Version { version }));
    }
    let (i, id) = be_u32(i)?;
    match kind {
        SSH_FXP_STATUS => {
            let (i, code) = be_u32(i)?;
            // Servers of drafts before -02 send no message or language tag; a message that
            // is there must be whole.
            let (i, message) = cond(!i.is_empty(), string)(i)?;
            let (i, _lang) = cond(!i.is_empty(), string)(i)?;
            let code = StatusCode(code);
            let message = message.unwrap_or_default();
            Ok((i, Response::Status { id, code, message }))
        }
        SSH_FXP_HANDLE => {
            let (i, handle) = string(i)?;
            Ok((i, Response::Handle { id, handle }))
        }
        SSH_FXP_DATA => {
            let (i, data) = string(i)?;
            Ok((i, Response::Data { id, data }))
        }
        _ => Ok((i, Response::Other { id, kind })),
    }
}

#[cfg(test)]
mod tests;
