//! What the relay knows between a client's messages and the server's answers: the commands in
//! flight (in order), the prepared statements and portals, and how each server answer closes a
//! command.
//!
//! The client half pushes in message order before forwarding; the server half consumes in the
//! same order as answers arrive. PostgreSQL answers strictly in order, so the first pending
//! item of a kind is always the one an answer belongs to.
//!
//! Statements and portals are updated when the client's Parse, Bind or Close is read (an
//! Execute later in the same pipeline must see them), but each such change is a *draft* queued
//! with what it replaced: ParseComplete, BindComplete and CloseComplete confirm it; a draft
//! still unconfirmed at ReadyForQuery failed or was skipped by the server, and is undone. So the
//! text audited for an Execute is the text the server will run, even if a client tries to
//! re-Parse a name the server refuses to replace.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use bytes::Bytes;
use gatehouse_core::classify::PreparedUse;
use gatehouse_core::{Admitted, CommandEnd, MaskLog, Outcome, Param, Session};

use crate::encoding::ClientEncoding;
use crate::masking::Field;
use crate::messages::{error_response, tag_rows, ServerNotice, Severity};

/// A prepared statement as the gateway remembers it.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Its SQL text (what is judged and audited for every execute of it).
    pub text: Arc<str>,
    /// Parameter type OIDs, from Parse and then from the server's ParameterDescription.
    pub param_types: Vec<u32>,
    /// Its result columns, once a Describe of it was answered (for masking results that
    /// arrive without a RowDescription).
    pub fields: Option<Arc<[Field]>>,
}

/// A bound portal: the statement text and the rendered parameters.
#[derive(Debug, Clone)]
pub struct Portal {
    /// The statement's text.
    pub text: Arc<str>,
    /// The parameters, rendered for the audit trail.
    pub params: Vec<Param>,
    /// What its rows will look like.
    pub shape: Shape,
}

/// What a command's rows will look like, as far as the gateway knows before they arrive.
#[derive(Debug, Clone, Default)]
pub struct Shape {
    /// The columns with their bound formats, if the statement was described.
    pub fields: Option<Arc<[Field]>>,
    /// Whether any result column was bound in binary format.
    pub any_binary: bool,
    /// A COPY with its own DELIMITER, QUOTE or ESCAPE: its rows' field boundaries are not
    /// what the detectors expect (a letter as delimiter glues a card number to it).
    pub copy_custom: bool,
}

impl Shape {
    /// Whether `text` is a COPY that sets its own delimiter, quote or escape.
    pub fn custom_copy(text: &str) -> bool {
        use gatehouse_core::classify::mentions;
        mentions(text, "copy")
            && ["delimiter", "quote", "escape"]
                .iter()
                .any(|w| mentions(text, w))
    }
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
    /// Values masked in its answer so far (the masking log of its audit entry).
    pub masked: MaskLog,
    /// What its rows will look like.
    pub shape: Shape,
    /// The portal it executes and that portal's bind serial (extended protocol).
    portal: Option<(String, u64)>,
    /// How many of its `PREPARE`/`DEALLOCATE`/`DISCARD ALL` the server has confirmed.
    prepared_applied: usize,
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
            masked: MaskLog::new(),
            shape: Shape::default(),
            portal: None,
            prepared_applied: 0,
        }
    }

    /// The same, executing this portal (name and bind serial).
    pub fn on_portal(mut self, portal: Option<(String, u64)>) -> Self {
        self.portal = portal;
        self
    }

    /// The same, with the shape of its rows.
    pub fn with_shape(mut self, shape: Shape) -> Self {
        self.shape = shape;
        self
    }
}

/// A change to the statements or portals, waiting for the server to confirm it.
#[derive(Debug)]
pub struct Draft<T> {
    name: String,
    serial: u64,
    value: T,
    previous: Option<(u64, T)>,
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
    /// A Parse, answered by ParseComplete.
    Parse(Draft<Statement>),
    /// A Bind, answered by BindComplete.
    Bind(Draft<Portal>),
    /// A Close of a statement (`true`) or a portal, answered by CloseComplete.
    Close {
        /// Statement or portal.
        statement: bool,
        /// Its name.
        name: String,
        /// What it removed, restored if the Close never happened.
        previous: Option<Removed>,
    },
    /// A Describe of a statement, answered by ParameterDescription.
    Describe(String),
    /// A Describe of a portal (its name and bind serial), answered by RowDescription or
    /// NoData: the columns its Execute will return.
    DescribePortal(String, u64),
    /// The client ended a COPY FROM STDIN (CopyDone or CopyFail): the bound of the Syncs the
    /// server ignores while it is copying in.
    CopyEnd,
    /// A Sync (or the end of a simple query), answered by ReadyForQuery. Portals bound up to
    /// `serial` end with the transaction if the server is then idle.
    Sync {
        /// The draft serial when the Sync was sent.
        serial: u64,
    },
}

