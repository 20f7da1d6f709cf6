//! The relay phase: two halves in one task, client → server and server → client.
//!
//! Frames are found on the read buffer and forwarded as slices of it; only the messages the
//! pipeline needs are decoded (Query, Parse, Bind, Execute, Describe, Close, FunctionCall from
//! the client; CommandComplete, ErrorResponse, ReadyForQuery, ParameterDescription from the
//! server; DataRow and CopyData are counted from their header alone and may be forwarded before
//! they have fully arrived, so a huge row or COPY stream never has to fit in memory).
//!
//! Every command is admitted — its audit entry durable — before its bytes are written upstream.

use std::borrow::Cow;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use gatehouse_core::{Admission, Command, EndReason, Session, Waited};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};

use crate::encoding::{may_read_differently, ClientEncoding};
use crate::error::PgError;
use crate::frame::peek_header;
use crate::masking::{with_formats, Catalog};
use crate::messages::{
    backend, decode_execute, decode_target, error_response, execute, frontend, sync, Bind,
    FunctionCall, Parse, Reader, ServerNotice, Severity,
};
use crate::params::render;
use crate::result_mask::{Action, ResultMasker, REFUSED_RESULT};
use crate::tracker::{Pending, Portal, Running, Shape, Statement, Tracker};

/// A portal name no client can have bound: executing it makes the server answer with an
/// error in exactly the place the refused command's answer belongs.
const REFUSED_PORTAL: &str = "gatehouse: refused command";

/// Why a text that may read differently under another client encoding is refused while the
/// server's encoding is not certain (`encoding::may_read_differently`).
const UNSURE_ENCODING: &str = "a statement with a backslash or symbol right after a \
     non-ASCII character cannot be read with certainty while earlier messages of the pipeline \
     may still change the client encoding (the server reports it only at its next \
     ReadyForQuery); send it after their results";

/// How long answers are still relayed after a client's Terminate.
const TERMINATE_DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// Messages the client half asks the server half to write to the client.
type Notices = tokio::sync::mpsc::UnboundedSender<Bytes>;

/// Size limits of the relay.
#[derive(Debug, Clone, Copy)]
pub struct RelayLimits {
    /// Largest message the gateway decodes (Query, Parse, Bind, ErrorResponse...).
    pub max_decoded: usize,
    /// Largest message at all (DataRow and CopyData stream through).
    pub max_frame: usize,
}

impl Default for RelayLimits {
    fn default() -> Self {
        Self {
            max_decoded: 64 << 20,
            max_frame: 1 << 30,
        }
    }
}

/// Why a relay ended.
#[derive(Debug)]
pub enum RelayEnd {
    /// The client sent Terminate.
    ClientTerminated,
    /// The client closed the connection.
    ClientClosed,
    /// The server closed the connection, after the FATAL error it ended the session with
    /// (terminated by an administrator, shut down, an idle timeout) if it sent one.
    ServerClosed(Option<ServerNotice>),
    /// The gateway ended the session (token revoked or expired).
    Ended(EndReason),
    /// A protocol or I/O error.
    Failed(PgError),
}

/// Bytes each way.
#[derive(Debug, Default)]
pub struct Traffic {
    /// From the client.
    pub from_client: AtomicU64,
    /// From the server.
    pub from_server: AtomicU64,
}

enum Step {
    Forward,
    Push(Pending),
    Admit {
        admission: Admission,
        simple: bool,
        tag: Option<String>,
        shape: (Shape, Option<(String, u64)>),
    },
}

