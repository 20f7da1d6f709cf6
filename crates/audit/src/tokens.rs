//! Service tokens in the store: issue, list, revoke. Only hashes are kept.
//!
//! Registered SSH keys ([`crate::keys`]) live in the same table with kind `ssh-key`; revocation
//! is shared, listings and lookups keep the kinds apart.

use std::time::SystemTime;

use crate::db::{params, Db, DbError, OptionalExtension, Row};
use crate::error::AuditError;
use crate::store::Store;
use async_trait::async_trait;
use gatehouse_core::identity::issue_token;
use gatehouse_core::store::TokenRegistry;
use gatehouse_core::time::{from_micros, to_micros};
use gatehouse_core::{Identity, StoreError, TokenHash, TokenId, TokenRecord};

/// The columns [`crate::keys::key_from_row`] reads.
pub(crate) const KEY_COLUMNS: &str = "id, identity, groups_json, connections_json, created_at, \
     expires_at, revoked_at, created_by, fingerprint, public_key";

/// What to issue a token for.
#[derive(Debug, Clone)]
pub struct NewToken {
    /// Identity name.
    pub identity: String,
    /// Groups.
    pub groups: Vec<String>,
    /// Connection scope (empty: any the groups allow).
    pub connections: Vec<String>,
    /// Expiry, if any.
    pub expires_at: Option<SystemTime>,
    /// Who issues it.
    pub created_by: String,
}

/// A token as listed (never the secret).
pub type TokenRow = TokenRecord;

/// The kinds of credential the `tokens` table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialKind {
    /// A gateway-issued service token.
    Token,
    /// A registered SSH public key.
    SshKey,
}

impl CredentialKind {
    /// The value of the `kind` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::SshKey => "ssh-key",
        }
    }

    /// What people call it, and the command that lists its ids.
    fn noun_and_listing(self) -> (&'static str, &'static str) {
        match self {
            Self::Token => ("token", "gatehouse token list"),
            Self::SshKey => ("key", "gatehouse key list"),
        }
    }
}

impl Store {
    /// Issues a token and returns its id and the secret (show it once).
    pub fn create_token(&self, new: &NewToken) -> Result<(TokenId, String), AuditError> {
        let issued = issue_token()?;
        let (mut db, chain) = self.admin()?;
        insert(
            &mut db,
            &chain,
            &issued.id,
            &issued.hash.0,
            new,
            CredentialKind::Token,
            None,
        )?;
        Ok((issued.id, issued.secret))
    }

    /// Every token, newest first (keys are listed by [`Store::list_keys`]).
    pub fn list_tokens(&self) -> Result<Vec<TokenRow>, AuditError> {
        self.read(|db| {
            db.query_map(
                "SELECT id, identity, groups_json, connections_json, created_at, expires_at,
                        revoked_at, created_by
                 FROM tokens WHERE kind = 'token' ORDER BY created_at DESC",
                params![],
                token_from_row,
            )?
            .into_iter()
            .collect()
        })
    }

    /// How many tokens exist (zero on a fresh store: `serve` then bootstraps an admin). Keys
    /// do not count: they cannot call the admin API, so a store with only keys still needs
    /// its first admin token.
    pub fn token_count(&self) -> Result<u64, AuditError> {
        self.read(|db| {
            let n: i64 = db.query_row(
                "SELECT count(*) FROM tokens WHERE kind = 'token'",
                params![],
                |r| r.get(0),
            )?;
            Ok(u64::try_from(n).unwrap_or(0))
        })
    }

    /// Revokes a token; a running gateway ends its sessions within a second.
    pub fn revoke_token(&self, id: &str, by: &str) -> Result<(), AuditError> {
        self.revoke_credential(CredentialKind::Token, id, by)
    }

