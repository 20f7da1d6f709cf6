//! The host → client half of a session channel: output relayed (masked where the session's
//! detectors say), exit status and signals passed on, and the channel's command finished in
//! the audit trail with how it ended.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gatehouse_core::{Admitted, Outcome, Session};
use russh::server::{self, Msg};
use russh::{ChannelId, ChannelMsg, ChannelReadHalf, ChannelWriteHalf};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::output_mask::OutputMasker;
use crate::relay::Ends;

use crate::scp_stream::ScpWatch;
use crate::sftp::Framer;
use crate::sftp_link::SftpLink;
use gatehouse_core::events::TerminalEvent;
use gatehouse_core::files::FileDirection;

/// How much of the last output line is looked at for a password prompt.
const PROMPT_TAIL: usize = 80;

/// Longest stderr line kept as a failed command's message.
const MAX_ERROR_LINE: usize = 240;

/// What a channel became, told by the client half before it forwards the request.
pub(crate) enum Mode {
    /// An admitted exec, shell or SFTP session: finished when the channel ends.
    Command {
        admitted: Admitted,
        /// Whether its output goes into the channel's terminal cast.
        recording: bool,
        /// Whether its output goes through the session's detectors (not for file transfers,
        /// which are relayed byte for byte).
        masking: bool,
    },
    /// An SFTP channel: the host's bytes are followed packet by packet.
    Sftp(SftpLink),
    /// An scp channel: its files go in the command's entry (and a download's are followed
    /// here, from the host's bytes).
    Scp(ScpWatch),
    /// A packet the gateway answers the client with itself (a refused SFTP operation), written
    /// between whole packets of the host's.
    Reply(Bytes),
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
    sftp: Option<(Framer, SftpLink)>,
    scp: Option<ScpWatch>,
    recording: bool,
    /// stdout and stderr through the detectors, across chunk boundaries.
    masks: Option<[OutputMasker; 2]>,
    /// When held output goes out if nothing more comes (a prompt that ends in digits).
    flush_at: Option<Instant>,
    /// Set while the host's last output looks like a password prompt: what the client types
    /// next is not evidence anyone should read.
    prompt: Arc<AtomicBool>,
    /// The recorded output through the evidence masker, never flushed early: the cast may
    /// lag, it may not hold a card number the client's echo showed one key at a time.
    record_mask: Option<OutputMasker>,
    ends: Ends,
}

/// How long held-back output waits for more before it is flushed.
const FLUSH_IDLE: Duration = Duration::from_millis(20);

