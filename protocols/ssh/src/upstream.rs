//! The gateway's own SSH connection to the host: the connection's private key (held by the
//! gateway, never forwarded), the host key pinned in the configuration.

use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gatehouse_core::ConnectionSpec;
use russh::client;
use russh::keys::{HashAlg, PrivateKeyWithHashAlg, PublicKey, PublicKeyOrCertificate};

use crate::counted::Counted;
use crate::error::SshError;

/// How long the gateway waits for the host to answer a TCP connect and the SSH handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A logged-in connection to the host; channels are opened on it per client channel.
pub struct Upstream {
    /// The russh client handle.
    pub handle: client::Handle<PinnedHost>,
}

/// Checks the host's key against the pinned one, and remembers what it saw for the message.
pub struct PinnedHost {
    pinned: PublicKey,
    seen: Arc<Mutex<Option<String>>>,
}

impl client::Handler for PinnedHost {
    type Error = russh::Error;

    async fn check_server_key(
        &mut self,
        offered: &PublicKeyOrCertificate,
    ) -> Result<bool, Self::Error> {
        let seen = match offered {
            PublicKeyOrCertificate::PublicKey { key, .. }
                if key.key_data() == self.pinned.key_data() =>
            {
                return Ok(true);
            }
            PublicKeyOrCertificate::PublicKey { key, .. } => {
                key.fingerprint(HashAlg::Sha256).to_string()
            }
            // A host certificate is not the pinned key: refused like a changed key.
            PublicKeyOrCertificate::Certificate(_) => "a host certificate".into(),
        };
        if let Ok(mut slot) = self.seen.lock() {
            *slot = Some(seen);
        }
        Ok(false)
    }
}

/// The pinned host key of a connection, parsed (`ssh-ed25519 AAAA... [comment]`).
pub fn pinned_host_key(spec: &ConnectionSpec) -> Result<PublicKey, SshError> {
    let bad = |why: String| SshError::Config {
        connection: spec.name.clone(),
        why,
    };
    let text = spec
        .host_key
        .as_deref()
        .ok_or_else(|| bad("no host_key pinned (set host_key = \"ssh-ed25519 AAAA...\")".into()))?;
    PublicKey::from_openssh(text.trim())
        .map_err(|e| bad(format!("host_key is not an OpenSSH public key: {e}")))
}

/// Connects to the host, checks its key and logs in with the connection's private key.
/// `read` counts the bytes the host sends.
pub async fn connect(spec: &ConnectionSpec, read: Arc<AtomicU64>) -> Result<Upstream, SshError> {
    let pinned = pinned_host_key(spec)?;
    let secret = spec.private_key.as_ref().ok_or_else(|| SshError::Config {
        connection: spec.name.clone(),
        why: "no private_key (set private_key = { file = \"...\" })".into(),
    })?;
    let key =
        russh::keys::decode_secret_key(secret.expose(), None).map_err(|e| SshError::Config {
            connection: spec.name.clone(),
            why: format!("private_key cannot be read: {e}"),
        })?;
    let tcp = tokio::time::timeout(
        CONNECT_TIMEOUT,
        tokio::net::TcpStream::connect(&spec.address),
    )
    .await
    .map_err(|_| {
        SshError::Upstream(format!(
            "{} did not answer within {CONNECT_TIMEOUT:?}",
            spec.address
        ))
    })?
    .map_err(|e| SshError::Upstream(format!("cannot reach {}: {e}", spec.address)))?;
    let _ = tcp.set_nodelay(true);
    let seen = Arc::new(Mutex::new(None));
    let handler = PinnedHost {
        pinned: pinned.clone(),
        seen: seen.clone(),
    };
    let config = Arc::new(client::Config {
        window_size: crate::WINDOW_SIZE,
        maximum_packet_size: crate::MAX_PACKET,
        channel_buffer_size: crate::CHANNEL_BUFFER,
        nodelay: true,
        preferred: crate::preferred(false),
        ..client::Config::default()
    });
    let connected = tokio::time::timeout(
        CONNECT_TIMEOUT,
        client::connect_stream(config, Counted::new(tcp, read), handler),
    )
    .await
    .map_err(|_| {
        SshError::Upstream(format!(
            "{}: no SSH handshake within {CONNECT_TIMEOUT:?}",
            spec.address
        ))
    })?;
    let mut handle = match connected {
        Ok(h) => h,
        Err(e) => {
            let seen = seen.lock().ok().and_then(|s| s.clone());
            return Err(match seen {
                Some(got) => SshError::Upstream(format!(
                    "the host key of {} changed: expected {}, the server showed {got}; if the \
                     server's key was rotated on purpose, update host_key of connection \"{}\"",
                    spec.address,
                    pinned.fingerprint(HashAlg::Sha256),
                    spec.name
                )),
                None => SshError::Upstream(format!("{}: {e}", spec.address)),
            });
        }
    };
    let hash = handle.best_supported_rsa_hash().await?.flatten();
    let auth = handle
        .authenticate_publickey(
            spec.username.clone(),
            PrivateKeyWithHashAlg::new(Arc::new(key), hash),
        )
        .await?;
    if !auth.success() {
        return Err(SshError::Upstream(format!(
            "{} refused the gateway's key for user {:?}: add the connection's public key to \
             that user's authorized_keys",
            spec.address, spec.username
        )));
    }
    Ok(Upstream { handle })
}
