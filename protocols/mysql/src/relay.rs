//! The command phase: one client command at a time (MySQL clients wait for each answer), each
//! decoded, admitted by the core, forwarded, and its answer streamed back — rows masked where
//! the session's plan says — until the answer is complete; then the command is finished with
//! its outcome. Unmasked sessions forward every packet as the bytes that arrived.

use std::collections::HashMap;
use std::sync::Arc;

use gatehouse_core::classify::PreparedUse;
use gatehouse_core::mask::{MaskCounts, MaskPlan};
use gatehouse_core::session::MAX_AUDITED_PARAM;
use gatehouse_core::{Admission, Admitted, Command, EndReason, Outcome, Refused, Session};
use tokio::sync::Notify;

use crate::binary::{self, PrepareOk};
use crate::codec::Reader;
use crate::columns::{self, Column};
use crate::conn::Conn;
use crate::error::MysqlError;
use crate::frame::Message;
use crate::kill::{Kill, KillRegistry, FIRST_ID};
use crate::packets::{is_eof, Err};
use crate::response::{self, Response, Step};
use crate::session::error_payload;

/// Command bytes the relay tells apart.
mod com {
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const FIELD_LIST: u8 = 0x04;
    pub const STATISTICS: u8 = 0x09;
    pub const PROCESS_KILL: u8 = 0x0C;
    pub const PING: u8 = 0x0E;
    pub const CHANGE_USER: u8 = 0x11;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1A;
    pub const SET_OPTION: u8 = 0x1B;
    pub const STMT_FETCH: u8 = 0x1C;
    pub const RESET_CONNECTION: u8 = 0x1F;
}

/// The statement id MariaDB clients execute to mean "the one prepared last".
const LAST_PREPARED: u32 = u32::MAX;

/// `CURSOR_TYPE_READ_ONLY` in a COM_STMT_EXECUTE's flags.
const CURSOR_READ_ONLY: u8 = 0x01;

/// Why the relay stopped.
#[derive(Debug)]
pub enum RelayEnd {
    /// The client sent COM_QUIT (forwarded).
    ClientQuit,
    /// The client closed its socket.
    ClientClosed,
    /// The server closed its socket.
    ServerClosed,
    /// The gateway ended the session (revoked or expired token, shutdown); the client is
    /// told with an ERR of this sequence id (1 if a command was waiting for its answer).
    Ended(EndReason, u8),
    /// A protocol error; the client is told with an ERR of this sequence id.
    Failed(MysqlError, u8),
}

/// A statement the client prepared, by the server's statement id.
struct Prepared {
    text: String,
    params: usize,
    /// Parameter types from the last execute that bound them (later ones may not resend).
    types: Vec<(u8, u8)>,
    /// COM_STMT_SEND_LONG_DATA chunks per parameter (kept up to what the audit shows).
    long_data: Vec<Option<Vec<u8>>>,
    /// The columns of its last result, for rows fetched from a cursor.
    columns: Vec<Column>,
    /// The client bound new types in an execute the gateway refused: the server never got
    /// them, and the client will not send them again, so the next execute carries them.
    types_unsent: bool,
}

/// How a command's answer is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// Result sets of text rows (COM_QUERY).
    Text,
    /// Result sets of binary rows (COM_STMT_EXECUTE of this statement).
    Binary(u32),
    /// Binary rows from an open cursor (COM_STMT_FETCH of this statement).
    Fetch(u32),
}

/// How an admitted command goes upstream.
enum Forward {
    /// The packets as the client sent them.
    AsSent(Message),
    /// A rewritten text in place of a COM_QUERY (a `KILL` of a gateway id).
    Query(String),
    /// A rewritten command payload (an execute given back the types the server never got).
    Packet(Vec<u8>),
    /// Answered by the gateway itself; nothing goes upstream.
    Answer(Result<(), Err>),
}

/// The end of waiting on an admission.
enum Waited {
    Admitted(Admitted),
    Refused(Refused),
    /// A `KILL QUERY` of this session ended a held wait.
    Interrupted,
}

/// What became of a server's request for a client file.
enum Infile {
    /// Relayed: the file's name and size.
    Sent(String),
    /// Refused by the gateway, with what the client was told.
    Refused(String),
}

