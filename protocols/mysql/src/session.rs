//! A MySQL client session, phase by phase: the gateway's greeting → the client's
//! HandshakeResponse (after TLS, if it asked) → its token, taken in clear by switching it to
//! `mysql_clear_password` → the core opens a session → the gateway's own upstream login →
//! OK to the client → relay. Each phase consumes the previous one, so nothing is relayed
//! before the core has opened the session and the upstream has accepted the gateway.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use gatehouse_core::{Credential, Gateway, OpenRequest, Protocol, Refusal, Session};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tracing::Instrument;

use crate::conn::{read_packet_exact, write_message, Conn, Stream};
use crate::error::MysqlError;
use crate::handshake::{auth_switch_request, caps, Greeting, HandshakeResponse};
use crate::kill::{KillRegistry, KillTarget};
use crate::packets::{ok_payload, Err};
use crate::relay::{Relay, RelayEnd};
use crate::upstream::{self, ClientHello, ServerFacts};

/// How long a client has for its handshake and token.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Largest packet accepted before the client has authenticated.
const MAX_PREAUTH_PACKET: usize = 64 << 10;

/// `SERVER_STATUS_AUTOCOMMIT`: a fresh session's status.
const STATUS_AUTOCOMMIT: u16 = 0x0002;

/// How a MySQL listener treats its clients.
#[derive(Clone)]
pub struct MysqlConfig {
    /// Client-facing TLS; `None` leaves `SSL` out of the greeting.
    pub tls: Option<TlsAcceptor>,
    /// Whether a token may be sent without TLS (only on a loopback listener).
    pub allow_plaintext_tokens: bool,
    /// Largest message (joined across 16 MiB packets) relayed either way.
    pub max_message: usize,
    /// How long a client has for the handshake, and again for its token.
    pub login_timeout: Duration,
}

impl Default for MysqlConfig {
    fn default() -> Self {
        Self {
            tls: None,
            allow_plaintext_tokens: false,
            max_message: 1 << 30,
            login_timeout: LOGIN_TIMEOUT,
        }
    }
}

/// The MySQL wire of one gateway: shared by every connection of a listener.
#[derive(Clone)]
pub struct MysqlService {
    gateway: Gateway,
    config: Arc<MysqlConfig>,
    facts: Arc<RwLock<ServerFacts>>,
    next_id: Arc<AtomicU32>,
    kills: KillRegistry,
}

impl MysqlService {
    /// A service for a listener.
    pub fn new(gateway: Gateway, config: MysqlConfig) -> Self {
        Self {
            gateway,
            config: Arc::new(config),
            facts: Arc::new(RwLock::new(ServerFacts {
                version: "8.0.0-gatehouse".into(),
                charset: 45,
            })),
            next_id: Arc::new(AtomicU32::new(crate::kill::FIRST_ID)),
            kills: KillRegistry::default(),
        }
    }

    /// Learns the version an upstream shows (the greeting tells clients the upstream's
    /// version, so drivers pick the right dialect features before the first login).
    pub async fn learn_upstream(&self, address: &str) {
        match upstream::probe(address).await {
            Ok(facts) => self.remember(facts),
            Err(e) => tracing::warn!(address, error = %e, "could not read the upstream's greeting"),
        }
    }

    fn remember(&self, facts: ServerFacts) {
        if let Ok(mut f) = self.facts.write() {
            *f = facts;
        }
    }

    /// Serves one accepted connection to its end. Never panics on client or server input;
    /// every failure is told to the client as an error packet where the protocol allows.
    pub async fn handle(&self, tcp: TcpStream, peer: SocketAddr) {
        let _ = tcp.set_nodelay(true);
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let span =
            tracing::info_span!("mysql", client = %peer, id, session = tracing::field::Empty);
        self.handle_inner(tcp, peer, id).instrument(span).await;
    }

