//! SSH public keys as credentials: the OpenSSH SHA-256 fingerprint a key is registered and
//! looked up by.
//!
//! The fingerprint is what `ssh-keygen -lf` prints: `SHA256:` + base64 (no padding) of the
//! SHA-256 of the key's wire-format blob. Pure functions; the SSH wire proves the client holds
//! the private key, the store maps the fingerprint to an identity.

use aws_lc_rs::digest;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD};
use base64::Engine;

use crate::error::{PublicKeyError, StoreError};
use crate::identity::{random_hex, TokenId};

/// Prefix of a registered key's public id (`key_` + 12 hex), beside tokens' `tok_`.
pub const KEY_ID_PREFIX: &str = "key_";

/// What every fingerprint starts with.
pub const FINGERPRINT_PREFIX: &str = "SHA256:";

/// Key types accepted for registration: what OpenSSH offers today. Certificates are not keys
/// (their fingerprint changes with every reissue), and DSA is disabled in OpenSSH.
pub const KEY_TYPES: &[&str] = &[
    "ssh-ed25519",
    "ssh-rsa",
    "ecdsa-sha2-nistp256",
    "ecdsa-sha2-nistp384",
    "ecdsa-sha2-nistp521",
    "sk-ssh-ed25519@openssh.com",
    "sk-ecdsa-sha2-nistp256@openssh.com",
];

/// The longest public key line taken: a 16384-bit RSA key is about 2.8 KB of base64.
const MAX_LINE: usize = 16 * 1024;

/// Length of the base64 (no padding) of a SHA-256.
const FINGERPRINT_B64_LEN: usize = 43;

/// Parses one OpenSSH public key line (`type base64 [comment]`, as in a `.pub` file) and returns
/// its fingerprint (`SHA256:...`, as `ssh-keygen -lf` prints it) and its key type.
///
/// The blob must decode and must name the same type as the line, so a line cannot pass off one
/// key as another type.
pub fn ssh_key_fingerprint(
    openssh_public_key_line: &str,
) -> Result<(String, String), PublicKeyError> {
    let line = openssh_public_key_line.trim();
    if line.len() > MAX_LINE {
        return Err(PublicKeyError::TooLong(MAX_LINE));
    }
    if line.starts_with("-----BEGIN") || line.starts_with("---- BEGIN") {
        // Say so before anything else: a private key must not go any further.
        if line.contains("PRIVATE KEY") {
            return Err(PublicKeyError::NotPublic);
        }
        return Err(PublicKeyError::Malformed(
            "this is a PEM or RFC 4716 file; convert it with `ssh-keygen -i -f FILE`".into(),
        ));
    }
    if line.contains(['\n', '\r']) {
        return Err(PublicKeyError::SeveralLines);
    }
    let mut fields = line.split_ascii_whitespace();
    let (Some(key_type), Some(encoded)) = (fields.next(), fields.next()) else {
        return Err(PublicKeyError::Malformed(
            "expected `TYPE BASE64 [COMMENT]`".into(),
        ));
    };
    if !KEY_TYPES.contains(&key_type) {
        return Err(PublicKeyError::UnsupportedType(key_type.to_owned()));
    }
    let blob = STANDARD
        .decode(encoded)
        .map_err(|_| PublicKeyError::Malformed("the key is not base64".into()))?;
    match blob_type(&blob) {
        Some(inner) if inner == key_type.as_bytes() => {}
        _ => {
            return Err(PublicKeyError::Malformed(format!(
                "the key's data is not a {key_type} key"
            )))
        }
    }
    Ok((fingerprint_of_blob(&blob), key_type.to_owned()))
}

/// The fingerprint of a public key's wire-format blob (as an SSH client sends it in its
/// `publickey` request): what the wire passes to [`crate::Credential::PublicKey`].
pub fn fingerprint_of_blob(blob: &[u8]) -> String {
    let hash = digest::digest(&digest::SHA256, blob);
    format!(
        "{FINGERPRINT_PREFIX}{}",
        STANDARD_NO_PAD.encode(hash.as_ref())
    )
}

/// A fresh public id for a registered key.
pub fn new_key_id() -> Result<TokenId, StoreError> {
    Ok(TokenId(format!("{KEY_ID_PREFIX}{}", random_hex(6)?)))
}

/// Whether `text` has the shape of a fingerprint (prefix and 43 base64 characters). Anything
/// else cannot name a registered key.
pub fn is_fingerprint(text: &str) -> bool {
    text.strip_prefix(FINGERPRINT_PREFIX).is_some_and(|b64| {
        b64.len() == FINGERPRINT_B64_LEN
            && b64
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    })
}

/// The blob's leading string (u32 big-endian length, then the key type), if well formed and
/// followed by key material.
fn blob_type(blob: &[u8]) -> Option<&[u8]> {
    let len = u32::from_be_bytes(blob.get(..4)?.try_into().ok()?);
    let end = 4usize.checked_add(usize::try_from(len).ok()?)?;
    let name = blob.get(4..end)?;
    (blob.len() > end).then_some(name)
}

#[cfg(test)]
mod tests;
