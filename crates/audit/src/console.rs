//! The web console's sign-ins, kept in the store so that every gateway instance sharing it
//! knows them, and signing out ends one everywhere.
//!
//! A sign-in is a random secret, the browser's cookie. The store keeps only the secret's
//! SHA-256 (the row's id) and the token it signed in with, sealed (AES-256-GCM) under a key
//! derived from the secret: the table, or a backup of it, holds no usable credential, and the
//! cookie is useless anywhere but the console (it is not a token the wires or the API take as
//! a bearer). Every request opens the sealed token again and authenticates it as the wires
//! do, so revoking the token ends its console sign-ins at once.

use std::time::{Duration, SystemTime};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::digest;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use gatehouse_core::identity::hex;
use gatehouse_core::time::to_micros;

use crate::db::{params, OptionalExtension};
use crate::error::AuditError;
use crate::store::Store;

/// Prefix of a console cookie's secret, so it is never mistaken for a token.
const PREFIX: &str = "gc_";

fn id_of(secret: &str) -> String {
    hex(digest::digest(
        &digest::SHA256,
        format!("gatehouse console id\0{secret}").as_bytes(),
    )
    .as_ref())
}

fn key_of(secret: &str) -> Result<LessSafeKey, AuditError> {
    let mac_key = hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes());
    let key = hmac::sign(&mac_key, b"gatehouse console seal");
    UnboundKey::new(&AES_256_GCM, key.as_ref())
        .map(LessSafeKey::new)
        .map_err(|_| AuditError::Corrupt("console seal key".into()))
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

fn seal(secret: &str, token: &str) -> Result<String, AuditError> {
    let mut nonce = [0u8; NONCE_LEN];
    SystemRandom::new()
        .fill(&mut nonce)
        .map_err(|_| AuditError::Corrupt("no randomness for a console sign-in".into()))?;
    let mut data = token.as_bytes().to_vec();
    key_of(secret)?
        .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::empty(), &mut data)
        .map_err(|_| AuditError::Corrupt("sealing a console sign-in failed".into()))?;
    Ok(format!("{}{}", hex(&nonce), hex(&data)))
}

fn open(secret: &str, sealed: &str) -> Option<String> {
    let bytes = unhex(sealed)?;
    let (nonce, data) = bytes.split_at_checked(NONCE_LEN)?;
    let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
    let mut data = data.to_vec();
    let plain = key_of(secret)
        .ok()?
        .open_in_place(nonce, Aad::empty(), &mut data)
        .ok()?;
    String::from_utf8(plain.to_vec()).ok()
}

/// Whether `text` looks like a console cookie's secret (never a token).
pub fn is_console_secret(text: &str) -> bool {
    text.strip_prefix(PREFIX)
        .is_some_and(|rest| rest.len() == 64 && rest.bytes().all(|b| b.is_ascii_hexdigit()))
}

impl Store {
    /// Signs `identity` in with `token` for `lasting`; returns the cookie's secret. Sign-ins
    /// that have expired are removed on the way.
    pub fn console_sign_in(
        &self,
        token: &str,
        identity: &str,
        lasting: Duration,
    ) -> Result<String, AuditError> {
        let mut random = [0u8; 32];
        SystemRandom::new()
            .fill(&mut random)
            .map_err(|_| AuditError::Corrupt("no randomness for a console sign-in".into()))?;
        let secret = format!("{PREFIX}{}", hex(&random));
        let now = SystemTime::now();
        let mut db = self.connect()?;
        db.execute(
            "DELETE FROM console_sessions WHERE expires_at <= ?1",
            params![to_micros(now)],
        )?;
        db.execute(
            "INSERT INTO console_sessions (id, sealed, identity, created_at, expires_at)
             VALUES (?1, ?2, ?3, ?4, ?5)",
            params![
                id_of(&secret),
                seal(&secret, token)?,
                identity,
                to_micros(now),
                to_micros(now + lasting)
            ],
        )?;
        Ok(secret)
    }

    /// The token a live console sign-in holds; `None` if the secret is unknown, expired,
    /// signed out, or does not open its seal.
    pub fn console_token(&self, secret: &str) -> Result<Option<String>, AuditError> {
        if !is_console_secret(secret) {
            return Ok(None);
        }
        let id = id_of(secret);
        let sealed: Option<String> = self.read(|db| {
            Ok(db
                .query_row(
                    "SELECT sealed FROM console_sessions WHERE id = ?1 AND expires_at > ?2",
                    params![id, to_micros(SystemTime::now())],
                    |row| row.get::<String>(0),
                )
                .optional()?)
        })?;
        Ok(sealed.and_then(|sealed| open(secret, &sealed)))
    }

    /// Ends a console sign-in, on every instance.
    pub fn console_sign_out(&self, secret: &str) -> Result<(), AuditError> {
        if !is_console_secret(secret) {
            return Ok(());
        }
        let id = id_of(secret);
        self.connect()?
            .execute("DELETE FROM console_sessions WHERE id = ?1", params![id])?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_seal_opens_only_with_its_secret() {
        let secret = format!("{PREFIX}{}", "ab".repeat(32));
        assert!(is_console_secret(&secret));
        let sealed = seal(&secret, "gh_token").unwrap();
        assert!(!sealed.contains("gh_token"));
        assert_eq!(open(&secret, &sealed).as_deref(), Some("gh_token"));
        let other = format!("{PREFIX}{}", "cd".repeat(32));
        assert_eq!(open(&other, &sealed), None);
        assert_eq!(open(&secret, "zz"), None);
        assert_eq!(open(&secret, ""), None);
        assert_ne!(id_of(&secret), id_of(&other));
        for bad in ["gh_x", "gc_short", &format!("gc_{}", "g".repeat(64))] {
            assert!(!is_console_secret(bad), "{bad}");
        }
    }
}
