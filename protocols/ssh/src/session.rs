//! The SSH listener's service: one russh server session per client connection, closed into
//! the audit trail when it ends.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gatehouse_core::Gateway;
use russh::keys::PrivateKey;
use russh::server;
use tokio::net::TcpStream;

use crate::conn::ConnState;
use crate::counted::Counted;
use crate::handler::ClientHandler;

/// How long a connection's channel tasks get to record their ends once the client is gone.
const CHANNEL_GRACE: Duration = Duration::from_secs(5);

/// The SSH wire of one gateway: shared by every connection of a listener.
#[derive(Clone)]
pub struct SshService {
    gateway: Gateway,
    config: Arc<server::Config>,
    login_timeout: Duration,
}

/// How long a client has from connecting to being authenticated.
pub const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

impl SshService {
    /// A service presenting `host_key` to clients.
    pub fn new(gateway: Gateway, host_key: PrivateKey) -> Self {
        let config = server::Config {
            server_id: russh::SshId::Standard(
                format!("SSH-2.0-Gatehouse_{}", env!("CARGO_PKG_VERSION")).into(),
            ),
            methods: russh::MethodSet::from(
                &[russh::MethodKind::Password, russh::MethodKind::PublicKey][..],
            ),
            keys: vec![host_key],
            auth_rejection_time: Duration::from_millis(300),
            // OpenSSH's first "none" probe is not a guess worth slowing down.
            auth_rejection_time_initial: Some(Duration::ZERO),
            max_auth_attempts: 6,
            window_size: crate::WINDOW_SIZE,
            maximum_packet_size: crate::MAX_PACKET,
            channel_buffer_size: crate::CHANNEL_BUFFER,
            inactivity_timeout: None,
            keepalive_interval: Some(Duration::from_secs(30)),
            nodelay: true,
            preferred: crate::preferred(true),
            ..server::Config::default()
        };
        Self {
            gateway,
            config: Arc::new(config),
            login_timeout: LOGIN_TIMEOUT,
        }
    }

    /// The same service, giving clients `timeout` to connect and authenticate.
    pub fn with_login_timeout(mut self, timeout: Duration) -> Self {
        self.login_timeout = timeout;
        self
    }

    /// Serves one client connection to its end, then records the session's end.
    pub async fn handle(&self, tcp: TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let state = Arc::new(ConnState::default());
        let handler = ClientHandler::new(self.gateway.clone(), peer, state.clone());
        let stream = Counted::new(tcp, state.client_counter());
        let served = async {
            match server::run_stream(self.config.clone(), stream, handler).await {
                Ok(running) => running.await,
                Err(e) => Err(e),
            }
        };
        // A client gets LOGIN_TIMEOUT to finish the key exchange and authenticate; one that
        // holds a connection open without doing so is dropped.
        let login = async {
            tokio::time::sleep(self.login_timeout).await;
            if state.authenticated() {
                std::future::pending::<()>().await;
            }
        };
        let ended = tokio::select! {
            ended = served => ended,
            () = login => {
                tracing::info!(%peer, "ssh client did not authenticate in time; connection dropped");
                Ok(())
            }
        };
        state.stop_watcher().await;
        let Some(session) = state.take_session() else {
            // Never authenticated: the refusal is already recorded by the core.
            return;
        };
        // The client is gone: each channel task records its command's end, then lets go.
        for mut task in state.take_tasks() {
            if tokio::time::timeout(CHANNEL_GRACE, &mut task)
                .await
                .is_err()
            {
                // A host that no longer answers: the channel's command keeps an unknown
                // outcome, and the session is closed all the same.
                task.abort();
                let _ = task.await;
            }
        }
        let reason = state.end_reason().unwrap_or_else(|| match &ended {
            Ok(()) => "client closed the connection".into(),
            // Many clients (paramiko among them) just close the socket.
            Err(e) if left_without_goodbye(e) => {
                "client closed the connection (without a disconnect message)".into()
            }
            Err(e) => format!("connection failed: {e}"),
        });
        let (from_client, from_server) = state.bytes();
        match Arc::try_unwrap(session) {
            Ok(session) => session.close(&reason, from_client, from_server).await,
            Err(_) => {
                tracing::error!(%peer, "ssh session still in use at its end; its end is not recorded")
            }
        }
    }
}

/// Whether a session's error is only the client closing its socket without SSH's goodbye.
fn left_without_goodbye(e: &crate::SshError) -> bool {
    use std::io::ErrorKind;
    let io = match e {
        crate::SshError::Io(io) => Some(io),
        crate::SshError::Protocol(russh::Error::IO(io)) => Some(io),
        crate::SshError::Protocol(russh::Error::Disconnect) => return true,
        _ => None,
    };
    io.is_some_and(|io| {
        matches!(
            io.kind(),
            ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
        )
    })
}