/// What a command's answer came to.
struct Answer {
    outcome: Outcome,
    rows: u64,
    affected: Option<u64>,
    masked: MaskCounts,
}

/// One session's command loop.
pub struct Relay<'a> {
    session: &'a Session,
    client: Conn,
    server: Conn,
    capabilities: u32,
    max: usize,
    kills: &'a KillRegistry,
    held: Arc<Notify>,
    masking: bool,
    statements: HashMap<u32, Prepared>,
    /// SQL-level `PREPARE`d statements by name (lower case) and the text each runs, for
    /// judging `EXECUTE name` by what it runs.
    sql_prepared: HashMap<String, std::sync::Arc<str>>,
    /// The statement prepared last: MariaDB clients may execute id 0xFFFFFFFF to mean it.
    last_prepared: Option<u32>,
}

/// A command handled; the loop goes on unless the client quit.
enum Next {
    Continue,
    Quit,
}

impl<'a> Relay<'a> {
    /// A relay over a logged-in client and upstream.
    pub fn new(
        session: &'a Session,
        client: Conn,
        server: Conn,
        capabilities: u32,
        max: usize,
        kills: &'a KillRegistry,
        held: Arc<Notify>,
    ) -> Self {
        Self {
            masking: !session.masker().is_empty(),
            session,
            client,
            server,
            capabilities,
            max,
            kills,
            held,
            statements: HashMap::new(),
            sql_prepared: HashMap::new(),
            last_prepared: None,
        }
    }

    /// Gives the two connections back (to say goodbye and count bytes).
    pub fn into_conns(self) -> (Conn, Conn) {
        (self.client, self.server)
    }

    /// Relays commands until one side goes away or the gateway ends the session.
    pub async fn run(&mut self) -> RelayEnd {
        let session = self.session;
        loop {
            let next = tokio::select! {
                biased;
                why = session.ended() => return RelayEnd::Ended(why, 0),
                m = self.client.next(self.max) => m,
            };
            let m = match next {
                Ok(m) => m,
                Err(MysqlError::Closed(_)) => return RelayEnd::ClientClosed,
                Err(e) => return RelayEnd::Failed(e, 1),
            };
            if m.first_seq != 0 {
                let got = m.first_seq;
                return RelayEnd::Failed(
                    MysqlError::Sequence { got, want: 0 },
                    got.wrapping_add(1),
                );
            }
            match self.command(m).await {
                Ok(Next::Continue) => {}
                Ok(Next::Quit) => return RelayEnd::ClientQuit,
                Err(MysqlError::Closed("client")) => return RelayEnd::ClientClosed,
                Err(MysqlError::Ended(why)) => return RelayEnd::Ended(why, 1),
                Err(MysqlError::Closed(_)) => return RelayEnd::ServerClosed,
                Err(e) => return RelayEnd::Failed(e, 1),
            }
        }
    }

