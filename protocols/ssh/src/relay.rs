//! One session channel, relayed: the client's requests and keystrokes toward the host
//! (admitted first where they are commands), the host's output back ([`crate::downstream`]).
//!
//! Each direction runs on its own, so a client that uploads while the host prints never
//! deadlocks the two windows against each other. The client half tells the host half what the
//! channel became (an admitted exec, a shell, SFTP) through a small queue that is always read
//! before the host's next message, so output is never handled under the wrong mode.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gatehouse_core::events::{TerminalEvent, TerminalStart};
use gatehouse_core::review::HoldNotice;
use gatehouse_core::{Admission, Admitted, Command, Outcome, Session, StatementClass, Waited};
use russh::server::{self, Msg};
use russh::{client, Channel, ChannelId, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::{mpsc, Notify};
use tokio::task::JoinHandle;

use crate::downstream::{self, Mode};
use crate::output_mask::OutputMasker;
use crate::scp_stream::ScpWatch;
use crate::sftp::{denied_packet, Framer, SftpError};
use crate::sftp_link::SftpLink;
use crate::shell_lines::LineEditor;
use gatehouse_core::files::FileDirection;

/// The exit status a client sees when the gateway refuses its command (as a shell answers a
/// command it may not run), with the reason on stderr.
pub const REFUSED_EXIT: u32 = 126;

/// The exit status when the host cannot be reached (OpenSSH's own for connection failures).
pub const UNAVAILABLE_EXIT: u32 = 255;

/// Starts relaying one session channel; `upstream` is the host's channel, or why there is none.
pub(crate) fn spawn(
    core: Arc<Session>,
    channel: Channel<Msg>,
    upstream: Result<Channel<client::Msg>, String>,
    handle: server::Handle,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let id = channel.id();
        let (client_rx, client_tx) = channel.split();
        match upstream {
            Err(why) => unavailable(core, client_rx, client_tx, handle, &why).await,
            Ok(up) => {
                let (up_rx, up_tx) = up.split();
                let (mode_tx, mode_rx) = mpsc::channel(4);
                let prompt = Arc::new(AtomicBool::new(false));
                let ends = Ends::default();
                let host_half = downstream::run(
                    core.clone(),
                    up_rx,
                    client_tx,
                    handle.clone(),
                    mode_rx,
                    prompt.clone(),
                    ends.clone(),
                );
                let client_half = async move {
                    let mut half = ClientHalf {
                        core,
                        id,
                        handle,
                        up: up_tx,
                        mode: mode_tx,
                        started: false,
                        pending: VecDeque::new(),
                        pty: None,
                        sftp: None,
                        scp: None,
                        recording: false,
                        shell: None,
                        prompt,
                        input_mask: None,
                        ends,
                    };
                    half.run(client_rx).await;
                    // Dropping the half closes the mode queue: the host half runs on alone.
                };
                // One task for both halves, so stopping it (a connection's grace ran out)
                // stops both and lets go of the session.
                tokio::join!(client_half, host_half);
            }
        }
    })
}

/// The terminal a client asked for, as the cast header and the audit text tell it.
#[derive(Debug, Clone)]
pub(crate) struct Pty {
    pub term: String,
    pub cols: u32,
    pub rows: u32,
}

/// The client → host half of a channel.
struct ClientHalf {
    core: Arc<Session>,
    id: ChannelId,
    handle: server::Handle,
    up: ChannelWriteHalf<client::Msg>,
    mode: mpsc::Sender<Mode>,
    /// Whether an exec, shell or subsystem already started (a channel runs one).
    started: bool,
    /// Messages the client sent while its command waited for approval.
    pending: VecDeque<ChannelMsg>,
    pty: Option<Pty>,
    /// An SFTP channel's client-side framer and the state shared with the host half.
    sftp: Option<(Framer, SftpLink)>,
    /// An scp upload's stream, followed for its files' hashes.
    scp: Option<ScpWatch>,
    /// Whether the channel is recorded as a terminal cast (shells and commands, not file
    /// transfers).
    recording: bool,
    /// An interactive shell's typed lines, reconstructed from keystrokes.
    shell: Option<LineEditor>,
    /// Set by the host half while its last output looks like a password prompt.
    prompt: Arc<AtomicBool>,
    /// A terminal's keystrokes through the evidence masker before they reach the cast (a card
    /// number typed key by key is one number there).
    input_mask: Option<OutputMasker>,
    ends: Ends,
}

