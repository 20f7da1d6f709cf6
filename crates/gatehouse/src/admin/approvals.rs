//! `GET /v1/approvals[?pending=true]`, `POST /v1/approvals/{id}/approve|deny` with an
//! optional `{"reason": "..."}`.

use axum::extract::{Path, Query, State};
use axum::Json;
use gatehouse_audit::ApprovalRow;
use gatehouse_core::time::display;
use gatehouse_core::ApprovalDesk;
use serde::Deserialize;

use super::auth::Caller;
use super::{blocking, AdminState, ApiError};

/// Query of the listing.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only pending requests.
    #[serde(default)]
    pending: bool,
}

/// Body of a decision.
#[derive(Debug, Default, Deserialize)]
pub struct DecisionBody {
    /// Why (kept in the approval trail).
    reason: Option<String>,
}

pub(super) async fn list(
    State(state): State<AdminState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<ApprovalRow>>, ApiError> {
    caller.require_approver(&state)?;
    let desk = state.approvals.clone();
    let rows = blocking(move || Ok(desk.list(q.pending)?)).await?;
    // Administrators see every request; an approver only those their groups may decide.
    let admin = caller.require_admin(&state).is_ok();
    Ok(Json(
        rows.into_iter()
            .filter(|r| admin || r.approvers.iter().any(|g| caller.0.groups.contains(g)))
            .collect(),
    ))
}

pub(super) async fn approve(
    state: State<AdminState>,
    caller: Caller,
    id: Path<String>,
    body: Option<Json<DecisionBody>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    decide(state, caller, id, body, true).await
}

pub(super) async fn deny(
    state: State<AdminState>,
    caller: Caller,
    id: Path<String>,
    body: Option<Json<DecisionBody>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    decide(state, caller, id, body, false).await
}

async fn decide(
    State(state): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Option<Json<DecisionBody>>,
    approve: bool,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require_approver(&state)?;
    let reason = body.and_then(|Json(b)| b.reason).filter(|r| !r.is_empty());
    let decision = state
        .approvals
        .decide(&id, &caller.0, approve, reason)
        .await?;
    tracing::info!(approval = %id, by = %decision.by, approved = decision.approved, "approval decided");
    Ok(Json(serde_json::json!({
        "id": id,
        "state": if decision.approved { "approved" } else { "denied" },
        "decided_by": decision.by,
        "decided_at": display(decision.at),
        "reason": decision.reason,
    })))
}