/// Runs both halves until one ends or the session is ended; returns the halves' streams so
/// the caller can say goodbye on them.
pub async fn run<C, U>(
    session: &Session,
    client: (ReadHalf<C>, &mut WriteHalf<C>, BytesMut),
    upstream: (ReadHalf<U>, &mut WriteHalf<U>, BytesMut),
    limits: RelayLimits,
    traffic: &Traffic,
    cancelled: &tokio::sync::Notify,
    encoding: ClientEncoding,
) -> RelayEnd
where
    C: AsyncRead + AsyncWrite,
    U: AsyncRead + AsyncWrite,
{
    let masker = session.masker().clone();
    let masking = if masker.is_empty() {
        None
    } else {
        // Column rules need source table and column names; without the catalog they cannot
        // be applied, so the session does not go on (fail closed).
        let catalog = if masker.has_column_rules() {
            match Catalog::load(session.connection()).await {
                Ok(c) => Some(Arc::new(c)),
                Err(e) => {
                    return RelayEnd::Failed(PgError::Upstream(format!(
                        "masking needs the upstream catalog and it could not be read: {e}"
                    )))
                }
            }
        } else {
            None
        };
        Some(ResultMasker::new(masker, catalog))
    };
    let tracker = Mutex::new(Tracker::new(encoding));
    // What the client half needs said to the client while it waits (a held command's request
    // id); the server half writes it between whole messages.
    let (notices, notices_rx) = tokio::sync::mpsc::unbounded_channel::<Bytes>();
    let (client_rd, client_wr, client_buf) = client;
    let (server_rd, server_wr, server_buf) = upstream;
    let shared = Shared {
        session,
        tracker: &tracker,
        limits,
        traffic,
    };
    let end = {
        let c2s = ClientHalf {
            shared,
            rd: client_rd,
            wr: server_wr,
            buf: client_buf,
            notices,
            cancelled,
        }
        .run();
        let s2c = ServerHalf {
            shared,
            rd: server_rd,
            wr: client_wr,
            buf: server_buf,
            notices: notices_rx,
            scan: ServerScan {
                passthrough: 0,
                rows: 0,
                replacements: Vec::new(),
                mask: masking,
                fatal: None,
            },
        }
        .run();
        tokio::pin!(c2s, s2c);
        let end = tokio::select! {
            end = &mut c2s => end,
            end = &mut s2c => end,
            reason = session.ended() => RelayEnd::Ended(reason),
        };
        if matches!(end, RelayEnd::ClientTerminated) {
            // A client may send its last query and Terminate together: the answers still
            // in flight are relayed until the server closes its end.
            let _ = tokio::time::timeout(TERMINATE_DRAIN, &mut s2c).await;
        }
        end
    };
    let fatal = match &end {
        RelayEnd::ServerClosed(Some(fatal)) => Some(fatal.code.as_str()),
        _ => None,
    };
    lock(&tracker).abandon(session, fatal);
    end
}

fn lock(tracker: &Mutex<Tracker>) -> MutexGuard<'_, Tracker> {
    // A panic while holding the lock cannot leave the tracker half-updated in a way that
    // matters more than ending the session, so a poisoned lock is simply taken over.
    tracker
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// What both halves of the relay share.
#[derive(Clone, Copy)]
struct Shared<'a> {
    session: &'a Session,
    tracker: &'a Mutex<Tracker>,
    limits: RelayLimits,
    traffic: &'a Traffic,
}

/// The client → server half: frames are judged, audited and forwarded in chunks.
struct ClientHalf<'a, C, U> {
    shared: Shared<'a>,
    rd: ReadHalf<C>,
    wr: &'a mut WriteHalf<U>,
    buf: BytesMut,
    /// What the server half is to tell the client meanwhile (a held command's request id).
    notices: Notices,
    /// The client's cancel, which ends a held command's wait.
    cancelled: &'a tokio::sync::Notify,
}

impl<C: AsyncRead, U: AsyncWrite> ClientHalf<'_, C, U> {
    /// Relays until the client ends or a frame cannot be relayed.
    async fn run(self) -> RelayEnd {
        let Self {
            shared:
                Shared {
                    session,
                    tracker,
                    limits,
                    traffic,
                },
            mut rd,
            wr,
            mut buf,
            notices,
            cancelled,
        } = self;
        let mut passthrough = 0usize;
        let mut steps: Vec<(usize, usize, Step)> = Vec::new();
        loop {
            if !buf.is_empty() {
                let scanned =
                    match scan_client(session, tracker, &buf, &mut passthrough, &mut steps, limits)
                    {
                        Ok(s) => s,
                        Err(e) => return RelayEnd::Failed(e),
                    };
                let terminate = scanned.terminate;
                if scanned.len > 0 {
                    let chunk = buf.split_to(scanned.len).freeze();
                    if let Err(e) =
                        forward_client_chunk(tracker, wr, chunk, &mut steps, &notices, cancelled)
                            .await
                    {
                        return RelayEnd::Failed(e);
                    }
                }
                if terminate {
                    return RelayEnd::ClientTerminated;
                }
            }
            match rd.read_buf(&mut buf).await {
                Ok(0) => return RelayEnd::ClientClosed,
                Ok(n) => {
                    traffic.from_client.fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) => return RelayEnd::Failed(e.into()),
            }
        }
    }
}

