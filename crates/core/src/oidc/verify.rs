//! Checking one JWT: its form, its header, its signature against the issuer's key, its claims.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_lc_rs::digest;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::crypto::aws_lc::DEFAULT_PROVIDER;
use jsonwebtoken::Algorithm;
use serde_json::{Map, Value};

use super::error::{clip, OidcError};
use super::jwks::{Jwk, KeyCache, Lookup, Reload};
use super::spec::JwtAlgorithm;
use super::VerifiedJwt;
use crate::identity::hex;

/// The longest token accepted. Real ID and access tokens are a few KiB.
pub(crate) const MAX_TOKEN_LEN: usize = 64 * 1024;
/// Clock skew allowed on `nbf`: a token minted by an issuer whose clock runs up to 30 s ahead
/// of the gateway's is not refused as "not yet valid". `exp` gets no leeway.
pub(crate) const NBF_LEEWAY: Duration = Duration::from_secs(30);

/// A token split and decoded, nothing checked but its form and its header's algorithm.
pub(crate) struct Parsed<'a> {
    signing_input: &'a str,
    signature: Vec<u8>,
    alg: JwtAlgorithm,
    kid: Option<String>,
    claims: Map<String, Value>,
}

impl Parsed<'_> {
    /// The `iss` claim, not yet verified: only good for choosing whose keys to try.
    pub(crate) fn unverified_issuer(&self) -> Result<&str, OidcError> {
        match self.claims.get("iss") {
            None => Err(OidcError::MissingIssuer),
            Some(Value::String(iss)) => Ok(iss),
            Some(_) => Err(bad_claim("iss", "is not a string")),
        }
    }
}

/// Splits and decodes a token. Refuses unsigned and shared-secret algorithms before anything
/// else, and any header with `crit` extensions. Keys named by the header itself (`jwk`, `jku`,
/// `x5u`, `x5c`) are never used: keys come from the configured JWKS only.
pub(crate) fn parse(token: &str) -> Result<Parsed<'_>, OidcError> {
    if token.len() > MAX_TOKEN_LEN {
        return Err(OidcError::TooLong(token.len()));
    }
    let mut parts = token.split('.');
    let (Some(header), Some(payload), Some(signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(OidcError::Malformed(format!(
            "expected three parts separated by dots, found {}",
            token.split('.').count()
        )));
    };
    let header = json_object(header, "header")?;
    let alg = match header.get("alg") {
        Some(Value::String(alg)) => alg.as_str(),
        Some(_) => return Err(OidcError::Malformed("\"alg\" is not a string".to_owned())),
        None => return Err(OidcError::Malformed("the header has no \"alg\"".to_owned())),
    };
    if alg.eq_ignore_ascii_case("none") {
        return Err(OidcError::AlgorithmNone);
    }
    if alg.get(..2).is_some_and(|p| p.eq_ignore_ascii_case("HS")) {
        return Err(OidcError::SymmetricAlgorithm(clip(alg)));
    }
    let alg = JwtAlgorithm::parse(alg).ok_or_else(|| OidcError::UnsupportedAlgorithm(clip(alg)))?;
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(OidcError::Malformed("\"kid\" is not a string".to_owned())),
    };
    if let Some(crit) = header.get("crit") {
        return Err(OidcError::CriticalHeader(clip(&crit.to_string())));
    }
    let claims = json_object(payload, "payload")?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|_| OidcError::Malformed("the signature is not base64url".to_owned()))?;
    if signature.is_empty() {
        return Err(OidcError::Malformed("the signature is empty".to_owned()));
    }
    let signing_input = token.rsplit_once('.').map_or("", |(input, _)| input);
    Ok(Parsed {
        signing_input,
        signature,
        alg,
        kid,
        claims,
    })
}

fn json_object(part: &str, what: &str) -> Result<Map<String, Value>, OidcError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(part)
        .map_err(|_| OidcError::Malformed(format!("the {what} is not base64url")))?;
    match serde_json::from_slice(&bytes) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(OidcError::Malformed(format!(
            "the {what} is not a JSON object"
        ))),
    }
}