    async fn handle_inner(&self, tcp: TcpStream, peer: SocketAddr, id: u32) {
        let greeted =
            match tokio::time::timeout(self.config.login_timeout, self.greet(tcp, id)).await {
                Ok(Ok(greeted)) => greeted,
                Ok(Err(e)) => {
                    tracing::info!(error = %e, "handshake failed");
                    return;
                }
                Err(_) => {
                    tracing::info!("no handshake in time; connection dropped");
                    return;
                }
            };
        let Some(authenticated) = greeted.authenticate(self, peer).await else {
            return;
        };
        tracing::Span::current().record("session", authenticated.session.id().to_string());
        let Some(ready) = authenticated.connect_upstream(self).await else {
            return;
        };
        ready.relay(self, id).await;
    }

    /// Greets the client and reads its HandshakeResponse (switching to TLS on an
    /// SSLRequest) and its token.
    async fn greet(&self, mut tcp: TcpStream, id: u32) -> Result<Greeted, MysqlError> {
        let (version, charset) = self
            .facts
            .read()
            .map(|f| (f.version.clone(), f.charset))
            .unwrap_or_else(|_| ("8.0.0-gatehouse".into(), 45));
        let tls_offered = self.config.tls.is_some();
        let greeting = Greeting {
            server_version: version,
            connection_id: id,
            scramble: scramble()?,
            capabilities: caps::GATEWAY | if tls_offered { caps::SSL } else { 0 },
            charset,
            status: STATUS_AUTOCOMMIT,
            // Clients answer the greeting with a hash of their password: the token is
            // asked for in clear only once the gateway knows the channel may carry it.
            auth_plugin: "mysql_native_password".into(),
        };
        write_message(&mut tcp, &greeting.encode(), 0).await?;
        let (mut seq, mut payload) = match read_packet_exact(&mut tcp, MAX_PREAUTH_PACKET, "client")
            .await
            .and_then(|(seq, p)| expect_seq(seq, 1).map(|()| (seq, p)))
        {
            Ok(read) => read,
            Err(e) => return Err(tell(&mut tcp, 2, e).await),
        };
        let tls = HandshakeResponse::is_ssl_request(&payload);
        let mut stream: Stream = if tls {
            let Some(acceptor) = &self.config.tls else {
                return Err(MysqlError::Tls("SSL asked for, but not offered".into()));
            };
            // The TLS hello follows the SSLRequest at once; nothing past the request was
            // read, so it reaches the TLS layer whole.
            let secured = acceptor
                .accept(tcp)
                .await
                .map_err(|e| MysqlError::Tls(e.to_string()))?;
            Box::new(secured)
        } else {
            Box::new(tcp)
        };
        if tls {
            (seq, payload) = match read_packet_exact(&mut stream, MAX_PREAUTH_PACKET, "client")
                .await
                .and_then(|(seq, p)| expect_seq(seq, 2).map(|()| (seq, p)))
            {
                Ok(read) => read,
                Err(e) => return Err(tell(&mut stream, 3, e).await),
            };
        }
        let mut conn = Conn::new(stream, "client");
        let response = match HandshakeResponse::decode(&payload) {
            Ok(r) => r,
            Err(e) => {
                refuse(&mut conn, seq.wrapping_add(1), e.code(), &e.to_string()).await;
                return Err(e);
            }
        };
        Ok(Greeted {
            conn,
            tls,
            seq,
            scramble: greeting.scramble,
            response,
        })
    }
}

/// The client's HandshakeResponse is in; its token is not yet.
struct Greeted {
    conn: Conn,
    tls: bool,
    seq: u8,
    scramble: Vec<u8>,
    response: HandshakeResponse,
}

/// The core opened a session for the client's token.
struct Authenticated {
    conn: Conn,
    seq: u8,
    hello: ClientHello,
    session: Session,
}

/// The upstream accepted the gateway's login; the client has been told it may begin.
struct Ready {
    client: Conn,
    server: Conn,
    capabilities: u32,
    thread_id: u32,
    session: Session,
}