struct Scanned {
    len: usize,
    terminate: bool,
}

/// Finds the complete frames at the front of the buffer and decides what each needs.
fn scan_client(
    session: &Session,
    tracker: &Mutex<Tracker>,
    buf: &[u8],
    passthrough: &mut usize,
    steps: &mut Vec<(usize, usize, Step)>,
    limits: RelayLimits,
) -> Result<Scanned, PgError> {
    let mut off = 0;
    if *passthrough > 0 {
        let n = (*passthrough).min(buf.len());
        *passthrough -= n;
        steps.push((0, n, Step::Forward));
        off = n;
    }
    let encoding = lock(tracker).encoding();
    while *passthrough == 0 {
        let rest = buf.get(off..).unwrap_or_default();
        let Some((tag, total)) = peek_header(rest, limits.max_frame)? else {
            break;
        };
        if tag == frontend::COPY_DATA && rest.len() < total {
            steps.push((off, buf.len(), Step::Forward));
            *passthrough = total - rest.len();
            off = buf.len();
            break;
        }
        if total > limits.max_decoded && tag != frontend::COPY_DATA {
            return Err(PgError::TooLarge {
                tag,
                len: total,
                max: limits.max_decoded,
            });
        }
        let Some(body) = rest.get(5..total) else {
            break;
        };
        let step = match tag {
            frontend::QUERY => {
                let raw = Reader::new(body).cbytes()?;
                let t = lock(tracker);
                let (text, unsure) = read_text(raw, encoding, &t, steps);
                let shape = Shape {
                    copy_custom: Shape::custom_copy(&text),
                    ..Shape::default()
                };
                let mut command = Command::new(text.into_owned());
                if let Some(reason) = unsure {
                    command = command.unreadable(reason);
                }
                let admission = session.admit_resolving(command, &|name| t.candidates(name));
                drop(t);
                Step::Admit {
                    admission,
                    simple: true,
                    tag: None,
                    shape: (shape, None),
                }
            }
            frontend::PARSE => {
                let p = Parse::decode(body, encoding)?;
                let mut t = lock(tracker);
                match read_text(p.query_bytes, encoding, &t, steps) {
                    // Never stored, here or on the server: the Parse is refused in place (its
                    // entry says why), so no later EXECUTE can run what the gateway misread.
                    (text, Some(reason)) => {
                        drop(t);
                        Step::Admit {
                            admission: session
                                .admit(Command::new(text.into_owned()).unreadable(reason)),
                            simple: false,
                            tag: None,
                            shape: (Shape::default(), None),
                        }
                    }
                    (text, None) => {
                        let statement = Statement {
                            text: Arc::from(text),
                            param_types: p.param_types,
                            fields: None,
                        };
                        Step::Push(t.parse(&p.statement, statement))
                    }
                }
            }
            frontend::BIND => {
                let b = Bind::decode(body, encoding)?;
                reserved(&b.portal)?;
                let mut t = lock(tracker);
                let (text, types, fields) = match t.statement(&b.statement) {
                    Some(s) => (s.text.clone(), s.param_types.clone(), s.fields.clone()),
                    // Not prepared through the protocol: a statement PREPAREd in SQL shares the
                    // namespace. Judged as an EXECUTE of it, so the core classes it as what
                    // that PREPARE ran (or unknown).
                    None => (
                        Arc::from(format!(
                            "EXECUTE \"{}\" /* bound by the extended protocol */",
                            b.statement.replace('"', "\"\"")
                        )),
                        Vec::new(),
                        None,
                    ),
                };
                let shape = Shape {
                    fields: fields.map(|f| Arc::from(with_formats(&f, &b.result_formats))),
                    any_binary: b.result_formats.contains(&1),
                    copy_custom: Shape::custom_copy(&text),
                };
                let params = b
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let oid = types.get(i).copied().unwrap_or(0);
                        render(*v, b.format_of(i), oid, encoding)
                    })
                    .collect();
                Step::Push(t.bind(
                    &b.portal,
                    Portal {
                        text,
                        params,
                        shape,
                    },
                ))
            }
            frontend::EXECUTE => {
                let (portal, _) = decode_execute(body, encoding)?;
                let portal = &*portal;
                reserved(portal)?;
                let t = lock(tracker);
                let (command, shape) = match t.portal(portal) {
                    Some(p) => (
                        Command::with_params(&*p.text, p.params.clone()),
                        p.shape.clone(),
                    ),
                    None => (
                        Command::new(format!("(execute of unbound portal {portal:?})")),
                        Shape::default(),
                    ),
                };
                let on = t.portal_serial(portal).map(|s| (portal.to_owned(), s));
                let admission = session.admit_resolving(command, &|name| t.candidates(name));
                drop(t);
                Step::Admit {
                    admission,
                    simple: false,
                    tag: None,
                    shape: (shape, on),
                }
            }
            frontend::DESCRIBE => match not_reserved(decode_target(body, encoding)?)? {
                (b'S', name) => Step::Push(Pending::Describe(name.into_owned())),
                (_, name) => {
                    let serial = lock(tracker).portal_serial(&name).unwrap_or(0);
                    Step::Push(Pending::DescribePortal(name.into_owned(), serial))
                }
            },
            frontend::CLOSE => {
                let (kind, name) = not_reserved(decode_target(body, encoding)?)?;
                Step::Push(lock(tracker).close(kind == b'S', &name))
            }
            frontend::SYNC => Step::Push(lock(tracker).sync()),
            frontend::FUNCTION_CALL => {
                let call = FunctionCall::decode(body)?;
                let args = call
                    .args
                    .iter()
                    .enumerate()
                    .map(|(i, v)| {
                        let format = match call.formats.as_slice() {
                            [] => 0,
                            [one] => *one,
                            many => many.get(i).copied().unwrap_or(0),
                        };
                        render(*v, format, 0, encoding)
                    })
                    .collect();
                let command =
                    Command::with_params(format!("(function call, oid {})", call.oid), args);
                Step::Admit {
                    admission: session.admit(command),
                    simple: true,
                    tag: Some("FUNCTION CALL".into()),
                    shape: (Shape::default(), None),
                }
            }
            frontend::FLUSH | frontend::COPY_DATA => Step::Forward,
            frontend::COPY_DONE | frontend::COPY_FAIL => Step::Push(Pending::CopyEnd),
            frontend::TERMINATE => {
                steps.push((off, off + total, Step::Forward));
                return Ok(Scanned {
                    len: off + total,
                    terminate: true,
                });
            }
            other => {
                return Err(PgError::Protocol(format!(
                    "unexpected message type {:?} from the client",
                    char::from(other)
                )))
            }
        };
        steps.push((off, off + total, step));
        off += total;
    }
    Ok(Scanned {
        len: off,
        terminate: false,
    })
}

