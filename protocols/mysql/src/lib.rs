//! Gatehouse's MySQL wire: a client session through the same pipeline as every wire.
//!
//! The packet layer both directions share: framing with sequence ids and 16 MiB
//! continuations ([`frame`]), length-encoded values and text rows ([`codec`]), the connection
//! phase ([`handshake`]), OK/ERR/EOF ([`packets`]), a command's answer followed to its outcome
//! ([`response`]), column definitions and rows for masking ([`columns`], [`binary`]). On top:
//! [`session`] (greeting, TLS, token, upstream login in [`upstream`] with [`auth`]) and
//! [`relay`] (the command loop: admit, forward, stream the answer back masked, finish).

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