/// What a Close removed.
#[derive(Debug)]
pub enum Removed {
    /// A statement.
    Statement(u64, Statement),
    /// A portal.
    Portal(u64, Portal),
}

/// What a RowDescription described.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Described {
    /// A prepared statement (answering Describe of a statement).
    Statement,
    /// A portal (answering Describe of a portal).
    Portal,
    /// The result now being answered (a simple query's).
    Result,
}

/// The state both halves share (behind one mutex, never held across an await).
#[derive(Debug, Default)]
pub struct Tracker {
    queue: VecDeque<Pending>,
    statements: HashMap<String, (u64, Statement)>,
    portals: HashMap<String, (u64, Portal)>,
    serial: u64,
    /// An extended-protocol COPY FROM STDIN is running: Syncs the client sends before its
    /// CopyDone are ignored by the server, so they must not wait for a ReadyForQuery.
    copying_in: bool,
    /// The statement whose ParameterDescription just arrived: the RowDescription (or NoData)
    /// that follows describes its result columns.
    described: Option<String>,
    /// The client encoding the server last reported: how the session's texts are decoded.
    encoding: ClientEncoding,
    /// Something may have run user code since the server's last ReadyForQuery (or is still
    /// to): a Parse (a literal's type input, a domain's CHECK), a Bind (parameter input,
    /// planning), an Execute or Query. It may have changed the client encoding, which the
    /// server reports only at the next ReadyForQuery.
    unsettled: bool,
    /// Commands the server has answered, to be finished (their outcomes journaled and
    /// recorded) once the answer is on its way to the client: the client is not kept waiting
    /// for the gateway's bookkeeping (`take_ended`).
    ended: Vec<(Admitted, CommandEnd)>,
}

impl Tracker {
    /// A tracker for a session whose server reported this client encoding at login.
    pub fn new(encoding: ClientEncoding) -> Self {
        Self {
            encoding,
            ..Self::default()
        }
    }

    /// A command the server answered: finished once its answer is on its way.
    fn end(&mut self, admitted: Admitted, end: CommandEnd) {
        self.ended.push((admitted, end));
    }

    /// Moves the commands answered since the last call into `out`, for the relay to finish
    /// once it has written their answers to the client.
    pub fn take_ended(&mut self, out: &mut Vec<(Admitted, CommandEnd)>) {
        out.append(&mut self.ended);
    }

    /// The client encoding the session's texts are in, as the server last reported it.
    pub fn encoding(&self) -> ClientEncoding {
        self.encoding
    }

    /// The server reported a new client encoding (ParameterStatus `client_encoding`); the
    /// messages it reads from now on are in it.
    pub fn set_encoding(&mut self, encoding: ClientEncoding) {
        self.encoding = encoding;
    }

    /// Whether a command may have run since the server last reported its settings: until
    /// its next ReadyForQuery, the client encoding it reads messages in is not certain.
    pub fn unsettled(&self) -> bool {
        self.unsettled
    }

    /// Queues what the server will answer next.
    pub fn push(&mut self, pending: Pending) {
        self.unsettled |= matches!(
            pending,
            Pending::Command(_) | Pending::Parse(_) | Pending::Bind(_)
        );
        if self.copying_in {
            match pending {
                Pending::Sync { .. } => return,
                Pending::CopyEnd => {
                    self.copying_in = false;
                    return;
                }
                _ => {}
            }
        }
        self.queue.push_back(pending);
    }

    /// CopyInResponse: if an extended Execute started it, the Syncs sent between it and the
    /// client's CopyDone are ignored by the server; drop them (and watch for more).
    pub fn copy_in(&mut self) {
        let Some(i) = self.first(|p| matches!(p, Pending::Command(_))) else {
            return;
        };
        if matches!(self.queue.get(i), Some(Pending::Command(run)) if run.simple) {
            return;
        }
        let mut j = i + 1;
        while let Some(p) = self.queue.get(j) {
            match p {
                Pending::Sync { .. } => {
                    self.queue.remove(j);
                }
                Pending::CopyEnd => {
                    self.queue.remove(j);
                    return;
                }
                _ => j += 1,
            }
        }
        self.copying_in = true;
    }

