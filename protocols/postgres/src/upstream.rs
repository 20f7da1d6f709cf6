//! The gateway's own connection to the upstream PostgreSQL server: TCP, optional TLS, the
//! startup message, and login with the gateway-held password (SCRAM-SHA-256, md5, cleartext).
//! Nothing of this exchange is forwarded to the client.

use std::time::Duration;

use bytes::BytesMut;
use gatehouse_core::identity::hex;
use gatehouse_core::{upstream_tls, ConnectionSpec, UpstreamTls};
use md5::{Digest, Md5};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::encoding::ClientEncoding;
use crate::error::PgError;
use crate::frame::{split_frame, Frame};
use crate::messages::{backend, frontend, request_code, MessageBuilder, Reader, ServerNotice};
use crate::scram::{ScramClient, MECHANISM};
use crate::stream::PgStream;

/// How long connecting and logging in upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Largest message accepted from the upstream during login.
const MAX_LOGIN_FRAME: usize = 1 << 20;

/// A logged-in upstream connection, ready for queries.
#[derive(Debug)]
pub struct Upstream {
    /// The stream.
    pub stream: PgStream,
    /// The server's cancel key (process id, secret); kept by the gateway.
    pub key: Option<(i32, i32)>,
    /// ParameterStatus and NoticeResponse frames to pass on to the client.
    pub greeting: Vec<Frame>,
    /// The ReadyForQuery that ended the login.
    pub ready: Frame,
    /// Bytes read past the ReadyForQuery.
    pub leftover: BytesMut,
}

impl Upstream {
    /// The client encoding the server reported at login (UTF-8 if it reported none).
    pub fn client_encoding(&self) -> ClientEncoding {
        self.greeting
            .iter()
            .filter(|f| f.tag() == backend::PARAMETER_STATUS)
            .find_map(|f| {
                let mut r = Reader::new(f.body());
                match (r.cstr(), r.cstr()) {
                    (Ok("client_encoding"), Ok(value)) => Some(ClientEncoding::from_name(value)),
                    _ => None,
                }
            })
            .unwrap_or_default()
    }
}

/// Connects and logs in as the connection's user, passing the client's startup parameters
/// (other than `user` and `database`, which the connection decides).
pub async fn connect(
    spec: &ConnectionSpec,
    client_params: &[(String, String)],
) -> Result<Upstream, PgError> {
    tokio::time::timeout(CONNECT_TIMEOUT, connect_inner(spec, client_params))
        .await
        .map_err(|_| {
            PgError::Upstream(format!(
                "upstream {} did not answer within {}s",
                spec.address,
                CONNECT_TIMEOUT.as_secs()
            ))
        })?
}

async fn connect_inner(
    spec: &ConnectionSpec,
    client_params: &[(String, String)],
) -> Result<Upstream, PgError> {
    let tcp = TcpStream::connect(&spec.address).await.map_err(|e| {
        PgError::Upstream(format!(
            "could not connect to upstream {}: {e}",
            spec.address
        ))
    })?;
    let _ = tcp.set_nodelay(true);
    let (mut stream, link) = negotiate_tls(tcp, spec).await?;

    let database = spec.database.as_deref().unwrap_or(&spec.name);
    let mut startup = MessageBuilder::untagged()
        .i32(request_code::PROTOCOL_3_0)
        .cstr("user")
        .cstr(&spec.username)
        .cstr("database")
        .cstr(database);
    for (k, v) in client_params {
        // The connection decides user and database; replication is never forwarded.
        if k != "user" && k != "database" && k != "replication" {
            startup = startup.cstr(k).cstr(v);
        }
    }
    stream.write_all(&startup.u8(0).finish()).await?;
    stream.flush().await?;

    let mut buf = BytesMut::with_capacity(4096);
    let mut scram: Option<ScramClient> = None;
    let mut greeting = Vec::new();
    let mut key = None;
    loop {
        let frame = read_frame(&mut stream, &mut buf).await?;
        match frame.tag() {
            backend::AUTHENTICATION => {
                let mut r = Reader::new(frame.body());
                let code = r.i32()?;
                match code {
                    0 if scram.as_ref().is_some_and(|c| !c.verified()) => {
                        return Err(PgError::Upstream(
                            "upstream ended SCRAM without proving it knows the password".into(),
                        ))
                    }
                    0 => {}
                    3 | 5 if !upstream_tls::may_reveal_password(link) => {
                        let method = if code == 3 { "cleartext" } else { "md5" };
                        return Err(PgError::Upstream(upstream_tls::password_refused(
                            spec, method,
                        )));
                    }
                    3 => send_password(&mut stream, password(spec)?).await?,
                    5 => {
                        let salt = r.take(4)?;
                        let hashed = md5_password(password(spec)?, &spec.username, salt);
                        send_password(&mut stream, &hashed).await?;
                    }
                    10 => {
                        let mut offered = Vec::new();
                        while let Ok(m) = r.cstr() {
                            if m.is_empty() {
                                break;
                            }
                            offered.push(m.to_owned());
                        }
                        if !offered.iter().any(|m| m == MECHANISM) {
                            return Err(PgError::Upstream(format!(
                                "upstream offers SASL mechanisms {offered:?}; the gateway speaks {MECHANISM}"
                            )));
                        }
                        let client = ScramClient::new(password(spec)?)?;
                        let first = client.client_first();
                        let msg = MessageBuilder::new(frontend::PASSWORD)
                            .cstr(MECHANISM)
                            .i32(first.len() as i32)
                            .bytes(first.as_bytes())
                            .finish();
                        stream.write_all(&msg).await?;
                        stream.flush().await?;
                        scram = Some(client);
                    }
                    11 => {
                        let client = scram
                            .as_mut()
                            .ok_or_else(|| PgError::Upstream("unexpected SASL continue".into()))?;
                        let server_first = String::from_utf8_lossy(r.take(r.remaining())?);
                        let fin = client.client_final(&server_first)?;
                        let msg = MessageBuilder::new(frontend::PASSWORD)
                            .bytes(fin.as_bytes())
                            .finish();
                        stream.write_all(&msg).await?;
                        stream.flush().await?;
                    }
                    12 => {
                        let client = scram
                            .as_mut()
                            .ok_or_else(|| PgError::Upstream("unexpected SASL final".into()))?;
                        client.verify_server_final(&String::from_utf8_lossy(
                            r.take(r.remaining())?,
                        ))?;
                    }
                    other => {
                        return Err(PgError::Upstream(format!(
                            "upstream asks for authentication method {other}, which the gateway does not support"
                        )))
                    }
                }
            }
            backend::BACKEND_KEY_DATA => {
                let mut r = Reader::new(frame.body());
                key = Some((r.i32()?, r.i32()?));
            }
            backend::PARAMETER_STATUS | backend::NOTICE_RESPONSE => greeting.push(frame),
            backend::NEGOTIATE_PROTOCOL_VERSION => {}
            backend::ERROR_RESPONSE => {
                let n = ServerNotice::decode(frame.body(), ClientEncoding::Utf8)?;
                return Err(PgError::Upstream(format!(
                    "upstream refused the gateway's login: {} ({})",
                    n.message, n.code
                )));
            }
            backend::READY_FOR_QUERY => {
                return Ok(Upstream {
                    stream,
                    key,
                    greeting,
                    ready: frame,
                    leftover: buf,
                })
            }
            other => {
                return Err(PgError::Protocol(format!(
                    "upstream sent {:?} during login",
                    char::from(other)
                )))
            }
        }
    }
}

