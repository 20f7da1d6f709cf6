//! The host → client half of a session channel: output relayed (masked where the session's
//! detectors say), exit status and signals passed on, and the channel's command finished in
//! the audit trail with how it ended.

use std::sync::Arc;

use bytes::Bytes;
use gatehouse_core::mask::MaskCounts;
use gatehouse_core::{Admitted, Outcome, Session};
use russh::server::{self, Msg};
use russh::{ChannelId, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::mpsc;

use crate::sftp::Framer;
use crate::sftp_link::SftpLink;
use gatehouse_core::store::TerminalEvent;

/// Longest stderr line kept as a failed command's message.
const MAX_ERROR_LINE: usize = 240;

/// What a channel became, told by the client half before it forwards the request.
pub(crate) enum Mode {
    /// An admitted exec, shell or SFTP session: finished when the channel ends.
    Command {
        admitted: Admitted,
        /// Whether its output goes into the channel's terminal cast.
        recording: bool,
    },
    /// An SFTP channel: the host's bytes are followed packet by packet.
    Sftp(SftpLink),
    /// A packet the gateway answers the client with itself (a refused SFTP operation), written
    /// between whole packets of the host's.
    Reply(Bytes),
}

impl Mode {
    pub(crate) fn command(admitted: Admitted, recording: bool) -> Self {
        Self::Command {
            admitted,
            recording,
        }
    }
}

/// How the host ended the channel's command.
#[derive(Default)]
struct Ending {
    exit_status: Option<u32>,
    signal: Option<String>,
    refused_by_host: bool,
    last_error_line: String,
    bytes_out: u64,
    bytes_err: u64,
}

/// The host → client half of one channel.
struct HostHalf {
    core: Arc<Session>,
    client: ChannelWriteHalf<Msg>,
    handle: server::Handle,
    id: ChannelId,
    command: Option<Admitted>,
    ending: Ending,
    counts: MaskCounts,
    sftp: Option<(Framer, SftpLink)>,
    recording: bool,
}

/// Relays the host's side of one channel until it closes.
pub(crate) async fn run(
    core: Arc<Session>,
    mut up: ChannelReadHalf,
    client: ChannelWriteHalf<Msg>,
    handle: server::Handle,
    mut modes: mpsc::Receiver<Mode>,
) {
    let mut half = HostHalf {
        id: client.id(),
        core,
        client,
        handle,
        command: None,
        ending: Ending::default(),
        counts: MaskCounts::new(),
        sftp: None,
        recording: false,
    };
    let mut modes_open = true;
    loop {
        let go = tokio::select! {
            biased;
            mode = modes.recv(), if modes_open => match mode {
                Some(mode) => half.on_mode(mode).await,
                None => {
                    modes_open = false;
                    Ok(true)
                }
            },
            msg = up.wait() => match msg {
                Some(msg) => half.on_message(msg).await,
                None => Ok(false),
            },
        };
        if !matches!(go, Ok(true)) {
            break;
        }
    }
    half.end().await;
}

impl HostHalf {
    async fn on_mode(&mut self, mode: Mode) -> Result<bool, russh::Error> {
        match mode {
            Mode::Command {
                admitted,
                recording,
            } => {
                self.command = Some(admitted);
                self.recording = recording;
            }
            Mode::Sftp(link) => self.sftp = Some((Framer::new(), link)),
            Mode::Reply(packet) => self.client.data_bytes(packet).await?,
        }
        Ok(true)
    }

    /// Handles one message from the host; `false` once the channel is closed.
    async fn on_message(&mut self, msg: ChannelMsg) -> Result<bool, russh::Error> {
        match msg {
            ChannelMsg::Data { data } if self.sftp.is_some() => {
                self.ending.bytes_out += data.len() as u64;
                return self.sftp_data(&data).await;
            }
            ChannelMsg::Data { data } => {
                self.ending.bytes_out += data.len() as u64;
                let data = mask(&self.core, data, &mut self.counts, "output");
                self.record(&data);
                self.client.data_bytes(data).await?;
            }
            ChannelMsg::ExtendedData { data, ext } => {
                self.ending.bytes_err += data.len() as u64;
                let data = mask(&self.core, data, &mut self.counts, "stderr");
                self.ending.keep_error_line(&data);
                self.record(&data);
                self.client.extended_data_bytes(ext, data).await?;
            }
            ChannelMsg::Eof => self.client.eof().await?,
            ChannelMsg::ExitStatus { exit_status } => {
                self.ending.exit_status = Some(exit_status);
                self.client.exit_status(exit_status).await?;
            }
            ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                error_message,
                lang_tag,
            } => {
                self.ending.signal = Some(format!("{signal_name:?}"));
                let _ = self
                    .handle
                    .exit_signal_request(self.id, signal_name, core_dumped, error_message, lang_tag)
                    .await;
            }
            // The host refused the exec, shell or subsystem the client half forwarded (the
            // only requests sent wanting a reply).
            ChannelMsg::Failure => {
                self.ending.refused_by_host = true;
                crate::relay::refuse_on(
                    &self.handle,
                    self.id,
                    "the server refused to start this command",
                    crate::relay::UNAVAILABLE_EXIT,
                )
                .await;
                return Ok(false);
            }
            ChannelMsg::Close => return Ok(false),
            _ => {}
        }
        Ok(true)
    }

    /// The host's SFTP bytes: followed packet by packet (operations finish on their answers)
    /// and forwarded as whole packets, so the gateway's own answers never split one.
    async fn sftp_data(&mut self, data: &[u8]) -> Result<bool, russh::Error> {
        let Some((framer, link)) = self.sftp.as_mut() else {
            return Ok(true);
        };
        framer.push(data);
        loop {
            let packet = match framer.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => return Ok(true),
                Err(e) => return Ok(self.sftp_broken(&e.to_string())),
            };
            if let Err(e) = link.response(&self.core, &packet) {
                return Ok(self.sftp_broken(&e.to_string()));
            }
            self.client.data_bytes(packet).await?;
        }
    }

    /// Adds output (as the client saw it) to the channel's terminal cast.
    fn record(&self, data: &Bytes) {
        if self.recording {
            self.core
                .terminal(TerminalEvent::output(self.id.into(), data.clone()));
        }
    }

    fn sftp_broken(&mut self, why: &str) -> bool {
        self.core
            .note(format!("sftp stream from the server refused: {why}"));
        false
    }

    /// The channel is over: the client is told, open SFTP operations and the channel's
    /// command are finished with how they ended.
    async fn end(mut self) {
        let _ = self.client.close().await;
        if let Some((_, link)) = self.sftp.take() {
            link.drain(&self.core);
        }
        if self.recording {
            let status = self.ending.status();
            self.core
                .terminal(TerminalEvent::end(self.id.into(), Some(status)));
        }
        if let Some(admitted) = self.command.take() {
            self.core.finish(
                admitted,
                self.ending.outcome(),
                0,
                None,
                self.counts.to_log(),
            );
        }
    }
}