    /// A Sync marker for the queue.
    pub fn sync(&self) -> Pending {
        Pending::Sync {
            serial: self.serial,
        }
    }

    /// Records a Parse (as a draft) and returns the queue item that confirms or undoes it.
    pub fn parse(&mut self, name: &str, value: Statement) -> Pending {
        self.serial += 1;
        let previous = self
            .statements
            .insert(name.to_owned(), (self.serial, value.clone()));
        Pending::Parse(Draft {
            name: name.to_owned(),
            serial: self.serial,
            value,
            previous,
        })
    }

    /// Records a Bind (as a draft) and returns its queue item.
    pub fn bind(&mut self, name: &str, value: Portal) -> Pending {
        self.serial += 1;
        let previous = self
            .portals
            .insert(name.to_owned(), (self.serial, value.clone()));
        Pending::Bind(Draft {
            name: name.to_owned(),
            serial: self.serial,
            value,
            previous,
        })
    }

    /// Records a Close and returns its queue item.
    pub fn close(&mut self, statement: bool, name: &str) -> Pending {
        let previous = if statement {
            self.statements
                .remove(name)
                .map(|(s, v)| Removed::Statement(s, v))
        } else {
            self.portals
                .remove(name)
                .map(|(s, v)| Removed::Portal(s, v))
        };
        Pending::Close {
            statement,
            name: name.to_owned(),
            previous,
        }
    }

    /// Every text the server may hold under a statement name once the messages read so far
    /// have run: the current one, and what each unconfirmed Parse or Close replaced (a
    /// Parse the server refuses leaves the old statement in place). `EXECUTE name` in SQL is
    /// judged by all of them.
    pub fn candidates(&self, name: &str) -> Vec<Arc<str>> {
        let mut texts: Vec<Arc<str>> = Vec::new();
        let mut add = |text: &Arc<str>| {
            if !texts.iter().any(|t| t == text) {
                texts.push(text.clone());
            }
        };
        if let Some((_, s)) = self.statements.get(name) {
            add(&s.text);
        }
        for pending in &self.queue {
            let previous = match pending {
                Pending::Parse(d) if d.name == name => d.previous.as_ref().map(|(_, s)| s),
                Pending::Close {
                    statement: true,
                    name: n,
                    previous: Some(Removed::Statement(_, s)),
                } if n == name => Some(s),
                _ => None,
            };
            if let Some(s) = previous {
                add(&s.text);
            }
        }
        texts
    }

    /// The server confirmed a `PREPARE`, `DEALLOCATE` or `DISCARD ALL` of the running
    /// command (its CommandComplete tag): the statement map follows, since SQL-prepared and
    /// protocol-prepared statements share one namespace on the server.
    fn prepared_confirmed(&mut self, index: usize, tag: &str) {
        let kind = tag.split_whitespace().next().unwrap_or_default();
        if !matches!(kind, "PREPARE" | "DEALLOCATE" | "DISCARD") {
            return;
        }
        let Some(Pending::Command(run)) = self.queue.get_mut(index) else {
            return;
        };
        let wanted = |u: &PreparedUse| match u {
            PreparedUse::Prepare { .. } => kind == "PREPARE",
            PreparedUse::Deallocate(_) => kind == "DEALLOCATE" || tag == "DISCARD ALL",
            PreparedUse::Execute(_) => false,
        };
        let uses = run.admitted.prepared_uses();
        let Some(offset) = uses
            .get(run.prepared_applied..)
            .and_then(|rest| rest.iter().position(wanted))
        else {
            return;
        };
        let at = run.prepared_applied + offset;
        run.prepared_applied = at + 1;
        let Some(u) = uses.get(at).cloned() else {
            return;
        };
        self.serial += 1;
        match u {
            PreparedUse::Prepare { name, text } => {
                // A PREPARE whose text the gateway cannot know leaves a name that resolves to
                // nothing it can read: its EXECUTE is unknown.
                let text: Arc<str> = Arc::from(text.unwrap_or_else(|| "(unreadable)".into()));
                let statement = Statement {
                    text,
                    param_types: Vec::new(),
                    fields: None,
                };
                self.statements.insert(name, (self.serial, statement));
            }
            PreparedUse::Deallocate(Some(name)) => {
                self.statements.remove(&name);
            }
            PreparedUse::Deallocate(None) => self.statements.clear(),
            PreparedUse::Execute(_) => {}
        }
    }

