//! SCRAM-SHA-256 (RFC 5802 / 7677) as a client, for the gateway's own login upstream.
//! No channel binding (`n,,`); the server's final signature is verified, so a server that does
//! not know the password cannot pretend the login succeeded.

use std::num::NonZeroU32;

use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_lc_rs::{digest, hmac, pbkdf2};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;

use crate::error::PgError;

/// The mechanism name.
pub const MECHANISM: &str = "SCRAM-SHA-256";

/// A SCRAM exchange in progress.
#[derive(Debug)]
pub struct ScramClient {
    password: String,
    client_first_bare: String,
    client_nonce: String,
    server_signature: Option<Vec<u8>>,
    verified: bool,
}

/// Most PBKDF2 iterations accepted from a server (PostgreSQL's default is 4096); a hostile
/// server asking for billions would stall the gateway.
const MAX_ITERATIONS: u32 = 1_000_000;

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data)
        .as_ref()
        .to_vec()
}

fn fail(what: &str) -> PgError {
    PgError::Upstream(format!(
        "SCRAM authentication with the upstream failed: {what}"
    ))
}

impl ScramClient {
    /// Starts an exchange for `password`.
    pub fn new(password: &str) -> Result<Self, PgError> {
        let mut raw = [0u8; 18];
        SystemRandom::new()
            .fill(&mut raw)
            .map_err(|_| fail("no randomness"))?;
        let client_nonce = B64.encode(raw);
        Ok(Self {
            password: password.to_owned(),
            client_first_bare: format!("n=,r={client_nonce}"),
            client_nonce,
            server_signature: None,
            verified: false,
        })
    }

    /// The client-first message.
    pub fn client_first(&self) -> String {
        format!("n,,{}", self.client_first_bare)
    }

    /// Answers the server-first message with the client-final message.
    pub fn client_final(&mut self, server_first: &str) -> Result<String, PgError> {
        let mut nonce = None;
        let mut salt = None;
        let mut iterations = None;
        for part in server_first.split(',') {
            match part.split_once('=') {
                Some(("r", v)) => nonce = Some(v),
                Some(("s", v)) => salt = B64.decode(v).ok(),
                Some(("i", v)) => iterations = v.parse::<u32>().ok().and_then(NonZeroU32::new),
                _ => {}
            }
        }
        let nonce = nonce.ok_or_else(|| fail("no nonce"))?;
        let salt = salt.ok_or_else(|| fail("no salt"))?;
        let iterations = iterations.ok_or_else(|| fail("no iteration count"))?;
        if iterations.get() > MAX_ITERATIONS {
            return Err(fail("the server asks for an unreasonable iteration count"));
        }
        if !nonce.starts_with(&self.client_nonce) {
            return Err(fail("the server's nonce does not extend ours"));
        }
        let mut salted = [0u8; 32];
        pbkdf2::derive(
            pbkdf2::PBKDF2_HMAC_SHA256,
            iterations,
            &salt,
            self.password.as_bytes(),
            &mut salted,
        );
        let client_key = hmac_sha256(&salted, b"Client Key");
        let stored_key = digest::digest(&digest::SHA256, &client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth_message = format!("{},{server_first},{without_proof}", self.client_first_bare);
        let signature = hmac_sha256(stored_key.as_ref(), auth_message.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(signature.iter())
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = hmac_sha256(&salted, b"Server Key");
        self.server_signature = Some(hmac_sha256(&server_key, auth_message.as_bytes()));
        Ok(format!("{without_proof},p={}", B64.encode(proof)))
    }

    /// Whether the server's final signature has been checked.
    pub fn verified(&self) -> bool {
        self.verified
    }

    /// Checks the server-final message.
    pub fn verify_server_final(&mut self, server_final: &str) -> Result<(), PgError> {
        let expected = self
            .server_signature
            .as_ref()
            .ok_or_else(|| fail("server-final before server-first"))?;
        let got = server_final
            .strip_prefix("v=")
            .and_then(|v| B64.decode(v.trim_end_matches('\0')).ok())
            .ok_or_else(|| fail("malformed server-final message"))?;
        if &got == expected {
            self.verified = true;
            Ok(())
        } else {
            Err(fail("the server's signature is wrong"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 7677's test vector, with its user name and nonce.
    #[test]
    fn rfc7677_vector() {
        let mut c = ScramClient {
            password: "pencil".into(),
            client_first_bare: "n=user,r=rOprNGfwEbeRWgbNEkqO".into(),
            client_nonce: "rOprNGfwEbeRWgbNEkqO".into(),
            server_signature: None,
            verified: false,
        };
        let fin = c
            .client_final(
                "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
                 s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(
            fin,
            "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,\
             p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
        );
        assert!(c
            .verify_server_final("v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=")
            .is_ok());
        assert!(c.verify_server_final("v=AAAA").is_err());
    }
}
