//! SSH public keys registered to an identity: add, list (revocation is
//! [`Store::revoke_credential`]). A key is a row of the `tokens` table of kind `ssh-key`,
//! so it has a token's id, scope, expiry and revocation, and is found by its fingerprint.

use crate::db::{params, DbError, OptionalExtension, Row};
use crate::error::AuditError;
use crate::store::Store;
use crate::tokens::{insert, token_from_row, CredentialKind, NewToken, KEY_COLUMNS};
use gatehouse_core::ssh_key::new_key_id;
use gatehouse_core::ssh_key_fingerprint;
use gatehouse_core::TokenRecord;

/// A registered key as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyRow {
    /// The token the key stands for: id (`key_...`), identity, scope, expiry, revocation.
    pub token: TokenRecord,
    /// `SHA256:...`, as `ssh-keygen -lf` prints it.
    pub fingerprint: String,
    /// The OpenSSH public key line as registered (`type base64 [comment]`).
    pub public_key: String,
}

impl KeyRow {
    /// The key type (`ssh-ed25519`, ...), the line's first field.
    pub fn key_type(&self) -> &str {
        self.public_key
            .split_whitespace()
            .next()
            .unwrap_or_default()
    }
}

impl Store {
    /// Registers an OpenSSH public key line (`type base64 [comment]`) to the grant's identity.
    ///
    /// Refused if the line is not a public key, or if the key is already registered and not
    /// removed: a fingerprint names one identity at a time.
    pub fn add_key(&self, new: &NewToken, public_key_line: &str) -> Result<KeyRow, AuditError> {
        let (fingerprint, _) = ssh_key_fingerprint(public_key_line)?;
        let line = public_key_line.trim();
        let id = new_key_id()?;
        let (mut db, chain) = self.admin()?;
        let live = |db: &mut crate::db::Db| {
            db.query_row(
                "SELECT id, identity FROM tokens
                 WHERE kind = 'ssh-key' AND fingerprint = ?1 AND revoked_at IS NULL",
                params![fingerprint],
                |r| Ok((r.get::<String>(0)?, r.get::<String>(1)?)),
            )
            .optional()
        };
        let conflict = |(id, identity): (String, String)| {
            AuditError::Conflict(format!(
                "key {fingerprint} is already registered as {id} (identity {identity}); \
                 `gatehouse key remove {id}` first"
            ))
        };
        if let Some(existing) = live(&mut db)? {
            return Err(conflict(existing));
        }
        // `hash` must be unique and non-null; this value can never equal a token's hex digest.
        let hash = format!("{}:{}", CredentialKind::SshKey.as_str(), id.0);
        let inserted = insert(
            &mut db,
            &chain,
            &id,
            &hash,
            new,
            CredentialKind::SshKey,
            Some((&fingerprint, line)),
        );
        match inserted {
            Ok(()) => {}
            // Another process registered it between the check and the insert.
            Err(AuditError::Database(e)) if e.is_unique_violation() => {
                return Err(live(&mut db)?
                    .map(conflict)
                    .unwrap_or(AuditError::Database(e)));
            }
            Err(e) => return Err(e),
        }
        db.query_row(
            &format!("SELECT {KEY_COLUMNS} FROM tokens WHERE id = ?1"),
            params![id.0],
            key_from_row,
        )?
    }

    /// Every registered key, newest first.
    pub fn list_keys(&self) -> Result<Vec<KeyRow>, AuditError> {
        self.read(|db| {
            db.query_map(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM tokens WHERE kind = 'ssh-key' \
                     ORDER BY created_at DESC"
                ),
                params![],
                key_from_row,
            )?
            .into_iter()
            .collect()
        })
    }
}

/// Decodes a key row selected as [`KEY_COLUMNS`].
pub(crate) fn key_from_row(row: &Row<'_>) -> Result<Result<KeyRow, AuditError>, DbError> {
    let token = token_from_row(row)?;
    let fingerprint: Option<String> = row.get(8)?;
    let public_key: Option<String> = row.get(9)?;
    Ok(token.and_then(|token| match (fingerprint, public_key) {
        (Some(fingerprint), Some(public_key)) => Ok(KeyRow {
            token,
            fingerprint,
            public_key,
        }),
        _ => Err(AuditError::Corrupt(format!(
            "key {} has no fingerprint or public key",
            token.id
        ))),
    }))
}
