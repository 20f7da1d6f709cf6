//! TLS toward an upstream server, shared by every wire: the client configuration a
//! connection's `tls` mode asks for, and the handshake over an already-negotiated socket.
//! `prefer` and `require` encrypt without requiring a trusted certificate (libpq's meaning),
//! but still check it against the system store: a link whose certificate the system trusts
//! counts as verified. `verify-full` requires that, against the connection's CA file or the
//! system store (and is the default when a connection names a CA).
//!
//! A password the server could read (cleartext, md5, RSA-wrapped) crosses only a verified or
//! a loopback link ([`may_reveal_password`]): an unverified TLS peer could be anyone.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use thiserror::Error;
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::connection::{ConnectionSpec, UpstreamTls};

/// Why TLS toward an upstream could not be set up.
#[derive(Debug, Error)]
pub enum UpstreamTlsError {
    /// The CA file of a `verify-full` connection is unreadable or holds no usable certificate.
    #[error("CA file {path}: {why}")]
    CaFile {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// The connection's address has no host part usable as a TLS server name.
    #[error("invalid upstream host name {0}")]
    ServerName(String),
    /// The handshake failed (certificate refused, protocol error, connection lost).
    #[error("TLS with upstream {address} failed: {why}")]
    Handshake {
        /// The upstream.
        address: String,
        /// What went wrong.
        why: String,
    },
}

/// How a link to an upstream is protected, for deciding what may cross it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Link {
    /// The server's address is on the loopback interface (nothing crosses a network).
    pub loopback: bool,
    /// TLS whose certificate chain and host name were verified.
    pub verified_tls: bool,
}

impl Link {
    /// A link over `tcp` (its peer's address decides loopback), not yet TLS.
    pub fn over(tcp: &TcpStream) -> Self {
        Self {
            loopback: tcp.peer_addr().is_ok_and(|a| a.ip().is_loopback()),
            verified_tls: false,
        }
    }
}

/// Whether a password the server could read — in clear, as md5 (replayable), or wrapped for
/// an RSA key the server itself supplied — may be sent over `link`.
pub fn may_reveal_password(link: Link) -> bool {
    link.loopback || link.verified_tls
}

/// Why the gateway did not send such a password, and what to change.
pub fn password_refused(spec: &ConnectionSpec, method: &str) -> String {
    format!(
        "upstream {} asks for the password as {method}, which would reveal it over a link \
         the gateway has not verified: set `tls = \"verify-full\"` on connection \"{}\" (with \
         `tls_ca` if the server's certificate is not in the system store), or make the \
         server use scram-sha-256 (PostgreSQL) / TLS (MySQL)",
        spec.address, spec.name
    )
}

/// Runs the TLS handshake as a client over `tcp`, after the wire has asked the server for TLS
/// in its own way (PostgreSQL's SSLRequest, MySQL's SSL capability). Also says whether the
/// certificate was verified (always, for `verify-full`; where the system trusts it, else).
pub async fn connect(
    spec: &ConnectionSpec,
    tcp: TcpStream,
) -> Result<(TlsStream<TcpStream>, bool), UpstreamTlsError> {
    let verified = Arc::new(AtomicBool::new(false));
    let config = if spec.tls == UpstreamTls::VerifyFull {
        client_config(spec)?
    } else {
        opportunistic(verified.clone())
    };
    let host = spec
        .address
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(&spec.address);
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| UpstreamTlsError::ServerName(format!("{host}: {e}")))?;
    let tls = TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| UpstreamTlsError::Handshake {
            address: spec.address.clone(),
            why: if spec.tls == UpstreamTls::VerifyFull {
                format!(
                    "{e} (the server's certificate is checked: set tls_ca on connection \"{}\" \
                     to the CA that signs it, or tls = \"require\" to encrypt without checking)",
                    spec.name
                )
            } else {
                e.to_string()
            },
        })?;
    let verified = spec.tls == UpstreamTls::VerifyFull || verified.load(Ordering::Acquire);
    Ok((tls, verified))
}

/// `prefer`/`require`: any certificate is accepted, and `verified` is set if the system's
/// roots vouch for it and its name.
fn opportunistic(verified: Arc<AtomicBool>) -> Arc<ClientConfig> {
    static SYSTEM: OnceLock<Option<Arc<WebPkiServerVerifier>>> = OnceLock::new();
    let system = SYSTEM
        .get_or_init(|| {
            let mut roots = RootCertStore::empty();
            roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
            WebPkiServerVerifier::builder(Arc::new(roots)).build().ok()
        })
        .clone();
    Arc::new(
        ClientConfig::builder()
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(Opportunistic {
                system,
                verified,
                provider: rustls::crypto::aws_lc_rs::default_provider(),
            }))
            .with_no_client_auth(),
    )
}

/// Accepts any certificate, noting whether the system's roots would have.
#[derive(Debug)]
struct Opportunistic {
    system: Option<Arc<WebPkiServerVerifier>>,
    verified: Arc<AtomicBool>,
    /// Checks the handshake's signatures with the certificate's key, trusted or not.
    provider: rustls::crypto::CryptoProvider,
}

impl ServerCertVerifier for Opportunistic {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let trusted = self.system.as_ref().is_some_and(|v| {
            v.verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
                .is_ok()
        });
        self.verified.store(trusted, Ordering::Release);
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// The rustls client configuration for a connection's TLS mode (`prefer`/`require`: any
/// certificate, see [`connect`] for whether it was verified).
pub fn client_config(spec: &ConnectionSpec) -> Result<Arc<ClientConfig>, UpstreamTlsError> {
    client_config_for(spec.tls, spec.tls_ca.as_deref())
}

/// The rustls client configuration of a TLS mode and CA file (the system's bundle if none):
/// for an upstream connection, and for the gateway's own PostgreSQL store.
pub fn client_config_for(
    tls: UpstreamTls,
    tls_ca: Option<&str>,
) -> Result<Arc<ClientConfig>, UpstreamTlsError> {
    if tls != UpstreamTls::VerifyFull {
        return Ok(opportunistic(Arc::new(AtomicBool::new(false))));
    }
    let ca_path = tls_ca.unwrap_or("/etc/ssl/certs/ca-certificates.crt");
    let bad = |why: String| UpstreamTlsError::CaFile {
        path: ca_path.to_owned(),
        why,
    };
    let mut roots = RootCertStore::empty();
    let certs = CertificateDer::pem_file_iter(ca_path).map_err(|e| bad(e.to_string()))?;
    for cert in certs {
        let cert = cert.map_err(|e| bad(format!("bad certificate: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| bad(format!("unusable certificate: {e}")))?;
    }
    Ok(Arc::new(
        ClientConfig::builder()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    ))
}
