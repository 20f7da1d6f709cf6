//! Revocations reaching live sessions: the set of tokens revoked while the gateway runs,
//! watched by every session so a revoked token's sessions end within a poll interval.

use std::collections::HashSet;
use std::sync::Arc;

use tokio::sync::watch;

use crate::identity::TokenId;

/// The set of tokens revoked since the gateway started.
pub type RevokedSet = Arc<HashSet<TokenId>>;

/// Publishes revocations to sessions.
#[derive(Debug)]
pub struct Revocations {
    tx: watch::Sender<RevokedSet>,
}

impl Default for Revocations {
    fn default() -> Self {
        Self {
            tx: watch::Sender::new(Arc::new(HashSet::new())),
        }
    }
}

impl Revocations {
    /// Adds tokens to the revoked set; sessions of those tokens end.
    pub fn revoke(&self, ids: impl IntoIterator<Item = TokenId>) {
        let fresh: Vec<TokenId> = ids.into_iter().collect();
        self.tx.send_if_modified(|set| {
            let missing: Vec<&TokenId> = fresh.iter().filter(|id| !set.contains(*id)).collect();
            if missing.is_empty() {
                return false;
            }
            let mut next: HashSet<TokenId> = set.as_ref().clone();
            next.extend(missing.into_iter().cloned());
            *set = Arc::new(next);
            true
        });
    }

    /// A receiver a session watches.
    pub fn subscribe(&self) -> watch::Receiver<RevokedSet> {
        self.tx.subscribe()
    }
}
