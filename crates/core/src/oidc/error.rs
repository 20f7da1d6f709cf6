//! Why an OIDC configuration or a presented JWT was refused, worded for the operator's log.
//!
//! Values taken from a token are shown quoted and escaped, and cut to a few dozen characters,
//! so a hostile token cannot flood or forge log lines.

use std::path::PathBuf;

use thiserror::Error;

/// An `[[oidc]]` table that cannot be used, or a token that is not valid.
///
/// The gateway tells a client only that its token is not valid; this error is for the log.
#[derive(Debug, Error)]
pub enum OidcError {
    /// An `[[oidc]]` table is inconsistent.
    #[error("[[oidc]] issuer {issuer:?}: {why}")]
    Config {
        /// The table's issuer.
        issuer: String,
        /// What is wrong and how to fix it.
        why: String,
    },
    /// A JWKS file could not be read or holds no usable key.
    #[error("[[oidc]] issuer {issuer:?}: jwks_file {}: {why}", path.display())]
    JwksFile {
        /// The table's issuer.
        issuer: String,
        /// The resolved path.
        path: PathBuf,
        /// What went wrong.
        why: String,
    },
    /// The keys of an issuer could not be loaded (IdP unreachable, bad document) and none are
    /// cached.
    #[error("the JWKS of issuer {issuer:?} is not available: {why}")]
    JwksUnavailable {
        /// The issuer.
        issuer: String,
        /// What went wrong.
        why: String,
    },
    /// The token is longer than any sane JWT.
    #[error("token is {0} bytes long; JWTs over 64 KiB are refused")]
    TooLong(usize),
    /// The token is not three base64url parts with a JSON header and payload.
    #[error("token is not a well-formed JWT: {0}")]
    Malformed(String),
    /// The header says `alg: none`: an unsigned token.
    #[error("token is unsigned (alg \"none\"); unsigned tokens are always refused")]
    AlgorithmNone,
    /// The header names a shared-secret algorithm (HS256, HS384, HS512).
    #[error(
        "token uses the shared-secret algorithm {0:?}; only RS256, ES256 and EdDSA are accepted"
    )]
    SymmetricAlgorithm(String),
    /// The header names an algorithm the gateway does not implement.
    #[error(
        "token uses the unsupported algorithm {0:?}; only RS256, ES256 and EdDSA are accepted"
    )]
    UnsupportedAlgorithm(String),
    /// The algorithm is supported but not in the issuer's `algorithms` allow-list.
    #[error("algorithm {alg} is not allowed for issuer {issuer:?} (allowed: {allowed})")]
    AlgorithmNotAllowed {
        /// The token's algorithm.
        alg: String,
        /// The issuer.
        issuer: String,
        /// The configured allow-list, comma separated.
        allowed: String,
    },
    /// The header lists `crit` extensions, none of which the gateway understands.
    #[error("token header marks extensions {0} as critical; the gateway supports none")]
    CriticalHeader(String),
    /// The token has no `iss` claim, so no issuer can vouch for it.
    #[error("token has no \"iss\" claim")]
    MissingIssuer,
    /// No `[[oidc]]` table names the token's issuer.
    #[error("token issuer {0:?} is not configured in any [[oidc]] table")]
    UnknownIssuer(String),
    /// The issuer's JWKS has no key with the token's `kid`.
    #[error("no key with id {kid:?} in the JWKS of issuer {issuer:?} ({note})")]
    UnknownKeyId {
        /// The issuer.
        issuer: String,
        /// The token's key id.
        kid: String,
        /// Whether the JWKS was fetched again, and how that went.
        note: String,
    },
    /// The token has no `kid` and the JWKS does not hold exactly one key for its algorithm.
    #[error(
        "token has no key id and the JWKS of issuer {issuer:?} holds {count} keys for {alg}; \
         the issuer must put a \"kid\" in its tokens"
    )]
    NoKeyId {
        /// The issuer.
        issuer: String,
        /// The token's algorithm.
        alg: String,
        /// How many keys could have signed it (not exactly one).
        count: usize,
    },
    /// The key the token names cannot be used with the token's algorithm.
    #[error("key {kid:?} of issuer {issuer:?} is {key} and cannot verify {alg} signatures")]
    KeyMismatch {
        /// The issuer.
        issuer: String,
        /// The key id.
        kid: String,
        /// What the key is (`an RSA key`, `an EC P-256 key`, `for RS384 only`, …).
        key: String,
        /// The token's algorithm.
        alg: String,
    },
    /// The signature does not verify with the issuer's key.
    #[error("signature does not verify with key {kid:?} of issuer {issuer:?}")]
    BadSignature {
        /// The issuer.
        issuer: String,
        /// The key id (`(none)` when the token has none).
        kid: String,
    },
    /// `aud` does not name the configured audience.
    #[error("wrong audience {found}; issuer {issuer:?} tokens must name {expected:?}")]
    WrongAudience {
        /// The issuer.
        issuer: String,
        /// The configured audience.
        expected: String,
        /// The token's `aud`, as it was.
        found: String,
    },
    /// A required claim is absent (or empty).
    #[error("token has no {0:?} claim (or it is empty)")]
    MissingClaim(&'static str),
    /// A claim has the wrong type.
    #[error("token claim {claim:?} {why}")]
    BadClaim {
        /// The claim's name.
        claim: String,
        /// What is wrong with it.
        why: String,
    },
    /// `exp` is in the past.
    #[error("token expired {ago_secs} s ago (exp {exp})")]
    Expired {
        /// The `exp` claim.
        exp: i64,
        /// How long ago, in whole seconds.
        ago_secs: u64,
    },
    /// `nbf` is in the future, beyond the allowed clock skew.
    #[error("token is not valid for another {in_secs} s (nbf {nbf}); check the clocks")]
    NotYetValid {
        /// The `nbf` claim.
        nbf: i64,
        /// How far in the future, in whole seconds.
        in_secs: u64,
    },
}

/// A value from a token, made safe for a log line: at most 64 characters, quoted and escaped by
/// the `{:?}` that shows it.
pub(crate) fn clip(value: &str) -> String {
    const MAX: usize = 64;
    match value.char_indices().nth(MAX) {
        Some((cut, _)) => format!("{}…", value.get(..cut).unwrap_or_default()),
        None => value.to_owned(),
    }
}
