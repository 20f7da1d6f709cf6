//! The gateway's own login to the upstream MySQL or MariaDB server: TCP, optional TLS, the
//! HandshakeResponse with the gateway-held password, and whatever the server's
//! authentication plugin asks next (auth switch, caching_sha2's fast or full
//! authentication, the RSA key exchange without TLS). Nothing of it reaches the client.

use std::time::Duration;

use gatehouse_core::{upstream_tls, ConnectionSpec, UpstreamTls};
use tokio::net::TcpStream;

use crate::auth;
use crate::conn::{read_packet_exact, write_message, Conn, Stream};
use crate::error::MysqlError;
use crate::handshake::{caps, ssl_request, Greeting, HandshakeResponse};
use crate::packets::Err;

/// How long connecting and logging in upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest message accepted from the upstream during login.
const MAX_LOGIN_MESSAGE: usize = 1 << 20;

/// What the client asked for that the upstream login carries over.
#[derive(Debug, Clone, Copy)]
pub struct ClientHello {
    /// The client's capabilities (already limited to what the gateway offered).
    pub capabilities: u32,
    /// The client's character set.
    pub charset: u8,
    /// The largest packet the client takes.
    pub max_packet: u32,
}

/// A logged-in upstream connection, ready for commands.
pub struct Upstream {
    /// The connection.
    pub conn: Conn,
    /// The capabilities agreed with the server.
    pub capabilities: u32,
    /// The server's version text.
    pub version: String,
    /// The server's id of this connection (what `KILL QUERY` takes upstream).
    pub thread_id: u32,
    /// The status flags of the login's OK (`NO_BACKSLASH_ESCAPES` among them).
    pub status: u16,
}

/// What a server says about itself before anyone logs in: the gateway shows clients the
/// upstream's version, so drivers pick the right dialect features.
#[derive(Debug, Clone)]
pub struct ServerFacts {
    /// Version text.
    pub version: String,
    /// Default character set.
    pub charset: u8,
}

/// Reads an upstream's greeting and hangs up.
pub async fn probe(address: &str) -> Result<ServerFacts, MysqlError> {
    let probe = async {
        let mut tcp = TcpStream::connect(address).await?;
        let (_, payload) = read_packet_exact(&mut tcp, MAX_LOGIN_MESSAGE, "server").await?;
        let greeting = Greeting::decode(&payload)?;
        Ok(ServerFacts {
            version: greeting.server_version,
            charset: greeting.charset,
        })
    };
    tokio::time::timeout(CONNECT_TIMEOUT, probe)
        .await
        .map_err(|_| MysqlError::Upstream(format!("{address} did not greet in time")))?
}

/// Connects and logs in as the connection's user, into its database.
pub async fn connect(spec: &ConnectionSpec, hello: ClientHello) -> Result<Upstream, MysqlError> {
    tokio::time::timeout(CONNECT_TIMEOUT, connect_inner(spec, hello))
        .await
        .map_err(|_| {
            MysqlError::Upstream(format!(
                "upstream {} did not complete the login within {}s",
                spec.address,
                CONNECT_TIMEOUT.as_secs()
            ))
        })?
}

