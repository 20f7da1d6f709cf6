//! The client-facing TLS certificate: the configured pair, or a self-signed one generated once
//! in the state directory so TLS works out of the box.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::ServerConfig;
use tokio_rustls::TlsAcceptor;

use crate::config::Config;
use crate::error::CliError;

/// Builds the acceptor from `[tls]`, or from a generated pair under `state_dir/tls/`.
pub fn acceptor(config: &Config, state_dir: &Path) -> Result<TlsAcceptor, CliError> {
    let (cert, key) = match &config.tls {
        Some(t) => (config.resolve(&t.cert), config.resolve(&t.key)),
        None => self_signed(state_dir)?,
    };
    let certs = CertificateDer::pem_file_iter(&cert)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| CliError::Tls(format!("cannot read certificate {}: {e}", cert.display())))?;
    let key = PrivateKeyDer::from_pem_file(&key)
        .map_err(|e| CliError::Tls(format!("cannot read key {}: {e}", key.display())))?;
    let server = ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| CliError::Tls(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(server)))
}

fn self_signed(state_dir: &Path) -> Result<(PathBuf, PathBuf), CliError> {
    let dir = state_dir.join("tls");
    let cert = dir.join("gateway.crt");
    let key = dir.join("gateway.key");
    if cert.exists() && key.exists() {
        return Ok((cert, key));
    }
    std::fs::create_dir_all(&dir)
        .map_err(|e| CliError::Tls(format!("cannot create {}: {e}", dir.display())))?;
    let names = vec!["localhost".to_owned(), "127.0.0.1".to_owned()];
    let pair = rcgen::generate_simple_self_signed(names)
        .map_err(|e| CliError::Tls(format!("cannot generate a certificate: {e}")))?;
    // A certificate without its key (or the other way round) is made again, both of them.
    let _ = std::fs::remove_file(&key);
    std::fs::write(&cert, pair.cert.pem())
        .and_then(|()| {
            gatehouse_core::private_file::write_private(
                &key,
                pair.signing_key.serialize_pem().as_bytes(),
            )
        })
        .map_err(|e| CliError::Tls(format!("cannot write {}: {e}", dir.display())))?;
    tracing::info!(cert = %cert.display(), "generated a self-signed TLS certificate");
    Ok((cert, key))
}