    /// A prepared statement by name.
    pub fn statement(&self, name: &str) -> Option<&Statement> {
        self.statements.get(name).map(|(_, s)| s)
    }

    /// A portal by name.
    pub fn portal(&self, name: &str) -> Option<&Portal> {
        self.portals.get(name).map(|(_, p)| p)
    }

    /// A portal's bind serial (which Bind made it).
    pub fn portal_serial(&self, name: &str) -> Option<u64> {
        self.portals.get(name).map(|(serial, _)| *serial)
    }

    /// The first queued item an answer of this kind can belong to.
    fn first(&self, matches: impl Fn(&Pending) -> bool) -> Option<usize> {
        self.queue.iter().position(matches)
    }

    /// ParseComplete: the first Parse draft is confirmed.
    pub fn parse_complete(&mut self) {
        if let Some(i) = self.first(|p| matches!(p, Pending::Parse(_))) {
            if let Some(Pending::Parse(d)) = self.queue.remove(i) {
                confirm(&mut self.statements, d);
            }
        }
    }

    /// BindComplete: the first Bind draft is confirmed.
    pub fn bind_complete(&mut self) {
        if let Some(i) = self.first(|p| matches!(p, Pending::Bind(_))) {
            if let Some(Pending::Bind(d)) = self.queue.remove(i) {
                confirm(&mut self.portals, d);
            }
        }
    }

    /// CloseComplete: the first Close is confirmed.
    pub fn close_complete(&mut self) {
        if let Some(i) = self.first(|p| matches!(p, Pending::Close { .. })) {
            self.queue.remove(i);
        }
    }

    /// CommandComplete (or EmptyQueryResponse / PortalSuspended with a made-up tag).
    pub fn complete(&mut self, tag: &str, rows: u64) {
        let Some(i) = self.first(|p| matches!(p, Pending::Command(_))) else {
            return;
        };
        self.prepared_confirmed(i, tag);
        let simple = match self.queue.get_mut(i) {
            Some(Pending::Command(run)) if run.simple => {
                run.rows += rows;
                if let Some(n) = tag_rows(tag) {
                    run.affected = Some(run.affected.unwrap_or(0) + n);
                }
                run.tag = Some(tag.to_owned());
                true
            }
            _ => false,
        };
        if !simple {
            if let Some(Pending::Command(run)) = self.queue.remove(i) {
                let outcome = Outcome::Completed {
                    tag: tag.to_owned(),
                };
                self.end(
                    run.admitted,
                    CommandEnd::from(outcome)
                        .rows(rows)
                        .affected(tag_rows(tag))
                        .masked(run.masked),
                );
            }
        }
    }