/// Waits for every admission of the chunk, queues what the server will answer, and forwards
/// the chunk — with each refused command replaced by an execute of [`REFUSED_PORTAL`].
async fn forward_client_chunk<U: AsyncWrite>(
    tracker: &Mutex<Tracker>,
    wr: &mut WriteHalf<U>,
    chunk: Bytes,
    steps: &mut Vec<(usize, usize, Step)>,
    notices: &Notices,
    cancelled: &tokio::sync::Notify,
) -> Result<(), PgError> {
    // Nothing of the chunk goes upstream before every entry in it is durable.
    let mut decided = Vec::with_capacity(steps.len());
    for (start, end, step) in steps.drain(..) {
        let decision = match step {
            Step::Forward => Decided::Forward,
            Step::Push(p) => Decided::Push(p),
            Step::Admit {
                admission,
                simple,
                tag,
                shape,
            } => {
                let on_hold = |hold: &gatehouse_core::review::HoldNotice| {
                    // The client hears the request id at once, while its command waits.
                    let _ = notices.send(error_response(
                        Severity::Notice,
                        "01000",
                        &hold.message(),
                        None,
                    ));
                };
                // A held command is not on the server: the client's cancel ends its wait (and
                // the core records it as not run and withdraws the request).
                let decided = match admission.wait_or(on_hold, cancelled.notified()).await {
                    Waited::Admitted(admitted) => Ok(admitted),
                    Waited::Refused(r) => Err((refusal_code(&r), r.message)),
                    Waited::Interrupted(()) => Err((
                        "57014",
                        "canceling statement due to user request: it was waiting for \
                         approval and was not run"
                            .to_owned(),
                    )),
                };
                match decided {
                    Ok(admitted) => Decided::Run(
                        Running::new(admitted, simple, tag)
                            .with_shape(shape.0)
                            .on_portal(shape.1),
                        simple,
                    ),
                    Err((code, message)) => Decided::Refuse(code, message, simple),
                }
            }
        };
        decided.push((start, end, decision));
    }
    let mut segments: Vec<Bytes> = Vec::new();
    let mut at = 0;
    {
        let mut t = lock(tracker);
        for (start, end, decision) in decided {
            match decision {
                Decided::Forward => {}
                Decided::Push(p) => t.push(p),
                Decided::Run(running, simple) => {
                    t.push(Pending::Command(running));
                    if simple {
                        let sync = t.sync();
                        t.push(sync);
                    }
                }
                Decided::Refuse(code, message, simple) => {
                    t.push(Pending::Refused { code, message });
                    if simple {
                        let sync = t.sync();
                        t.push(sync);
                    }
                    segments.push(chunk.slice(at..start));
                    segments.extend(refused_stand_in(simple));
                    at = end;
                }
            }
        }
    }
    if segments.is_empty() {
        wr.write_all(&chunk).await?;
    } else {
        segments.push(chunk.slice(at..));
        write_parts(wr, &segments).await?;
    }
    // TLS buffers records it could not send yet; without a flush they would wait for the
    // next write, which may never come (the client is waiting for our answer).
    wr.flush().await?;
    Ok(())
}