    async fn command(&mut self, m: Message) -> Result<Next, MysqlError> {
        let Some(&code) = m.payload.first() else {
            return Err(MysqlError::Malformed("an empty command packet"));
        };
        match code {
            com::QUIT => {
                self.server.queue_raw(&m.raw);
                self.server.flush().await?;
                return Ok(Next::Quit);
            }
            com::QUERY => {
                let text = String::from_utf8_lossy(&m.payload[1..]).into_owned();
                let forward = self.kill_forward(&text, m);
                self.statement(Command::new(text), forward, Shape::Text)
                    .await?;
            }
            com::INIT_DB => {
                let db = String::from_utf8_lossy(&m.payload[1..]).into_owned();
                let text = format!("USE `{}`", db.replace('`', "``"));
                self.statement(Command::new(text), Forward::AsSent(m), Shape::Text)
                    .await?;
            }
            com::PROCESS_KILL => {
                let id = Reader::new(&m.payload[1..]).uint(4)?;
                let text = format!("KILL {id}");
                let forward = self.kill_forward(&text, m);
                self.statement(Command::new(text), forward, Shape::Text)
                    .await?;
            }
            com::STMT_PREPARE => self.prepare(m).await?,
            com::STMT_EXECUTE => self.execute(m).await?,
            com::STMT_FETCH => {
                let id = Reader::new(&m.payload[1..]).uint(4)? as u32;
                self.server.queue_raw(&m.raw);
                self.server.flush().await?;
                self.follow(Shape::Fetch(id)).await?;
                self.client.flush().await?;
            }
            com::STMT_SEND_LONG_DATA => {
                let (id, param, data) = binary::decode_long_data(&m.payload)?;
                if let Some(chunks) = self
                    .statements
                    .get_mut(&id)
                    .and_then(|s| s.long_data.get_mut(usize::from(param)))
                {
                    let kept = chunks.get_or_insert_with(Vec::new);
                    let room = (MAX_AUDITED_PARAM + 1).saturating_sub(kept.len());
                    kept.extend_from_slice(&data[..data.len().min(room)]);
                }
                // No answer: the data goes with the next command's write.
                self.server.queue_raw(&m.raw);
            }
            com::STMT_CLOSE => {
                if let Ok(id) = Reader::new(&m.payload[1..]).uint(4) {
                    self.statements.remove(&(id as u32));
                }
                self.server.queue_raw(&m.raw);
            }
            com::STMT_RESET => {
                if let Ok(id) = Reader::new(&m.payload[1..]).uint(4) {
                    if let Some(s) = self.statements.get_mut(&(id as u32)) {
                        s.long_data.iter_mut().for_each(|d| *d = None);
                    }
                }
                self.pass_through(m).await?;
            }
            com::RESET_CONNECTION => {
                self.statements.clear();
                self.pass_through(m).await?;
            }
            com::PING | com::STATISTICS | com::SET_OPTION => self.pass_through(m).await?,
            com::FIELD_LIST => {
                self.server.queue_raw(&m.raw);
                self.server.flush().await?;
                loop {
                    let reply = self.server_next().await?;
                    let last = matches!(reply.payload.first(), Some(0xFF))
                        || is_eof(&reply.payload, self.capabilities);
                    self.pass_masked(&reply, 0, &mut MaskCounts::new())?;
                    if last {
                        break;
                    }
                }
                self.client.flush().await?;
            }
            com::CHANGE_USER => {
                self.answer_error(
                    (1227, "42000"),
                    "COM_CHANGE_USER is not allowed through the gateway: the token decides who \
                     you are; open a new connection with the other token",
                )
                .await?;
            }
            other => {
                let what = match other {
                    0x12 | 0x15 | 0x1E => "replication is not allowed through the gateway",
                    _ => "this command is not relayed by the gateway",
                };
                self.answer_error((1047, "08S01"), &format!("{what} (command 0x{other:02x})"))
                    .await?;
            }
        }
        Ok(Next::Continue)
    }

    /// A `KILL` naming a gateway connection id: the held command of that session (if any) is
    /// interrupted, and its upstream thread is what the server is asked to kill. Another
    /// identity's sessions are not known to this one.
    fn kill_forward(&self, text: &str, m: Message) -> Forward {
        let is_kill = text
            .split_ascii_whitespace()
            .next()
            .is_some_and(|w| w.eq_ignore_ascii_case("kill"));
        if !is_kill {
            return Forward::AsSent(m);
        }
        // Only the ids the gateway gave its own clients can be killed: a server thread id
        // could be another identity's session (every session logs in as the same user).
        let Some(kill) = Kill::parse(text).filter(|k| k.id >= u64::from(FIRST_ID)) else {
            return Forward::Answer(Err(Err {
                code: 1094,
                state: "HY000".into(),
                message: format!(
                    "{}: only the connection ids the gateway gave (SELECT CONNECTION_ID() \
                     through the gateway) can be killed",
                    text.trim()
                ),
            }));
        };
        let unknown = || {
            Forward::Answer(Err(Err {
                code: 1094,
                state: "HY000".into(),
                message: format!("Unknown thread id: {}", kill.id),
            }))
        };
        let Some(target) = u32::try_from(kill.id)
            .ok()
            .and_then(|id| self.kills.lookup(id))
            .filter(|t| t.identity == self.session.info().identity)
        else {
            return unknown();
        };
        target.held.notify_waiters();
        if target.address == self.session.connection().address {
            Forward::Query(kill.upstream_text(target.thread_id))
        } else {
            Forward::Answer(Ok(()))
        }
    }