    /// ErrorResponse: it belongs to the first unanswered message — a command (closed as
    /// failed), a refused command (answered with the gateway's own error, returned to replace
    /// the server's), or a Parse/Bind/Close/Describe (noted, undone at ReadyForQuery, and the
    /// Execute after it in the pipeline closed as failed with the same error).
    pub fn error(&mut self, session: &Session, notice: ServerNotice, rows: u64) -> Option<Bytes> {
        let Some(i) = self.first(|p| !matches!(p, Pending::Sync { .. } | Pending::CopyEnd)) else {
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
                    self.end(
                        run.admitted,
                        CommandEnd::from(outcome).rows(rows).masked(run.masked),
                    );
                }
                None
            }
            Some(other) => {
                let what = match other {
                    Pending::Parse(d) => format!("Parse of statement {:?}", d.name),
                    Pending::Bind(d) => format!("Bind of portal {:?}", d.name),
                    Pending::Close { name, .. } => format!("Close of {name:?}"),
                    Pending::Describe(name) => format!("Describe of statement {name:?}"),
                    Pending::DescribePortal(name, _) => format!("Describe of portal {name:?}"),
                    _ => "a message".to_owned(),
                };
                session.note(format!(
                    "{what} failed: {} {}: {}",
                    notice.severity, notice.code, notice.message
                ));
                // The Execute that needed it (the next one before the Sync) failed with it:
                // a syntax error surfaces at Parse, a constant folded with its parameters
                // (1 / $1 with 0) at Bind.
                let next = self
                    .queue
                    .iter()
                    .skip(i + 1)
                    .position(|p| matches!(p, Pending::Command(_) | Pending::Sync { .. }));
                if let Some(j) = next.map(|j| j + i + 1) {
                    if matches!(self.queue.get(j), Some(Pending::Command(_))) {
                        if let Some(Pending::Command(run)) = self.queue.remove(j) {
                            let outcome = Outcome::Failed {
                                code: notice.code,
                                message: notice.message,
                            };
                            self.end(
                                run.admitted,
                                CommandEnd::from(outcome).rows(rows).masked(run.masked),
                            );
                        }
                    }
                }
                None
            }
            None => None,
        }
    }

    /// ParameterDescription: the parameter types of the statement described.
    pub fn describe(&mut self, types: Vec<u32>) {
        let Some(i) = self.first(|p| matches!(p, Pending::Describe(_))) else {
            return;
        };
        if let Some(Pending::Describe(name)) = self.queue.remove(i) {
            if let Some((_, statement)) = self.statements.get_mut(&name) {
                statement.param_types = types;
            }
            self.described = Some(name);
        }
    }

    /// RowDescription: what it describes. A statement's columns are kept (unless it is a
    /// utility statement such as FETCH or EXECUTE, whose columns can change under the same
    /// text); a portal's are given to the executes of that very Bind; otherwise it starts the
    /// result of the simple query being answered.
    pub fn row_description(&mut self, fields: &[Field]) -> Described {
        if let Some(name) = self.described.take() {
            if let Some((_, statement)) = self.statements.get_mut(&name) {
                let classes =
                    gatehouse_core::classify(gatehouse_core::Protocol::Postgres, &statement.text);
                let stable = !classes.classes().is_empty()
                    && classes.classes().iter().all(|c| {
                        !matches!(
                            c,
                            gatehouse_core::StatementClass::Other
                                | gatehouse_core::StatementClass::Unknown
                                | gatehouse_core::StatementClass::Transaction
                        )
                    });
                statement.fields = stable.then(|| Arc::from(fields));
            }
            return Described::Statement;
        }
        let first = self
            .queue
            .iter()
            .position(|p| !matches!(p, Pending::Sync { .. }));
        if let Some(Pending::DescribePortal(..)) = first.and_then(|i| self.queue.get(i)) {
            if let Some(Pending::DescribePortal(name, serial)) =
                first.and_then(|i| self.queue.remove(i))
            {
                let fields: Arc<[Field]> = Arc::from(fields);
                if let Some((s, portal)) = self.portals.get_mut(&name) {
                    if *s == serial {
                        portal.shape.fields = Some(fields.clone());
                    }
                }
                for p in self.queue.iter_mut() {
                    if let Pending::Command(run) = p {
                        if run
                            .portal
                            .as_ref()
                            .is_some_and(|(n, s)| *n == name && *s == serial)
                        {
                            run.shape.fields = Some(fields.clone());
                        }
                    }
                }
            }
            return Described::Portal;
        }
        Described::Result
    }

    /// NoData: the described statement or portal returns no rows.
    pub fn no_data(&mut self) {
        if self.described.take().is_some() {
            return;
        }
        if let Some(i) = self.first(|p| matches!(p, Pending::DescribePortal(..))) {
            self.queue.remove(i);
        }
    }

    /// The shape of the rows of the first command waiting for its answer.
    pub fn running_shape(&self) -> Option<&Shape> {
        self.queue.iter().find_map(|p| match p {
            Pending::Command(run) => Some(&run.shape),
            _ => None,
        })
    }

    /// Adds what was masked to the first command waiting for its answer.
    pub fn add_masked(&mut self, counts: &gatehouse_core::mask::MaskCounts) {
        if counts.is_empty() {
            return;
        }
        let run = self.queue.iter_mut().find_map(|p| match p {
            Pending::Command(run) => Some(run),
            _ => None,
        });
        if let Some(run) = run {
            for (label, n) in counts.iter() {
                *run.masked.entry(label.to_owned()).or_default() += n;
            }
        }
    }

    /// ReadyForQuery: everything up to the matching Sync is answered. Simple queries close
    /// with what they gathered; extended executes still open never ran (an earlier message of
    /// their pipeline failed, and the server skipped to the Sync); drafts still unconfirmed
    /// are undone. With the server idle (`I`), the transaction's portals are gone.
    pub fn ready(&mut self, status: u8) {
        self.ready_up_to_sync(status);
        self.unsettled = self.queue.iter().any(|p| {
            matches!(
                p,
                Pending::Command(_) | Pending::Parse(_) | Pending::Bind(_) | Pending::Sync { .. }
            )
        });
    }

    fn ready_up_to_sync(&mut self, status: u8) {
        if !self.queue.iter().any(|p| matches!(p, Pending::Sync { .. })) {
            return;
        }
        let mut undo = Vec::new();
        let mut upto = None;
        while let Some(p) = self.queue.pop_front() {
            match p {
                Pending::Sync { serial } => {
                    upto = Some(serial);
                    break;
                }
                Pending::Command(run) if run.simple => {
                    let outcome = match run.error {
                        Some((code, message)) => Outcome::Failed { code, message },
                        None => Outcome::Completed {
                            tag: run.tag.unwrap_or_default(),
                        },
                    };
                    self.end(
                        run.admitted,
                        CommandEnd::from(outcome)
                            .rows(run.rows)
                            .affected(run.affected)
                            .masked(run.masked),
                    );
                }
                Pending::Command(run) => {
                    let outcome = Outcome::NotExecuted {
                        reason: "skipped by the server after an earlier error in the same pipeline"
                            .into(),
                    };
                    self.end(run.admitted, CommandEnd::from(outcome).masked(run.masked));
                }
                draft @ (Pending::Parse(_) | Pending::Bind(_) | Pending::Close { .. }) => {
                    undo.push(draft)
                }
                Pending::Refused { .. }
                | Pending::Describe(_)
                | Pending::DescribePortal(..)
                | Pending::CopyEnd => {}
            }
        }
        for draft in undo.into_iter().rev() {
            match draft {
                Pending::Parse(d) => revert(&mut self.statements, d),
                Pending::Bind(d) => revert(&mut self.portals, d),
                Pending::Close { name, previous, .. } => match previous {
                    Some(Removed::Statement(s, v)) => {
                        self.statements.entry(name).or_insert((s, v));
                    }
                    Some(Removed::Portal(s, v)) => {
                        self.portals.entry(name).or_insert((s, v));
                    }
                    None => {}
                },
                _ => {}
            }
        }
        if let (b'I', Some(upto)) = (status, upto) {
            self.portals.retain(|_, (serial, _)| *serial > upto);
        }
    }

    /// Commands still waiting when the session ends: one the server answered with the FATAL
    /// error it ended the session with (`fatal`, its SQLSTATE) is finished with it; the
    /// others' outcome is unknown, and stays so in the audit entry (never guessed: an earlier
    /// statement of the same query may have committed).
    pub fn abandon(&mut self, session: &Session, fatal: Option<&str>) {
        for (admitted, end) in self.ended.drain(..) {
            session.finish(admitted, end);
        }
        let mut open = 0;
        for pending in self.queue.drain(..) {
            match pending {
                Pending::Command(Running {
                    admitted,
                    error: Some((code, message)),
                    rows,
                    masked,
                    ..
                }) if fatal == Some(code.as_str()) => session.finish(
                    admitted,
                    CommandEnd::from(Outcome::Failed { code, message })
                        .rows(rows)
                        .masked(masked),
                ),
                Pending::Command(_) => open += 1,
                _ => {}
            }
        }
        if open > 0 {
            session.note(format!(
                "session ended with {open} command(s) unanswered; their outcome is unknown"
            ));
        }
    }
}

/// A confirmed draft is the truth, unless a later draft of the same name already replaced it.
fn confirm<T>(map: &mut HashMap<String, (u64, T)>, d: Draft<T>) {
    match map.get(&d.name) {
        Some((serial, _)) if *serial > d.serial => {}
        _ => {
            map.insert(d.name, (d.serial, d.value));
        }
    }
}

/// An unconfirmed draft is undone, unless a later draft of the same name replaced it since.
fn revert<T>(map: &mut HashMap<String, (u64, T)>, d: Draft<T>) {
    if map
        .get(&d.name)
        .is_some_and(|(serial, _)| *serial == d.serial)
    {
        match d.previous {
            Some(previous) => {
                map.insert(d.name, previous);
            }
            None => {
                map.remove(&d.name);
            }
        }
    }
}
