//! The API's errors: each a status and a sentence saying what to do.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_core::{DecideError, Refusal};
use thiserror::Error;

/// A failed API request.
#[derive(Debug, Error)]
pub enum ApiError {
    /// No or bad bearer token.
    #[error("{0}")]
    Unauthorized(String),
    /// The caller may not do this.
    #[error("{0}")]
    Forbidden(String),
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with the thing's state (already decided).
    #[error("{0}")]
    Conflict(String),
    /// The request is malformed.
    #[error("{0}")]
    BadRequest(String),
    /// The caller holds too many of something at once (live inbox streams).
    #[error("{0}")]
    TooMany(String),
    /// The store failed.
    #[error("{0}")]
    Internal(String),
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self {
            Self::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::TooMany(_) => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        (
            status,
            Json(serde_json::json!({ "error": self.to_string() })),
        )
            .into_response()
    }
}

impl From<gatehouse_audit::AuditError> for ApiError {
    fn from(e: gatehouse_audit::AuditError) -> Self {
        match e {
            gatehouse_audit::AuditError::NotFound(m) => Self::NotFound(m),
            gatehouse_audit::AuditError::Conflict(m) => Self::Conflict(m),
            e @ gatehouse_audit::AuditError::PublicKey(_) => Self::BadRequest(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

impl From<Refusal> for ApiError {
    fn from(e: Refusal) -> Self {
        match e {
            Refusal::StoreUnavailable(s) => Self::Internal(s.to_string()),
            other => Self::Unauthorized(other.to_string()),
        }
    }
}

impl From<DecideError> for ApiError {
    fn from(e: DecideError) -> Self {
        match e {
            DecideError::NotFound(_) => Self::NotFound(e.to_string()),
            DecideError::NotPending { .. } => Self::Conflict(e.to_string()),
            DecideError::OwnRequest(_) | DecideError::NotApprover { .. } => {
                Self::Forbidden(e.to_string())
            }
            DecideError::Store(s) => Self::Internal(s.to_string()),
        }
    }
}
