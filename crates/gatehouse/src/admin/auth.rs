//! Who is calling: the bearer token, authenticated by the core exactly as on the wires.
//!
//! Members of `[admin] groups` may use every endpoint. Members of a review rule's approver
//! groups may list and decide approvals (each decision is further checked against that
//! request's own approvers). Everyone else is refused.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use gatehouse_core::identity::Identity;

use super::{AdminState, ApiError};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Identity);

impl Caller {
    fn in_any(&self, groups: &[String]) -> bool {
        self.0.groups.iter().any(|g| groups.contains(g))
    }

    /// Refuses callers outside `[admin] groups`.
    pub fn require_admin(&self, state: &AdminState) -> Result<(), ApiError> {
        if self.in_any(&state.admin_groups) {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "{} is not in an admin group ({}); ask an administrator",
            self.0.name,
            state.admin_groups.join(", ")
        )))
    }

    /// Refuses callers who are neither administrators nor approvers of some rule.
    pub fn require_approver(&self, state: &AdminState) -> Result<(), ApiError> {
        if self.in_any(&state.admin_groups) || self.in_any(&state.approver_groups) {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "{} is neither an administrator nor an approver of any rule",
            self.0.name
        )))
    }
}

impl FromRequestParts<AdminState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        let header = parts
            .headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        let Some(token) = header.strip_prefix("Bearer ").map(str::trim) else {
            return Err(ApiError::Unauthorized(
                "send your token as `Authorization: Bearer TOKEN` (the CLI reads GATEHOUSE_TOKEN)"
                    .into(),
            ));
        };
        let record = state.gateway.authenticate(token).await?;
        Ok(Self(record.identity))
    }
}
