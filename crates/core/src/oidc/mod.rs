//! OIDC identities: a JWT presented as a token, verified against its issuer's published keys.
//!
//! [`OidcVerifier`] holds the `[[oidc]]` issuers. A token is routed to an issuer by its
//! (not yet verified) `iss` claim — an issuer no table names is refused — and then checked with
//! that issuer's settings only:
//!
//! - the header's `alg` is `RS256`, `ES256` or `EdDSA` *and* in the issuer's allow-list;
//!   `none` and the shared-secret `HS*` algorithms are refused whatever the configuration, as
//!   is a header with `crit` extensions. Keys are never taken from the token (`jwk`, `jku`,
//!   `x5u`, `x5c` are ignored);
//! - the signature verifies with the JWKS key the `kid` names, of the type the algorithm needs
//!   (RSA, EC P-256, Ed25519) and, if the key names an `alg`, for that algorithm; a token
//!   without `kid` uses the one key of the right type, if there is exactly one. JWKS entries
//!   not for signatures (`use`, `key_ops`), of other types or curves, or malformed are skipped
//!   and logged;
//! - `iss` is the issuer, `aud` is (or lists) the audience, `exp` is present and in the future
//!   (no leeway), `nbf`, if present, is at most 30 s ahead (clock skew), `sub` is a non-empty
//!   string;
//! - the groups come from the configured claim: an array of strings, a single string (one
//!   group), or nothing (no groups); any other shape is refused.
//!
//! # Keys
//!
//! A `jwks_file` is read when the verifier is built, so a missing or broken file stops the
//! gateway at startup. A `jwks_url` is fetched at first use, or by [`OidcVerifier::warm_up`] —
//! never at construction, so an identity provider that is briefly down does not stop the
//! gateway; its tokens are refused until the keys can be fetched.
//!
//! When a token names a key the cache lacks, the keys are loaded again (file re-read, URL
//! fetched) and the lookup retried — at most once per 30 s per issuer, failed attempts
//! included, so a stream of bad tokens cannot make the gateway hammer the identity provider.
//! The first successful load does not start that 30 s window. Keys are also reloaded at the next
//! use after an hour, keeping the old ones if that fails.
//!
//! The fetch is a small HTTP/1.1 GET over tokio: 5 s, 1 MiB, status 200, no redirects; `https`
//! trusts the system's roots, or only the `jwks_ca` file when it is set.
//!
//! # Errors
//!
//! Every refusal is an [`OidcError`] that says exactly what failed, for the operator's log.
//! The client should be told no more than that its token is not valid.

mod error;
pub mod fetch;
mod jwks;
mod spec;
mod verify;

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::time::SystemTime;

pub use error::OidcError;
pub use spec::{JwtAlgorithm, OidcSpec};

use jwks::{JwksSource, KeyCache, KeySet};

/// What a verified JWT says about its bearer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifiedJwt {
    /// The `sub` claim: who the issuer says this is.
    pub subject: String,
    /// The gateway's name for the bearer: the issuer's namespace, `:`, the subject.
    pub identity: String,
    /// When the issuer issued it (`iat`), if the token says.
    pub issued_at: Option<SystemTime>,
    /// The groups from the issuer's groups claim (empty if the claim is absent).
    pub groups: Vec<String>,
    /// The issuer that vouched for it.
    pub issuer: String,
    /// When the token stops being valid (`exp`). Always present for a verified token; `None`
    /// only if `exp` is too far in the future for a `SystemTime`.
    pub expires_at: Option<SystemTime>,
    /// A stable, non-secret id for the audit trail: `jwt_` + the first 12 hex digits of the
    /// token's SHA-256.
    pub token_id: String,
}

/// The configured OIDC issuers, and the verification of their tokens.
#[derive(Default)]
pub struct OidcVerifier {
    issuers: HashMap<String, verify::Issuer>,
}

