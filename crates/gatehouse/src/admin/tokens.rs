//! `GET /v1/tokens`, `POST /v1/tokens` (`{"identity", "groups", "connections", "ttl"}` →
//! `{"id", "token"}`, the secret shown once), `POST /v1/tokens/{id}/revoke`; and the grant and
//! revocation the key endpoints ([`super::keys`]) share.

use axum::extract::{Path, State};
use axum::Json;
use gatehouse_audit::{CredentialKind, NewToken};
use gatehouse_core::TokenId;
use serde::Deserialize;

use super::auth::Caller;
use super::{blocking, AdminState, ApiError};
use crate::cli::token::{expiry, token_json};

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
    let new = grant(
        &caller,
        body.identity,
        body.groups,
        body.connections,
        body.ttl.as_deref(),
    )?;
    let store = state.store.clone();
    let (id, secret) = blocking(move || Ok(store.create_token(&new)?)).await?;
    Ok(Json(serde_json::json!({ "id": id.0, "token": secret })))
}

pub(super) async fn revoke(
    State(state): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    revoke_credential(state, caller, CredentialKind::Token, id).await
}

/// `POST /v1/subjects/revoke` `{"identity": "namespace:sub"}`: a JWT subject's sessions end
/// here at once (elsewhere at the next poll), and its tokens issued until now are refused.
pub(super) async fn revoke_subject(
    State(state): State<AdminState>,
    caller: Caller,
    Json(body): Json<SubjectBody>,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require_admin(&state)?;
    let store = state.store.clone();
    let (identity, by) = (body.identity.clone(), format!("api:{}", caller.0.name));
    blocking(move || Ok(store.revoke_subject(&identity, &by)?)).await?;
    state
        .gateway
        .revoke([gatehouse_core::revocation::subject_key(&body.identity)]);
    Ok(Json(
        serde_json::json!({ "identity": body.identity, "revoked": true }),
    ))
}

/// The body of a subject's revocation.
#[derive(Debug, serde::Deserialize)]
pub(super) struct SubjectBody {
    identity: String,
}

/// What a token or key is issued for, by the caller.
pub(super) fn grant(
    caller: &Caller,
    identity: String,
    groups: Vec<String>,
    connections: Vec<String>,
    ttl: Option<&str>,
) -> Result<NewToken, ApiError> {
    let expires_at = expiry(ttl).map_err(|e| ApiError::BadRequest(format!("ttl {e}")))?;
    if identity.trim().is_empty() {
        return Err(ApiError::BadRequest("identity must not be empty".into()));
    }
    Ok(NewToken {
        identity,
        groups,
        connections,
        expires_at,
        created_by: format!("api:{}", caller.0.name),
    })
}

/// Revokes a token or key and ends its sessions on this instance at once.
pub(super) async fn revoke_credential(
    state: AdminState,
    caller: Caller,
    kind: CredentialKind,
    id: String,
) -> Result<Json<serde_json::Value>, ApiError> {
    caller.require_admin(&state)?;
    let store = state.store.clone();
    let (key, by) = (id.clone(), format!("api:{}", caller.0.name));
    blocking(move || Ok(store.revoke_credential(kind, &key, &by)?)).await?;
    // This instance ends the sessions at once; others see it at their next poll.
    state.gateway.revoke([TokenId(id.clone())]);
    Ok(Json(serde_json::json!({ "id": id, "revoked": true })))
}
