//! Gatehouse's PostgreSQL wire: the v3 frontend/backend protocol toward clients and toward the
//! upstream server, relaying every message while the core admits, audits and records each
//! command.
//!
//! Layout (the same in every wire crate):
//! - [`frame`]: splitting frames off the read buffer, with length checks.
//! - [`messages`]: decoding the messages the gateway inspects; encoding the ones it writes.
//! - [`params`]: bind parameters rendered for the audit trail.
//! - [`startup`]: SSLRequest, GSSENCRequest, CancelRequest, StartupMessage.
//! - [`session`]: the phases of a client session, entry point [`PgService::handle`].
//! - [`upstream`]: the gateway's own login to the server (SCRAM, md5, cleartext; TLS).
//! - [`masking`]: result metadata for the mask plan; rows, COPY data and errors rewritten.
//! - [`relay`] and [`tracker`]: the relay and the commands in flight.
//! - [`cancel`]: the gateway's cancel keys mapped to the server's.
//! - [`stream`], [`scram`], [`error`].

#![forbid(unsafe_code)]

pub mod cancel;
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
