//! A command that does not run: what its client is told ([`Refused`], with its
//! [`RefusalKind`]) and how its entry ends ([`not_run`]).

use std::time::{Instant, SystemTime};

use crate::error::StoreError;
use crate::events::{CommandCompletion, CommandRecord, MaskLog, Outcome};
use crate::store::{AuditSink, RecordingEvent, RecordingSink};
use crate::time;

/// Why a command was not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// A deny rule refused it.
    Rule,
    /// It was held for approval and not approved: denied, timed out or withdrawn.
    Approval,
    /// The session was ended (token revoked or expired, shutdown) while it waited.
    SessionEnded,
    /// The audit store could not record it, so it could not run (fail closed).
    Store,
}

impl RefusalKind {
    /// Whether the policy refused it (a rule, an approver, the session's end), as opposed to
    /// the gateway failing: wires answer these with a permission error, the rest with a
    /// server-side one.
    pub fn by_policy(self) -> bool {
        !matches!(self, Self::Store)
    }
}

/// A command the gateway will not forward, and what the client is told.
#[derive(Debug, Clone)]
pub struct Refused {
    /// What the client is told (already says what to do).
    pub message: String,
    /// Why.
    pub kind: RefusalKind,
}

impl Refused {
    /// Whether the policy refused it (see [`RefusalKind::by_policy`]).
    pub fn by_policy(&self) -> bool {
        self.kind.by_policy()
    }

    /// A command that waited for approval while its session was ended.
    pub fn session_ended(reason: impl std::fmt::Display) -> Self {
        Self {
            message: format!(
                "the session was ended ({reason}) while the command waited for approval; \
                 it was not run"
            ),
            kind: RefusalKind::SessionEnded,
        }
    }
}

/// The refusal of a command whose entry the store could not write.
pub(crate) fn store_refusal(e: &StoreError) -> Refused {
    Refused {
        message: format!(
            "the gateway could not record this command, so it was not run ({e}); \
             try again later or tell the gateway operator"
        ),
        kind: RefusalKind::Store,
    }
}

/// Writes the entry of a command that will not run, with its outcome, at once.
pub(crate) fn not_run(
    audit: &dyn AuditSink,
    recordings: &dyn RecordingSink,
    record: CommandRecord,
    started: Instant,
    reason: String,
) {
    let session = record.session.clone();
    let seq = record.seq;
    // Not awaited: the command does not run, so nothing waits on this evidence, and a store
    // that fails here already refuses everything else.
    drop(audit.command_admitted(record));
    let finished_at = SystemTime::now();
    recordings.append(
        &session,
        RecordingEvent::Result {
            at: time::display(finished_at),
            seq,
            status: "not-run".into(),
            detail: reason.clone(),
            rows: 0,
            duration_us: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        },
    );
    audit.command_finished(CommandCompletion {
        session,
        seq,
        outcome: Outcome::NotExecuted { reason },
        rows_returned: 0,
        rows_affected: None,
        duration: started.elapsed(),
        finished_at,
        masked: MaskLog::new(),
    });
}
