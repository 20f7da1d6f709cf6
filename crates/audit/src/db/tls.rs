//! TLS toward the PostgreSQL store, with the same modes and the same rustls configuration as
//! an upstream connection ([`gatehouse_core::upstream_tls`]): the URL's `sslmode` (`disable`,
//! `prefer`, `require`, `verify-full`; default `verify-full` unless the server is on this
//! machine, then `prefer`) and `sslrootcert` (the CA file of `verify-full`; the system's
//! bundle if none).
//!
//! tokio-postgres reads the URL without those two (it knows `sslmode` up to `require`, and
//! checking the certificate is the connector's business): [`Target`] is the URL it is given
//! and the connector to use.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use gatehouse_core::upstream_tls::client_config_for;
use gatehouse_core::UpstreamTls;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio_postgres::tls::{ChannelBinding, MakeTlsConnect, TlsConnect};

use super::DbError;

/// What to connect to, and how.
pub(crate) struct Target {
    /// The URL as tokio-postgres reads it.
    pub url: String,
    /// The TLS configuration, or `None` for `sslmode=disable`.
    pub tls: Option<MakeRustls>,
}

/// Reads `sslmode` and `sslrootcert` out of a `postgres://` URL.
pub(crate) fn target(url: &str) -> Result<Target, DbError> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut mode = None;
    let mut root = None;
    let mut kept = Vec::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        match pair.split_once('=') {
            Some(("sslmode", value)) => mode = Some(value.to_owned()),
            Some(("sslrootcert", value)) => root = Some(value.to_owned()),
            _ => kept.push(pair.to_owned()),
        }
    }
    let mode = match mode.as_deref() {
        None if is_loopback(host_of(base)) => UpstreamTls::Prefer,
        None => UpstreamTls::VerifyFull,
        Some(name) => UpstreamTls::parse(name).ok_or_else(|| {
            DbError::Unavailable(format!(
                "sslmode={name} in the store's URL: use disable, prefer, require or verify-full"
            ))
        })?,
    };
    kept.push(
        match mode {
            UpstreamTls::Disable => "sslmode=disable",
            UpstreamTls::Prefer => "sslmode=prefer",
            UpstreamTls::Require | UpstreamTls::VerifyFull => "sslmode=require",
        }
        .to_owned(),
    );
    let tls = match mode {
        UpstreamTls::Disable => None,
        _ => Some(MakeRustls(
            client_config_for(mode, root.as_deref())
                .map_err(|e| DbError::Unavailable(format!("TLS toward the store: {e}")))?,
        )),
    };
    Ok(Target {
        url: format!("{base}?{}", kept.join("&")),
        tls,
    })
}

/// The host part of `postgres://user:pw@host:port/db` (brackets kept off an IPv6 address).
fn host_of(base: &str) -> &str {
    let rest = base.split_once("://").map_or(base, |(_, r)| r);
    let rest = rest.rsplit_once('@').map_or(rest, |(_, r)| r);
    let hostport = rest.split('/').next().unwrap_or_default();
    match hostport.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => hostport.split(':').next().unwrap_or_default(),
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// tokio-postgres's TLS connector over rustls.
#[derive(Clone)]
pub(crate) struct MakeRustls(Arc<rustls::ClientConfig>);

impl<S> MakeTlsConnect<S> for MakeRustls
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Tls<S>;
    type TlsConnect = Connect;
    type Error = io::Error;

    fn make_tls_connect(&mut self, domain: &str) -> io::Result<Connect> {
        let name = ServerName::try_from(domain.to_owned())
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
        Ok(Connect {
            connector: tokio_rustls::TlsConnector::from(self.0.clone()),
            name,
        })
    }
}

/// One connection's TLS handshake.
pub(crate) struct Connect {
    connector: tokio_rustls::TlsConnector,
    name: ServerName<'static>,
}

impl<S> TlsConnect<S> for Connect
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Stream = Tls<S>;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Tls<S>>> + Send>>;

    fn connect(self, stream: S) -> Self::Future {
        Box::pin(async move {
            let tls = self.connector.connect(self.name, stream).await?;
            Ok(Tls(tls))
        })
    }
}

/// A TLS stream to the store. No channel binding is offered: SCRAM authenticates without it.
pub(crate) struct Tls<S>(tokio_rustls::client::TlsStream<S>);

impl<S> tokio_postgres::tls::TlsStream for Tls<S>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    fn channel_binding(&self) -> ChannelBinding {
        ChannelBinding::none()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncRead for Tls<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> AsyncWrite for Tls<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_are_read_out_of_the_url() {
        let t = target("postgres://gh:pw@127.0.0.1:5432/gh").unwrap();
        assert_eq!(t.url, "postgres://gh:pw@127.0.0.1:5432/gh?sslmode=prefer");
        assert!(t.tls.is_some());
        let t = target("postgres://gh@db.internal/gh?connect_timeout=5&sslmode=disable").unwrap();
        assert_eq!(
            t.url,
            "postgres://gh@db.internal/gh?connect_timeout=5&sslmode=disable"
        );
        assert!(t.tls.is_none());
        // Off this machine, verified by default; verify-full is `require` plus the check.
        let t = target("postgres://gh@db.internal:5432/gh").unwrap();
        assert_eq!(t.url, "postgres://gh@db.internal:5432/gh?sslmode=require");
        assert!(target("postgres://gh@db/gh?sslmode=verify-full&sslrootcert=/nope.pem").is_err());
        assert!(target("postgres://gh@db/gh?sslmode=sometimes").is_err());
        assert_eq!(host_of("postgres://u:p@[::1]:5432/d"), "::1");
        assert!(is_loopback(host_of("postgresql://localhost/d")));
    }
}