/// How each half of a channel learns the other one ended. Needed because russh forgets a
/// channel once it has sent its close, so the peer's answering close never arrives.
#[derive(Clone, Default)]
pub(crate) struct Ends {
    /// The client half ended (the client closed the channel or left).
    pub client: Arc<Notify>,
    /// The host half ended (the host closed the channel).
    pub host: Arc<Notify>,
}

/// What stands in the audit trail for a line typed at a password prompt.
const SECRET_LINE: &str = "(typed at a password prompt: not recorded)";

/// What became of a command waiting for admission.
enum Verdict {
    Admitted(Admitted),
    /// Refused (by a rule, an approver, a timeout or the store), with the reason.
    Refused(String),
    /// The client hung up while it waited.
    Gone,
}

impl ClientHalf {
    async fn run(&mut self, mut client: ChannelReadHalf) {
        let host_ended = self.ends.host.clone();
        loop {
            let msg = match self.pending.pop_front() {
                Some(m) => m,
                None => tokio::select! {
                    msg = client.wait() => match msg {
                        Some(m) => m,
                        None => break,
                    },
                    () = host_ended.notified() => break,
                },
            };
            match self.on_message(msg, &mut client).await {
                Ok(Flow::Go) => {}
                Ok(Flow::Stop) | Err(_) => break,
            }
        }
        if let Some(held) = self.input_mask.as_mut().map(OutputMasker::flush) {
            self.record_masked_input(held);
        }
        self.ends.client.notify_one();
        let _ = self.up.close().await;
    }