fn bad_claim(claim: &str, why: &str) -> OidcError {
    OidcError::BadClaim {
        claim: claim.to_owned(),
        why: why.to_owned(),
    }
}

/// One configured issuer and its keys.
pub(crate) struct Issuer {
    pub(crate) issuer: String,
    pub(crate) namespace: String,
    pub(crate) audience: String,
    pub(crate) groups_claim: String,
    pub(crate) algorithms: Vec<JwtAlgorithm>,
    pub(crate) keys: KeyCache,
}

impl Issuer {
    /// Verifies a token routed here by its `iss`: algorithm, key, signature, then claims.
    pub(crate) async fn verify(
        &self,
        token: &str,
        parsed: &Parsed<'_>,
        now: SystemTime,
    ) -> Result<VerifiedJwt, OidcError> {
        if !self.algorithms.contains(&parsed.alg) {
            return Err(OidcError::AlgorithmNotAllowed {
                alg: parsed.alg.to_string(),
                issuer: self.issuer.clone(),
                allowed: self
                    .algorithms
                    .iter()
                    .map(|a| a.as_str())
                    .collect::<Vec<_>>()
                    .join(", "),
            });
        }
        let kid = parsed.kid.as_deref();
        let keys = self.keys.keys().await?;
        // An unknown key may have been rotated in since the keys were loaded: load them again
        // (rate limited) and look once more.
        let (keys, reload) = match keys.find(kid, parsed.alg) {
            Lookup::Unknown => {
                let (reloaded, outcome) = self.keys.reload(Some(&keys)).await;
                (reloaded.unwrap_or(keys), Some(outcome))
            }
            _ => (keys, None),
        };
        match keys.find(kid, parsed.alg) {
            Lookup::Found(jwk) => self.check_signature(parsed, jwk)?,
            other => return Err(self.lookup_error(parsed, other, reload.as_ref())),
        }
        self.check_claims(token, &parsed.claims, now)
    }

    fn lookup_error(
        &self,
        parsed: &Parsed<'_>,
        lookup: Lookup<'_>,
        reload: Option<&Reload>,
    ) -> OidcError {
        let kid = parsed.kid.as_deref();
        match (lookup, kid) {
            (Lookup::Mismatch(key), Some(kid)) => OidcError::KeyMismatch {
                issuer: self.issuer.clone(),
                kid: clip(kid),
                key,
                alg: parsed.alg.to_string(),
            },
            (Lookup::Ambiguous(count), _) => OidcError::NoKeyId {
                issuer: self.issuer.clone(),
                alg: parsed.alg.to_string(),
                count,
            },
            (_, Some(kid)) => OidcError::UnknownKeyId {
                issuer: self.issuer.clone(),
                kid: clip(kid),
                note: reload.map_or_else(String::new, Reload::describe),
            },
            (_, None) => OidcError::NoKeyId {
                issuer: self.issuer.clone(),
                alg: parsed.alg.to_string(),
                count: 0,
            },
        }
    }

    fn check_signature(&self, parsed: &Parsed<'_>, jwk: &Jwk) -> Result<(), OidcError> {
        let alg = match parsed.alg {
            JwtAlgorithm::Rs256 => Algorithm::RS256,
            JwtAlgorithm::Es256 => Algorithm::ES256,
            JwtAlgorithm::EdDsa => Algorithm::EdDSA,
        };
        let kid = parsed
            .kid
            .as_deref()
            .map_or_else(|| "(none)".to_owned(), clip);
        // The aws-lc-rs verifiers, named explicitly: the process-wide provider choice of
        // `jsonwebtoken` cannot change what verifies a gateway login.
        let verifier = (DEFAULT_PROVIDER.verifier_factory)(&alg, jwk.key()).map_err(|e| {
            OidcError::KeyMismatch {
                issuer: self.issuer.clone(),
                kid: kid.clone(),
                key: format!("unusable ({e})"),
                alg: parsed.alg.to_string(),
            }
        })?;
        verifier
            .verify(parsed.signing_input.as_bytes(), &parsed.signature)
            .map_err(|_| OidcError::BadSignature {
                issuer: self.issuer.clone(),
                kid,
            })
    }

