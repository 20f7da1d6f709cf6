//! The typed events the core hands to the store: sessions opened and closed, commands admitted
//! and finished. The audit trail is made of these, never of log lines.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::classify::Classification;
use crate::command::Param;
use crate::connection::Protocol;
use crate::identity::TokenId;
use crate::policy::Verdict;
use crate::session::SessionId;

/// The masking log of one command: values masked, per column (`table.column`) or per place in
/// the command (`statement`, `param $2`, `error`).
pub type MaskLog = BTreeMap<String, u64>;

/// A session as opened: who, what, from where, when.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    /// Session id.
    pub id: SessionId,
    /// Identity name.
    pub identity: Arc<str>,
    /// Identity groups at the time of opening.
    pub groups: Arc<[String]>,
    /// The token that authenticated it.
    pub token_id: TokenId,
    /// Connection name.
    pub connection: Arc<str>,
    /// Wire protocol.
    pub protocol: Protocol,
    /// Client's address.
    pub client_addr: SocketAddr,
    /// The user name the client claimed (recorded, never trusted).
    pub claimed_user: String,
    /// The settings the client asked for as it connected, as it sent them (PostgreSQL's
    /// startup parameters other than user and database), passed on only once allowed.
    pub settings: Vec<(String, String)>,
    /// When it opened.
    pub started_at: SystemTime,
}

/// How a session ended.
#[derive(Debug, Clone)]
pub struct SessionEnd {
    /// Session id.
    pub id: SessionId,
    /// When it ended.
    pub ended_at: SystemTime,
    /// Why it ended (client quit, token revoked, upstream closed, ...).
    pub reason: String,
    /// Bytes received from the client.
    pub bytes_from_client: u64,
    /// Bytes received from the server.
    pub bytes_from_server: u64,
    /// SHA-256 of the session's recording as sealed at its end (`None` if there is none).
    pub recording_sha256: Option<String>,
}

/// A command at admission: written durably before it reaches the server.
#[derive(Debug, Clone)]
pub struct CommandRecord {
    /// The session it belongs to.
    pub session: SessionId,
    /// Its number within the session, from 1.
    pub seq: u64,
    /// When it was admitted.
    pub at: SystemTime,
    /// Identity name.
    pub identity: Arc<str>,
    /// Identity groups.
    pub groups: Arc<[String]>,
    /// Connection name.
    pub connection: Arc<str>,
    /// Wire protocol.
    pub protocol: Protocol,
    /// Client's address.
    pub client_addr: SocketAddr,
    /// Statement text (or exec line).
    pub text: String,
    /// Bind parameters.
    pub params: Vec<Param>,
    /// Statement classes.
    pub classes: Classification,
    /// The verdict it was given.
    pub verdict: Verdict,
    /// The rule that decided it, if one matched.
    pub rule: Option<String>,
    /// The approval request it went through, if it was held.
    pub approval: Option<String>,
    /// What was masked in its text and parameters before they were stored.
    pub masked: MaskLog,
}

/// What became of a command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The server completed it; `tag` is its completion tag (`SELECT 3`, `UPDATE 2`).
    Completed {
        /// Completion tag.
        tag: String,
    },
    /// The server refused or failed it.
    Failed {
        /// SQLSTATE (or the wire's error code).
        code: String,
        /// The server's message.
        message: String,
    },
    /// It never ran: refused by the gateway, or skipped after an earlier error in its pipeline.
    NotExecuted {
        /// Why.
        reason: String,
    },
}

impl Outcome {
    /// A short status word for tables: `ok`, `error`, `not-run`.
    pub fn status(&self) -> &'static str {
        match self {
            Self::Completed { .. } => "ok",
            Self::Failed { .. } => "error",
            Self::NotExecuted { .. } => "not-run",
        }
    }
}

/// A command's end, written after the server answered.
#[derive(Debug, Clone)]
pub struct CommandCompletion {
    /// The session it belongs to.
    pub session: SessionId,
    /// Its number within the session.
    pub seq: u64,
    /// What happened.
    pub outcome: Outcome,
    /// Rows the server returned to the client.
    pub rows_returned: u64,
    /// Rows the server reported as affected (from the completion tag), if it said.
    pub rows_affected: Option<u64>,
    /// Time from admission to completion.
    pub duration: Duration,
    /// When it completed.
    pub finished_at: SystemTime,
    /// What was masked in its result (rows, notices, errors).
    pub masked: MaskLog,
}
