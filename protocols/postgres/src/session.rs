//! A PostgreSQL client session, phase by phase: startup → authenticate → connect upstream →
//! relay. Each phase consumes the previous one, so a session cannot relay before the core has
//! opened it and the upstream has accepted the gateway's login.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use gatehouse_core::{Credential, Gateway, OpenRequest, Protocol, Refusal, Session};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use crate::cancel::{CancelKeyGuard, CancelRegistry};
use crate::error::PgError;
use crate::frame::{split_frame, MAX_PREAUTH_FRAME};
use crate::messages::{
    authentication, backend_key_data, error_response, frontend, terminate, Reader, Severity,
};
use crate::relay::{self, RelayEnd, RelayLimits, Traffic};
use crate::startup::{self, negotiate_protocol_version, ClientStart};
use crate::stream::PgStream;
use crate::upstream::{self, Upstream};

/// How long a client has for each login step unless configured (its startup packets, its
/// password): idle half-open connections must not pile up before anyone has authenticated.
pub const LOGIN_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// How a PostgreSQL listener treats its clients.
#[derive(Clone)]
pub struct PgConfig {
    /// Client-facing TLS; `None` answers SSLRequest with `N`.
    pub tls: Option<TlsAcceptor>,
    /// Whether a token may be sent without TLS (only on a loopback listener).
    pub allow_plaintext_tokens: bool,
    /// Frame size limits.
    pub limits: RelayLimits,
    /// How long a client has for its startup message, and again for its password.
    pub login_timeout: std::time::Duration,
}

/// The PostgreSQL wire of one gateway: shared by every connection of a listener.
#[derive(Clone)]
pub struct PgService {
    gateway: Gateway,
    cancels: CancelRegistry,
    config: Arc<PgConfig>,
}

impl PgService {
    /// A service for a listener.
    pub fn new(gateway: Gateway, config: PgConfig) -> Self {
        Self {
            gateway,
            cancels: CancelRegistry::default(),
            config: Arc::new(config),
        }
    }

    /// Serves one accepted connection to its end. Never panics on client or server input;
    /// every failure is told to the client as an ErrorResponse where the protocol allows.
    pub async fn handle(&self, tcp: TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let span = tracing::info_span!("pg", client = %peer, session = tracing::field::Empty);
        self.handle_inner(tcp, peer).instrument(span).await;
    }

    /// Tells a client the gateway will not take its connection now (a connection limit), as
    /// a server at its limit does: after the startup exchange (TLS included, so libpq shows
    /// the message), a FATAL ErrorResponse with SQLSTATE 53300, too_many_connections. A
    /// cancel request is still honoured: it frees the place of a query that runs too long.
    pub async fn refuse_busy(&self, tcp: TcpStream, message: &str) {
        let start = tokio::time::timeout(
            self.config
                .login_timeout
                .min(std::time::Duration::from_secs(5)),
            startup::negotiate(tcp, self.config.tls.as_ref()),
        )
        .await;
        let mut stream = match start {
            Ok(Ok(ClientStart::Cancel { pid, secret })) => {
                self.cancels.cancel(pid, secret).await;
                return;
            }
            Ok(Ok(ClientStart::Session { stream, .. })) => stream,
            Ok(Err((_, Some(stream)))) => stream,
            Ok(Err((_, None))) | Err(_) => return,
        };
        fatal(
            &mut stream,
            "53300",
            message,
            Some("try again later, or ask the gateway operator to raise [limits]"),
        )
        .await;
    }

    async fn handle_inner(&self, tcp: TcpStream, peer: SocketAddr) {
        let start = match tokio::time::timeout(
            self.config.login_timeout,
            startup::negotiate(tcp, self.config.tls.as_ref()),
        )
        .await
        {
            Ok(start) => start,
            Err(_) => {
                tracing::info!("no startup message in time; connection dropped");
                return;
            }
        };
        let connected = match start {
            Ok(ClientStart::Cancel { pid, secret }) => {
                self.cancels.cancel(pid, secret).await;
                return;
            }
            Ok(ClientStart::Session {
                stream,
                params,
                leftover,
                negotiate,
            }) => Connected {
                stream,
                params,
                leftover,
                negotiate,
                peer,
            },
            Err((e, stream)) => {
                tracing::info!(error = %e, "startup failed");
                if let Some(mut stream) = stream {
                    fatal(&mut stream, e.sqlstate(), &e.to_string(), None).await;
                }
                return;
            }
        };
        let Some(authenticated) = connected.authenticate(self).await else {
            return;
        };
        tracing::Span::current().record("session", authenticated.session.id().to_string());
        let Some(ready) = authenticated.connect_upstream(self).await else {
            return;
        };
        ready.relay(self.config.limits).await;
    }
}

