//! A session for the console's session and replay pages (administrators):
//! `GET /v1/sessions/{id}` (the session, with its statements in order),
//! `GET /v1/sessions/{id}/recording` (its recording's events),
//! `GET /v1/sessions/{id}/casts` (its terminals) and `GET /v1/sessions/{id}/casts/{file}` (one
//! terminal's asciicast, as written, for the player). A unique prefix of the id is enough.

use axum::extract::{Path, State};
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_audit::cast::{casts_of, is_cast_file_of, CastInfo};
use gatehouse_audit::{read_recording, AuditFilter, AuditRow, SessionRow};
use gatehouse_core::store::RecordingEvent;
use serde::Serialize;

use super::auth::Caller;
use super::{blocking, AdminState, ApiError};

/// A session and what ran in it.
#[derive(Debug, Serialize)]
pub struct SessionDetail {
    /// The session.
    session: SessionRow,
    /// Its audit entries, in order (at most the last 10 000).
    statements: Vec<AuditRow>,
}

async fn find(state: &AdminState, prefix: String) -> Result<SessionRow, ApiError> {
    let store = state.store.clone();
    blocking(move || Ok(store.find_session(&prefix)?)).await
}

pub(super) async fn session(
    State(state): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<SessionDetail>, ApiError> {
    caller.require_admin(&state)?;
    let session = find(&state, id).await?;
    let store = state.store.clone();
    let filter = AuditFilter {
        since: None,
        session: Some(session.id.clone()),
        limit: Some(10_000),
    };
    let statements = blocking(move || Ok(store.list_audit(&filter)?)).await?;
    Ok(Json(SessionDetail {
        session,
        statements,
    }))
}

pub(super) async fn recording(
    State(state): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<RecordingEvent>>, ApiError> {
    caller.require_admin(&state)?;
    let session = find(&state, id).await?;
    let dir = state.recordings.clone();
    Ok(Json(
        blocking(move || Ok(read_recording(&dir, &session.id)?)).await?,
    ))
}

pub(super) async fn casts(
    State(state): State<AdminState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Json<Vec<CastInfo>>, ApiError> {
    caller.require_admin(&state)?;
    let session = find(&state, id).await?;
    let dir = state.recordings.clone();
    Ok(Json(
        blocking(move || Ok(casts_of(&dir, &session.id)?)).await?,
    ))
}

pub(super) async fn cast(
    State(state): State<AdminState>,
    caller: Caller,
    Path((id, file)): Path<(String, String)>,
) -> Result<Response, ApiError> {
    caller.require_admin(&state)?;
    let session = find(&state, id).await?;
    // Only a file named as this session's cast: never a path the caller makes up.
    if !is_cast_file_of(&session.id, &file) {
        return Err(ApiError::NotFound(format!(
            "{file} is not a terminal recording of session {}",
            session.id
        )));
    }
    let path = state.recordings.join(&file);
    let opened = tokio::fs::File::open(&path)
        .await
        .map_err(|e| ApiError::NotFound(format!("{file}: {e}")))?;
    let mut response =
        axum::body::Body::from_stream(tokio_util::io::ReaderStream::new(opened)).into_response();
    // Terminal output is whatever the SSH user printed: never let a browser render it.
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-asciicast"),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static("sandbox; default-src 'none'"),
    );
    Ok(response)
}