/// Relays the host's side of one channel until it closes.
pub(crate) async fn run(
    core: Arc<Session>,
    mut up: ChannelReadHalf,
    client: ChannelWriteHalf<Msg>,
    handle: server::Handle,
    mut modes: mpsc::Receiver<Mode>,
    prompt: Arc<AtomicBool>,
    ends: Ends,
) {
    let client_ended = ends.client.clone();
    let mut half = HostHalf {
        id: client.id(),
        core,
        client,
        handle,
        command: None,
        ending: Ending::default(),
        sftp: None,
        scp: None,
        recording: false,
        masks: None,
        flush_at: None,
        prompt,
        record_mask: None,
        ends,
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
            () = sleep_until(half.flush_at), if half.flush_at.is_some() => half.flush().await,
            () = client_ended.notified() => Ok(false),
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
                masking,
            } => {
                self.command = Some(admitted);
                self.recording = recording;
                let evidence = self.core.evidence_masker();
                if recording && evidence.has_detectors() {
                    self.record_mask = Some(OutputMasker::new(evidence, "recording"));
                }
                let masker = self.core.masker();
                if masking && masker.has_detectors() {
                    self.masks = Some([
                        OutputMasker::new(masker, "output"),
                        OutputMasker::new(masker, "stderr"),
                    ]);
                }
            }
            Mode::Sftp(link) => self.sftp = Some((Framer::new(), link)),
            Mode::Scp(watch) => self.scp = Some(watch),
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
                if let Some(scp) = &self.scp {
                    if scp.direction() == FileDirection::Download {
                        scp.feed(&self.core, &data);
                    }
                }
                self.watch_prompt(&data);
                let data = self.mask(0, data);
                self.send(0, data).await?;
            }
            ChannelMsg::ExtendedData { data, ext } => {
                self.ending.bytes_err += data.len() as u64;
                let data = self.mask(1, data);
                self.ending.keep_error_line(&data);
                self.send(ext, data).await?;
            }
            ChannelMsg::Eof => {
                self.flush().await?;
                self.client.eof().await?
            }
            ChannelMsg::ExitStatus { exit_status } => {
                self.flush().await?;
                self.ending.exit_status = Some(exit_status);
                self.client.exit_status(exit_status).await?;
            }
            ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                error_message,
                lang_tag,
            } => {
                self.flush().await?;
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
        // Every whole packet of this chunk goes out in one write, so russh packs them into
        // full SSH packets (one SFTP DATA packet is 13 bytes more than an SSH packet holds:
        // sent alone, each would cost a second, nearly empty SSH packet).
        let mut run = BytesMut::new();
        loop {
            let packet = match framer.next_packet() {
                Ok(Some(p)) => p,
                Ok(None) => break,
                Err(e) => return Ok(self.sftp_broken(&e.to_string())),
            };
            if let Err(e) = link.response(&self.core, &packet) {
                return Ok(self.sftp_broken(&e.to_string()));
            }
            run.extend_from_slice(&packet);
        }
        if !run.is_empty() {
            self.client.data_bytes(run.freeze()).await?;
        }
        Ok(true)
    }

    /// Output through the stream's masker (which may hold back the start of a card number
    /// until the next chunk shows whether it is one).
    fn mask(&mut self, stream: usize, data: Bytes) -> Bytes {
        let Some(masks) = self.masks.as_mut() else {
            return data;
        };
        let Some(masker) = masks.get_mut(stream) else {
            return data;
        };
        let out = masker.push(data);
        if masks.iter().any(OutputMasker::is_holding) {
            self.flush_at = Some(Instant::now() + FLUSH_IDLE);
        } else {
            self.flush_at = None;
        }
        out
    }

    /// Sends output to the client (stream 0 is stdout, else the extended data type), and to
    /// the cast.
    async fn send(&mut self, ext: u32, data: Bytes) -> Result<(), russh::Error> {
        if data.is_empty() {
            return Ok(());
        }
        self.record(&data);
        if ext == 0 {
            self.client.data_bytes(data).await
        } else {
            self.client.extended_data_bytes(ext, data).await
        }
    }

    /// Sends what the maskers held back: the stream went quiet, or is ending.
    async fn flush(&mut self) -> Result<bool, russh::Error> {
        self.flush_at = None;
        let held = match self.masks.as_mut() {
            Some([out, err]) => [out.flush(), err.flush()],
            None => return Ok(true),
        };
        let [out, err] = held;
        self.send(0, out).await?;
        self.send(1, err).await?;
        Ok(true)
    }

    /// Notes whether the host's output ends in what looks like a password prompt.
    fn watch_prompt(&self, data: &[u8]) {
        let tail = match data.iter().rposition(|b| *b == b'\n') {
            Some(i) => &data[i + 1..],
            None => data,
        };
        let start = tail.len().saturating_sub(PROMPT_TAIL);
        let text = String::from_utf8_lossy(&tail[start..]).to_ascii_lowercase();
        let trimmed = text.trim_end();
        let asks = trimmed.ends_with(':')
            && [
                "password",
                "passphrase",
                "passcode",
                "pin",
                "token",
                "secret",
            ]
            .iter()
            .any(|w| trimmed.contains(w));
        self.prompt.store(asks, Ordering::Relaxed);
    }

    /// Adds output (as the client saw it) to the channel's terminal cast.
    fn record(&mut self, data: &Bytes) {
        if !self.recording {
            return;
        }
        let data = match self.record_mask.as_mut() {
            Some(mask) => mask.push(data.clone()),
            None => data.clone(),
        };
        if !data.is_empty() {
            self.core
                .terminal(TerminalEvent::output(self.id.into(), data));
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
        self.ends.host.notify_one();
        if let Some(held) = self.record_mask.as_mut().map(OutputMasker::flush) {
            if !held.is_empty() {
                self.core
                    .terminal(TerminalEvent::output(self.id.into(), held));
            }
        }
        if self.recording {
            let status = self.ending.status();
            self.core
                .terminal(TerminalEvent::end(self.id.into(), Some(status)));
        }
        let mut log = gatehouse_core::MaskLog::new();
        for masker in self.masks.iter_mut().flatten() {
            for (place, n) in masker.take_log() {
                *log.entry(place).or_default() += n;
            }
        }
        if let Some(admitted) = self.command.take() {
            let mut outcome = self.ending.outcome();
            if let Some(files) = self.scp.as_ref().map(ScpWatch::summary) {
                outcome = with_files(outcome, &files);
            }
            self.core.finish(
                admitted,
                gatehouse_core::CommandEnd::from(outcome).masked(log),
            );
        }
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
            // The client or the host went away mid-command (or the session was ended).
            (None, None) => Outcome::Failed {
                code: "no exit status".into(),
                message: format!("the channel closed before the command ended; {bytes}"),
            },
        }
    }
}

/// An scp command's outcome with its files (`upload x.txt 5 bytes, sha256 …`) appended.
fn with_files(outcome: Outcome, files: &str) -> Outcome {
    if files.is_empty() {
        return outcome;
    }
    match outcome {
        Outcome::Completed { tag } => Outcome::Completed {
            tag: format!("{tag}; {files}"),
        },
        Outcome::Failed { code, message } => Outcome::Failed {
            code,
            message: format!("{message}; {files}"),
        },
        other => other,
    }
}

/// Sleeps until `at` (never called without one: the select arm is off then).
async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}