    async fn on_message(
        &mut self,
        msg: ChannelMsg,
        client: &mut ChannelReadHalf,
    ) -> Result<Flow, russh::Error> {
        match msg {
            ChannelMsg::Data { data } if self.sftp.is_some() => {
                return self.sftp_data(&data, client).await
            }
            ChannelMsg::Data { data } if self.shell.is_some() => {
                return self.shell_data(data).await
            }
            ChannelMsg::Data { data } => {
                if let Some(scp) = &self.scp {
                    scp.feed(&self.core, &data);
                }
                self.record_input(&data);
                self.up.data_bytes(data).await?
            }
            ChannelMsg::Eof => self.up.eof().await?,
            ChannelMsg::Close => return Ok(Flow::Stop),
            ChannelMsg::RequestPty {
                term,
                col_width,
                row_height,
                pix_width,
                pix_height,
                terminal_modes,
                ..
            } => {
                self.pty = Some(Pty {
                    term: term.clone(),
                    cols: col_width,
                    rows: row_height,
                });
                self.up
                    .request_pty(
                        false,
                        &term,
                        col_width,
                        row_height,
                        pix_width,
                        pix_height,
                        &terminal_modes,
                    )
                    .await?;
            }
            ChannelMsg::WindowChange {
                col_width,
                row_height,
                pix_width,
                pix_height,
            } => {
                if self.recording {
                    self.core.terminal(TerminalEvent::resize(
                        self.id.into(),
                        col_width,
                        row_height,
                    ));
                }
                self.up
                    .window_change(col_width, row_height, pix_width, pix_height)
                    .await?
            }
            ChannelMsg::Signal { signal } => self.up.signal(signal).await?,
            ChannelMsg::SetEnv {
                variable_name,
                variable_value,
                ..
            } if !self.started => {
                let passed = crate::env::allowed(&variable_name, &variable_value);
                let text = crate::env::describe(&variable_name, &variable_value, passed);
                let Ok(admitted) = self
                    .core
                    .observe(Command::classed(text, StatementClass::Other))
                    .wait()
                    .await
                else {
                    // Fail closed: a setting whose evidence cannot be kept is not passed on.
                    return Ok(Flow::Go);
                };
                let tag = if passed { "passed" } else { "refused" };
                self.core
                    .finish(admitted, Outcome::Completed { tag: tag.into() });
                if passed {
                    self.up
                        .set_env(false, variable_name, variable_value)
                        .await?;
                }
            }
            ChannelMsg::Exec { command, .. } if !self.started => {
                self.started = true;
                let line = String::from_utf8_lossy(&command).into_owned();
                let admission = self
                    .core
                    .admit(Command::classed(line, StatementClass::Exec));
                let Some(admitted) = self.wait(admission, client).await else {
                    return Ok(Flow::Stop);
                };
                let transfer = crate::transfer::is_transfer(&command);
                if !transfer {
                    self.record_start(Some(String::from_utf8_lossy(&command).into_owned()));
                }
                let scp = crate::transfer::scp_direction(&command).map(|direction| {
                    let limit = self.core.connection().upload_copy_max_bytes;
                    ScpWatch::new(direction, admitted.seq(), limit)
                });
                self.start(Mode::Command {
                    admitted,
                    recording: self.recording,
                    masking: !transfer,
                })
                .await;
                if let Some(scp) = scp {
                    self.start(Mode::Scp(scp.clone())).await;
                    // The client sends the files of an upload; the host half follows a
                    // download's.
                    self.scp = (scp.direction() == FileDirection::Upload).then_some(scp);
                }
                self.up.exec(true, command).await?;
            }
            ChannelMsg::RequestShell { .. } if !self.started => {
                self.started = true;
                let text = match &self.pty {
                    Some(p) => format!("shell ({} {}x{})", p.term, p.cols, p.rows),
                    None => "shell (no pty)".into(),
                };
                let admission = self
                    .core
                    .admit(Command::classed(text, StatementClass::Shell));
                let Some(admitted) = self.wait(admission, client).await else {
                    return Ok(Flow::Stop);
                };
                self.record_start(None);
                self.shell = Some(LineEditor::new());
                self.start(Mode::Command {
                    admitted,
                    recording: self.recording,
                    masking: true,
                })
                .await;
                self.up.request_shell(true).await?;
            }
            ChannelMsg::RequestSubsystem { name, .. } if !self.started && name == "sftp" => {
                self.started = true;
                let admission = self
                    .core
                    .admit(Command::classed("sftp session", StatementClass::Sftp));
                let Some(admitted) = self.wait(admission, client).await else {
                    return Ok(Flow::Stop);
                };
                let link = SftpLink::new(self.core.connection().upload_copy_max_bytes);
                self.start(Mode::Command {
                    admitted,
                    recording: false,
                    masking: false,
                })
                .await;
                self.start(Mode::Sftp(link.clone())).await;
                self.sftp = Some((Framer::new(), link));
                self.up.request_subsystem(true, name).await?;
            }
            // A second exec on a channel, X11, agent, other subsystems: answered by the
            // handler (refused), nothing to relay.
            _ => {}
        }
        Ok(Flow::Go)
    }

    /// Starts the channel's terminal recording (a shell, or a command that is not a transfer).
    fn record_start(&mut self, command: Option<String>) {
        self.recording = true;
        let evidence = self.core.evidence_masker();
        if evidence.has_detectors() {
            self.input_mask = Some(OutputMasker::new(evidence, "input"));
        }
        let (width, height, term) = match &self.pty {
            Some(p) => (p.cols, p.rows, Some(p.term.clone())),
            None => (0, 0, None),
        };
        self.core.terminal(TerminalEvent::start(
            self.id.into(),
            TerminalStart {
                width,
                height,
                term,
                command,
            },
        ));
    }

    /// Keystrokes of a pty channel go into its cast, except at a password prompt.
    fn record_input(&mut self, data: &Bytes) {
        if !self.recording || self.pty.is_none() || self.prompt.load(Ordering::Relaxed) {
            return;
        }
        let data = match self.input_mask.as_mut() {
            Some(mask) => mask.push(data.clone()),
            None => data.clone(),
        };
        self.record_masked_input(data);
    }

