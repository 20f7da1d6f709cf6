//! TCP tunnels (direct-tcpip), only on connections that allow them: each is a command in the
//! audit trail with its destination, and its bytes each way when it closes. What flows through
//! a tunnel is not recorded (it is opaque TCP), which the README says.

use std::sync::Arc;

use gatehouse_core::{Admitted, Command, Outcome, Session, StatementClass};
use russh::server::Msg;
use russh::{client, Channel, ChannelMsg, ChannelOpenFailure};
use tokio::task::JoinHandle;

use crate::upstream::Upstream;

/// Where a client asked a tunnel to go.
pub(crate) struct Tunnel {
    pub host: String,
    pub port: u32,
    pub from: String,
}

/// Admits a tunnel and opens it on the host; the failure is what the client is told.
pub(crate) async fn open(
    core: &Session,
    upstream: &Upstream,
    tunnel: &Tunnel,
) -> Result<(Admitted, Channel<client::Msg>), ChannelOpenFailure> {
    let text = format!(
        "tunnel to {}:{} from {}",
        tunnel.host, tunnel.port, tunnel.from
    );
    let admitted = core
        .admit(Command::classed(text, StatementClass::Tunnel))
        .wait()
        .await
        .map_err(|_| ChannelOpenFailure::AdministrativelyProhibited)?;
    let (from_addr, from_port) = tunnel
        .from
        .rsplit_once(':')
        .map(|(a, p)| (a.to_owned(), p.parse().unwrap_or(0)))
        .unwrap_or_default();
    match upstream
        .handle
        .channel_open_direct_tcpip(tunnel.host.clone(), tunnel.port, from_addr, from_port)
        .await
    {
        Ok(channel) => Ok((admitted, channel)),
        Err(e) => {
            core.finish(
                admitted,
                Outcome::Failed {
                    code: "connect-failed".into(),
                    message: e.to_string(),
                },
            );
            Err(ChannelOpenFailure::ConnectFailed)
        }
    }
}

/// Copies a tunnel's bytes both ways until either side closes, then finishes its entry.
pub(crate) fn spawn(
    core: Arc<Session>,
    channel: Channel<Msg>,
    upstream: Channel<client::Msg>,
    admitted: Admitted,
    tunnel: Tunnel,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        let (mut client_rx, client_tx) = channel.split();
        let (mut up_rx, up_tx) = upstream.split();
        let (mut sent, mut received) = (0u64, 0u64);
        // Either side's close ends the tunnel: russh forgets a channel once it has sent its
        // own close, so the other side's answering close is never seen.
        loop {
            tokio::select! {
                msg = client_rx.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        sent += data.len() as u64;
                        if up_tx.data_bytes(data).await.is_err() {
                            break;
                        }
                    }
                    Some(ChannelMsg::Eof) => {
                        let _ = up_tx.eof().await;
                    }
                    Some(ChannelMsg::Close) | None => break,
                    Some(_) => {}
                },
                msg = up_rx.wait() => match msg {
                    Some(ChannelMsg::Data { data }) => {
                        received += data.len() as u64;
                        if client_tx.data_bytes(data).await.is_err() {
                            break;
                        }
                    }
                    Some(ChannelMsg::Eof) => {
                        let _ = client_tx.eof().await;
                    }
                    Some(ChannelMsg::Close) | None => break,
                    Some(_) => {}
                },
            }
        }
        let _ = up_tx.close().await;
        let _ = client_tx.close().await;
        core.finish(
            admitted,
            Outcome::Completed {
                tag: format!(
                    "tunnel to {}:{} closed, {sent} bytes sent, {received} bytes received",
                    tunnel.host, tunnel.port
                ),
            },
        );
    })
}
