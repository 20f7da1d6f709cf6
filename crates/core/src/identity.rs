//! Identities and gateway-issued service tokens.
//!
//! A token is 32 random bytes shown once (`gh_` + base64url). The store keeps only its SHA-256,
//! so a leaked database does not leak working tokens.

use std::time::SystemTime;

use aws_lc_rs::digest;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};

use crate::error::StoreError;

/// Prefix of every gateway-issued token, so secret scanners can spot a leaked one.
pub const TOKEN_PREFIX: &str = "gh_";

/// Who is asking: the identity a token (or later a JWT) names, and its groups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// The identity name (a service, a job, a person).
    pub name: String,
    /// The groups it belongs to; connections and rules grant by group.
    pub groups: Vec<String>,
}

pub use crate::events::TokenId;

/// The SHA-256 of a token, hex encoded: what the store keeps and looks up by.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TokenHash(pub String);

impl TokenHash {
    /// Hashes a presented token.
    pub fn of(token: &str) -> Self {
        Self(hex(
            digest::digest(&digest::SHA256, token.as_bytes()).as_ref()
        ))
    }
}

/// A token as the store knows it (never the token itself).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRecord {
    /// Public id.
    pub id: TokenId,
    /// The identity it authenticates as.
    pub identity: Identity,
    /// Connections it may open; empty means any its groups allow.
    pub connections: Vec<String>,
    /// When it was issued.
    pub created_at: SystemTime,
    /// When it stops working, if ever.
    pub expires_at: Option<SystemTime>,
    /// When it was revoked, if it was.
    pub revoked_at: Option<SystemTime>,
    /// Who issued it (an identity name, or `bootstrap`).
    pub created_by: String,
}

impl TokenRecord {
    /// Whether the token is usable at `now`.
    pub fn is_valid_at(&self, now: SystemTime) -> bool {
        self.revoked_at.is_none() && self.expires_at.is_none_or(|e| e > now)
    }
}

/// A freshly generated token: the secret (show once) and what to store.
#[derive(Debug)]
pub struct IssuedToken {
    /// The token itself. Print it once; never store it.
    pub secret: String,
    /// Its public id.
    pub id: TokenId,
    /// Its hash, for the store.
    pub hash: TokenHash,
}

/// Generates a new high-entropy token.
pub fn issue_token() -> Result<IssuedToken, StoreError> {
    let rng = SystemRandom::new();
    let mut secret = [0u8; 32];
    let mut id = [0u8; 6];
    rng.fill(&mut secret)
        .and_then(|()| rng.fill(&mut id))
        .map_err(|_| StoreError("the system random generator failed".into()))?;
    let secret = format!("{TOKEN_PREFIX}{}", base64url(&secret));
    Ok(IssuedToken {
        id: TokenId(format!("tok_{}", hex(&id))),
        hash: TokenHash::of(&secret),
        secret,
    })
}

/// Random bytes as lower-case hex (session ids and the like).
pub fn random_hex(len: usize) -> Result<String, StoreError> {
    let mut bytes = vec![0u8; len];
    SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| StoreError("the system random generator failed".into()))?;
    Ok(hex(&bytes))
}

/// Bytes as lower-case hex.
///
/// On the audit chain's path (three digests per write), so it looks digits up rather than
/// going through the formatter, which cost ~250 instructions a byte.
pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    // Bytes, then one check that they are text: every journal line's hash goes through here,
    // and pushing each digit as a char cost several times more.
    let mut out = Vec::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[usize::from(b >> 4)]);
        out.push(DIGITS[usize::from(b & 0x0f)]);
    }
    String::from_utf8(out).unwrap_or_default()
}

fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk.first().copied().unwrap_or(0),
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        let chars = chunk.len() + 1;
        for i in 0..chars {
            let idx = (n >> (18 - 6 * i)) & 0x3f;
            out.push(char::from(ALPHABET[idx as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_unique_prefixed_and_hashed() {
        let a = issue_token().unwrap_or_else(|e| panic!("{e}"));
        let b = issue_token().unwrap_or_else(|e| panic!("{e}"));
        assert!(a.secret.starts_with(TOKEN_PREFIX));
        assert_eq!(a.secret.len(), TOKEN_PREFIX.len() + 43);
        assert_ne!(a.secret, b.secret);
        assert_eq!(a.hash, TokenHash::of(&a.secret));
        assert_ne!(a.hash.0, a.secret);
        assert_eq!(a.hash.0.len(), 64);
    }

    #[test]
    fn hex_is_the_formatters_lower_case_hex() {
        let all: Vec<u8> = (0..=255).collect();
        let formatted: String = all.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(hex(&all), formatted);
        assert_eq!(hex(&[]), "");
    }

    #[test]
    fn base64url_matches_known_vectors() {
        assert_eq!(base64url(b"f"), "Zg");
        assert_eq!(base64url(b"fo"), "Zm8");
        assert_eq!(base64url(b"foo"), "Zm9v");
        assert_eq!(base64url(&[0xfb, 0xff]), "-_8");
    }
}
