//! The client side of one SSH connection: russh calls this handler for authentication and for
//! every channel the client opens. Authentication opens the core session; each session channel
//! gets a channel of its own on the gateway's connection to the host, relayed by
//! [`crate::relay`].

use std::net::SocketAddr;
use std::sync::Arc;

use gatehouse_core::{Credential, Gateway, OpenRequest, Protocol, Refusal, Session};
use russh::keys::HashAlg;
use russh::server::{self, Auth, ChannelOpenHandle, Msg};
use russh::{Channel, ChannelId, ChannelOpenFailure, MethodKind, MethodSet};

use crate::conn::ConnState;
use crate::error::SshError;
use crate::upstream::{self, Upstream};

/// How much of a password OpenSSH's client sends: it reads the prompt into 1024 bytes with
/// the terminating NUL, so a longer password (a long JWT) arrives cut to this length.
const OPENSSH_PASSWORD_KEPT: usize = 1023;

/// The russh server handler of one client connection.
pub(crate) struct ClientHandler {
    gateway: Gateway,
    peer: SocketAddr,
    state: Arc<ConnState>,
    session: Option<Arc<Session>>,
    upstream: Option<Result<Arc<Upstream>, String>>,
}

impl ClientHandler {
    pub(crate) fn new(gateway: Gateway, peer: SocketAddr, state: Arc<ConnState>) -> Self {
        Self {
            gateway,
            peer,
            state,
            session: None,
            upstream: None,
        }
    }

    /// The methods a client may try next: a token as the password, or a registered key.
    fn methods() -> MethodSet {
        MethodSet::from(&[MethodKind::Password, MethodKind::PublicKey][..])
    }

    fn reject() -> Auth {
        Auth::Reject {
            proceed_with_methods: Some(Self::methods()),
            partial_success: false,
        }
    }

    /// Opens the core session for the connection the client named as its user.
    async fn open(&mut self, user: &str, credential: Credential<'_>) -> Auth {
        let opened = self
            .gateway
            .open(OpenRequest {
                connection: user,
                credential,
                claimed_user: user,
                settings: &[],
                client_addr: self.peer,
                protocol: Protocol::Ssh,
            })
            .await;
        match opened {
            Ok(session) => {
                let session = Arc::new(session);
                self.state.set_session(session.clone());
                self.session = Some(session);
                Auth::Accept
            }
            Err(refusal) => {
                match &refusal {
                    Refusal::StoreUnavailable(e) => {
                        tracing::error!(peer = %self.peer, error = %e, "ssh login refused: store unavailable");
                    }
                    other => {
                        tracing::info!(peer = %self.peer, user, reason = %other, "ssh login refused")
                    }
                }
                Self::reject()
            }
        }
    }

    /// The gateway's connection to the host, made at the first channel (so a client that only
    /// authenticates costs the host nothing) and shared by the connection's channels.
    async fn upstream(&mut self, session: &Session) -> Result<Arc<Upstream>, String> {
        if self.upstream.is_none() {
            let connected = upstream::connect(session.connection(), self.state.server_counter())
                .await
                .map(Arc::new)
                .map_err(|e| e.to_string());
            if let Err(why) = &connected {
                tracing::warn!(connection = %session.connection().name, error = %why, "ssh upstream unavailable");
                session.note(format!("upstream unavailable: {why}"));
            }
            self.upstream = Some(connected);
        }
        match &self.upstream {
            Some(Ok(u)) => Ok(u.clone()),
            Some(Err(why)) => Err(why.clone()),
            None => Err("no upstream".into()),
        }
    }
}

impl server::Handler for ClientHandler {
    type Error = SshError;

    async fn auth_none(&mut self, _user: &str) -> Result<Auth, Self::Error> {
        Ok(Self::reject())
    }

    async fn auth_password(&mut self, user: &str, password: &str) -> Result<Auth, Self::Error> {
        let auth = self.open(user, Credential::Token(password)).await;
        if password.len() == OPENSSH_PASSWORD_KEPT && !matches!(auth, Auth::Accept) {
            tracing::info!(peer = %self.peer, user,
                "the refused password is 1023 bytes long, all OpenSSH sends of a longer one: \
                 a JWT that long cannot be an OpenSSH password; use a registered key \
                 (`gatehouse key add`) or a gateway token");
        }
        Ok(auth)
    }

    async fn auth_publickey_offered(
        &mut self,
        _user: &str,
        offer: server::PublicKeyOffer<'_>,
    ) -> Result<Auth, Self::Error> {
        // Only a registered key is worth a signature; the other keys an agent tries are
        // declined quietly (a registered but revoked key goes on, so its refusal is recorded).
        let fingerprint = offer.public_key.fingerprint(HashAlg::Sha256).to_string();
        if self.gateway.knows_key(&fingerprint).await {
            Ok(Auth::Accept)
        } else {
            Ok(Self::reject())
        }
    }

