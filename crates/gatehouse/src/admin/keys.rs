//! `GET /v1/keys`, `POST /v1/keys` (`{"identity", "groups", "connections", "ttl",
//! "public_key"}` → the key as listed), `POST /v1/keys/{id}/revoke`: SSH public keys registered
//! to an identity, granted and revoked as tokens are ([`super::tokens`]).

use axum::extract::{Path, State};
use axum::Json;
use gatehouse_audit::CredentialKind;
use serde::Deserialize;

use super::auth::Caller;
use super::tokens::{grant, revoke_credential};
use super::{blocking, AdminState, ApiError};
use crate::cli::key::key_json;

/// Body of a key registration.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddBody {
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
    /// The OpenSSH public key line (`type base64 [comment]`).
    public_key: String,
}

pub(super) async fn list(
    State(state): State<AdminState>,
    caller: Caller,
) -> Result<Json<Vec<serde_json::Value>>, ApiError> {
    caller.require_admin(&state)?;
    let store = state.store.clone();
    let keys = blocking(move || Ok(store.list_keys()?)).await?;
    Ok(Json(keys.iter().map(key_json).collect()))
}

pub(super) async fn add(
    State(state): State<AdminState>,
    caller: Caller,
    Json(body): Json<AddBody>,
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
    let key = blocking(move || Ok(store.add_key(&new, &body.public_key)?)).await?;
    Ok(Json(key_json(&key)))
}

pub(super) async fn revoke(
    State(state): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    revoke_credential(state, caller, CredentialKind::SshKey, id).await
}