    fn record_masked_input(&self, data: Bytes) {
        if !data.is_empty() {
            self.core
                .terminal(TerminalEvent::input(self.id.into(), data));
        }
    }

    /// An interactive shell's keystrokes: each line typed is recorded (evidence, not a
    /// boundary: no rule judges it) and its Enter is held until the entry is durable.
    async fn shell_data(&mut self, data: Bytes) -> Result<Flow, russh::Error> {
        self.record_input(&data);
        let Some(editor) = self.shell.as_mut() else {
            return Ok(Flow::Go);
        };
        let lines = editor.feed(&data);
        let mut sent = 0;
        for typed in lines {
            let enter = typed.end().saturating_sub(1).max(sent);
            if enter > sent {
                self.up.data_bytes(data.slice(sent..enter)).await?;
            }
            let text = if self.prompt.load(Ordering::Relaxed) {
                SECRET_LINE.to_owned()
            } else {
                typed.line().audit_text()
            };
            match self
                .core
                .observe(Command::classed(text, StatementClass::ShellLine))
                .wait()
                .await
            {
                Ok(admitted) => self.core.finish(
                    admitted,
                    Outcome::Completed {
                        tag: "entered".into(),
                    },
                ),
                Err(refused) => {
                    // Fail closed: a line whose evidence cannot be kept is not entered.
                    self.refuse(&refused.message).await;
                    return Ok(Flow::Stop);
                }
            }
            sent = enter;
        }
        if sent < data.len() {
            self.up.data_bytes(data.slice(sent..)).await?;
        }
        Ok(Flow::Go)
    }

    /// Tells the host half what the channel became, before anything is forwarded.
    async fn start(&self, mode: Mode) {
        let _ = self.mode.send(mode).await;
    }

    /// Waits for a command's admission; `None`: refused (the client was told on stderr, the
    /// channel is closed) or the client hung up.
    async fn wait(
        &mut self,
        admission: Admission,
        client: &mut ChannelReadHalf,
    ) -> Option<Admitted> {
        match self.verdict(admission, client).await {
            Verdict::Admitted(admitted) => Some(admitted),
            Verdict::Refused(why) => {
                self.refuse(&why).await;
                None
            }
            Verdict::Gone => None,
        }
    }

    /// Waits for a command's admission, telling the client on stderr if it is held, and
    /// withdrawing it if the client hangs up meanwhile (what it sends meanwhile is kept, in
    /// order, for after).
    async fn verdict(&mut self, admission: Admission, client: &mut ChannelReadHalf) -> Verdict {
        let handle = self.handle.clone();
        let id = self.id;
        let on_hold = move |notice: &HoldNotice| {
            let line = Bytes::from(format!("{}\r\n", notice.message()));
            tokio::spawn(async move {
                let _ = handle.extended_data(id, 1, line).await;
            });
        };
        // What the client sends meanwhile is kept; hanging up withdraws the request.
        let pending = &mut self.pending;
        let hung_up = async {
            loop {
                match client.wait().await {
                    None | Some(ChannelMsg::Close) => return,
                    Some(other) => pending.push_back(other),
                }
            }
        };
        match admission.wait_or(on_hold, hung_up).await {
            Waited::Admitted(admitted) => Verdict::Admitted(admitted),
            Waited::Refused(refused) => Verdict::Refused(refused.message),
            Waited::Interrupted(()) => Verdict::Gone,
        }
    }