    /// Admits a statement, forwards it and streams its answer; refusals are answered here.
    /// Says whether it went upstream.
    async fn statement(
        &mut self,
        command: Command,
        forward: Forward,
        shape: Shape,
    ) -> Result<bool, MysqlError> {
        let sql_prepared = &self.sql_prepared;
        let admission = self.session.admit_resolving(command, &|name| {
            sql_prepared.get(name).cloned().into_iter().collect()
        });
        let admitted = match self.wait(admission).await? {
            Waited::Admitted(a) => a,
            Waited::Refused(refused) => {
                let code = if refused.by_policy() {
                    (1227, "42000")
                } else {
                    (1105, "HY000")
                };
                return self
                    .answer_error(code, &refused.message)
                    .await
                    .map(|()| false);
            }
            Waited::Interrupted => {
                return self
                    .answer_error(
                        (1317, "70100"),
                        "Query execution was interrupted while it waited for approval; \
                         the request is withdrawn",
                    )
                    .await
                    .map(|()| false);
            }
        };
        match forward {
            Forward::AsSent(m) => self.server.queue_raw(&m.raw),
            Forward::Packet(payload) => {
                self.server.queue(&payload, 0);
            }
            Forward::Query(text) => {
                let mut payload = Vec::with_capacity(text.len() + 1);
                payload.push(com::QUERY);
                payload.extend_from_slice(text.as_bytes());
                self.server.queue(&payload, 0);
            }
            Forward::Answer(result) => {
                let (payload, outcome) = match result {
                    Ok(()) => (
                        crate::packets::ok_payload(0, 0x0002),
                        Outcome::Completed {
                            tag: "OK, 0 rows affected".into(),
                        },
                    ),
                    Err(e) => {
                        let outcome = failed(&e);
                        (e.encode(), outcome)
                    }
                };
                self.client.queue(&payload, 1);
                self.client.flush().await?;
                self.session.finish(admitted, outcome);
                return Ok(false);
            }
        }
        let answer = async {
            self.server.flush().await?;
            let answer = self.follow(shape).await?;
            self.client.flush().await?;
            Ok::<_, MysqlError>(answer)
        }
        .await;
        match answer {
            Ok(a) => {
                let completed = matches!(a.outcome, Outcome::Completed { .. });
                self.follow_prepared(admitted.prepared_uses(), completed);
                self.session.finish(
                    admitted,
                    gatehouse_core::CommandEnd::from(a.outcome)
                        .rows(a.rows)
                        .affected(a.affected)
                        .masked(a.masked.to_log()),
                );
                Ok(true)
            }
            Err(e) => {
                let outcome = Outcome::Failed {
                    code: "08S01".into(),
                    message: format!("the answer was cut short: {e}"),
                };
                self.session.finish(admitted, outcome);
                Err(e)
            }
        }
    }

    /// Keeps the SQL-level prepared statements as the server has them after a command. If
    /// the command failed, a `PREPARE` in it may or may not have happened: its name stands
    /// for nothing the gateway can read (an `EXECUTE` of it is `unknown`).
    fn follow_prepared(&mut self, uses: &[PreparedUse], completed: bool) {
        for u in uses {
            match u {
                PreparedUse::Prepare { name, text } => {
                    let text = match (completed, text) {
                        (true, Some(text)) => text.as_str(),
                        _ => "(unreadable)",
                    };
                    self.sql_prepared
                        .insert(name.clone(), std::sync::Arc::from(text));
                }
                PreparedUse::Deallocate(Some(name)) if completed => {
                    self.sql_prepared.remove(name);
                }
                PreparedUse::Deallocate(None) if completed => self.sql_prepared.clear(),
                _ => {}
            }
        }
    }

    /// Waits for the core's verdict. A held command also watches the client (hanging up
    /// withdraws the request) and `KILL QUERY` from the client's other connection.
    async fn wait(&mut self, admission: Admission) -> Result<Waited, MysqlError> {
        let held = self.held.clone();
        let on_hold = |notice: &gatehouse_core::review::HoldNotice| {
            tracing::info!(request = %notice.approval, rule = %notice.rule, "command held for approval");
        };
        // `KILL QUERY` from the client's other connection, or the client going away (its
        // stream is read meanwhile; what it sends is kept).
        let client = &mut self.client;
        let interrupted = async {
            loop {
                tokio::select! {
                    () = held.notified() => return Ok(()),
                    read = client.fill() => read?,
                }
            }
        };
        Ok(match admission.wait_or(on_hold, interrupted).await {
            gatehouse_core::Waited::Admitted(a) => Waited::Admitted(a),
            gatehouse_core::Waited::Refused(r) => Waited::Refused(r),
            gatehouse_core::Waited::Interrupted(Ok(())) => Waited::Interrupted,
            gatehouse_core::Waited::Interrupted(Err(e)) => return Err(e),
        })
    }