enum Decided {
    Forward,
    Push(Pending),
    Run(Running, bool),
    Refuse(&'static str, String, bool),
}

/// The SQLSTATE of a refusal: by policy (42501) or because the store failed (58000).
fn refusal_code(refused: &gatehouse_core::Refused) -> &'static str {
    if refused.by_policy() {
        "42501"
    } else {
        "58000"
    }
}

/// The server → client half: answers close the commands they end, rows are masked.
struct ServerHalf<'a, U, C> {
    shared: Shared<'a>,
    rd: ReadHalf<U>,
    wr: &'a mut WriteHalf<C>,
    buf: BytesMut,
    /// What the client half has to say to the client, written between whole messages.
    notices: tokio::sync::mpsc::UnboundedReceiver<Bytes>,
    scan: ServerScan,
}

/// Where the server's stream stands between reads.
struct ServerScan {
    /// Bytes of a message being streamed through that are still to come.
    passthrough: usize,
    /// Rows of the current result so far.
    rows: u64,
    /// Messages of the chunk to send rewritten (masked), in order.
    replacements: Vec<(usize, usize, Bytes)>,
    /// The session's result masker, if anything is masked.
    mask: Option<ResultMasker>,
    /// The FATAL (or PANIC) error the server ended the session with, once it has sent one.
    fatal: Option<ServerNotice>,
}

