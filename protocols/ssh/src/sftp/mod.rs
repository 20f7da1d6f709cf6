//! SFTP v3 (draft-ietf-secsh-filexfer-02) on the SSH wire's `sftp` subsystem channel: the
//! pure part — splitting, decoding, following and answering — with no I/O.
//!
//! The relay between an OpenSSH client and the server uses it like this:
//! - client → server: bytes into a [`Framer`]; each whole packet through
//!   [`Request::parse`] and [`Tracker::on_request`]. An [`Audited`] request is admitted before
//!   the packet is forwarded untouched; a refused one is not forwarded: the client gets
//!   [`denied_packet`] instead and the tracker is told with [`Tracker::on_denied`].
//! - server → client: bytes into a second [`Framer`]; each packet through
//!   [`Response::parse`] and [`Tracker::on_response`], which returns a [`Finished`] when an
//!   audited request ends (an OPEN at its handle's CLOSE, with the bytes moved); then the
//!   packet is forwarded untouched.
//! - channel end: [`Tracker::drain`] ends whatever was still in flight or open.
//!
//! Layout: [`framer`] (packets off the byte stream), [`packet`] (decoding), [`tracker`]
//! (requests in flight, open handles, audit texts and outcomes), [`status`] (status codes,
//! the STATUS packet the gateway writes), [`error`].

pub mod error;
pub mod framer;
pub mod packet;
mod render;
pub mod status;
pub mod tracker;

#[cfg(test)]
mod testing;

pub use error::SftpError;
pub use framer::{Framer, MAX_PACKET};
pub use packet::{Attrs, OpenFlags, Request, Response};
pub use status::{denied_packet, status_packet, StatusCode};
pub use tracker::{Audited, Finished, Key, Op, Outcome, Tracker, Transfer};
