//! The traits between the core and the store (`gatehouse-audit` implements them).
//!
//! They say nothing of SQLite: the same gateway must run as several instances over a shared
//! store. Writes on the hot path hand back a [`Receipt`] instead of being `async fn`s, so a wire
//! can submit several entries (a pipeline of executes) and wait for them together, and so the
//! traits stay object safe without boxing a future per command.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::SystemTime;

use async_trait::async_trait;
use tokio::sync::oneshot;

use crate::error::StoreError;
use crate::events::{
    CommandCompletion, CommandRecord, SessionEnd, SessionId, SessionInfo, TerminalEvent,
};
use crate::identity::{TokenHash, TokenId, TokenRecord};

/// Proof, once awaited, that a write is durable.
///
/// Resolves to an error if the store could not write it (or went away): the caller fails closed.
///
/// A receipt may be *deferred* ([`Receipt::deferred`]): its write is queued, not yet written,
/// and the first wait leads the append ([`Lead::lead`]) unless another append carried it
/// first. A session whose command is admitted while other sessions' commands run lets the
/// other tasks ready on its thread go first (see [`crate::Admission::wait_with`]): their
/// admissions are then made durable by the same write, one `write` for a flight of them.
pub struct Receipt {
    rx: oneshot::Receiver<Result<(), StoreError>>,
    lead: Option<Arc<dyn Lead>>,
}

/// Writes what a store has queued (see [`Receipt::deferred`]).
pub trait Lead: Send + Sync {
    /// Appends everything queued so far, unless another thread is already doing so (it then
    /// appends this receipt's write too).
    fn lead(&self);
}

impl std::fmt::Debug for Receipt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Receipt")
            .field("deferred", &self.lead.is_some())
            .finish_non_exhaustive()
    }
}

impl Receipt {
    /// A receipt and the sender the store completes it with.
    pub fn channel() -> (oneshot::Sender<Result<(), StoreError>>, Self) {
        let (tx, rx) = oneshot::channel();
        (tx, Self { rx, lead: None })
    }

    /// A receipt whose write is queued: waiting on it leads the append unless another
    /// append has carried it first; dropping it unwaited leads it too.
    pub fn deferred(lead: Arc<dyn Lead>) -> (oneshot::Sender<Result<(), StoreError>>, Self) {
        let (tx, mut receipt) = Self::channel();
        receipt.lead = Some(lead);
        (tx, receipt)
    }

    /// Whether the write is only queued (see [`Receipt::deferred`]).
    pub fn is_deferred(&self) -> bool {
        self.lead.is_some()
    }

    /// Whether the store has answered already (the write is durable, or failed), without
    /// leading a deferred write.
    pub fn is_answered(&self) -> bool {
        !self.rx.is_empty()
    }

    /// A receipt that has already failed.
    pub fn failed(error: StoreError) -> Self {
        let (tx, rx) = Self::channel();
        let _ = tx.send(Err(error));
        rx
    }
}

impl Drop for Receipt {
    fn drop(&mut self) {
        // A wait given up before it led: the write is queued still, and goes out now rather
        // than at the store's next tick.
        if let Some(lead) = self.lead.take() {
            lead.lead();
        }
    }
}

impl Future for Receipt {
    type Output = Result<(), StoreError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        if let Some(lead) = this.lead.take() {
            // Not polled first: a pending poll would register this task, and the ack would
            // then wake it for nothing (another poll of the whole session).
            if this.rx.is_empty() {
                lead.lead();
            }
        }
        Pin::new(&mut this.rx)
            .poll(cx)
            .map(|r| r.unwrap_or_else(|_| stopped()))
    }
}

fn stopped() -> Result<(), StoreError> {
    Err(StoreError("the audit writer stopped".into()))
}

/// Where audit entries go. Every method is ordered per session: a completion is never applied
/// before its admission.
pub trait AuditSink: Send + Sync {
    /// Records a session's opening; durable when the receipt resolves.
    fn session_opened(&self, info: &SessionInfo) -> Receipt;
    /// Records a command at admission; durable when the receipt resolves. The wire must not
    /// forward the command before that.
    fn command_admitted(&self, record: CommandRecord) -> Receipt;
    /// Records a command's outcome. Not awaited: losing it in a crash leaves the entry with an
    /// unknown outcome, never a missing entry.
    fn command_finished(&self, completion: CommandCompletion);
    /// Records a session's end.
    fn session_closed(&self, end: &SessionEnd) -> Receipt;
}

