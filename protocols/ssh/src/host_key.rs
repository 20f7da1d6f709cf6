//! The gateway's own SSH host key: made once, kept in the state directory, so clients can pin
//! it in `known_hosts` across restarts.

use std::path::Path;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use russh::keys::ssh_key::private::{Ed25519Keypair, KeypairData};
use russh::keys::ssh_key::LineEnding;
use russh::keys::PrivateKey;

use crate::error::SshError;

/// Reads the host key at `path`, or makes an Ed25519 key there (mode 0600) if there is none.
pub fn load_or_create(path: &Path) -> Result<PrivateKey, SshError> {
    match std::fs::read_to_string(path) {
        Ok(text) => russh::keys::decode_secret_key(&text, None).map_err(|e| {
            SshError::Key(format!(
                "host key {}: {e} (move it away to have a new one made)",
                path.display()
            ))
        }),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create(path),
        Err(e) => Err(SshError::Key(format!("host key {}: {e}", path.display()))),
    }
}

fn create(path: &Path) -> Result<PrivateKey, SshError> {
    let mut seed = [0u8; 32];
    SystemRandom::new()
        .fill(&mut seed)
        .map_err(|_| SshError::Key("no randomness for a host key".into()))?;
    let pair = Ed25519Keypair::from_seed(&seed);
    let key = PrivateKey::new(KeypairData::Ed25519(pair), "gatehouse host key")
        .map_err(|e| SshError::Key(e.to_string()))?;
    let text = key
        .to_openssh(LineEnding::LF)
        .map_err(|e| SshError::Key(e.to_string()))?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    gatehouse_core::private_file::write_private(path, text.as_bytes())?;
    tracing::info!(path = %path.display(), "made the gateway's SSH host key");
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_key_is_made_once_and_read_back() -> Result<(), SshError> {
        let dir = std::env::temp_dir().join(format!("gh-hostkey-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("ssh_host_ed25519_key");
        let made = load_or_create(&path)?;
        let read = load_or_create(&path)?;
        assert_eq!(made.public_key(), read.public_key());
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    }
}
