//! Gatehouse core: who is asking, whether they may, and what is kept as evidence.
//!
//! Every wire (PostgreSQL, MySQL, SSH) feeds the same pipeline:
//!
//! 1. **Open** — [`Gateway::open`] authenticates the [`Credential`] (a token, a JWT, or a
//!    registered SSH key), checks the connection's access
//!    groups and hands back a [`Session`] (or a [`Refusal`] the wire turns into its native error).
//! 2. **Admit** — each decoded [`Command`] goes through [`Session::admit`]; the returned
//!    [`Admitted`] permit proves the audit entry is durable and the verdict allowed it.
//! 3. **Relay** — the wire forwards bytes; the core never touches a socket.
//! 4. **Finish** — [`Session::finish`] consumes the permit with the [`Outcome`], writing the
//!    outcome to the audit store and the recording.
//!
//! The store is behind the traits in [`store`]; `gatehouse-audit` implements them.

#![forbid(unsafe_code)]

pub mod access;
pub mod admission;
pub mod approval;
pub mod classify;
pub mod command;
pub mod connection;
pub mod end_watch;
pub mod error;
pub mod events;
pub mod files;
pub mod gateway;
pub mod identity;
pub mod mask;
pub mod oidc;
pub mod policy;
pub mod private_file;
pub mod refusal_budget;
pub mod refused;
pub mod review;
pub mod revocation;
pub mod rules;
pub(crate) mod running;
pub mod session;
pub mod ssh_key;
pub mod store;
pub mod telemetry;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
pub mod time;
pub mod upstream_tls;

pub use admission::{Admission, Admitted, Waited};
pub use approval::{ApprovalDesk, ApprovalId, ApprovalRequest, DecideError, Decision};
pub use classify::{classify, Classification, StatementClass};
pub use command::{Command, Param};
pub use connection::{ConnectionSpec, Protocol, Secret, UpstreamTls};
pub use end_watch::EndReason;
pub use error::{CoreError, PublicKeyError, Refusal, StoreError};
pub use events::SessionId;
pub use events::{
    CommandCompletion, CommandEnd, CommandRecord, MaskLog, Outcome, SessionEnd, SessionInfo,
};
pub use gateway::{Credential, Gateway, GatewayParts, OpenRequest};
pub use identity::{Identity, TokenHash, TokenId, TokenRecord};
pub use policy::Verdict;
pub use refused::{RefusalKind, Refused};
pub use review::HoldNotice;
pub use rules::{RuleError, RuleSpec, Rules};
pub use session::Session;
pub use ssh_key::{fingerprint_of_blob, ssh_key_fingerprint};