/// The output with the session's detectors applied.
fn mask(core: &Session, data: Bytes, counts: &mut MaskCounts, what: &str) -> Bytes {
    let masker = core.masker();
    if !masker.has_detectors() {
        return data;
    }
    match masker.mask_bytes(&data, counts, what) {
        std::borrow::Cow::Borrowed(_) => data,
        std::borrow::Cow::Owned(masked) => Bytes::from(masked),
    }
}

impl Ending {
    /// Keeps the last non-empty line of stderr, cut short, as a failure's message.
    fn keep_error_line(&mut self, data: &[u8]) {
        let text = String::from_utf8_lossy(data);
        if let Some(line) = text.lines().rev().find(|l| !l.trim().is_empty()) {
            let mut line = line.trim().to_owned();
            if line.len() > MAX_ERROR_LINE {
                let mut cut = MAX_ERROR_LINE;
                while !line.is_char_boundary(cut) {
                    cut -= 1;
                }
                line.truncate(cut);
            }
            self.last_error_line = line;
        }
    }

    /// How the command ended, for the cast's end.
    fn status(&self) -> String {
        match (self.exit_status, &self.signal) {
            (_, Some(sig)) => format!("exit-signal {sig}"),
            (Some(n), None) => format!("exit-status {n}"),
            (None, None) => "closed".into(),
        }
    }

    fn outcome(&self) -> Outcome {
        let bytes = format!("{} bytes out, {} bytes err", self.bytes_out, self.bytes_err);
        if self.refused_by_host {
            return Outcome::Failed {
                code: "refused".into(),
                message: "the server refused to start it".into(),
            };
        }
        match (self.exit_status, &self.signal) {
            (Some(0), None) => Outcome::Completed {
                tag: format!("exit 0, {bytes}"),
            },
            (Some(n), None) => Outcome::Failed {
                code: format!("exit {n}"),
                message: if self.last_error_line.is_empty() {
                    bytes
                } else {
                    format!("{}; {bytes}", self.last_error_line)
                },
            },
            (_, Some(sig)) => Outcome::Failed {
                code: format!("signal {sig}"),
                message: bytes,
            },
            (None, None) => Outcome::Completed {
                tag: format!("closed without an exit status, {bytes}"),
            },
        }
    }
}
