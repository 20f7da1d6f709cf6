//! `GET /v1/tokens`, `POST /v1/tokens` (`{"identity", "groups", "connections", "ttl"}` →
//! `{"id", "token"}`, the secret shown once), `POST /v1/tokens/{id}/revoke`.

use std::time::SystemTime;

use axum::extract::{Path, State};
use axum::Json;
use gatehouse_audit::NewToken;
use gatehouse_core::TokenId;
use serde::Deserialize;

use super::auth::Caller;
use super::{blocking, AdminState, ApiError};
use crate::cli::token::token_json;

/// Body of a token creation.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    /// Identity name.
    identity: String,
    /// Its groups.
    #[serde(default)]
    groups: Vec<String>,
    /// Connection scope (empty: any its groups allow).
    #[serde(default)]
    connections: Vec<String>,
    /// Lifetime such as `30d`.
    ttl: Option<String>,
}

pub(super) async fn list(
    State(state): State<AdminState>,
    caller: Caller,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    caller.require_admin(&state)?;
    let store = state.store.clone();
    let tokens = blocking(move || Ok(store.list_tokens()?)).await?;
    Ok(Json(tokens.iter().map(token_json).collect()))
}

pub(super) async fn create(
    State(state): State<AdminState>,
    caller: Caller,
    Json(body): Json<CreateBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require_admin(&state)?;
    let expires_at = match &body.ttl {
        None => None,
        Some(ttl) => Some(
            SystemTime::now()
                + humantime::parse_duration(ttl).map_err(|e| {
                    ApiError::BadRequest(format!("ttl {ttl:?}: {e} (examples: 30d, 12h)"))
                })?,
        ),
    };
    if body.identity.trim().is_empty() {
        return Err(ApiError::BadRequest("identity must not be empty".into()));
    }
    let store = state.store.clone();
    let new = NewToken {
        identity: body.identity,
        groups: body.groups,
        connections: body.connections,
        expires_at,
        created_by: format!("api:{}", caller.0.name),
    };
    let (id, secret) = blocking(move || Ok(store.create_token(&new)?)).await?;
    Ok(Json(serde_json::json!({ "id": id.0, "token": secret })))
}

pub(super) async fn revoke(
    State(state): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require_admin(&state)?;
    let store = state.store.clone();
    let (key, by) = (id.clone(), format!("api:{}", caller.0.name));
    blocking(move || Ok(store.revoke_token(&key, &by)?)).await?;
    // This instance ends the sessions at once; others see it at their next poll.
    state.gateway.revoke([TokenId(id.clone())]);
    Ok(Json(serde_json::json!({ "id": id, "revoked": true })))
}