impl<U: AsyncRead, C: AsyncWrite> ServerHalf<'_, U, C> {
    /// Relays until the server ends or a message cannot be relayed.
    async fn run(self) -> RelayEnd {
        let Self {
            shared,
            mut rd,
            wr,
            mut buf,
            mut notices,
            mut scan,
        } = self;
        let mut ended = Vec::new();
        loop {
            if !buf.is_empty() {
                let len = match scan_server(shared, &buf, &mut scan) {
                    Ok(n) => n,
                    Err(e) => return RelayEnd::Failed(e),
                };
                if len > 0 {
                    let chunk = buf.split_to(len).freeze();
                    let mut at = 0;
                    for (start, end, replacement) in scan.replacements.drain(..) {
                        // Replacements come in message order, one per message; anything else is a
                        // bug, and ends the session rather than panicking.
                        if start < at || end > chunk.len() {
                            return RelayEnd::Failed(PgError::Protocol(
                                "internal: overlapping rewrites of one server message".into(),
                            ));
                        }
                        if let Err(e) =
                            write_parts(wr, &[chunk.slice(at..start), replacement]).await
                        {
                            return RelayEnd::Failed(e);
                        }
                        at = end;
                    }
                    if let Err(e) = write_parts(wr, &[chunk.slice(at..)]).await {
                        return RelayEnd::Failed(e);
                    }
                    // The answers are on their way: now the commands they end are finished
                    // (outcome journaled and recorded), off the client's wait. Had the write
                    // failed, the relay's end finishes them instead (`Tracker::abandon`).
                    lock(shared.tracker).take_ended(&mut ended);
                    for (admitted, end) in ended.drain(..) {
                        shared.session.finish(admitted, end);
                    }
                }
            }
            // A gateway notice goes out only between whole messages: never inside a row that is
            // still streaming through. `read_buf` is cancel-safe, so losing the race loses nothing.
            let read = tokio::select! {
                read = rd.read_buf(&mut buf) => read,
                Some(notice) = notices.recv(), if scan.passthrough == 0 => {
                    if let Err(e) = write_parts(wr, &[notice]).await {
                        return RelayEnd::Failed(e);
                    }
                    continue;
                }
            };
            match read {
                Ok(0) => return RelayEnd::ServerClosed(scan.fatal.take()),
                Ok(n) => {
                    shared
                        .traffic
                        .from_server
                        .fetch_add(n as u64, Ordering::Relaxed);
                }
                Err(e) => return RelayEnd::Failed(e.into()),
            }
        }
    }
}

async fn write_parts<W: AsyncWrite>(wr: &mut WriteHalf<W>, parts: &[Bytes]) -> Result<(), PgError> {
    for part in parts {
        if !part.is_empty() {
            wr.write_all(part).await?;
        }
    }
    wr.flush().await?;
    Ok(())
}