    /// Revokes a JWT subject (`namespace:sub`, as sessions show its identity): its live
    /// sessions end within a second, and its tokens issued until now are refused; tokens the
    /// identity provider issues later are not. Revoking again moves that time forward.
    pub fn revoke_subject(&self, identity: &str, by: &str) -> Result<(), AuditError> {
        if !identity.contains(':') {
            return Err(AuditError::NotFound(format!(
                "{identity:?} is not an identity from an identity provider: those are \
                 namespace:subject, as `gatehouse sessions list` shows them (a token or key \
                 is revoked by its id)"
            )));
        }
        let id = gatehouse_core::revocation::subject_key(identity).0;
        let now = to_micros(SystemTime::now());
        let (mut db, chain) = self.admin()?;
        crate::events::with_event(&mut db, &chain, |tx| {
            tx.execute(
                "INSERT INTO tokens (id, hash, identity, groups_json, connections_json,
                    created_at, created_by, revoked_at, revoked_by, kind)
                 VALUES (?1, ?1, ?2, '[]', '[]', ?3, ?4, ?3, ?4, 'subject')
                 ON CONFLICT(id) DO UPDATE SET revoked_at = excluded.revoked_at,
                    revoked_by = excluded.revoked_by",
                params![id, identity, now, by],
            )?;
            let event = crate::events::revoked(tx, &id)?
                .map(|body| (crate::events::REVOKED, id.clone(), body));
            Ok(((), event))
        })
    }

    /// Revokes a token or a key (only of that kind: a key id given to `token revoke` is not
    /// found); a running gateway ends its sessions within a second. Revoking twice is not an
    /// error, and keeps the first revocation's time.
    pub fn revoke_credential(
        &self,
        kind: CredentialKind,
        id: &str,
        by: &str,
    ) -> Result<(), AuditError> {
        let (mut db, chain) = self.admin()?;
        let changed = crate::events::with_event(&mut db, &chain, |tx| {
            let changed = tx.execute(
                "UPDATE tokens SET revoked_at = ?2, revoked_by = ?3
                 WHERE id = ?1 AND kind = ?4 AND revoked_at IS NULL",
                params![id, to_micros(SystemTime::now()), by, kind.as_str()],
            )?;
            let event = match changed {
                0 => None,
                _ => crate::events::revoked(tx, id)?
                    .map(|body| (crate::events::REVOKED, id.to_owned(), body)),
            };
            Ok((changed, event))
        })?;
        if changed == 0 {
            let exists: bool = db.query_row(
                "SELECT EXISTS (SELECT 1 FROM tokens WHERE id = ?1 AND kind = ?2)",
                params![id, kind.as_str()],
                |r| r.get(0),
            )?;
            if !exists {
                let (noun, listing) = kind.noun_and_listing();
                return Err(AuditError::NotFound(format!(
                    "no {noun} with id {id}; `{listing}` shows the ids"
                )));
            }
        }
        Ok(())
    }
}

/// Inserts a credential row; `key` is an SSH key's fingerprint and public key line.
pub(crate) fn insert(
    db: &mut Db,
    chain: &crate::chain::Chain,
    id: &TokenId,
    hash: &str,
    new: &NewToken,
    kind: CredentialKind,
    key: Option<(&str, &str)>,
) -> Result<(), AuditError> {
    if new.identity.contains(':') {
        // `namespace:sub` names a JWT's bearer; a gateway credential never looks like one.
        return Err(AuditError::Conflict(format!(
            "identity {:?} contains ':', which the gateway keeps for identities from an \
             identity provider (namespace:subject); choose another name",
            new.identity
        )));
    }
    crate::events::with_event(db, chain, |tx| {
        tx.execute(
            "INSERT INTO tokens (id, hash, identity, groups_json, connections_json, created_at,
            created_by, expires_at, kind, fingerprint, public_key)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
            params![
                id.0,
                hash,
                new.identity,
                serde_json::to_string(&new.groups).unwrap_or_else(|_| "[]".into()),
                serde_json::to_string(&new.connections).unwrap_or_else(|_| "[]".into()),
                to_micros(SystemTime::now()),
                new.created_by,
                new.expires_at.map(to_micros),
                kind.as_str(),
                key.map(|(fingerprint, _)| fingerprint),
                key.map(|(_, line)| line),
            ],
        )?;
        let issued = crate::events::issued(tx, &id.0)?
            .ok_or_else(|| AuditError::Corrupt(format!("credential {} not written", id.0)))?;
        Ok(((), Some((crate::events::ISSUED, id.0.clone(), issued))))
    })
}

