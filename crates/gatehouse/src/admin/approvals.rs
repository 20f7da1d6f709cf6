//! `GET /v1/approvals[?pending=true&limit=N&offset=N]` (newest first, a page at a time),
//! `GET /v1/approvals/{id}`, `POST /v1/approvals/{id}/approve|deny` with an optional
//! `{"reason": "..."}`. The live inbox is [`super::inbox`].

use axum::extract::{Path, Query, State};
use axum::Json;
use gatehouse_core::time::display;
use gatehouse_core::ApprovalDesk;
use serde::Deserialize;

use super::auth::Caller;
use super::inbox::{may_see, visible, InboxRow};
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
    let limit = q.limit.unwrap_or(1000).clamp(1, 1000);
    let (reader, who) = (state.clone(), caller.clone());
    let rows = blocking(move || {
        let desk = &reader.approvals;
        if who.is_admin(&reader) {
            return Ok(desk.page(q.pending, limit, q.offset)?);
        }
        // Others see only some requests: the page is counted in those, read on until it is
        // full (a page of the table would come back short, or empty while theirs wait).
        let (mut page, mut skipped, mut read) = (Vec::new(), 0, 0);
        while page.len() < limit as usize && read < SCANNED_AT_MOST {
            let batch = desk.page(q.pending, 1000, read)?;
            if batch.is_empty() {
                break;
            }
            read += batch.len() as u32;
            for row in batch.into_iter().filter(|r| may_see(&reader, &who, r)) {
                if skipped < q.offset {
                    skipped += 1;
                } else if page.len() < limit as usize {
                    page.push(row);
                }
            }
        }
        Ok(page)
    })
    .await?;
    Ok(Json(visible(&state, &caller, rows)))
}

/// How many requests a non-administrator's page reads through at most.
const SCANNED_AT_MOST: u32 = 100_000;

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
