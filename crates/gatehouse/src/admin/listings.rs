//! `GET /v1/sessions` and `GET /v1/audit[?since=T&session=S&limit=N]`.
//!
//! Sessions page on the server, newest first:
//! `?identity=I&connection=C&protocol=P&since=T&until=T&refused=true&open=true&limit=N&offset=N`
//! (`limit` defaults to 1000). Times are RFC 3339 dates or a duration ago (`15m`), as the
//! CLI's `--since`.

use axum::extract::{Query, State};
use axum::Json;
use gatehouse_audit::{AuditFilter, AuditRow, SessionFilter, SessionRow};
use serde::Deserialize;

use super::audit_files::{given, time_param};
use super::auth::Caller;
use super::{blocking, AdminState, ApiError};

/// Filters of the listings.
#[derive(Debug, Deserialize)]
pub struct ListQuery {
    /// A date, RFC 3339 or a duration ago (`15m`), as the CLI's `--since` (UTC).
    since: Option<String>,
    /// Sessions: started before this (same forms as `since`).
    until: Option<String>,
    /// Audit: a session id (prefix).
    session: Option<String>,
    /// Sessions: of this identity.
    identity: Option<String>,
    /// Sessions: of this connection.
    connection: Option<String>,
    /// Sessions: of this wire.
    protocol: Option<String>,
    /// Sessions: refused at opening, or with a command refused.
    #[serde(default)]
    refused: bool,
    /// Sessions: still open.
    #[serde(default)]
    open: bool,
    /// At most this many (audit: the newest).
    limit: Option<u64>,
    /// Sessions: skipping the newest this many.
    #[serde(default)]
    offset: u32,
}

pub(super) async fn sessions(
    State(state): State<AdminState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<SessionRow>>, ApiError> {
    caller.require_admin(&state)?;
    let filter = SessionFilter {
        identity: given(&q.identity),
        connection: given(&q.connection),
        protocol: given(&q.protocol),
        since: time_param("since", q.since.as_deref())?,
        until: time_param("until", q.until.as_deref())?,
        refused: q.refused,
        open: q.open,
        limit: q.limit.unwrap_or(1000).clamp(1, 1000) as u32,
        offset: q.offset,
    };
    let store = state.store.clone();
    Ok(Json(
        blocking(move || Ok(store.sessions_page(&filter)?)).await?,
    ))
}

pub(super) async fn audit(
    State(state): State<AdminState>,
    caller: Caller,
    Query(q): Query<ListQuery>,
) -> Result<Json<Vec<AuditRow>>, ApiError> {
    caller.require_admin(&state)?;
    let filter = AuditFilter {
        since: time_param("since", q.since.as_deref())?,
        session: given(&q.session),
        limit: Some(q.limit.unwrap_or(1000).min(100_000)),
    };
    let store = state.store.clone();
    Ok(Json(
        blocking(move || Ok(store.list_audit(&filter)?)).await?,
    ))
}
