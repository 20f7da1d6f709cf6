//! Gatehouse's MySQL wire: a client session through the same pipeline as every wire.
//!
//! Layout (the same in every wire crate): [`session`] is the entry point, [`MysqlService::handle`],
//! a client connection from accept to close (greeting, TLS, token); [`upstream`] the gateway's own
//! login to the server (with [`auth`]); [`relay`] the command loop: admit, forward, stream the
//! answer back masked, finish; [`error`] the crate's error. Then what is the MySQL wire's own, the
//! packet layer both directions share: framing with sequence ids and 16 MiB continuations
//! ([`frame`]), length-encoded values and text rows ([`codec`]), the connection phase
//! ([`handshake`]), OK/ERR/EOF ([`packets`]), a command's answer followed to its outcome
//! ([`response`]), column definitions and rows for masking ([`columns`], [`binary`]); [`reading`]
//! the session's lexing modes and the client character sets it can read; [`conn`] a peer as a
//! stream of whole messages, plain or TLS; [`kill`] `KILL QUERY` mapped to the session it names.

#![forbid(unsafe_code)]

pub mod auth;
pub mod binary;
pub mod codec;
pub mod columns;
pub mod conn;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod kill;
pub mod packets;
pub mod reading;
pub mod relay;
pub mod response;
pub mod session;
pub mod upstream;

pub use error::MysqlError;
pub use session::{refuse_busy, MysqlConfig, MysqlService};