/// Decodes a `tokens` row selected as
/// `id, identity, groups_json, connections_json, created_at, expires_at, revoked_at, created_by`.
pub(crate) fn token_from_row(row: &Row<'_>) -> Result<Result<TokenRecord, AuditError>, DbError> {
    let groups: String = row.get(2)?;
    let connections: String = row.get(3)?;
    let decode = |s: &str| {
        serde_json::from_str::<Vec<String>>(s).map_err(|e| AuditError::Corrupt(e.to_string()))
    };
    let record = (|| {
        Ok(TokenRecord {
            id: TokenId(row.get(0)?),
            identity: Identity {
                name: row.get(1)?,
                groups: decode(&groups)?,
            },
            connections: decode(&connections)?,
            created_at: from_micros(row.get(4)?),
            expires_at: row.get::<Option<i64>>(5)?.map(from_micros),
            revoked_at: row.get::<Option<i64>>(6)?.map(from_micros),
            created_by: row.get(7)?,
        })
    })();
    match record {
        Ok(r) => Ok(Ok(r)),
        Err(AuditError::Database(e)) => Err(e),
        Err(e) => Ok(Err(e)),
    }
}

#[async_trait]
impl TokenRegistry for Store {
    async fn find_by_hash(&self, hash: &TokenHash) -> Result<Option<TokenRecord>, StoreError> {
        let hash = hash.0.clone();
        self.read_async(move |db| {
            db.query_row(
                "SELECT id, identity, groups_json, connections_json, created_at, expires_at,
                        revoked_at, created_by
                 FROM tokens WHERE hash = ?1 AND kind = 'token'",
                params![hash],
                token_from_row,
            )
            .optional()?
            .transpose()
        })
        .await
    }

    async fn find_by_key(&self, fingerprint: &str) -> Result<Option<TokenRecord>, StoreError> {
        let fingerprint = fingerprint.to_owned();
        self.read_async(move |db| {
            // At most one live registration (a unique index); else the latest removed one, so
            // the refusal names who held the key.
            db.query_row(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM tokens
                     WHERE kind = 'ssh-key' AND fingerprint = ?1
                     ORDER BY revoked_at IS NULL DESC, created_at DESC LIMIT 1"
                ),
                params![fingerprint],
                token_from_row,
            )
            .optional()?
            .transpose()
        })
        .await
    }

    async fn subject_revoked_at(&self, identity: &str) -> Result<Option<SystemTime>, StoreError> {
        let id = gatehouse_core::revocation::subject_key(identity).0;
        self.read_async(move |db| {
            Ok(db
                .query_row(
                    "SELECT revoked_at FROM tokens WHERE id = ?1 AND kind = 'subject'",
                    params![id],
                    |r| r.get::<i64>(0),
                )
                .optional()?
                .map(from_micros))
        })
        .await
    }

    async fn revoked_since(
        &self,
        since: SystemTime,
    ) -> Result<Vec<(TokenId, SystemTime)>, StoreError> {
        let since = to_micros(since);
        self.read_async(move |db| {
            Ok(db.query_map(
                "SELECT id, revoked_at FROM tokens WHERE revoked_at >= ?1 ORDER BY revoked_at",
                params![since],
                |row| Ok((TokenId(row.get(0)?), from_micros(row.get(1)?))),
            )?)
        })
        .await
    }
}
