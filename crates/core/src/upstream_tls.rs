//! TLS toward an upstream server, shared by every wire: the client configuration a
//! connection's `tls` mode asks for, and the handshake over an already-negotiated socket.
//! `prefer` and `require` encrypt without checking the certificate (libpq's meaning);
//! `verify-full` checks it against the connection's CA file or the system store.

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
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

/// Runs the TLS handshake as a client over `tcp`, after the wire has asked the server for TLS
/// in its own way (PostgreSQL's SSLRequest, MySQL's SSL capability).
pub async fn connect(
    spec: &ConnectionSpec,
    tcp: TcpStream,
) -> Result<TlsStream<TcpStream>, UpstreamTlsError> {
    let config = client_config(spec)?;
    let host = spec
        .address
        .rsplit_once(':')
        .map(|(h, _)| h.trim_start_matches('[').trim_end_matches(']'))
        .unwrap_or(&spec.address);
    let name = ServerName::try_from(host.to_owned())
        .map_err(|e| UpstreamTlsError::ServerName(format!("{host}: {e}")))?;
    TlsConnector::from(config)
        .connect(name, tcp)
        .await
        .map_err(|e| UpstreamTlsError::Handshake {
            address: spec.address.clone(),
            why: e.to_string(),
        })
}

/// The rustls client configuration for a connection's TLS mode.
pub fn client_config(spec: &ConnectionSpec) -> Result<Arc<ClientConfig>, UpstreamTlsError> {
    if spec.tls != UpstreamTls::VerifyFull {
        static UNVERIFIED: OnceLock<Arc<ClientConfig>> = OnceLock::new();
        return Ok(UNVERIFIED
            .get_or_init(|| {
                Arc::new(
                    ClientConfig::builder()
                        .dangerous()
                        .with_custom_certificate_verifier(Arc::new(NoVerification::new()))
                        .with_no_client_auth(),
                )
            })
            .clone());
    }
    let ca_path = spec
        .tls_ca
        .as_deref()
        .unwrap_or("/etc/ssl/certs/ca-certificates.crt");
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

/// `prefer` and `require` encrypt without checking the certificate (libpq's meaning).
#[derive(Debug)]
struct NoVerification(rustls::crypto::CryptoProvider);

impl NoVerification {
    fn new() -> Self {
        Self(rustls::crypto::aws_lc_rs::default_provider())
    }
}

impl ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
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
            &self.0.signature_verification_algorithms,
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
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
