//! Gatehouse's MySQL wire. So far: the packet layer both directions share — framing with
//! sequence ids and 16 MiB continuations ([`frame`]) and the protocol's length-encoded
//! integers and strings, with text-protocol rows ([`codec`]), the connection phase's messages
//! ([`handshake`]) and the answers to the authentication plugins' challenges that log the
//! gateway in upstream ([`auth`]). The handshake, upstream login, relay and result tracking
//! build on these (the MySQL issue).

#![forbid(unsafe_code)]

pub mod auth;
pub mod codec;
pub mod columns;
pub mod error;
pub mod frame;
pub mod handshake;
pub mod packets;
pub mod response;

pub use error::MysqlError;