impl fmt::Debug for OidcVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OidcVerifier")
            .field("issuers", &self.issuers.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl OidcVerifier {
    /// Checks the `[[oidc]]` tables and reads their JWKS files; relative `jwks_file` and
    /// `jwks_ca` paths are resolved against `base_dir` (the configuration file's directory).
    ///
    /// Fails on an inconsistent table, an issuer defined twice, or a JWKS file that cannot be
    /// read or holds no usable key. Fetches nothing from the network.
    pub fn new(specs: Vec<OidcSpec>, base_dir: &Path) -> Result<Self, OidcError> {
        let mut issuers = HashMap::with_capacity(specs.len());
        for spec in specs {
            let config = |why: &str| OidcError::Config {
                issuer: spec.issuer.clone(),
                why: why.to_owned(),
            };
            if spec.issuer.is_empty() {
                return Err(config("issuer is empty"));
            }
            if spec.audience.is_empty() {
                return Err(config(
                    "audience is empty; set the audience tokens must name",
                ));
            }
            if spec.groups_claim.is_empty() {
                return Err(config("groups_claim is empty; leave it out for \"groups\""));
            }
            if spec.algorithms.is_empty() {
                return Err(config(
                    "algorithms is empty; leave it out to allow RS256, ES256 and EdDSA",
                ));
            }
            if issuers.contains_key(&spec.issuer) {
                return Err(config(
                    "defined twice; each issuer needs exactly one [[oidc]]",
                ));
            }
            let source = match (&spec.jwks_file, &spec.jwks_url) {
                (Some(file), None) => {
                    if spec.jwks_ca.is_some() {
                        return Err(config("jwks_ca applies to a jwks_url only"));
                    }
                    JwksSource::File(base_dir.join(file))
                }
                (None, Some(url)) => {
                    let ca = spec.jwks_ca.as_ref().map(|ca| base_dir.join(ca));
                    JwksSource::Url(fetch::FetchTarget::new(url, ca.as_deref()).map_err(|why| {
                        OidcError::Config {
                            issuer: spec.issuer.clone(),
                            why,
                        }
                    })?)
                }
                _ => return Err(config("set exactly one of jwks_file and jwks_url")),
            };
            let initial = match &source {
                JwksSource::File(path) => {
                    let file_error = |why: String| OidcError::JwksFile {
                        issuer: spec.issuer.clone(),
                        path: path.clone(),
                        why,
                    };
                    let doc = std::fs::read(path).map_err(|e| file_error(e.to_string()))?;
                    Some(KeySet::parse(&doc, &spec.issuer).map_err(file_error)?)
                }
                JwksSource::Url(_) => None,
            };
            let namespace = spec.namespace();
            if namespace.is_empty()
                || issuers
                    .values()
                    .any(|i: &verify::Issuer| i.namespace == namespace)
            {
                return Err(config(
                    "its identities' namespace is empty or another issuer's: give each \
                     [[oidc]] a distinct `name`",
                ));
            }
            let keys = KeyCache::new(&spec.issuer, source, initial);
            issuers.insert(
                spec.issuer.clone(),
                verify::Issuer {
                    namespace,
                    issuer: spec.issuer,
                    audience: spec.audience,
                    groups_claim: spec.groups_claim,
                    algorithms: spec.algorithms,
                    keys,
                },
            );
        }
        Ok(Self { issuers })
    }

    /// Whether `token` has the shape of a JWT: three base64url parts separated by dots (the
    /// last may be empty, so an unsigned token is recognised and refused as such). A
    /// gateway-issued token (`gh_…`) never looks like one.
    pub fn looks_like_jwt(token: &str) -> bool {
        if token.starts_with(crate::identity::TOKEN_PREFIX) {
            return false;
        }
        let base64url = |part: &str| {
            part.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        let mut parts = token.split('.');
        match (parts.next(), parts.next(), parts.next(), parts.next()) {
            (Some(header), Some(payload), Some(signature), None) => {
                !header.is_empty()
                    && !payload.is_empty()
                    && base64url(header)
                    && base64url(payload)
                    && base64url(signature)
            }
            _ => false,
        }
    }

    /// Whether no issuer is configured (every JWT is then refused as of an unknown issuer).
    pub fn is_empty(&self) -> bool {
        self.issuers.is_empty()
    }

    /// The configured issuers, in no particular order.
    pub fn issuers(&self) -> impl Iterator<Item = &str> {
        self.issuers.keys().map(String::as_str)
    }

    /// Loads the keys of every `jwks_url` issuer now rather than at the first token. Failures
    /// are logged, not returned: the gateway starts anyway, and tries again when a token
    /// arrives (at most every 30 s).
    pub async fn warm_up(&self) {
        for issuer in self.issuers.values() {
            if let Err(e) = issuer.keys.keys().await {
                tracing::warn!("{e}");
            }
        }
    }

    /// Verifies `token` and returns what it says about its bearer, or exactly why it is not
    /// valid.
    pub async fn verify(&self, token: &str) -> Result<VerifiedJwt, OidcError> {
        let parsed = verify::parse(token)?;
        let iss = parsed.unverified_issuer()?;
        let issuer = self
            .issuers
            .get(iss)
            .ok_or_else(|| OidcError::UnknownIssuer(error::clip(iss)))?;
        issuer.verify(token, &parsed, SystemTime::now()).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_shapes() {
        for jwt in [
            "eyJ.eyJ.sig",
            "a.b.",
            "eyJhbGciOiJub25lIn0.e30.",
            "A-_.b.c-_",
        ] {
            assert!(OidcVerifier::looks_like_jwt(jwt), "{jwt}");
        }
        for other in [
            "gh_abc.def.ghi",
            "gh_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
            "",
            "a.b",
            "a.b.c.d",
            ".b.c",
            "a..c",
            "a.b.c d",
            "a.b+/.c",
            "a.b.c=",
            "ä.b.c",
        ] {
            assert!(!OidcVerifier::looks_like_jwt(other), "{other}");
        }
    }
}
