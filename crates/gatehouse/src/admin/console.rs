//! The console's sign-in, on the same API: `POST /v1/console/signin` with `{"token": "..."}`
//! (a gateway token or an OIDC JWT, authenticated by the core as on the wires) sets the
//! session cookie; `GET /v1/console/me` says who is signed in, what they may do, and the CSRF
//! token the page sends back on every change; `POST /v1/console/signout` clears the cookie.
//!
//! The cookie holds a random secret, not the token: the store keeps the sign-in (the secret's
//! hash, and the token sealed under a key only the secret gives; see
//! [`gatehouse_audit::console`]), so every gateway instance sharing the store knows it and
//! signing out ends it everywhere. The cookie is HttpOnly (no script reads it), SameSite=Strict
//! (no other site's request carries it), and Secure when the console is served over TLS. Every
//! request opens the token and authenticates it again, so a revoked token or an expired JWT
//! stops working in the console at once.

use std::time::Duration;

use axum::extract::State;
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use gatehouse_core::identity::Identity;
use serde::{Deserialize, Serialize};

use super::auth::{check_csrf, cookie, csrf_token, signed_in, Caller, SESSION_COOKIE};
use super::{blocking, AdminState, ApiError};

/// How long a sign-in lasts (a JWT's own expiry, or a token's, still applies).
const SIGN_IN_SECONDS: u32 = 12 * 60 * 60;

/// Body of a sign-in.
#[derive(Debug, Deserialize)]
pub struct SignIn {
    /// A gateway token or a JWT.
    token: String,
}

/// Who is signed in.
#[derive(Debug, Serialize)]
pub struct Me {
    /// Identity name.
    identity: String,
    /// Its groups.
    groups: Vec<String>,
    /// May use every page (`[admin] groups`).
    admin: bool,
    /// May see and decide approvals.
    approver: bool,
    /// What the page sends in `x-gatehouse-csrf` with every change (absent for a bearer
    /// token, which needs none).
    csrf: Option<String>,
}

impl Me {
    fn of(state: &AdminState, identity: Identity, secret: Option<&str>) -> Self {
        let caller = Caller(identity, String::new(), None);
        Self {
            admin: caller.is_admin(state),
            approver: caller.is_approver(state),
            identity: caller.0.name,
            groups: caller.0.groups,
            csrf: secret.map(csrf_token),
        }
    }
}

/// Whether a token can travel in a cookie as it is: gateway tokens and JWTs are base64url
/// with dots; anything else is not a token, and is refused rather than escaped.
fn cookie_safe(token: &str) -> bool {
    !token.is_empty()
        && token.len() <= 8192
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'='))
}

fn session_cookie(value: &str, max_age: u32, secure: bool) -> String {
    format!(
        "{SESSION_COOKIE}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    )
}

pub(super) async fn sign_in(
    State(state): State<AdminState>,
    Json(body): Json<SignIn>,
) -> Result<Response, ApiError> {
    let token = body.token.trim();
    if !cookie_safe(token) {
        return Err(ApiError::Unauthorized(
            "that is not a gateway token (gh_...) or a JWT: paste the token you were given".into(),
        ));
    }
    let record = state.gateway.authenticate(token).await?;
    let identity = record.identity.name.clone();
    tracing::info!(identity = %identity, "console sign-in");
    let (store, token) = (state.store.clone(), token.to_owned());
    let secret = blocking(move || {
        Ok(store.console_sign_in(
            &token,
            &identity,
            Duration::from_secs(SIGN_IN_SECONDS.into()),
        )?)
    })
    .await?;
    let me = Me::of(&state, record.identity, Some(&secret));
    let cookie = session_cookie(&secret, SIGN_IN_SECONDS, state.secure_cookies);
    Ok(([(header::SET_COOKIE, cookie)], Json(me)).into_response())
}

pub(super) async fn me(State(state): State<AdminState>, caller: Caller) -> Json<Me> {
    // The CSRF token only matters when the cookie authenticated the caller.
    let Caller(identity, _, secret) = caller;
    Json(Me::of(&state, identity, secret.as_deref()))
}

/// Ends the sign-in in the store (on every instance) and clears the cookie. Like any change
/// made with the cookie, ending a live sign-in needs the CSRF token: another site cannot sign
/// an approver out. A sign-in already ended needs nothing: the cookie is just cleared.
pub(super) async fn sign_out(
    State(state): State<AdminState>,
    parts: Parts,
) -> Result<Response, ApiError> {
    if let Some(secret) = cookie(&parts, SESSION_COOKIE) {
        if signed_in(&state, &secret).await?.is_some() {
            check_csrf(&parts, &secret)?;
            let store = state.store.clone();
            blocking(move || Ok(store.console_sign_out(&secret)?)).await?;
        }
    }
    Ok((
        StatusCode::NO_CONTENT,
        [(
            header::SET_COOKIE,
            session_cookie("", 0, state.secure_cookies),
        )],
    )
        .into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_token_shaped_text_goes_into_the_cookie() {
        assert!(cookie_safe("gh_AbC-12_x"));
        assert!(cookie_safe("eyJhbGciOi.eyJzdWIiOi.c2ln"));
        for bad in [
            "",
            "gh_a; Path=/evil",
            "gh a",
            "gh_\r\nSet-Cookie: x",
            "ключ",
        ] {
            assert!(!cookie_safe(bad), "{bad:?}");
        }
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_when_asked() {
        let c = session_cookie("gh_x", 60, true);
        assert!(c.starts_with("gatehouse_console=gh_x; "), "{c}");
        for part in [
            "HttpOnly",
            "SameSite=Strict",
            "Path=/",
            "Max-Age=60",
            "Secure",
        ] {
            assert!(c.contains(part), "{c}");
        }
        assert!(!session_cookie("gh_x", 60, false).contains("Secure"));
    }
}