    /// An SFTP channel's bytes from the client: whole packets, each operation worth auditing
    /// admitted before it is forwarded; a refused one answered with PERMISSION_DENIED.
    async fn sftp_data(
        &mut self,
        data: &[u8],
        client: &mut ChannelReadHalf,
    ) -> Result<Flow, russh::Error> {
        let Some((framer, link)) = self.sftp.as_mut() else {
            return Ok(Flow::Go);
        };
        let link = link.clone();
        framer.push(data);
        let mut packets = Vec::new();
        loop {
            match framer.next_packet() {
                Ok(Some(p)) => packets.push(p),
                Ok(None) => break,
                Err(e) => return Ok(self.sftp_broken(e).await),
            }
        }
        // Packets that need no admission go out together, packed into full SSH packets; the
        // run is flushed before an operation waits for its admission, so order is kept.
        let mut run = BytesMut::new();
        for packet in packets {
            let audited = match link.request(&packet) {
                Ok(a) => a,
                Err(e) => return Ok(self.sftp_broken(e).await),
            };
            let Some(audited) = audited else {
                run.extend_from_slice(&packet);
                continue;
            };
            if !run.is_empty() {
                self.up.data_bytes(run.split().freeze()).await?;
            }
            let command = Command::classed(audited.text().to_owned(), StatementClass::Sftp);
            let admission = self.core.admit(command);
            match self.verdict(admission, client).await {
                Verdict::Admitted(permit) => {
                    link.admitted(&audited, permit);
                    self.up.data_bytes(packet).await?;
                }
                Verdict::Refused(why) => {
                    link.denied(&audited);
                    let answer = denied_packet(audited.request_id(), &format!("gatehouse: {why}"));
                    self.start(Mode::Reply(answer)).await;
                }
                Verdict::Gone => return Ok(Flow::Stop),
            }
        }
        if !run.is_empty() {
            self.up.data_bytes(run.freeze()).await?;
        }
        Ok(Flow::Go)
    }

    /// A client SFTP stream the gateway cannot follow is not relayed blind: the channel ends.
    async fn sftp_broken(&mut self, error: SftpError) -> Flow {
        self.core
            .note(format!("sftp stream from the client refused: {error}"));
        self.refuse(&format!("the SFTP stream cannot be followed ({error})"))
            .await;
        Flow::Stop
    }

    /// Tells the client why its command does not run, as a shell would: stderr, an exit
    /// status, the channel closed.
    async fn refuse(&self, why: &str) {
        refuse_on(&self.handle, self.id, why, REFUSED_EXIT).await;
    }
}

/// Whether the client half goes on.
enum Flow {
    Go,
    Stop,
}

/// Writes `gatehouse: WHY` on the channel's stderr, the exit status, EOF and close.
pub(crate) async fn refuse_on(handle: &server::Handle, id: ChannelId, why: &str, status: u32) {
    let line = Bytes::from(format!("gatehouse: {why}\r\n"));
    let _ = handle.extended_data(id, 1, line).await;
    let _ = handle.exit_status_request(id, status).await;
    let _ = handle.eof(id).await;
    let _ = handle.close(id).await;
}

/// A channel whose host cannot be reached: its command is recorded as not run and the client
/// is told why on stderr, with OpenSSH's exit status for connection failures.
async fn unavailable(
    core: Arc<Session>,
    mut client: ChannelReadHalf,
    client_tx: ChannelWriteHalf<Msg>,
    handle: server::Handle,
    why: &str,
) {
    let id = client_tx.id();
    let reason = core.connection().unavailable(why);
    while let Some(msg) = client.wait().await {
        let command = match msg {
            ChannelMsg::Exec { command, .. } => Command::classed(
                String::from_utf8_lossy(&command).into_owned(),
                StatementClass::Exec,
            ),
            ChannelMsg::RequestShell { .. } => Command::classed("shell", StatementClass::Shell),
            ChannelMsg::RequestSubsystem { .. } => {
                Command::classed("sftp session", StatementClass::Sftp)
            }
            ChannelMsg::Close | ChannelMsg::Eof => break,
            _ => continue,
        };
        if let Ok(admitted) = core.admit(command).wait().await {
            core.finish(
                admitted,
                Outcome::NotExecuted {
                    reason: reason.clone(),
                },
            );
        }
        refuse_on(&handle, id, &reason, UNAVAILABLE_EXIT).await;
        break;
    }
    drop(client_tx);
}