fn password(spec: &ConnectionSpec) -> Result<&str, PgError> {
    spec.password.as_ref().map(|s| s.expose()).ok_or_else(|| {
        PgError::Upstream(format!(
            "upstream asks for a password but connection \"{}\" has none configured",
            spec.name
        ))
    })
}

async fn send_password(stream: &mut PgStream, password: &str) -> Result<(), PgError> {
    let msg = MessageBuilder::new(frontend::PASSWORD)
        .cstr(password)
        .finish();
    stream.write_all(&msg).await?;
    stream.flush().await?;
    Ok(())
}

/// `md5` + hex(md5(hex(md5(password + user)) + salt)), PostgreSQL's md5 method.
fn md5_password(password: &str, user: &str, salt: &[u8]) -> String {
    let inner = hex(&Md5::digest(
        [password.as_bytes(), user.as_bytes()].concat(),
    ));
    let outer = hex(&Md5::digest([inner.as_bytes(), salt].concat()));
    format!("md5{outer}")
}

async fn read_frame(stream: &mut PgStream, buf: &mut BytesMut) -> Result<Frame, PgError> {
    loop {
        if let Some(frame) = split_frame(buf, MAX_LOGIN_FRAME)? {
            return Ok(frame);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(PgError::Upstream(
                "upstream closed the connection during login".into(),
            ));
        }
    }
}

async fn negotiate_tls(
    mut tcp: TcpStream,
    spec: &ConnectionSpec,
) -> Result<(PgStream, upstream_tls::Link), PgError> {
    let mut link = upstream_tls::Link::over(&tcp);
    if spec.tls == UpstreamTls::Disable {
        return Ok((PgStream::Plain(tcp), link));
    }
    let request = MessageBuilder::untagged().i32(request_code::SSL).finish();
    tcp.write_all(&request).await?;
    let answer = tcp.read_u8().await?;
    match answer {
        b'S' => {}
        b'N' if spec.tls == UpstreamTls::Prefer => return Ok((PgStream::Plain(tcp), link)),
        b'N' => {
            return Err(PgError::Upstream(format!(
                "upstream {} does not offer TLS, and connection \"{}\" requires it",
                spec.address, spec.name
            )))
        }
        _ => {
            return Err(PgError::Protocol(
                "upstream answered SSLRequest with garbage".into(),
            ))
        }
    }
    let (tls, verified) = upstream_tls::connect(spec, tcp)
        .await
        .map_err(|e| PgError::Upstream(e.to_string()))?;
    link.verified_tls = verified;
    Ok((PgStream::Client(Box::new(tls)), link))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_matches_postgres() {
        // PostgreSQL: SELECT 'md5' || md5(md5('secret' || 'alice') || 'abcd')
        assert_eq!(
            md5_password("secret", "alice", b"abcd"),
            "md5c90bcafc0a2b54511742383e34d5dc9d"
        );
    }
}
