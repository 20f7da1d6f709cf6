//! What the relay knows between a client's messages and the server's answers: the commands in
//! flight (in order), the prepared statements, and how each server answer closes a command.
//!
//! The client half pushes in message order before forwarding; the server half consumes in the
//! same order as answers arrive. PostgreSQL answers strictly in order, so the first pending
//! command is always the one an answer belongs to.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use gatehouse_core::{Admitted, Outcome, Session};

use crate::messages::{error_response, tag_rows, ServerNotice, Severity};

/// A prepared statement as the gateway remembers it.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Its SQL text (what is judged and audited for every execute of it).
    pub text: Arc<str>,
    /// Parameter type OIDs, from Parse and then from the server's ParameterDescription.
    pub param_types: Vec<u32>,
}

/// A command admitted and forwarded, waiting for the server's answer.
#[derive(Debug)]
pub struct Running {
    admitted: Admitted,
    /// A simple Query (or FunctionCall): it ends at ReadyForQuery and may complete several
    /// statements; an extended Execute ends at its own CommandComplete.
    simple: bool,
    rows: u64,
    affected: Option<u64>,
    tag: Option<String>,
    error: Option<(String, String)>,
}

impl Running {
    /// A command just admitted.
    pub fn new(admitted: Admitted, simple: bool, tag: Option<String>) -> Self {
        Self {
            admitted,
            simple,
            rows: 0,
            affected: None,
            tag,
            error: None,
        }
    }
}

/// One thing the server will answer, in order.
#[derive(Debug)]
pub enum Pending {
    /// A command in flight.
    Command(Running),
    /// A command the gateway refused; the server was sent an Execute of a portal that does
    /// not exist in its place, and the error it answers is replaced by this one.
    Refused {
        /// SQLSTATE for the client.
        code: &'static str,
        /// Message for the client.
        message: String,
    },
    /// A Describe of a statement, answered by ParameterDescription.
    Describe(String),
    /// A Sync (or the end of a simple query), answered by ReadyForQuery.
    Sync,
}

/// The state both halves share (behind one mutex, never held across an await).
#[derive(Debug, Default)]
pub struct Tracker {
    queue: VecDeque<Pending>,
    statements: HashMap<String, Statement>,
}

impl Tracker {
    /// Queues what the server will answer next.
    pub fn push(&mut self, pending: Pending) {
        self.queue.push_back(pending);
    }

    /// Remembers a Parse.
    pub fn prepare(&mut self, name: &str, statement: Statement) {
        self.statements.insert(name.to_owned(), statement);
    }

    /// A prepared statement by name.
    pub fn statement(&self, name: &str) -> Option<&Statement> {
        self.statements.get(name)
    }

    /// Forgets a closed statement.
    pub fn close_statement(&mut self, name: &str) {
        self.statements.remove(name);
    }

    fn head(&self) -> Option<usize> {
        self.queue
            .iter()
            .position(|p| !matches!(p, Pending::Describe(_)))
            .filter(|&i| !matches!(self.queue.get(i), Some(Pending::Sync)))
    }

    /// CommandComplete (or EmptyQueryResponse / PortalSuspended with a made-up tag).
    pub fn complete(&mut self, session: &Session, tag: &str, rows: u64) {
        let Some(i) = self.head() else { return };
        let simple = match self.queue.get_mut(i) {
            Some(Pending::Command(run)) if run.simple => {
                run.rows += rows;
                if let Some(n) = tag_rows(tag) {
                    run.affected = Some(run.affected.unwrap_or(0) + n);
                }
                run.tag = Some(tag.to_owned());
                true
            }
            Some(Pending::Command(_)) => false,
            _ => return,
        };
        if !simple {
            if let Some(Pending::Command(run)) = self.queue.remove(i) {
                let outcome = Outcome::Completed {
                    tag: tag.to_owned(),
                };
                session.finish(run.admitted, outcome, rows, tag_rows(tag));
            }
        }
    }

    /// ErrorResponse: closes the current command as failed, or answers with the gateway's own
    /// error if the current command was refused (the returned frame replaces the server's).
    pub fn error(&mut self, session: &Session, notice: ServerNotice, rows: u64) -> Option<Bytes> {
        let Some(i) = self.head() else {
            session.note(format!(
                "server {} {}: {}",
                notice.severity, notice.code, notice.message
            ));
            return None;
        };
        match self.queue.get_mut(i) {
            Some(Pending::Refused { .. }) => {
                if let Some(Pending::Refused { code, message }) = self.queue.remove(i) {
                    return Some(error_response(Severity::Error, code, &message, None));
                }
                None
            }
            Some(Pending::Command(run)) if run.simple => {
                run.rows += rows;
                run.error = Some((notice.code, notice.message));
                None
            }
            Some(Pending::Command(_)) => {
                if let Some(Pending::Command(run)) = self.queue.remove(i) {
                    let outcome = Outcome::Failed {
                        code: notice.code,
                        message: notice.message,
                    };
                    session.finish(run.admitted, outcome, rows, None);
                }
                None
            }
            _ => None,
        }
    }

    /// ParameterDescription: the parameter types of the statement described.
    pub fn describe(&mut self, types: Vec<u32>) {
        let Some(i) = self
            .queue
            .iter()
            .position(|p| matches!(p, Pending::Describe(_)))
        else {
            return;
        };
        if let Some(Pending::Describe(name)) = self.queue.remove(i) {
            if let Some(statement) = self.statements.get_mut(&name) {
                statement.param_types = types;
            }
        }
    }

    /// ReadyForQuery: everything up to the matching Sync is answered. Simple queries close
    /// with what they gathered; extended executes still open never ran (an earlier message of
    /// their pipeline failed, and the server skipped to the Sync).
    pub fn ready(&mut self, session: &Session) {
        if !self.queue.iter().any(|p| matches!(p, Pending::Sync)) {
            return;
        }
        while let Some(p) = self.queue.pop_front() {
            match p {
                Pending::Sync => return,
                Pending::Command(run) if run.simple => {
                    let outcome = match run.error {
                        Some((code, message)) => Outcome::Failed { code, message },
                        None => Outcome::Completed {
                            tag: run.tag.unwrap_or_default(),
                        },
                    };
                    session.finish(run.admitted, outcome, run.rows, run.affected);
                }
                Pending::Command(run) => {
                    let outcome = Outcome::NotExecuted {
                        reason: "skipped by the server after an earlier error in the same pipeline"
                            .into(),
                    };
                    session.finish(run.admitted, outcome, 0, None);
                }
                Pending::Refused { .. } | Pending::Describe(_) => {}
            }
        }
    }

    /// Commands still waiting when the session ends: their outcome is unknown, and stays so in
    /// the audit entry (never guessed).
    pub fn abandon(&mut self, session: &Session) {
        let open = self
            .queue
            .drain(..)
            .filter(|p| matches!(p, Pending::Command(_)))
            .count();
        if open > 0 {
            session.note(format!(
                "session ended with {open} command(s) unanswered; their outcome is unknown"
            ));
        }
    }
}