/// Startup done: the client's stream and parameters, not yet authenticated.
struct Connected {
    stream: PgStream,
    params: Vec<(String, String)>,
    leftover: BytesMut,
    negotiate: Option<(i32, Vec<String>)>,
    peer: SocketAddr,
}

/// The core opened a session for the client's token.
struct Authenticated {
    stream: PgStream,
    params: Vec<(String, String)>,
    leftover: BytesMut,
    session: Session,
}

/// The upstream accepted the gateway's login; the client has been told it may begin.
struct Ready {
    client: PgStream,
    client_buf: BytesMut,
    upstream: Upstream,
    session: Session,
    _cancel_key: Option<CancelKeyGuard>,
}

impl Connected {
    fn param(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    async fn authenticate(mut self, service: &PgService) -> Option<Authenticated> {
        if !self.stream.is_tls() && !service.config.allow_plaintext_tokens {
            fatal(
                &mut self.stream,
                "28000",
                "this gateway listener accepts tokens only over TLS",
                Some("connect with sslmode=require"),
            )
            .await;
            return None;
        }
        let user = self.param("user").unwrap_or_default().to_owned();
        let connection = self
            .param("database")
            .filter(|d| !d.is_empty())
            .unwrap_or(&user)
            .to_owned();
        if self
            .param("replication")
            .is_some_and(|r| !matches!(r, "false" | "0" | "off" | "no"))
        {
            fatal(
                &mut self.stream,
                "28000",
                "replication connections are not allowed through the gateway",
                None,
            )
            .await;
            return None;
        }
        let mut hello = BytesMut::new();
        if let Some((minor, unsupported)) = &self.negotiate {
            hello.put_slice(&negotiate_protocol_version(*minor, unsupported));
        }
        hello.put_slice(&authentication(3));
        if let Err(e) = write_flush(&mut self.stream, &hello).await {
            tracing::info!(error = %e, "client went away before authenticating");
            return None;
        }
        let password = read_password(&mut self.stream, &mut self.leftover);
        let token = match tokio::time::timeout(service.config.login_timeout, password)
            .await
            .unwrap_or_else(|_| Err(PgError::Protocol("no password message in time".into())))
        {
            Ok(t) => t,
            Err(e) => {
                tracing::info!(error = %e, "no password message");
                fatal(&mut self.stream, e.sqlstate(), &e.to_string(), None).await;
                return None;
            }
        };
        let settings = crate::reading::recorded(&self.params);
        let request = OpenRequest {
            connection: &connection,
            credential: Credential::Token(&token),
            claimed_user: &user,
            settings: &settings,
            client_addr: self.peer,
            protocol: Protocol::Postgres,
        };
        match service.gateway.open(request).await {
            Ok(session) => Some(Authenticated {
                stream: self.stream,
                params: self.params,
                leftover: self.leftover,
                session,
            }),
            Err(refusal) => {
                tracing::info!(%refusal, connection, "session refused");
                let (code, hint) = match &refusal {
                    Refusal::BadToken => (
                        "28P01",
                        Some("use a token from `gatehouse token create`, or a JWT from your identity provider, as the password"),
                    ),
                    Refusal::Forbidden(_) => (
                        "28000",
                        Some("the connection name is the database name; ask an administrator for access"),
                    ),
                    Refusal::StoreUnavailable(_) => ("58000", None),
                };
                fatal(&mut self.stream, code, &refusal.to_string(), hint).await;
                None
            }
        }
    }
}

impl Authenticated {
    async fn connect_upstream(mut self, service: &PgService) -> Option<Ready> {
        if let Err(e) = crate::reading::check_startup(&self.params, self.session.connection()) {
            tracing::info!(error = %e, "startup parameters refused");
            fatal(&mut self.stream, e.sqlstate(), &e.to_string(), None).await;
            self.session.close(&format!("refused: {e}"), 0, 0).await;
            return None;
        }
        let upstream = match upstream::connect(self.session.connection(), &self.params).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "upstream unavailable");
                let message = self.session.connection().unavailable(&e);
                fatal(&mut self.stream, "08006", &message, None).await;
                self.session
                    .close(&format!("upstream unavailable: {e}"), 0, 0)
                    .await;
                return None;
            }
        };
        for frame in &upstream.greeting {
            if frame.tag() != crate::messages::backend::PARAMETER_STATUS {
                continue;
            }
            let mut r = crate::messages::Reader::new(frame.body());
            let checked = match (r.cstr(), r.cstr()) {
                (Ok(name), Ok(value)) => crate::reading::setting(name, value),
                _ => Ok(()),
            };
            if let Err(e) = checked {
                tracing::warn!(error = %e, "upstream session reads SQL differently");
                fatal(&mut self.stream, e.sqlstate(), &e.to_string(), None).await;
                self.session.close(&format!("refused: {e}"), 0, 0).await;
                return None;
            }
        }
        let cancel_key = upstream.key.and_then(|(pid, secret)| {
            service
                .cancels
                .register(&self.session.connection().address, pid, secret)
        });
        let mut hello = BytesMut::new();
        hello.put_slice(&authentication(0));
        for frame in &upstream.greeting {
            hello.put_slice(frame.bytes());
        }
        if let Some(guard) = &cancel_key {
            let (pid, secret) = guard.key();
            hello.put_slice(&backend_key_data(pid, secret));
        }
        hello.put_slice(upstream.ready.bytes());
        if let Err(e) = write_flush(&mut self.stream, &hello).await {
            self.session
                .close(&format!("client went away: {e}"), 0, 0)
                .await;
            return None;
        }
        tracing::info!(
            identity = %self.session.info().identity,
            connection = %self.session.connection().name,
            "session open"
        );
        Some(Ready {
            client: self.stream,
            client_buf: self.leftover,
            upstream,
            session: self.session,
            _cancel_key: cancel_key,
        })
    }
}

