//! Gatehouse's PostgreSQL wire: the v3 frontend/backend protocol toward clients and toward the
//! upstream server, relaying every message while the core admits, audits and records each command.
//!
//! Layout (the same in every wire crate): [`session`] is the entry point, [`PgService::handle`], a
//! client connection from accept to close; [`upstream`] the gateway's own login to the server
//! (SCRAM, md5, cleartext; TLS); [`relay`] the command loop, with [`tracker`] following the
//! commands in flight to their outcomes; [`error`] the crate's error. Then what is the PostgreSQL
//! wire's own: [`frame`] splits frames off the read buffer with length checks; [`messages`] decodes
//! what the gateway inspects and encodes what it writes; [`startup`] SSLRequest, GSSENCRequest,
//! CancelRequest, StartupMessage; [`params`] bind parameters rendered for the audit trail;
//! [`reading`] the startup parameters and server settings that keep SQL read as the server reads
//! it; [`masking`] and [`result_mask`] result metadata for the mask plan, and rows, COPY data and
//! errors rewritten; [`cancel`] the gateway's cancel keys mapped to the server's; [`stream`] plain
//! or TLS streams; [`scram`] SCRAM-SHA-256.

#![forbid(unsafe_code)]

pub mod cancel;
pub mod encoding;
pub mod error;
pub mod frame;
pub mod masking;
pub mod messages;
pub mod params;
pub mod reading;
pub mod relay;
pub mod result_mask;
pub mod scram;
pub mod session;
pub mod startup;
pub mod stream;
pub mod tracker;
pub mod upstream;

pub use error::PgError;
pub use relay::RelayLimits;
pub use session::{PgConfig, PgService};
