//! The client's startup phase: SSLRequest (TLS), GSSENCRequest (refused, so the client falls
//! back), CancelRequest, and the StartupMessage with its parameters.

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use crate::error::PgError;
use crate::frame::split_startup;
use crate::messages::{request_code, MessageBuilder, Reader};
use crate::stream::PgStream;

/// What the client asked for in its first packets.
#[derive(Debug)]
pub enum ClientStart {
    /// A session: the stream (TLS or not) and its startup parameters.
    Session {
        /// The client stream, TLS if it asked and the listener has a certificate.
        stream: PgStream,
        /// Startup parameters in the order sent (`user`, `database`, `application_name`, ...).
        params: Vec<(String, String)>,
        /// Bytes read past the startup message (the client may pipeline its password).
        leftover: BytesMut,
        /// Whether the client asked for a newer minor protocol or `_pq_` options that the
        /// gateway must decline (answered with NegotiateProtocolVersion).
        negotiate: Option<(i32, Vec<String>)>,
    },
    /// A cancel for the session holding this gateway key.
    Cancel {
        /// Gateway process id.
        pid: i32,
        /// Gateway secret.
        secret: i32,
    },
}

/// Runs the startup phase.
pub async fn negotiate(
    tcp: TcpStream,
    tls: Option<&TlsAcceptor>,
) -> Result<ClientStart, (PgError, Option<PgStream>)> {
    let mut stream = PgStream::Plain(tcp);
    let mut buf = BytesMut::with_capacity(1024);
    loop {
        let packet = match read_packet(&mut stream, &mut buf).await {
            Ok(p) => p,
            Err(e) => return Err((e, Some(stream))),
        };
        let mut r = Reader::new(&packet);
        let code = match r.i32() {
            Ok(c) => c,
            Err(e) => return Err((e, Some(stream))),
        };
        match code {
            request_code::SSL => {
                // Bytes sent after SSLRequest but before the TLS handshake would be read as if
                // they had been encrypted (CVE-2021-23214): refuse them.
                if !buf.is_empty() {
                    let e = PgError::Protocol("data received after SSLRequest before TLS".into());
                    return Err((e, None));
                }
                stream = match (stream, tls) {
                    (PgStream::Plain(mut tcp), Some(acceptor)) => {
                        if let Err(e) = tcp.write_all(b"S").await {
                            return Err((e.into(), None));
                        }
                        match acceptor.accept(tcp).await {
                            Ok(tls) => PgStream::Server(Box::new(tls)),
                            Err(e) => return Err((PgError::Tls(e.to_string()), None)),
                        }
                    }
                    (PgStream::Plain(mut tcp), None) => {
                        if let Err(e) = tcp.write_all(b"N").await {
                            return Err((e.into(), None));
                        }
                        PgStream::Plain(tcp)
                    }
                    (other, _) => {
                        let e = PgError::Protocol("SSLRequest inside TLS".into());
                        return Err((e, Some(other)));
                    }
                };
            }
            request_code::GSSENC => {
                if let Err(e) = stream.write_all(b"N").await {
                    return Err((e.into(), None));
                }
            }
            request_code::CANCEL => {
                let key = (|| Ok::<_, PgError>((r.i32()?, r.i32()?)))();
                return match key {
                    Ok((pid, secret)) => Ok(ClientStart::Cancel { pid, secret }),
                    Err(e) => Err((e, None)),
                };
            }
            version if version >> 16 == 3 => {
                let params = match read_params(&mut r) {
                    Ok(p) => p,
                    Err(e) => return Err((e, Some(stream))),
                };
                let unsupported: Vec<String> = params
                    .iter()
                    .filter(|(k, _)| k.starts_with("_pq_."))
                    .map(|(k, _)| k.clone())
                    .collect();
                let minor = version & 0xffff;
                let negotiate = (minor > 0 || !unsupported.is_empty()).then_some((0, unsupported));
                let params = params
                    .into_iter()
                    .filter(|(k, _)| !k.starts_with("_pq_."))
                    .collect();
                return Ok(ClientStart::Session {
                    stream,
                    params,
                    leftover: buf,
                    negotiate,
                });
            }
            other => {
                let e = PgError::Protocol(format!(
                    "unsupported frontend protocol {}.{}: the gateway speaks 3.0",
                    other >> 16,
                    other & 0xffff
                ));
                return Err((e, Some(stream)));
            }
        }
    }
}

/// NegotiateProtocolVersion: the newest minor version the gateway speaks and the options it
/// does not understand.
pub fn negotiate_protocol_version(minor: i32, unsupported: &[String]) -> bytes::Bytes {
    let mut m = MessageBuilder::new(crate::messages::backend::NEGOTIATE_PROTOCOL_VERSION)
        .i32(minor)
        .i32(unsupported.len() as i32);
    for option in unsupported {
        m = m.cstr(option);
    }
    m.finish()
}

async fn read_packet(stream: &mut PgStream, buf: &mut BytesMut) -> Result<bytes::Bytes, PgError> {
    loop {
        if let Some(packet) = split_startup(buf)? {
            return Ok(packet);
        }
        if stream.read_buf(buf).await? == 0 {
            return Err(PgError::Closed("client"));
        }
    }
}

fn read_params(r: &mut Reader<'_>) -> Result<Vec<(String, String)>, PgError> {
    let mut params = Vec::new();
    loop {
        let key = r.cstr()?;
        if key.is_empty() {
            return Ok(params);
        }
        let value = r.cstr()?;
        // PostgreSQL takes the last of repeated keys; a check that read the first would be
        // fooled (replication=false, replication=true). Repeats are refused outright.
        if params.iter().any(|(k, _)| k == key) {
            return Err(PgError::Protocol(format!(
                "startup parameter {key:?} is given twice"
            )));
        }
        params.push((key.to_owned(), value.to_owned()));
    }
}