    async fn prepare(&mut self, m: Message) -> Result<(), MysqlError> {
        let text = String::from_utf8_lossy(&m.payload[1..]).into_owned();
        self.server.queue_raw(&m.raw);
        self.server.flush().await?;
        let first = self.server_next().await?;
        if first.payload.first() == Some(&0xFF) {
            if let Ok(e) = Err::decode(&first.payload) {
                self.session.note(format!(
                    "prepare failed: {} ({}): {}",
                    e.code, e.state, e.message
                ));
            }
            self.pass_masked(&first, 0, &mut MaskCounts::new())?;
            return self.client.flush().await;
        }
        let ok = PrepareOk::decode(&first.payload)?;
        self.client.queue_raw(&first.raw);
        // Parameter definitions, then column definitions, each block closed by an EOF.
        for block in [ok.params, ok.columns] {
            if block == 0 {
                continue;
            }
            for _ in 0..=block {
                let def = self.server_next().await?;
                self.client.queue_raw(&def.raw);
            }
        }
        self.client.flush().await?;
        let params = usize::from(ok.params);
        self.last_prepared = Some(ok.statement_id);
        self.statements.insert(
            ok.statement_id,
            Prepared {
                text,
                params,
                types: Vec::new(),
                long_data: vec![None; params],
                columns: Vec::new(),
                types_unsent: false,
            },
        );
        Ok(())
    }

    async fn execute(&mut self, m: Message) -> Result<(), MysqlError> {
        let mut id = Reader::new(&m.payload[1..]).uint(4)? as u32;
        if id == LAST_PREPARED {
            id = self.last_prepared.unwrap_or(id);
        }
        let Some(statement) = self.statements.get_mut(&id) else {
            let message =
                format!("Unknown prepared statement handler ({id}) given to mysqld_stmt_execute");
            return self.answer_error((1243, "HY000"), &message).await;
        };
        let (header, params) = binary::decode_execute(
            &m.payload,
            statement.params,
            &mut statement.types,
            &statement.long_data,
        )?;
        // The server forgets long data once the statement ran; so does the gateway.
        statement.long_data.iter_mut().for_each(|d| *d = None);
        let command = Command::with_params(statement.text.clone(), params);
        if header.flags & CURSOR_READ_ONLY != 0 {
            statement.columns.clear();
        }
        // Where the new-parameters-bound flag sits: command, id, flags, iterations, NULLs.
        let bound_at = 10 + statement.params.div_ceil(8);
        let binds_types = statement.params > 0 && m.payload.get(bound_at) == Some(&1);
        let forward = match (statement.types_unsent, m.payload.get(bound_at)) {
            (true, Some(0)) => {
                let mut payload = Vec::with_capacity(m.payload.len() + 2 * statement.types.len());
                payload.extend_from_slice(&m.payload[..bound_at]);
                payload.push(1);
                for (type_code, flags) in &statement.types {
                    payload.extend_from_slice(&[*type_code, *flags]);
                }
                payload.extend_from_slice(&m.payload[bound_at + 1..]);
                Forward::Packet(payload)
            }
            _ => Forward::AsSent(m),
        };
        let carries_types = binds_types || matches!(forward, Forward::Packet(_));
        let forwarded = self.statement(command, forward, Shape::Binary(id)).await?;
        if let Some(statement) = self.statements.get_mut(&id) {
            if forwarded {
                statement.types_unsent = false;
            } else if carries_types {
                statement.types_unsent = true;
            }
        }
        Ok(())
    }

    /// Forwards a command whose answer is one message (OK, ERR, EOF or a status string).
    async fn pass_through(&mut self, m: Message) -> Result<(), MysqlError> {
        self.server.queue_raw(&m.raw);
        self.server.flush().await?;
        let reply = self.server_next().await?;
        self.pass_masked(&reply, 0, &mut MaskCounts::new())?;
        self.client.flush().await
    }