    async fn auth_publickey(
        &mut self,
        user: &str,
        key: server::VerifiedPublicKey<'_>,
    ) -> Result<Auth, Self::Error> {
        let fingerprint = key.public_key.fingerprint(HashAlg::Sha256).to_string();
        Ok(self
            .open(
                user,
                Credential::PublicKey {
                    fingerprint: &fingerprint,
                },
            )
            .await)
    }

    async fn auth_succeeded(&mut self, session: &mut server::Session) -> Result<(), Self::Error> {
        // A revoked token or a shutdown ends the connection at once, whatever it is doing.
        if let Some(core) = self.session.clone() {
            let handle = session.handle();
            let state = self.state.clone();
            self.state.set_watcher(tokio::spawn(async move {
                let reason = core.ended().await;
                state.set_end_reason(reason.to_string());
                let _ = handle
                    .disconnect(
                        russh::Disconnect::ByApplication,
                        format!("gatehouse: session ended ({reason})"),
                        String::new(),
                    )
                    .await;
            }));
        }
        Ok(())
    }

    async fn channel_open_session(
        &mut self,
        channel: Channel<Msg>,
        reply: ChannelOpenHandle,
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        let Some(core) = self.session.clone() else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        let upstream = match self.upstream(&core).await {
            Ok(up) => up
                .handle
                .channel_open_session()
                .await
                .map_err(|e| format!("the server refused a session channel: {e}")),
            Err(why) => Err(why),
        };
        reply.accept().await;
        let task = crate::relay::spawn(core, channel, upstream, session.handle());
        self.state.add_task(task);
        Ok(())
    }

    async fn channel_open_direct_tcpip(
        &mut self,
        channel: Channel<Msg>,
        host_to_connect: &str,
        port_to_connect: u32,
        originator_address: &str,
        originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        let Some(core) = self.session.clone() else {
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        };
        if !core.connection().port_forwarding {
            core.note(format!(
                "tunnel to {host_to_connect}:{port_to_connect} refused: port forwarding is off for this connection"
            ));
            reply
                .reject(ChannelOpenFailure::AdministrativelyProhibited)
                .await;
            return Ok(());
        }
        let upstream = match self.upstream(&core).await {
            Ok(up) => up,
            Err(_) => {
                reply.reject(ChannelOpenFailure::ConnectFailed).await;
                return Ok(());
            }
        };
        let tunnel = crate::tunnel::Tunnel {
            host: host_to_connect.to_owned(),
            port: port_to_connect,
            from: format!("{originator_address}:{originator_port}"),
        };
        match crate::tunnel::open(&core, &upstream, &tunnel).await {
            Ok((admitted, up_channel)) => {
                reply.accept().await;
                let task = crate::tunnel::spawn(core, channel, up_channel, admitted, tunnel);
                self.state.add_task(task);
            }
            Err(failure) => reply.reject(failure).await,
        }
        Ok(())
    }

    async fn channel_open_x11(
        &mut self,
        _channel: Channel<Msg>,
        _originator_address: &str,
        _originator_port: u32,
        reply: ChannelOpenHandle,
        _session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        reply
            .reject(ChannelOpenFailure::AdministrativelyProhibited)
            .await;
        Ok(())
    }

    async fn pty_request(
        &mut self,
        channel: ChannelId,
        _term: &str,
        _col_width: u32,
        _row_height: u32,
        _pix_width: u32,
        _pix_height: u32,
        _modes: &[(russh::Pty, u32)],
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        // The request itself reaches the relay through the channel, in order; russh knows
        // whether the client wants this reply.
        session.channel_success(channel)?;
        Ok(())
    }

    async fn env_request(
        &mut self,
        channel: ChannelId,
        variable_name: &str,
        variable_value: &str,
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        // The relay records the request and passes the allowed ones to the host.
        if crate::env::allowed(variable_name, variable_value) {
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    async fn shell_request(
        &mut self,
        channel: ChannelId,
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        session.channel_success(channel)?;
        Ok(())
    }

    async fn exec_request(
        &mut self,
        channel: ChannelId,
        _data: &[u8],
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        // Accepted here; the relay decides (a refused command gets a line on stderr and a
        // non-zero exit status, as a shell would answer).
        session.channel_success(channel)?;
        Ok(())
    }

    async fn subsystem_request(
        &mut self,
        channel: ChannelId,
        name: &str,
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        if name == "sftp" {
            session.channel_success(channel)?;
        } else {
            session.channel_failure(channel)?;
        }
        Ok(())
    }

    async fn x11_request(
        &mut self,
        channel: ChannelId,
        _single_connection: bool,
        _x11_auth_protocol: &str,
        _x11_auth_cookie: &str,
        _x11_screen_number: u32,
        session: &mut server::Session,
    ) -> Result<(), Self::Error> {
        session.channel_failure(channel)?;
        Ok(())
    }

    async fn agent_request(
        &mut self,
        _channel: ChannelId,
        _session: &mut server::Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }

    async fn tcpip_forward(
        &mut self,
        _address: &str,
        _port: &mut u32,
        _session: &mut server::Session,
    ) -> Result<bool, Self::Error> {
        Ok(false)
    }
}