/// Finds the complete (or streamable) frames at the front of the server's buffer, closing
/// commands as their answers pass. Returns how many bytes may be forwarded.
fn scan_server(shared: Shared<'_>, buf: &[u8], scan: &mut ServerScan) -> Result<usize, PgError> {
    let Shared {
        session,
        tracker,
        limits,
        ..
    } = shared;
    let ServerScan {
        passthrough,
        rows,
        replacements,
        mask,
        fatal,
    } = scan;
    let mut mask = mask.as_mut();
    let mut off = 0;
    if *passthrough > 0 {
        let n = (*passthrough).min(buf.len());
        *passthrough -= n;
        off = n;
    }
    while *passthrough == 0 {
        let rest = buf.get(off..).unwrap_or_default();
        let Some((tag, total)) = peek_header(rest, limits.max_frame)? else {
            break;
        };
        let inspect = matches!(
            tag,
            backend::COMMAND_COMPLETE
                | backend::ERROR_RESPONSE
                | backend::READY_FOR_QUERY
                | backend::PARAMETER_DESCRIPTION
                | backend::EMPTY_QUERY
                | backend::PORTAL_SUSPENDED
                | backend::PARSE_COMPLETE
                | backend::BIND_COMPLETE
                | backend::CLOSE_COMPLETE
                | backend::COPY_IN_RESPONSE
                | backend::PARAMETER_STATUS
        ) || (mask.is_some()
            && matches!(
                tag,
                backend::ROW_DESCRIPTION
                    | backend::DATA_ROW
                    | backend::NOTICE_RESPONSE
                    | backend::COPY_OUT_RESPONSE
                    | backend::COPY_DATA
                    | backend::COPY_DONE
                    | backend::NO_DATA
                    | backend::NOTIFICATION_RESPONSE
                    | backend::FUNCTION_CALL_RESPONSE
                    | backend::PARAMETER_STATUS
            ));
        if !inspect {
            if tag == backend::DATA_ROW || tag == backend::COPY_DATA {
                *rows += 1;
            }
            if rest.len() < total {
                *passthrough = total - rest.len();
                return Ok(buf.len());
            }
            off += total;
            continue;
        }
        if total > limits.max_decoded {
            return Err(PgError::TooLarge {
                tag,
                len: total,
                max: limits.max_decoded,
            });
        }
        let Some(body) = rest.get(5..total) else {
            break;
        };
        let mut replace = |action: Action| match action {
            Action::Forward => {}
            Action::Replace(bytes) => replacements.push((off, off + total, bytes)),
            Action::Drop => replacements.push((off, off + total, Bytes::new())),
        };
        if tag == backend::PARAMETER_STATUS {
            let mut t = lock(tracker);
            let mut r = Reader::new(body);
            let (name, value) = (r.cstr()?, r.text(t.encoding())?);
            crate::reading::setting(name, &value)?;
            if name == "client_encoding" {
                t.set_encoding(ClientEncoding::from_name(&value));
            }
        }
        match (tag, mask.as_deref_mut()) {
            (backend::ROW_DESCRIPTION, Some(m)) => m.row_description(&mut lock(tracker), body)?,
            (backend::NO_DATA, _) => lock(tracker).no_data(),
            (backend::DATA_ROW, Some(m)) => {
                replace(m.data_row(&lock(tracker), body)?);
                // A withheld result's rows never reach the client.
                *rows += u64::from(!m.is_refusing());
            }
            (backend::COPY_DATA, Some(m)) => {
                replace(m.copy_data(body));
                *rows += u64::from(!m.is_refusing());
            }
            (backend::COPY_OUT_RESPONSE, Some(m)) => {
                let custom = lock(tracker).running_shape().is_some_and(|s| s.copy_custom);
                replace(m.copy_out(body, custom))
            }
            (backend::COPY_DONE, Some(m)) => replace(m.copy_done()),
            (backend::NOTICE_RESPONSE, Some(m)) => replace(m.notice(tag, body)?),
            (backend::NOTIFICATION_RESPONSE, Some(m)) => replace(m.notification(body)?),
            (backend::PARAMETER_STATUS, Some(m)) => replace(m.parameter_status(body)?),
            (backend::FUNCTION_CALL_RESPONSE, Some(m)) => replace(m.function_result(body)?),
            // A command's end (or, suspended, its pause): the next result plans its own rows.
            (backend::COMMAND_COMPLETE | backend::PORTAL_SUSPENDED, m) => {
                let mut t = lock(tracker);
                let refused = m.and_then(|m| {
                    t.add_masked(&std::mem::take(&mut m.counts));
                    m.end_result()
                });
                match refused {
                    // The client has the gateway's error instead of this result: the command
                    // failed with it.
                    Some(message) => {
                        replace(Action::Drop);
                        t.error(session, refusal_notice(message), std::mem::take(rows));
                    }
                    None if tag == backend::COMMAND_COMPLETE => {
                        let text = Reader::new(body).cstr()?;
                        t.complete(text, std::mem::take(rows));
                    }
                    None => t.complete("SUSPENDED", std::mem::take(rows)),
                }
            }
            (backend::EMPTY_QUERY, m) => {
                if let Some(m) = m {
                    m.end_result();
                }
                lock(tracker).complete("EMPTY", std::mem::take(rows))
            }
            (backend::ERROR_RESPONSE, m) => {
                let mut t = lock(tracker);
                let (notice, refused, action) = match m {
                    Some(m) => {
                        let action = m.notice(tag, body)?;
                        let notice = match &action {
                            Action::Replace(masked) => {
                                let masked = masked.get(5..).unwrap_or_default();
                                ServerNotice::decode(masked, t.encoding())?
                            }
                            _ => ServerNotice::decode(body, t.encoding())?,
                        };
                        t.add_masked(&std::mem::take(&mut m.counts));
                        let refused = m.end_result();
                        // After a refused result the client already has the gateway's error.
                        let action = if refused.is_some() {
                            Action::Drop
                        } else {
                            action
                        };
                        (notice, refused, action)
                    }
                    None => (
                        ServerNotice::decode(body, t.encoding())?,
                        None,
                        Action::Forward,
                    ),
                };
                let notice = refused.map(refusal_notice).unwrap_or(notice);
                if matches!(notice.severity.as_str(), "FATAL" | "PANIC") {
                    *fatal = Some(notice.clone());
                }
                // One replacement per message: the gateway's own error for a command it
                // refused wins over a masked copy of the server's.
                match t.error(session, notice, std::mem::take(rows)) {
                    Some(replacement) => replacements.push((off, off + total, replacement)),
                    None => replace(action),
                }
            }
            (backend::PARAMETER_DESCRIPTION, _) => {
                let mut r = Reader::new(body);
                let n = r.count16()?;
                let mut types = Vec::with_capacity(n.min(body.len() / 4));
                for _ in 0..n {
                    types.push(r.i32()? as u32);
                }
                lock(tracker).describe(types);
            }
            (backend::READY_FOR_QUERY, m) => {
                let mut t = lock(tracker);
                if let Some(m) = m {
                    t.add_masked(&std::mem::take(&mut m.counts));
                    m.end_result();
                }
                let status = body.first().copied().unwrap_or(b'I');
                t.ready(status)
            }
            (backend::PARSE_COMPLETE, _) => lock(tracker).parse_complete(),
            (backend::BIND_COMPLETE, _) => lock(tracker).bind_complete(),
            (backend::CLOSE_COMPLETE, _) => lock(tracker).close_complete(),
            (backend::COPY_IN_RESPONSE, _) => lock(tracker).copy_in(),
            _ => {}
        }
        off += total;
    }
    Ok(off)
}

