//! `GET /v1/approvals[?pending=true&limit=N&offset=N]` (newest first, a page at a time),
//! `GET /v1/approvals/{id}`, `POST /v1/approvals/{id}/approve|deny` with an optional
//! `{"reason": "..."}`. The live inbox is [`super::inbox`].

use axum::extract::{Path, Query, State};
use axum::Json;
use gatehouse_core::time::display;
use gatehouse_core::ApprovalDesk;
use serde::Deserialize;

use super::auth::Caller;
use super::inbox::{visible, InboxRow};
use super::{blocking, AdminState, ApiError};

/// Query of the listing.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// Only pending requests.
    #[serde(default)]
    pending: bool,
    /// At most this many (default and most: 1000).
    limit: Option<u32>,
    /// Skipping the newest this many.
    #[serde(default)]
    offset: u32,
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
) -> Result<Json<Vec<InboxRow>>, ApiError> {
    caller.require_approver(&state)?;
    let desk = state.approvals.clone();
    let limit = q.limit.unwrap_or(1000).clamp(1, 1000);
    let rows = blocking(move || Ok(desk.page(q.pending, limit, q.offset)?)).await?;
    Ok(Json(visible(&state, &caller, rows)))
}

pub(super) async fn one(
    State(state): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<InboxRow>, ApiError> {
    caller.require_approver(&state)?;
    let desk = state.approvals.clone();
    let key = id.clone();
    let row = blocking(move || Ok(desk.get(&key)?)).await?;
    visible(&state, &caller, row.into_iter().collect())
        .pop()
        .map(Json)
        .ok_or_else(|| ApiError::NotFound(format!("no approval request {id} that you may see")))
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