    fn check_claims(
        &self,
        token: &str,
        claims: &Map<String, Value>,
        now: SystemTime,
    ) -> Result<VerifiedJwt, OidcError> {
        match claims.get("iss") {
            Some(Value::String(iss)) if *iss == self.issuer => {}
            Some(Value::String(iss)) => return Err(OidcError::UnknownIssuer(clip(iss))),
            _ => return Err(OidcError::MissingIssuer),
        }
        self.check_audience(claims.get("aud"))?;
        let now_secs = now
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        let exp = numeric_date(claims, "exp")?.ok_or(OidcError::MissingClaim("exp"))?;
        if exp <= now_secs {
            return Err(OidcError::Expired {
                exp: exp as i64,
                ago_secs: (now_secs - exp) as u64,
            });
        }
        if let Some(nbf) = numeric_date(claims, "nbf")? {
            if nbf > now_secs + NBF_LEEWAY.as_secs_f64() {
                return Err(OidcError::NotYetValid {
                    nbf: nbf as i64,
                    in_secs: (nbf - now_secs) as u64,
                });
            }
        }
        let subject = match claims.get("sub") {
            Some(Value::String(sub)) if !sub.is_empty() => sub.clone(),
            None | Some(Value::String(_)) | Some(Value::Null) => {
                return Err(OidcError::MissingClaim("sub"))
            }
            Some(_) => return Err(bad_claim("sub", "is not a string")),
        };
        let groups = self.groups(claims)?;
        let hash = digest::digest(&digest::SHA256, token.as_bytes());
        let issued_at = numeric_date(claims, "iat")?
            .and_then(|iat| Duration::try_from_secs_f64(iat).ok())
            .and_then(|d| UNIX_EPOCH.checked_add(d));
        Ok(VerifiedJwt {
            identity: format!("{}:{subject}", self.namespace),
            issued_at,
            subject,
            groups,
            issuer: self.issuer.clone(),
            expires_at: Duration::try_from_secs_f64(exp)
                .ok()
                .and_then(|d| UNIX_EPOCH.checked_add(d)),
            token_id: format!(
                "{}{}",
                crate::revocation::JWT_PREFIX,
                hex(hash.as_ref().get(..6).unwrap_or_default())
            ),
        })
    }

    fn check_audience(&self, aud: Option<&Value>) -> Result<(), OidcError> {
        let named = match aud {
            None | Some(Value::Null) => return Err(OidcError::MissingClaim("aud")),
            Some(Value::String(one)) => *one == self.audience,
            Some(Value::Array(many)) => many
                .iter()
                .any(|a| a.as_str() == Some(self.audience.as_str())),
            Some(_) => return Err(bad_claim("aud", "is neither a string nor an array")),
        };
        if named {
            return Ok(());
        }
        let found = aud.map(Value::to_string).unwrap_or_default();
        Err(OidcError::WrongAudience {
            issuer: self.issuer.clone(),
            expected: self.audience.clone(),
            found: clip(&found),
        })
    }

    /// The groups claim: an array of strings, or one string; absent means no groups. A name
    /// that is not a top-level claim and has dots is followed as a path of nested objects.
    fn groups(&self, claims: &Map<String, Value>) -> Result<Vec<String>, OidcError> {
        let name = self.groups_claim.as_str();
        let value = match claims.get(name) {
            Some(v) => Some(v),
            None if name.contains('.') => {
                let mut segments = name.split('.');
                let first = segments.next().and_then(|s| claims.get(s));
                segments.try_fold(first, |v, s| Some(v?.get(s))).flatten()
            }
            None => None,
        };
        match value {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::String(one)) => Ok(vec![one.clone()]),
            Some(Value::Array(many)) => many
                .iter()
                .map(|g| g.as_str().map(str::to_owned))
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| bad_claim(name, "holds something other than strings")),
            Some(_) => Err(bad_claim(name, "is neither a list of strings nor a string")),
        }
    }
}

/// A NumericDate claim (seconds since the epoch, possibly fractional).
fn numeric_date(claims: &Map<String, Value>, name: &str) -> Result<Option<f64>, OidcError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| bad_claim(name, "is not a number of seconds")),
        Some(_) => Err(bad_claim(name, "is not a number of seconds")),
    }
}