impl Greeted {
    async fn authenticate(
        mut self,
        service: &MysqlService,
        peer: SocketAddr,
    ) -> Option<Authenticated> {
        let mut seq = self.seq.wrapping_add(1);
        if !self.tls && !service.config.allow_plaintext_tokens {
            let message = "this gateway listener accepts tokens only over TLS: connect with \
                           --ssl (mysql/mariadb CLI) or ssl-mode=REQUIRED";
            refuse(&mut self.conn, seq, (1045, "28000"), message).await;
            return None;
        }
        let token = if self.response.auth_plugin.as_deref() == Some("mysql_clear_password") {
            self.response.auth.clone()
        } else {
            let switch = auth_switch_request("mysql_clear_password", &self.scramble);
            self.conn.queue(&switch, seq);
            let answer = async {
                self.conn.flush().await?;
                self.conn.next(MAX_PREAUTH_PACKET).await
            };
            match tokio::time::timeout(service.config.login_timeout, answer).await {
                Ok(Ok(m)) => {
                    seq = m.last_seq.wrapping_add(1);
                    m.payload.to_vec()
                }
                Ok(Err(e)) => {
                    tracing::info!(error = %e, "no token after the auth switch");
                    return None;
                }
                Err(_) => {
                    tracing::info!("no token in time");
                    return None;
                }
            }
        };
        let token =
            String::from_utf8_lossy(token.strip_suffix(&[0]).unwrap_or(&token)).into_owned();
        let r = &self.response;
        let connection = r
            .database
            .as_deref()
            .filter(|d| !d.is_empty())
            .unwrap_or(&r.user)
            .to_owned();
        let request = OpenRequest {
            connection: &connection,
            credential: Credential::Token(&token),
            claimed_user: &r.user,
            settings: &[],
            client_addr: peer,
            protocol: Protocol::Mysql,
        };
        if !crate::reading::collation_is_safe(r.charset) {
            let message = format!(
                "the client character set (collation {}) is not supported through the gateway: \
                 its characters can contain an ASCII backslash, so the gateway could not read \
                 SQL as the server does; connect with utf8mb4",
                r.charset
            );
            refuse(&mut self.conn, seq, (1115, "42000"), &message).await;
            return None;
        }
        match service.gateway.open(request).await {
            Ok(session) => Some(Authenticated {
                conn: self.conn,
                seq,
                hello: ClientHello {
                    capabilities: r.capabilities & caps::GATEWAY,
                    charset: r.charset,
                    max_packet: r.max_packet,
                },
                session,
            }),
            Err(refusal) => {
                tracing::info!(%refusal, connection, "session refused");
                let (code, hint) = match &refusal {
                    Refusal::BadToken => (
                        (1045, "28000"),
                        "; use a token from `gatehouse token create`, or a JWT from your \
                         identity provider, as the password",
                    ),
                    Refusal::Forbidden(_) => (
                        (1044, "42000"),
                        "; the connection name is the database name (or, without one, the user \
                         name); ask an administrator for access",
                    ),
                    Refusal::StoreUnavailable(_) => ((1105, "HY000"), ""),
                };
                refuse(&mut self.conn, seq, code, &format!("{refusal}{hint}")).await;
                None
            }
        }
    }
}

impl Authenticated {
    async fn connect_upstream(mut self, service: &MysqlService) -> Option<Ready> {
        let upstream = match upstream::connect(self.session.connection(), self.hello).await {
            Ok(u) => u,
            Err(e) => {
                tracing::warn!(error = %e, "upstream unavailable");
                let message = self.session.connection().unavailable(&e);
                refuse(
                    &mut self.conn,
                    self.seq,
                    (crate::error::UPSTREAM_UNAVAILABLE, "HY000"),
                    &message,
                )
                .await;
                self.session
                    .close(&format!("upstream unavailable: {e}"), 0, 0)
                    .await;
                return None;
            }
        };
        self.session
            .set_mysql_modes(crate::reading::modes_of(&upstream.version, upstream.status));
        service.remember(ServerFacts {
            version: upstream.version.clone(),
            charset: service.facts.read().map(|f| f.charset).unwrap_or(45),
        });
        self.conn.queue(&ok_payload(0, STATUS_AUTOCOMMIT), self.seq);
        if let Err(e) = self.conn.flush().await {
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
            client: self.conn,
            server: upstream.conn,
            // Both sides agreed on the classic EOF forms (the gateway offers no
            // DEPRECATE_EOF), so one set of capabilities describes both.
            capabilities: self.hello.capabilities,
            thread_id: upstream.thread_id,
            session: self.session,
        })
    }
}

