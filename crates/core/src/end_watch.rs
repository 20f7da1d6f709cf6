//! When a session ends from the gateway's side: its token revoked or expired (or, for a JWT,
//! its subject revoked), or the gateway shutting down.

use std::fmt;
use std::time::SystemTime;

use tokio::sync::watch;

use crate::identity::TokenId;
use crate::revocation::RevokedSet;

/// Why a session ended from the gateway's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndReason {
    /// The token was revoked while the session ran.
    TokenRevoked,
    /// The token expired while the session ran.
    TokenExpired,
    /// The gateway is shutting down.
    Shutdown,
}

impl EndReason {
    /// What a client is told as its session is ended, on every wire.
    pub fn message(self) -> String {
        format!("terminating connection: {self}")
    }

    /// What the client can do about it.
    pub fn hint(self) -> &'static str {
        match self {
            Self::Shutdown => "reconnect when the gateway is back",
            Self::TokenRevoked | Self::TokenExpired => "ask for a new token",
        }
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::TokenRevoked => "token revoked",
            Self::TokenExpired => "token expired",
            Self::Shutdown => "gateway shutting down",
        })
    }
}

/// Watches for a session's end; cheap to clone (watch receivers).
#[derive(Debug, Clone)]
pub(crate) struct EndWatch {
    pub(crate) revoked: watch::Receiver<RevokedSet>,
    pub(crate) shutdown: watch::Receiver<bool>,
    /// The session's token.
    pub(crate) token: TokenId,
    /// A JWT session's subject key, whose revocation also ends it.
    pub(crate) subject: Option<TokenId>,
    /// When the session opened (a subject revoked before then does not end it).
    pub(crate) started_at: SystemTime,
    /// When its token expires.
    pub(crate) expires: Option<SystemTime>,
}

impl EndWatch {
    /// Resolves when the session is ended, with why. Cancel-safe: dropping the future loses
    /// nothing.
    pub(crate) async fn ended(&self) -> EndReason {
        let mut revoked = self.revoked.clone();
        let mut shutdown = self.shutdown.clone();
        let expiry = self.expires.map(|t| {
            let left = t.duration_since(SystemTime::now()).unwrap_or_default();
            tokio::time::Instant::now() + left
        });
        loop {
            let set = revoked.borrow_and_update().clone();
            // A subject's revocation ends the sessions opened before it; a token issued
            // after it was let in at login.
            let subject_revoked = self
                .subject
                .as_ref()
                .and_then(|s| set.get(s))
                .is_some_and(|at| *at >= self.started_at);
            if set.contains_key(&self.token) || subject_revoked {
                return EndReason::TokenRevoked;
            }
            if *shutdown.borrow_and_update() {
                return EndReason::Shutdown;
            }
            let expired = async {
                match expiry {
                    Some(at) => tokio::time::sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                changed = revoked.changed() => {
                    if changed.is_err() {
                        return EndReason::Shutdown;
                    }
                }
                changed = shutdown.changed() => {
                    if changed.is_err() {
                        return EndReason::Shutdown;
                    }
                }
                () = expired => return EndReason::TokenExpired,
            }
        }
    }
}