    /// Answers the client's command with an ERR of the gateway's own.
    async fn answer_error(&mut self, code: (u16, &str), message: &str) -> Result<(), MysqlError> {
        self.client.queue(&error_payload(code, message), 1);
        self.client.flush().await
    }

    /// The server's next message; what is queued for the client goes out first when the
    /// server has nothing more buffered (so rows stream, in as few writes as possible).
    async fn server_next(&mut self) -> Result<Message, MysqlError> {
        if let Some(m) = self.server.buffered(self.max)? {
            return Ok(m);
        }
        self.client.flush().await?;
        // A revoked token or a shutdown ends the session even while a statement runs.
        let session = self.session;
        tokio::select! {
            biased;
            m = self.server.next(self.max) => m,
            why = session.ended() => Err(MysqlError::Ended(why)),
        }
    }

    /// Streams a command's answer to the client, masking rows and error text as planned.
    async fn follow(&mut self, shape: Shape) -> Result<Answer, MysqlError> {
        let mut response = match shape {
            Shape::Fetch(_) => Response::fetch(self.capabilities),
            _ => Response::new(self.capabilities),
        };
        let mut counts = MaskCounts::new();
        let mut columns: Vec<Column> = Vec::new();
        let mut plan: Option<MaskPlan> = None;
        if let (Shape::Fetch(id), true) = (shape, self.masking) {
            if let Some(s) = self.statements.get(&id) {
                plan =
                    Some(columns::plan(self.session.masker(), &s.columns)).filter(|p| !p.is_noop());
                columns = s.columns.clone();
            }
        }
        // A rewritten packet may need more packets than the original: later sequence ids
        // shift by the difference.
        let mut shift = 0u8;
        let mut infile: Option<String> = None;
        loop {
            let m = self.server_next().await?;
            match response.feed(&m.payload)? {
                Step::ColumnCount(_) => {
                    columns.clear();
                    plan = None;
                }
                Step::Column(_) => {
                    if self.masking {
                        columns.push(Column::decode(&m.payload)?);
                    }
                }
                Step::ColumnsEnd => {
                    if self.masking {
                        plan = Some(columns::plan(self.session.masker(), &columns))
                            .filter(|p| !p.is_noop());
                    }
                }
                Step::Row => {
                    if let Some(plan) = &plan {
                        let masked = match shape {
                            Shape::Text => columns::mask_text_row(plan, &m.payload, &mut counts)?,
                            _ => binary::mask_binary_row(plan, &columns, &m.payload, &mut counts)?,
                        };
                        if let Some(row) = masked {
                            let next = self.client.queue(&row, m.first_seq.wrapping_add(shift));
                            shift = next.wrapping_sub(m.last_seq.wrapping_add(1));
                            continue;
                        }
                    }
                }
                Step::ResultEnd => plan = None,
                Step::LocalInfile => {
                    match self.local_infile(&m).await? {
                        Infile::Sent(what) => infile = Some(what),
                        Infile::Refused(message) => {
                            return Ok(Answer {
                                outcome: Outcome::Failed {
                                    code: "42000".into(),
                                    message: format!("ERROR 1148: {message}"),
                                },
                                rows: 0,
                                affected: None,
                                masked: counts,
                            });
                        }
                    }
                    continue;
                }
                Step::Done(outcome) => {
                    if let Some(status) = response.status() {
                        crate::reading::follow_status(self.session, status);
                    }
                    // Rows fetched from a cursor later are masked by these columns.
                    if let (Shape::Binary(id), false) = (shape, columns.is_empty()) {
                        if let Some(s) = self.statements.get_mut(&id) {
                            s.columns = std::mem::take(&mut columns);
                        }
                    }
                    self.pass_masked(&m, shift, &mut counts)?;
                    return Ok(answer(outcome, counts, infile));
                }
            }
            self.pass(&m, shift);
        }
    }