impl Ready {
    async fn relay(self, service: &MysqlService, id: u32) {
        let target = KillTarget {
            identity: self.session.info().identity.clone(),
            address: self.session.connection().address.clone(),
            thread_id: self.thread_id,
            held: Default::default(),
        };
        let held = target.held.clone();
        let _registration = service.kills.register(id, target);
        let mut relay = Relay::new(
            &self.session,
            self.client,
            self.server,
            self.capabilities,
            service.config.max_message,
            &service.kills,
            held,
        );
        let end = relay.run().await;
        let (mut client, mut server) = relay.into_conns();
        let reason = match &end {
            RelayEnd::ClientQuit => "client quit".to_owned(),
            RelayEnd::ClientClosed => "client closed the connection".to_owned(),
            RelayEnd::ServerClosed => {
                let message = "the upstream server closed the connection";
                client.queue(&error_payload((1158, "08S01"), message), 0);
                let _ = client.flush().await;
                "server closed the connection".to_owned()
            }
            RelayEnd::Ended(why, seq) => {
                let message = format!("{}; {}", why.message(), why.hint());
                client.queue(&error_payload((1927, "70100"), &message), *seq);
                let _ = client.flush().await;
                why.to_string()
            }
            RelayEnd::Failed(e, seq) => {
                client.queue(&error_payload(e.code(), &e.to_string()), *seq);
                let _ = client.flush().await;
                format!("error: {e}")
            }
        };
        // COM_QUIT upstream, so the server logs a clean disconnect.
        if !matches!(end, RelayEnd::ServerClosed | RelayEnd::ClientQuit) {
            server.queue(&[0x01], 0);
            let _ = server.flush().await;
        }
        let _ = client.stream.shutdown().await;
        let _ = server.stream.shutdown().await;
        tracing::info!(reason, "session closed");
        self.session
            .close(&reason, client.read_total, server.read_total)
            .await;
    }
}

/// Tells a client the gateway will not take its connection now (a connection limit): an ERR
/// in place of the greeting, as the server sends "Too many connections" (1040).
pub async fn refuse_busy(mut tcp: TcpStream, message: &str) {
    let _ = write_message(&mut tcp, &error_payload((1040, "08004"), message), 0).await;
    let _ = tcp.shutdown().await;
}

/// An ERR payload of the gateway's own.
pub fn error_payload((code, state): (u16, &str), message: &str) -> Vec<u8> {
    Err {
        code,
        state: state.to_owned(),
        message: message.to_owned(),
    }
    .encode()
}

/// The handshake's packets come in order; anything else is a broken client.
fn expect_seq(got: u8, want: u8) -> Result<(), MysqlError> {
    if got == want {
        Ok(())
    } else {
        Err(MysqlError::Sequence { got, want })
    }
}

/// Tells a client that broke the handshake what was wrong (if it is still there to hear).
async fn tell<S: tokio::io::AsyncWrite + Unpin>(
    stream: &mut S,
    seq: u8,
    e: MysqlError,
) -> MysqlError {
    if !matches!(e, MysqlError::Closed(_) | MysqlError::Io(_)) {
        let _ = write_message(stream, &error_payload(e.code(), &e.to_string()), seq).await;
    }
    e
}

/// Tells the client why it is refused, then closes the stream.
async fn refuse(conn: &mut Conn, seq: u8, code: (u16, &str), message: &str) {
    conn.queue(&error_payload(code, message), seq);
    let _ = conn.flush().await;
    let _ = conn.stream.shutdown().await;
}

/// 20 random printable bytes, as servers send (no NUL, which ends the field).
fn scramble() -> Result<Vec<u8>, MysqlError> {
    let mut bytes = [0u8; 20];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| MysqlError::Tls("no randomness for the scramble".into()))?;
    Ok(bytes.iter().map(|b| 0x21 + b % 0x5E).collect())
}