async fn connect_inner(spec: &ConnectionSpec, hello: ClientHello) -> Result<Upstream, MysqlError> {
    let mut tcp = TcpStream::connect(&spec.address)
        .await
        .map_err(|e| MysqlError::Upstream(format!("cannot reach {}: {e}", spec.address)))?;
    let _ = tcp.set_nodelay(true);
    let (seq, payload) = read_packet_exact(&mut tcp, MAX_LOGIN_MESSAGE, "server").await?;
    if payload.first() == Some(&0xFF) {
        let err = Err::decode(&payload)?;
        return Err(refused(spec, &err));
    }
    let greeting = Greeting::decode(&payload)?;
    let server_tls = greeting.capabilities & caps::SSL != 0;
    if matches!(spec.tls, UpstreamTls::Require | UpstreamTls::VerifyFull) && !server_tls {
        return Err(MysqlError::Upstream(format!(
            "upstream {} does not offer TLS, and connection \"{}\" requires it",
            spec.address, spec.name
        )));
    }
    let mut capabilities = (hello.capabilities & caps::GATEWAY & !caps::CONNECT_ATTRS)
        | caps::PROTOCOL_41
        | caps::SECURE_CONNECTION
        | caps::PLUGIN_AUTH
        | caps::PLUGIN_AUTH_LENENC_CLIENT_DATA;
    capabilities &= !caps::CONNECT_WITH_DB;
    if spec.database.is_some() {
        capabilities |= caps::CONNECT_WITH_DB;
    }
    capabilities &= greeting.capabilities;
    let mut seq = seq.wrapping_add(1);
    let tls = spec.tls != UpstreamTls::Disable && server_tls;
    let mut link = upstream_tls::Link::over(&tcp);
    let stream: Stream = if tls {
        capabilities |= caps::SSL;
        let request = ssl_request(capabilities, hello.max_packet, hello.charset);
        seq = write_message(&mut tcp, &request, seq).await?;
        let (stream, verified) = upstream_tls::connect(spec, tcp)
            .await
            .map_err(|e| MysqlError::Upstream(e.to_string()))?;
        link.verified_tls = verified;
        Box::new(stream)
    } else {
        Box::new(tcp)
    };
    let password = spec
        .password
        .as_ref()
        .map(|p| p.expose().as_bytes())
        .unwrap_or_default();
    let mut plugin = greeting.auth_plugin.clone();
    let guarded = |plugin: &str| -> Result<(), MysqlError> {
        if plugin == "mysql_clear_password" && !upstream_tls::may_reveal_password(link) {
            return Err(MysqlError::Upstream(upstream_tls::password_refused(
                spec,
                "cleartext (mysql_clear_password)",
            )));
        }
        Ok(())
    };
    guarded(&plugin)?;
    let first = auth::answer(&plugin, password, &greeting.scramble).unwrap_or_default();
    let response = HandshakeResponse {
        capabilities,
        max_packet: hello.max_packet,
        charset: hello.charset,
        user: spec.username.clone(),
        auth: first,
        database: spec.database.clone(),
        auth_plugin: Some(plugin.clone()),
    };
    let mut conn = Conn::new(stream, "server");
    conn.queue(&response.encode(), seq);
    conn.flush().await?;
    let mut scramble = greeting.scramble.clone();
    let status;
    loop {
        let m = conn.next(MAX_LOGIN_MESSAGE).await?;
        seq = m.last_seq.wrapping_add(1);
        let answer = match m.payload.first() {
            Some(0x00) => {
                status = crate::packets::Ok::decode(&m.payload).map_or(0, |ok| ok.status);
                break;
            }
            Some(0xFF) => return Err(refused(spec, &Err::decode(&m.payload)?)),
            Some(0xFE) => {
                let switch = auth::AuthSwitch::decode(&m.payload)?;
                plugin = switch.plugin;
                guarded(&plugin)?;
                scramble = switch.data;
                auth::answer(&plugin, password, &scramble)?
            }
            Some(0x01) => match (plugin.as_str(), m.payload.get(1..).unwrap_or_default()) {
                // caching_sha2_password: fast authentication succeeded, an OK follows.
                ("caching_sha2_password", [3]) => continue,
                // Full authentication reveals the password to whoever holds the link's (or
                // the RSA key's) other end.
                ("caching_sha2_password" | "sha256_password", _)
                    if !upstream_tls::may_reveal_password(link) =>
                {
                    return Err(MysqlError::Upstream(upstream_tls::password_refused(
                        spec,
                        &format!("{plugin} full authentication"),
                    )));
                }
                // Full authentication: the password in clear over TLS, else ask for the
                // server's RSA key.
                ("caching_sha2_password", [4]) if tls => auth::clear_password(password),
                ("caching_sha2_password", [4]) => vec![2],
                ("caching_sha2_password" | "sha256_password", pem) => {
                    auth::rsa_encrypted_password(password, &scramble, pem)?
                }
                _ => {
                    return Err(MysqlError::Upstream(format!(
                        "upstream {} sent an authentication request the gateway does not \
                         understand (plugin {plugin})",
                        spec.address
                    )))
                }
            },
            _ => return Err(MysqlError::Malformed("unexpected packet during the login")),
        };
        conn.queue(&answer, seq);
        conn.flush().await?;
    }
    Ok(Upstream {
        conn,
        capabilities,
        version: greeting.server_version,
        thread_id: greeting.connection_id,
        status,
    })
}

fn refused(spec: &ConnectionSpec, err: &Err) -> MysqlError {
    MysqlError::Upstream(format!(
        "upstream {} refused the gateway's login as \"{}\": {} (error {})",
        spec.address, spec.username, err.message, err.code
    ))
}