/// Whether user code may have run upstream since the server last reported its settings:
/// queued in the tracker, or earlier in the chunk being scanned.
fn unsettled(tracker: &Tracker, steps: &[(usize, usize, Step)]) -> bool {
    tracker.unsettled()
        || steps.iter().any(|(.., s)| {
            matches!(
                s,
                Step::Admit { .. } | Step::Push(Pending::Parse(_) | Pending::Bind(_))
            )
        })
}

/// A Query's or Parse's SQL text as the gateway reads it, and why it cannot be run if the
/// reading is not certain: bytes that are not text in the session's encoding (the server
/// rejects those too), or a text that another encoding would read differently while user
/// code may have switched to one.
fn read_text<'a>(
    raw: &'a [u8],
    encoding: ClientEncoding,
    tracker: &Tracker,
    steps: &[(usize, usize, Step)],
) -> (Cow<'a, str>, Option<String>) {
    match encoding.decode_exact(raw) {
        None => (
            encoding.decode(raw),
            Some(format!(
                "the statement is not valid text in the session's client encoding \
                 ({encoding:?}), so the gateway cannot read it as the server would"
            )),
        ),
        Some(text) if unsettled(tracker, steps) && may_read_differently(raw) => {
            (text, Some(UNSURE_ENCODING.to_owned()))
        }
        Some(text) => (text, None),
    }
}

/// The error a refused result closes its command with.
fn refusal_notice(message: String) -> ServerNotice {
    ServerNotice {
        severity: "ERROR".into(),
        code: REFUSED_RESULT.into(),
        message,
    }
}

/// Refuses a client's use of the stand-in portal's name: bound by a client, it would turn a
/// refused command into one that runs.
fn reserved(portal: &str) -> Result<(), PgError> {
    if portal == REFUSED_PORTAL {
        return Err(PgError::Protocol(format!(
            "portal name {REFUSED_PORTAL:?} is reserved by the gateway"
        )));
    }
    Ok(())
}

fn not_reserved((kind, name): (u8, Cow<'_, str>)) -> Result<(u8, Cow<'_, str>), PgError> {
    if kind == b'P' {
        reserved(&name)?;
    }
    Ok((kind, name))
}

/// The Execute (and, for a simple query, the Sync) sent upstream in place of a refused command.
fn refused_stand_in(simple: bool) -> Vec<Bytes> {
    if simple {
        vec![execute(REFUSED_PORTAL), sync()]
    } else {
        vec![execute(REFUSED_PORTAL)]
    }
}
