//! Revocations reaching live sessions: the set of tokens revoked while the gateway runs,
//! watched by every session so a revoked token's sessions end within a poll interval.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use tokio::sync::watch;

use crate::identity::TokenId;

/// How a JWT's token id starts (`jwt_` + a hash of the token).
pub const JWT_PREFIX: &str = "jwt_";

/// The id under which a JWT subject's revocation is kept and published: `subject:` + its
/// identity (`namespace:sub`). No token or key id looks like it.
pub fn subject_key(identity: &str) -> TokenId {
    TokenId(format!("subject:{identity}"))
}

/// The tokens (and JWT subjects) revoked since the gateway started, with when.
pub type RevokedSet = Arc<HashMap<TokenId, SystemTime>>;

/// Publishes revocations to sessions.
#[derive(Debug)]
pub struct Revocations {
    tx: watch::Sender<RevokedSet>,
}

impl Default for Revocations {
    fn default() -> Self {
        Self {
            tx: watch::Sender::new(Arc::new(HashMap::new())),
        }
    }
}

impl Revocations {
    /// Adds revocations; sessions of those tokens end (a subject's: those opened before).
    /// A later revocation of the same id moves its time forward.
    pub fn revoke(&self, revoked: impl IntoIterator<Item = (TokenId, SystemTime)>) {
        let fresh: Vec<(TokenId, SystemTime)> = revoked.into_iter().collect();
        self.tx.send_if_modified(|set| {
            let newer: Vec<&(TokenId, SystemTime)> = fresh
                .iter()
                .filter(|(id, at)| set.get(id).is_none_or(|known| known < at))
                .collect();
            if newer.is_empty() {
                return false;
            }
            let mut next = set.as_ref().clone();
            next.extend(newer.into_iter().cloned());
            *set = Arc::new(next);
            true
        });
    }

    /// A receiver a session watches.
    pub fn subscribe(&self) -> watch::Receiver<RevokedSet> {
        self.tx.subscribe()
    }
}
