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

use crate::relay::Pty;

/// Longest stderr line kept as a failed command's message.
const MAX_ERROR_LINE: usize = 240;

/// What a channel became, told by the client half before it forwards the request.
pub(crate) enum Mode {
    /// An admitted exec, shell or SFTP session: finished when the channel ends.
    Command {
        admitted: Admitted,
        #[allow(dead_code)] // the terminal recording starts from it (next change)
        pty: Option<Pty>,
    },
}

impl Mode {
    pub(crate) fn command(admitted: Admitted, pty: Option<Pty>) -> Self {
        Self::Command { admitted, pty }
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

/// Relays the host's side of one channel until it closes.
pub(crate) async fn run(
    core: Arc<Session>,
    mut up: ChannelReadHalf,
    client: ChannelWriteHalf<Msg>,
    handle: server::Handle,
    mut modes: mpsc::Receiver<Mode>,
) {
    let id = client.id();
    let mut command: Option<Admitted> = None;
    let mut ending = Ending::default();
    let mut counts = MaskCounts::new();
    let mut modes_open = true;
    loop {
        tokio::select! {
            biased;
            mode = modes.recv(), if modes_open => match mode {
                Some(Mode::Command { admitted, .. }) => command = Some(admitted),
                None => modes_open = false,
            },
            msg = up.wait() => {
                let Some(msg) = msg else { break };
                match on_message(&core, msg, &client, &handle, id, &mut ending, &mut counts).await {
                    Ok(true) => {}
                    Ok(false) | Err(_) => break,
                }
            }
        }
    }
    let _ = client.close().await;
    if let Some(admitted) = command {
        core.finish(admitted, ending.outcome(), 0, None, counts.to_log());
    }
}

/// Handles one message from the host; `false` once the channel is closed.
async fn on_message(
    core: &Session,
    msg: ChannelMsg,
    client: &ChannelWriteHalf<Msg>,
    handle: &server::Handle,
    id: ChannelId,
    ending: &mut Ending,
    counts: &mut MaskCounts,
) -> Result<bool, russh::Error> {
    match msg {
        ChannelMsg::Data { data } => {
            ending.bytes_out += data.len() as u64;
            let data = mask(core, data, counts, "output");
            client.data_bytes(data).await?;
        }
        ChannelMsg::ExtendedData { data, ext } => {
            ending.bytes_err += data.len() as u64;
            let data = mask(core, data, counts, "stderr");
            ending.keep_error_line(&data);
            client.extended_data_bytes(ext, data).await?;
        }
        ChannelMsg::Eof => client.eof().await?,
        ChannelMsg::ExitStatus { exit_status } => {
            ending.exit_status = Some(exit_status);
            client.exit_status(exit_status).await?;
        }
        ChannelMsg::ExitSignal {
            signal_name,
            core_dumped,
            error_message,
            lang_tag,
        } => {
            ending.signal = Some(format!("{signal_name:?}"));
            let _ = handle
                .exit_signal_request(id, signal_name, core_dumped, error_message, lang_tag)
                .await;
        }
        // The host refused the exec, shell or subsystem the client half forwarded (the only
        // requests sent wanting a reply).
        ChannelMsg::Failure => {
            ending.refused_by_host = true;
            crate::relay::refuse_on(
                handle,
                id,
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
