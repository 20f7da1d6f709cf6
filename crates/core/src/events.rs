//! The typed events the core hands to the store: sessions opened and closed, commands admitted
//! and finished, terminal channels' events, and the ids they carry. The audit trail is made of
//! these, never of log lines.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;

use crate::classify::Classification;
use crate::command::Param;
use crate::connection::Protocol;
use crate::policy::Verdict;

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
    /// Client's address, as text (formatted once, when its session opened).
    pub client: Arc<str>,
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

/// One event of a terminal channel (an SSH shell or exec): the store writes each channel as an
/// asciicast v2 file beside the session's recording.
#[derive(Debug, Clone)]
pub struct TerminalEvent {
    /// The channel it happened on (the SSH channel id); a session may run several at once.
    pub channel: u32,
    /// When it happened. The cast's offsets are differences of these, so they are exact even
    /// though the store writes events out later, in batches.
    pub at: Instant,
    /// What happened.
    pub kind: TerminalEventKind,
}

/// What happened on a terminal channel.
#[derive(Debug, Clone)]
pub enum TerminalEventKind {
    /// The channel started a shell or a command: opens its cast. A channel id used again
    /// after its `End` opens a new cast.
    Start(TerminalStart),
    /// Bytes the client's terminal was sent (stdout and stderr), as the wire forwarded them
    /// (masked). Any bytes: what is not UTF-8 is kept lossily, a character split between
    /// two events is kept whole.
    Output(Bytes),
    /// Bytes the client typed. Beware: a password typed at a prompt that does not echo is
    /// kept in clear, and a card number typed key by key escapes masking (each key is its
    /// own event); what a terminal echoes is in the output already.
    Input(Bytes),
    /// The client's terminal changed size (`window-change`).
    Resize {
        /// Columns.
        width: u32,
        /// Rows.
        height: u32,
    },
    /// The channel ended: its cast is sealed.
    End {
        /// How (e.g. `exit-status 0`, `exit-signal KILL`), if known.
        status: Option<String>,
    },
}

/// How a terminal channel started (the asciicast header).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TerminalStart {
    /// Columns (0 if the client asked for no terminal: the cast says 80).
    pub width: u32,
    /// Rows (0 if the client asked for no terminal: the cast says 24).
    pub height: u32,
    /// The client's `TERM` (`pty-req`), if it asked for a terminal.
    pub term: Option<String>,
    /// The command (exec), or none for a shell.
    pub command: Option<String>,
}

impl TerminalEvent {
    /// An event that happened just now.
    pub fn now(channel: u32, kind: TerminalEventKind) -> Self {
        Self {
            channel,
            at: Instant::now(),
            kind,
        }
    }

    /// The channel started a shell or command, just now.
    pub fn start(channel: u32, start: TerminalStart) -> Self {
        Self::now(channel, TerminalEventKind::Start(start))
    }

    /// Output to the client's terminal, just now.
    pub fn output(channel: u32, data: Bytes) -> Self {
        Self::now(channel, TerminalEventKind::Output(data))
    }

    /// Input from the client, just now (see [`TerminalEventKind::Input`] before using it).
    pub fn input(channel: u32, data: Bytes) -> Self {
        Self::now(channel, TerminalEventKind::Input(data))
    }

    /// The client's terminal was resized, just now.
    pub fn resize(channel: u32, width: u32, height: u32) -> Self {
        Self::now(channel, TerminalEventKind::Resize { width, height })
    }

    /// The channel ended, just now.
    pub fn end(channel: u32, status: Option<String>) -> Self {
        Self::now(channel, TerminalEventKind::End { status })
    }
}

/// A session's id: 32 hex characters, unique across instances.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionId(pub Arc<str>);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// How a forwarded command ended, as a wire reports it to [`crate::Session::finish`]: its
/// outcome, and the rows and values masked where the wire counts them (none by default).
#[derive(Debug, Clone)]
pub struct CommandEnd {
    /// How it ended.
    pub outcome: Outcome,
    /// Rows returned to the client.
    pub rows_returned: u64,
    /// Rows the server says it changed, if it says.
    pub rows_affected: Option<u64>,
    /// Values masked in what went back, per column or place.
    pub masked: MaskLog,
}

impl From<Outcome> for CommandEnd {
    fn from(outcome: Outcome) -> Self {
        Self {
            outcome,
            rows_returned: 0,
            rows_affected: None,
            masked: MaskLog::new(),
        }
    }
}

impl CommandEnd {
    /// With the rows returned to the client.
    pub fn rows(mut self, rows: u64) -> Self {
        self.rows_returned = rows;
        self
    }

    /// With the rows the server says it changed.
    pub fn affected(mut self, rows: Option<u64>) -> Self {
        self.rows_affected = rows;
        self
    }

    /// With the masking log.
    pub fn masked(mut self, log: MaskLog) -> Self {
        self.masked = log;
        self
    }
}

/// The public, non-secret id of a token (`tok_` + 12 hex), used to list and revoke it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenId(pub String);

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// An approval request's id (`apr_` + 12 hex): what the client is told and the approver types.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct ApprovalId(pub String);
