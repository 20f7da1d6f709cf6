//! Per-command approvals: a command held by a `review` rule, the request an approver decides,
//! and the desk (a store trait) that keeps requests and carries decisions to the held command.
//!
//! The desk is a trait so a decision made on one gateway instance releases a command held on
//! another once the store is shared; the SQLite desk in `gatehouse-audit` does it in-process.

use std::fmt;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use serde::Serialize;
use thiserror::Error;

use crate::error::StoreError;
use crate::events::SessionId;
use crate::identity::{random_hex, Identity};

pub use crate::events::ApprovalId;

impl ApprovalId {
    /// A fresh random id.
    pub fn generate() -> Result<Self, StoreError> {
        Ok(Self(format!("apr_{}", random_hex(6)?)))
    }
}

impl fmt::Display for ApprovalId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A held command waiting for a decision: who, what, where, which rule, when.
#[derive(Debug, Clone)]
pub struct ApprovalRequest {
    /// Its id.
    pub id: ApprovalId,
    /// The session holding the command.
    pub session: SessionId,
    /// Who asked.
    pub identity: String,
    /// Their groups.
    pub groups: Vec<String>,
    /// The connection.
    pub connection: String,
    /// The wire (`postgres`, ...).
    pub protocol: String,
    /// The command text, as the audit trail keeps it (masked).
    pub text: String,
    /// Its bind parameters (masked).
    pub params: Vec<Option<String>>,
    /// Its statement classes.
    pub class: String,
    /// The review rule that held it.
    pub rule: String,
    /// Groups whose members may decide.
    pub approvers: Vec<String>,
    /// When it was asked.
    pub requested_at: SystemTime,
    /// When the held command stops waiting.
    pub expires_at: SystemTime,
    /// SHA-256 of the exact command text and parameters: what an approval's grace covers.
    pub fingerprint: String,
}

/// An approver's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Approved (`true`) or denied.
    pub approved: bool,
    /// The approver's identity.
    pub by: String,
    /// Why, if they said.
    pub reason: Option<String>,
    /// When.
    pub at: SystemTime,
}

/// Why a decision was not taken; each says what to do.
#[derive(Debug, Error)]
pub enum DecideError {
    /// No request has this id.
    #[error("no approval request {0}; list them with `gatehouse approvals list --pending`")]
    NotFound(String),
    /// The request is no longer pending.
    #[error("approval request {id} is already {state}; nothing to decide")]
    NotPending {
        /// The request.
        id: String,
        /// Its state.
        state: String,
    },
    /// The approver asked for it themselves.
    #[error("you asked for {0} yourself; another approver must decide it")]
    OwnRequest(String),
    /// The approver is in none of the rule's approver groups.
    #[error("you may not decide {id}: its rule needs a member of {approvers}")]
    NotApprover {
        /// The request.
        id: String,
        /// The approver groups, listed.
        approvers: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Checks that `who` may decide a request asked by `requester` under `approvers`.
pub fn check_approver(
    id: &str,
    requester: &str,
    approvers: &[String],
    who: &Identity,
) -> Result<(), DecideError> {
    if who.name == requester {
        return Err(DecideError::OwnRequest(id.to_owned()));
    }
    if !who.groups.iter().any(|g| approvers.contains(g)) {
        return Err(DecideError::NotApprover {
            id: id.to_owned(),
            approvers: approvers.join(", "),
        });
    }
    Ok(())
}

/// Where approval requests are kept and decided.
#[async_trait]
pub trait ApprovalDesk: Send + Sync {
    /// Stores a new pending request; durable when it returns. A request that cannot be stored
    /// refuses its command.
    async fn request(&self, request: &ApprovalRequest) -> Result<(), StoreError>;

    /// Waits up to `timeout` for the request's decision; `None` if none came.
    async fn wait_decision(
        &self,
        id: &ApprovalId,
        timeout: Duration,
    ) -> Result<Option<Decision>, StoreError>;

    /// Marks a request that got no decision in time as expired. If a decision arrived just
    /// before, that decision is returned instead (and stands).
    async fn expire(&self, id: &ApprovalId) -> Result<Option<Decision>, StoreError>;

    /// Withdraws a pending request whose command stopped waiting (the client cancelled or
    /// left); a decision taken meanwhile stands.
    async fn withdraw(&self, id: &ApprovalId, why: &str) -> Result<(), StoreError>;

    /// Records that the approved command ran as entry `seq` of `session`.
    async fn executed(
        &self,
        id: &ApprovalId,
        session: &SessionId,
        seq: u64,
    ) -> Result<(), StoreError>;

    /// An approval, decided at or after `since`, of the same command (`fingerprint`) for the same
    /// identity and connection: an approved command re-run within its rule's grace.
    async fn recent_approval(
        &self,
        identity: &str,
        connection: &str,
        fingerprint: &str,
        since: SystemTime,
    ) -> Result<Option<ApprovalId>, StoreError>;

    /// Decides a pending request as `who` (never the requester; a member of its approvers).
    async fn decide(
        &self,
        id: &str,
        who: &Identity,
        approve: bool,
        reason: Option<String>,
    ) -> Result<Decision, DecideError>;
}

/// A desk that cannot hold anything: every review refuses its command (fail closed). For
/// gateways built without a store for approvals, and tests.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoApprovals;

#[async_trait]
impl ApprovalDesk for NoApprovals {
    async fn request(&self, _: &ApprovalRequest) -> Result<(), StoreError> {
        Err(StoreError("no approvals desk is configured".into()))
    }

    async fn wait_decision(
        &self,
        _: &ApprovalId,
        _: Duration,
    ) -> Result<Option<Decision>, StoreError> {
        Ok(None)
    }

    async fn expire(&self, _: &ApprovalId) -> Result<Option<Decision>, StoreError> {
        Ok(None)
    }

    async fn executed(&self, _: &ApprovalId, _: &SessionId, _: u64) -> Result<(), StoreError> {
        Ok(())
    }

    async fn withdraw(&self, _: &ApprovalId, _: &str) -> Result<(), StoreError> {
        Ok(())
    }

    async fn recent_approval(
        &self,
        _: &str,
        _: &str,
        _: &str,
        _: SystemTime,
    ) -> Result<Option<ApprovalId>, StoreError> {
        Ok(None)
    }

    async fn decide(
        &self,
        id: &str,
        _: &Identity,
        _: bool,
        _: Option<String>,
    ) -> Result<Decision, DecideError> {
        Err(DecideError::NotFound(id.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_other_approvers_may_decide() {
        let dba = |name: &str| Identity {
            name: name.into(),
            groups: vec!["dba".into()],
        };
        let approvers = vec!["dba".to_string()];
        assert!(check_approver("apr_1", "alice", &approvers, &dba("bob")).is_ok());
        assert!(matches!(
            check_approver("apr_1", "alice", &approvers, &dba("alice")),
            Err(DecideError::OwnRequest(_))
        ));
        let dev = Identity {
            name: "carol".into(),
            groups: vec!["dev".into()],
        };
        let err = check_approver("apr_1", "alice", &approvers, &dev).err();
        assert!(err.is_some_and(|e| e.to_string().contains("member of dba")));
    }
}