impl Ready {
    async fn relay(self, limits: RelayLimits) {
        let traffic = Traffic::default();
        let encoding = self.upstream.client_encoding();
        let (client_rd, mut client_wr) = tokio::io::split(self.client);
        let (server_rd, mut server_wr) = tokio::io::split(self.upstream.stream);
        let cancelled = self
            ._cancel_key
            .as_ref()
            .map(|k| k.held_cancel())
            .unwrap_or_default();
        let end = relay::run(
            &self.session,
            (client_rd, &mut client_wr, self.client_buf),
            (server_rd, &mut server_wr, self.upstream.leftover),
            limits,
            &traffic,
            &cancelled,
            encoding,
        )
        .await;
        let reason = match &end {
            RelayEnd::ClientTerminated => "client terminated".to_owned(),
            RelayEnd::ClientClosed => {
                let _ = server_wr.write_all(&terminate()).await;
                "client closed the connection".to_owned()
            }
            // The client has the server's FATAL error already (relayed like any message); the
            // connection now closes, as it would direct.
            RelayEnd::ServerClosed(Some(fatal)) => format!(
                "server ended the session: {} {}: {}",
                fatal.severity, fatal.code, fatal.message
            ),
            RelayEnd::ServerClosed(None) => "server closed the connection".to_owned(),
            RelayEnd::Ended(why) => {
                let frame =
                    error_response(Severity::Fatal, "57P01", &why.message(), Some(why.hint()));
                let _ = client_wr.write_all(&frame).await;
                let _ = server_wr.write_all(&terminate()).await;
                why.to_string()
            }
            RelayEnd::Failed(e) => {
                let frame = error_response(Severity::Fatal, e.sqlstate(), &e.to_string(), None);
                let _ = client_wr.write_all(&frame).await;
                let _ = server_wr.write_all(&terminate()).await;
                format!("error: {e}")
            }
        };
        let _ = client_wr.shutdown().await;
        let _ = server_wr.shutdown().await;
        tracing::info!(reason, "session closed");
        self.session
            .close(
                &reason,
                traffic.from_client.load(Ordering::Relaxed),
                traffic.from_server.load(Ordering::Relaxed),
            )
            .await;
    }
}

async fn read_password(stream: &mut PgStream, buf: &mut BytesMut) -> Result<String, PgError> {
    loop {
        if let Some(frame) = split_frame(buf, MAX_PREAUTH_FRAME)? {
            if frame.tag() != frontend::PASSWORD {
                return Err(PgError::Protocol(format!(
                    "expected a password message, got {:?}",
                    char::from(frame.tag())
                )));
            }
            return Ok(Reader::new(frame.body()).cstr()?.to_owned());
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(PgError::Closed("client"));
        }
    }
}

async fn write_flush(stream: &mut PgStream, bytes: &[u8]) -> std::io::Result<()> {
    stream.write_all(bytes).await?;
    stream.flush().await
}

/// Tells the client why the session ends, then closes the stream.
async fn fatal(stream: &mut PgStream, code: &str, message: &str, hint: Option<&str>) {
    let frame = error_response(Severity::Fatal, code, message, hint);
    let _ = stream.write_all(&frame).await;
    let _ = stream.flush().await;
    let _ = stream.shutdown().await;
}