/// One line of a session's recording.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum RecordingEvent {
    /// The session opened.
    Start {
        /// Time (RFC 3339).
        at: String,
        /// Identity name.
        identity: String,
        /// Connection name.
        connection: String,
        /// Protocol.
        protocol: String,
        /// Client address.
        client: String,
    },
    /// A command was admitted.
    Command {
        /// Time (RFC 3339).
        at: String,
        /// Sequence within the session.
        seq: u64,
        /// Statement text.
        text: String,
        /// Bind parameters.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        params: Vec<Option<String>>,
        /// Statement classes.
        class: String,
    },
    /// A command finished.
    Result {
        /// Time (RFC 3339).
        at: String,
        /// Sequence of the command.
        seq: u64,
        /// `ok`, `error` or `not-run`.
        status: String,
        /// Completion tag, SQLSTATE + message, or reason.
        detail: String,
        /// Rows returned.
        rows: u64,
        /// Duration in microseconds.
        duration_us: u64,
    },
    /// The server reported an error outside any command (e.g. a failed Parse).
    Notice {
        /// Time (RFC 3339).
        at: String,
        /// What happened.
        text: String,
    },
    /// The session ended.
    End {
        /// Time (RFC 3339).
        at: String,
        /// Why.
        reason: String,
        /// Bytes from the client.
        bytes_from_client: u64,
        /// Bytes from the server.
        bytes_from_server: u64,
    },
    /// A terminal channel started: its asciicast is `file`, beside this recording.
    CastStart {
        /// Time (RFC 3339).
        at: String,
        /// The channel (SSH channel id).
        channel: u32,
        /// The cast's file name, in the recordings directory.
        file: String,
        /// Terminal columns.
        width: u32,
        /// Terminal rows.
        height: u32,
        /// The client's `TERM`, if it asked for a terminal.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        term: Option<String>,
        /// The command it runs (exec), or none for a shell.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        command: Option<String>,
    },
    /// A file crossed the session (an SFTP or scp upload or download): its size and SHA-256,
    /// and the text of a small upload, so a replay shows the script or module a job ran.
    File {
        /// Time (RFC 3339).
        at: String,
        /// The audit entry it belongs to (the SFTP open, the scp command).
        seq: u64,
        /// `upload` or `download`.
        direction: String,
        /// The path, as the audit entry shows it.
        path: String,
        /// Bytes moved.
        bytes: u64,
        /// SHA-256 (hex) of the bytes moved, in file order, if they could be hashed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        sha256: Option<String>,
        /// The file's text, masked as every recording is: a small upload that is UTF-8.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        content: Option<String>,
        /// Why there is no hash or no copy (`binary: not copied`), if that is the case.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        note: Option<String>,
    },
    /// A terminal channel's cast is complete: its seal. The session's own seal covers this
    /// line, so the chain covers the cast.
    Cast {
        /// Time (RFC 3339).
        at: String,
        /// The channel (SSH channel id).
        channel: u32,
        /// The cast's file name, in the recordings directory.
        file: String,
        /// SHA-256 (hex) of the cast file as written.
        sha256: String,
        /// Its size in bytes.
        bytes: u64,
        /// How the channel ended (e.g. `exit-status 0`), if the wire said.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        status: Option<String>,
    },
}

/// Where session recordings go: an append-only stream per session, flushed as it goes.
pub trait RecordingSink: Send + Sync {
    /// Appends one event to the session's recording.
    fn append(&self, session: &SessionId, event: RecordingEvent);
    /// Closes the session's recording (after its `End` event).
    fn close(&self, session: &SessionId);
    /// Writes out everything of a closed session's recording and returns the SHA-256 (hex) of
    /// the file as it now stands, to be kept in the session's row (its seal). Blocking.
    fn seal(&self, _session: &SessionId) -> Option<String> {
        None
    }
    /// Appends one event to a terminal channel's recording (an asciicast per channel). Must
    /// not block: the relay calls it for every chunk of output. Sinks that keep no terminal
    /// recordings ignore it.
    fn terminal(&self, _session: &SessionId, _event: TerminalEvent) {}
}

/// Looks credentials up: service tokens by hash, registered SSH keys by fingerprint. Issuing
/// and listing are store operations of the CLI, not of the core.
#[async_trait]
pub trait TokenRegistry: Send + Sync {
    /// The token with this hash, if any (valid or not: the core checks validity). Never a key.
    async fn find_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError>;
    /// The SSH key registered with this fingerprint (`SHA256:...`), if any, as the token it
    /// stands for: its id, identity, scope, expiry and revocation (valid or not: the core
    /// checks validity). Never a token. If the key was registered again after a removal, the
    /// live registration, else the latest.
    ///
    /// The default knows no keys, so a registry that does not keep them refuses every key.
    async fn find_by_key(&self, _fingerprint: &str) -> Result<Option<TokenRecord>, StoreError> {
        Ok(None)
    }
    /// When the JWT subject `identity` (`namespace:sub`) was last revoked, if ever: its
    /// tokens issued until then are refused, and its sessions end. The default revokes none.
    async fn subject_revoked_at(&self, _identity: &str) -> Result<Option<SystemTime>, StoreError> {
        Ok(None)
    }
    /// Tokens revoked at or after `since`, with when, so live sessions can be ended.
    /// Keys are included: their sessions end the same way.
    async fn revoked_since(
        &self,
        since: SystemTime,
    ) -> Result<Vec<(TokenId, SystemTime)>, StoreError>;
}
