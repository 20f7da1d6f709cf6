//! The admin HTTP API on `[listen] admin`: approvals (list, approve, deny, the live inbox),
//! tokens (create, list, revoke), SSH keys (add, list, revoke), sessions (list, one, its
//! recording and terminals) and audit (list). Every request carries `Authorization: Bearer
//! TOKEN` (a service token or a JWT, as on the wires), or the web console's sign-in cookie
//! with a CSRF token on changes; the caller's groups decide what it may do (see [`auth`]).
//! `/metrics`, `/healthz` and `/readyz` ([`health`]) need none. Answers are JSON; errors are
//! `{"error": "..."}` with a status that says what kind of problem it is.
//!
//! The web console is served at `/` ([`assets`]) and uses this same API: there is no second
//! path to the store.

mod approvals;
mod assets;
mod audit_files;
pub mod auth;
mod console;
mod error;
pub mod evidence;
pub mod health;
pub mod inbox;
mod keys;
mod listings;
mod recordings;
pub mod tls_listener;
mod tokens;

use std::path::Path;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use gatehouse_audit::{Approvals, Store};
use gatehouse_core::Gateway;
use tokio::net::TcpListener;

pub use error::ApiError;

/// What the handlers share.
#[derive(Clone)]
pub struct AdminState {
    /// The core (authentication, revocation).
    pub gateway: Gateway,
    /// The store (listings, tokens).
    pub store: Arc<Store>,
    /// The approvals desk.
    pub approvals: Approvals,
    /// Groups that may use every endpoint.
    pub admin_groups: Arc<[String]>,
    /// Groups named as approvers by some rule (may list and decide approvals).
    pub approver_groups: Arc<[String]>,
    /// Metrics and the write path's health.
    pub health: health::Health,
    /// Where sessions' recordings and terminal casts are.
    pub recordings: Arc<Path>,
    /// Whether the console's cookie is marked Secure (served over TLS, or off loopback).
    pub secure_cookies: bool,
    /// The configuration (the evidence package reads it as the CLI does).
    pub config: Arc<crate::config::Config>,
    /// The one reader of the approvals desk the console's live inboxes share.
    pub inbox: inbox::InboxFeed,
    /// The last `audit verify` run from the console.
    pub last_verify: Arc<std::sync::Mutex<Option<audit_files::VerifyRun>>>,
}

/// The API's routes.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/assets/{file}", get(assets::asset))
        .route("/v1/console/signin", post(console::sign_in))
        .route("/v1/console/signout", post(console::sign_out))
        .route("/v1/console/me", get(console::me))
        .route("/v1/approvals", get(approvals::list))
        .route("/v1/approvals/events", get(inbox::events))
        .route("/v1/approvals/{id}", get(approvals::one))
        .route("/v1/approvals/{id}/approve", post(approvals::approve))
        .route("/v1/approvals/{id}/deny", post(approvals::deny))
        .route("/v1/tokens", get(tokens::list).post(tokens::create))
        .route("/v1/tokens/{id}/revoke", post(tokens::revoke))
        .route("/v1/subjects/revoke", post(tokens::revoke_subject))
        .route("/v1/keys", get(keys::list).post(keys::add))
        .route("/v1/keys/{id}/revoke", post(keys::revoke))
        .route("/v1/sessions", get(listings::sessions))
        .route("/v1/sessions/{id}", get(recordings::session))
        .route("/v1/sessions/{id}/recording", get(recordings::recording))
        .route("/v1/sessions/{id}/casts", get(recordings::casts))
        .route("/v1/sessions/{id}/casts/{file}", get(recordings::cast))
        .route("/v1/audit", get(listings::audit))
        .route("/v1/audit/export", get(audit_files::export))
        .route("/v1/audit/search", get(audit_files::search))
        .route(
            "/v1/audit/verify",
            get(audit_files::last_verify).post(audit_files::verify),
        )
        .route("/v1/evidence", get(evidence::package))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(health::ready))
        .route("/metrics", get(health::metrics))
        .with_state(state)
}

/// Serves the API until the future is dropped.
pub async fn serve(listener: TcpListener, state: AdminState) {
    if let Err(e) = axum::serve(listener, router(state)).await {
        tracing::error!(error = %e, "admin API stopped");
    }
}

/// Serves the API over TLS until the future is dropped.
pub async fn serve_tls(listener: tls_listener::TlsListener, state: AdminState) {
    if let Err(e) = axum::serve(listener, router(state)).await {
        tracing::error!(error = %e, "admin API stopped");
    }
}

/// Runs blocking store work off the async threads.
pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(format!("store task failed: {e}")))?
}
