//! `GET /v1/sessions[?since=T]` and `GET /v1/audit[?since=T&session=S&limit=N]`.

use axum::extract::{Query, State};
use axum::Json;
use gatehouse_audit::{AuditFilter, AuditRow, SessionRow};
use serde::Deserialize;

use super::auth::Caller;
use super::{blocking, AdminState, ApiError};
use crate::cli::when::{Clock, When};

/// Filters of the listings.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// A date, RFC 3339 or a duration ago (`15m`), as the CLI's `--since` (UTC).
    since: Option<String>,
    /// Audit: a session id (prefix).
    session: Option<String>,
    /// Audit: at most this many, the newest.
    limit: Option<u64>,
}

fn since(q: &ListQuery) -> Result<Option<std::time::SystemTime>, ApiError> {
    let Some(text) = q.since.as_deref() else {
        return Ok(None);
    };
    let when = When::parse(text).map_err(|e| ApiError::BadRequest(format!("since {text}: {e}")))?;
    Clock::utc()
        .at("since", &when)
        .map(Some)
        .map_err(|e| ApiError::BadRequest(e.to_string()))
}

pub(super) async fn sessions(
    State(state): State<AdminState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<SessionRow>>, ApiError> {
    caller.require_admin(&state)?;
    let since = since(&q)?;
    let store = state.store.clone();
    Ok(Json(
        blocking(move || Ok(store.list_sessions(since)?)).await?,
    ))
}

pub(super) async fn audit(
    State(state): State<AdminState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<AuditRow>>, ApiError> {
    caller.require_admin(&state)?;
    let filter = AuditFilter {
        since: since(&q)?,
        session: q.session.clone(),
        limit: Some(q.limit.unwrap_or(1000).min(100_000)),
    };
    let store = state.store.clone();
    Ok(Json(
        blocking(move || Ok(store.list_audit(&filter)?)).await?,
    ))
}