    /// `LOAD DATA LOCAL INFILE`: the server asks for a client file. Unless the connection
    /// allows it, the server is told there is none and the client gets the gateway's refusal;
    /// otherwise the file is relayed and its name and size recorded.
    async fn local_infile(&mut self, m: &Message) -> Result<Infile, MysqlError> {
        let file = String::from_utf8_lossy(&m.payload[1..]).into_owned();
        let seq = m.last_seq.wrapping_add(1);
        if !self.session.connection().local_infile {
            // An empty packet: "no data". The server ends the statement; its answer is
            // replaced by the refusal.
            self.server.queue(&[], seq);
            self.server.flush().await?;
            self.drain_answer().await?;
            let message = format!(
                "LOAD DATA LOCAL INFILE is not allowed on connection \"{}\" (file {file:?} \
                 was not sent); ask an administrator to set local_infile = true on it",
                self.session.connection().name
            );
            self.client
                .queue(&error_payload((1148, "42000"), &message), m.first_seq);
            self.client.flush().await?;
            return Ok(Infile::Refused(message));
        }
        self.pass(m, 0);
        self.client.flush().await?;
        let mut bytes = 0u64;
        loop {
            let chunk = self.client.next(self.max).await?;
            let empty = chunk.payload.is_empty();
            bytes += chunk.payload.len() as u64;
            self.server.queue_raw(&chunk.raw);
            if empty {
                break;
            }
        }
        self.server.flush().await?;
        self.session.note(format!(
            "LOAD DATA LOCAL INFILE {file:?}: {bytes} bytes sent by the client"
        ));
        Ok(Infile::Sent(format!("file {file:?}, {bytes} bytes")))
    }

    /// Reads (and drops) the rest of an answer the client will not see.
    async fn drain_answer(&mut self) -> Result<(), MysqlError> {
        let mut response = Response::new(self.capabilities);
        loop {
            let m = self.server.next(self.max).await?;
            if let Step::Done(_) = response.feed(&m.payload)? {
                return Ok(());
            }
        }
    }

    /// Queues a server message for the client as it came (or re-sequenced after a rewrite).
    fn pass(&mut self, m: &Message, shift: u8) {
        if shift == 0 {
            self.client.queue_raw(&m.raw);
        } else {
            self.client
                .queue(&m.payload, m.first_seq.wrapping_add(shift));
        }
    }

    /// Like [`Relay::pass`], with an ERR's message masked for sessions under masking.
    fn pass_masked(
        &mut self,
        m: &Message,
        shift: u8,
        counts: &mut MaskCounts,
    ) -> Result<(), MysqlError> {
        if self.masking && m.payload.first() == Some(&0xFF) {
            let mut err = Err::decode(&m.payload)?;
            let masked = self
                .session
                .masker()
                .mask_text(&err.message, counts, "error")
                .into_owned();
            if masked != err.message {
                err.message = masked;
                self.client
                    .queue(&err.encode(), m.first_seq.wrapping_add(shift));
                return Ok(());
            }
        }
        self.pass(m, shift);
        Ok(())
    }
}

/// The core's outcome of a followed answer, with a tag like the mysql CLI's summary.
fn answer(outcome: response::Outcome, masked: MaskCounts, infile: Option<String>) -> Answer {
    let infile_note = |tag: String| match &infile {
        Some(f) => format!("{tag}; LOAD DATA LOCAL INFILE {f}"),
        None => tag,
    };
    match outcome {
        response::Outcome::Ok {
            rows,
            affected,
            sets,
        } => {
            let tag = match sets {
                0 => format!("OK, {affected} rows affected"),
                1 => format!("{rows} rows in set"),
                n => format!("{n} result sets, {rows} rows"),
            };
            Answer {
                outcome: Outcome::Completed {
                    tag: infile_note(tag),
                },
                rows,
                affected: (sets == 0 || affected > 0).then_some(affected),
                masked,
            }
        }
        response::Outcome::Failed(e) => Answer {
            outcome: match failed(&e) {
                Outcome::Failed { code, message } => Outcome::Failed {
                    code,
                    message: infile_note(message),
                },
                other => other,
            },
            rows: 0,
            affected: None,
            masked,
        },
    }
}

/// A failed outcome as the audit trail keeps it: the SQL state as the code, and the message
/// led by the error number, as the mysql CLI shows it.
fn failed(e: &Err) -> Outcome {
    Outcome::Failed {
        code: e.state.clone(),
        message: format!("ERROR {}: {}", e.code, e.message),
    }
}
