//! Who is calling: the bearer token, authenticated by the core exactly as on the wires.
//!
//! Members of `[admin] groups` may use every endpoint. Members of a review rule's approver
//! groups may list and decide approvals (each decision is further checked against that
//! request's own approvers). Everyone else is refused.
//!
//! The web console authenticates with its sign-in cookie instead of a header (see
//! [`super::console`]): the cookie's secret opens the token the sign-in holds in the store,
//! which is then authenticated as a bearer token would be. A cookie goes with every request
//! the browser makes, including ones another site triggers, so a request authenticated by
//! the cookie that changes anything must also carry the sign-in's CSRF token in
//! [`CSRF_HEADER`]: a value derived from the cookie's secret, which a page of another origin
//! can neither read nor compute.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, Method};
use gatehouse_core::identity::{Identity, TokenHash};

use super::{blocking, AdminState, ApiError};

/// The cookie the console's sign-in sets: a random secret naming the sign-in, HttpOnly.
pub const SESSION_COOKIE: &str = "gatehouse_console";

/// The header a cookie-authenticated request that changes state carries its CSRF token in.
pub const CSRF_HEADER: &str = "x-gatehouse-csrf";

/// The authenticated caller: its identity, the token it presented (kept so a long request,
/// the console's live inbox, can check it is still valid), and the console sign-in's secret
/// when the cookie authenticated it.
#[derive(Clone)]
pub struct Caller(pub Identity, pub(super) String, pub(super) Option<String>);

impl std::fmt::Debug for Caller {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_tuple("Caller")
            .field(&self.0)
            .finish_non_exhaustive()
    }
}

impl Caller {
    fn in_any(&self, groups: &[String]) -> bool {
        self.0.groups.iter().any(|g| groups.contains(g))
    }

    /// Whether the caller is in `[admin] groups`.
    pub fn is_admin(&self, state: &AdminState) -> bool {
        self.in_any(&state.admin_groups)
    }

    /// Whether the caller may list and decide approvals (an administrator, or an approver of
    /// some rule).
    pub fn is_approver(&self, state: &AdminState) -> bool {
        self.is_admin(state) || self.in_any(&state.approver_groups)
    }

    /// Refuses callers outside `[admin] groups`.
    pub fn require_admin(&self, state: &AdminState) -> Result<(), ApiError> {
        if self.is_admin(state) {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "{} is not in an admin group ({}); ask an administrator",
            self.0.name,
            state.admin_groups.join(", ")
        )))
    }

    /// Refuses callers who are neither administrators nor approvers of some rule.
    pub fn require_approver(&self, state: &AdminState) -> Result<(), ApiError> {
        if self.is_approver(state) {
            return Ok(());
        }
        Err(ApiError::Forbidden(format!(
            "{} is neither an administrator nor an approver of any rule",
            self.0.name
        )))
    }
}

/// The CSRF token of a console sign-in: derived from its cookie's secret, so every gateway
/// instance sharing the store computes the same one.
pub fn csrf_token(secret: &str) -> String {
    TokenHash::of(&format!("gatehouse-console-csrf\0{secret}")).0
}

/// Refuses a change made with the cookie `secret` unless it carries its CSRF token.
pub fn check_csrf(parts: &Parts, secret: &str) -> Result<(), ApiError> {
    let sent = parts
        .headers
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if same(sent, &csrf_token(secret)) {
        return Ok(());
    }
    Err(ApiError::Forbidden(format!(
        "this request came with the console's cookie but without its CSRF token (the \
         {CSRF_HEADER} header): reload the console and try again"
    )))
}

/// The token a request carries, and whether it came from the console's cookie.
fn presented(parts: &Parts) -> Option<(String, bool)> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty());
    if let Some(token) = bearer {
        return Some((token.to_owned(), false));
    }
    cookie(parts, SESSION_COOKIE).map(|t| (t, true))
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie(parts: &Parts, name: &str) -> Option<String> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Equal without telling how much matched by how long it took.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

fn changes_state(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AdminState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AdminState,
    ) -> Result<Self, Self::Rejection> {
        let Some((presented, from_cookie)) = presented(parts) else {
            return Err(ApiError::Unauthorized(
                "send your token as `Authorization: Bearer TOKEN` (the CLI reads GATEHOUSE_TOKEN), \
                 or sign in to the console"
                    .into(),
            ));
        };
        let secret = from_cookie.then(|| presented.clone());
        let token = match &secret {
            Some(secret) => {
                if changes_state(&parts.method) {
                    check_csrf(parts, secret)?;
                }
                signed_in(state, secret).await?.ok_or_else(|| {
                    ApiError::Unauthorized(
                        "your console sign-in has ended (signed out or expired): sign in again"
                            .into(),
                    )
                })?
            }
            None => presented,
        };
        let record = state.gateway.authenticate(&token).await?;
        Ok(Self(record.identity, token, secret))
    }
}

/// The token a live console sign-in holds, if the sign-in is live.
pub async fn signed_in(state: &AdminState, secret: &str) -> Result<Option<String>, ApiError> {
    let (store, secret) = (state.store.clone(), secret.to_owned());
    blocking(move || Ok(store.console_token(&secret)?)).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(headers: &[(&str, &str)]) -> Parts {
        let mut req = axum::http::Request::builder().uri("/v1/approvals");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn a_bearer_header_wins_over_the_cookie_and_the_cookie_is_found_among_others() {
        let both = parts(&[
            ("authorization", "Bearer gh_header"),
            ("cookie", "a=1; gatehouse_console=gh_cookie"),
        ]);
        assert_eq!(presented(&both), Some(("gh_header".into(), false)));
        let cookie_only = parts(&[("cookie", "a=1; gatehouse_console=gh_cookie; b=2")]);
        assert_eq!(presented(&cookie_only), Some(("gh_cookie".into(), true)));
        let empty = parts(&[("cookie", "gatehouse_console=")]);
        assert_eq!(presented(&empty), None);
    }

    #[test]
    fn the_csrf_token_is_per_token_and_compared_whole() {
        let a = csrf_token("gh_a");
        assert_eq!(a, csrf_token("gh_a"));
        assert_ne!(a, csrf_token("gh_b"));
        assert!(same(&a, &a.clone()));
        assert!(!same(&a, &a[..a.len() - 1]));
        assert!(!same(&a, ""));
    }
}
