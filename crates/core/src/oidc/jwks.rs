//! An issuer's signing keys: the JWKS document parsed, cached, and loaded again when a token
//! names a key the cache lacks — at most once per 30 s per issuer, so a stream of bad tokens
//! cannot make the gateway hammer the identity provider.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::DecodingKey;
use serde_json::Value;

use super::error::{clip, OidcError};
use super::fetch::FetchTarget;
use super::spec::JwtAlgorithm;

/// The least time between two loads of one issuer's keys, except right after the first
/// successful load (a token signed with a key rotated in just after startup still works).
pub(crate) const REFETCH_INTERVAL: Duration = Duration::from_secs(30);
/// Keys older than this are loaded again at the next use, so a key the issuer withdrew stops
/// working even when no token names an unknown key. A failed reload keeps the old keys.
pub(crate) const MAX_AGE: Duration = Duration::from_secs(60 * 60);

/// The kinds of public key the gateway verifies with, one per algorithm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeyKind {
    Rsa,
    EcP256,
    Ed25519,
}

impl KeyKind {
    /// The kind of key an algorithm needs.
    pub(crate) fn of(alg: JwtAlgorithm) -> Self {
        match alg {
            JwtAlgorithm::Rs256 => Self::Rsa,
            JwtAlgorithm::Es256 => Self::EcP256,
            JwtAlgorithm::EdDsa => Self::Ed25519,
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Rsa => "an RSA key",
            Self::EcP256 => "an EC P-256 key",
            Self::Ed25519 => "an Ed25519 key",
        }
    }
}

/// One usable signing key of a JWKS.
pub(crate) struct Jwk {
    kid: Option<String>,
    kind: KeyKind,
    /// The key's own `alg`, if the JWK names one: then it verifies that algorithm only.
    alg: Option<String>,
    key: DecodingKey,
}

impl Jwk {
    /// The key, in the form `jsonwebtoken`'s verifiers take.
    pub(crate) fn key(&self) -> &DecodingKey {
        &self.key
    }
}

/// The usable signing keys of one JWKS document.
pub(crate) struct KeySet {
    keys: Vec<Jwk>,
}

/// What a key lookup found.
pub(crate) enum Lookup<'a> {
    /// The key to verify with.
    Found(&'a Jwk),
    /// No key has the token's `kid` (or, without a `kid`, no key fits the algorithm).
    Unknown,
    /// A key has the token's `kid` but cannot verify its algorithm; says what the key is.
    Mismatch(String),
    /// The token has no `kid` and several keys fit its algorithm.
    Ambiguous(usize),
}

impl KeySet {
    /// Parses a JWKS document, skipping (and logging) keys that are not for signatures, of an
    /// unsupported type, or malformed. A document without a single usable key is an error.
    pub(crate) fn parse(doc: &[u8], issuer: &str) -> Result<Self, String> {
        let value: Value =
            serde_json::from_slice(doc).map_err(|e| format!("the JWKS is not JSON: {e}"))?;
        let entries = value
            .get("keys")
            .and_then(Value::as_array)
            .ok_or_else(|| "the document is not a JWKS: it has no \"keys\" array".to_owned())?;
        let mut keys = Vec::with_capacity(entries.len());
        for (index, entry) in entries.iter().enumerate() {
            let kid = entry.get("kid").and_then(Value::as_str).map(clip);
            match parse_jwk(entry) {
                Ok(jwk) => keys.push(jwk),
                Err(Skip::NotForUs(why)) => {
                    tracing::debug!(issuer, index, ?kid, "JWKS key skipped: {why}");
                }
                Err(Skip::Malformed(why)) => {
                    tracing::warn!(issuer, index, ?kid, "JWKS key skipped: {why}");
                }
            }
        }
        if keys.is_empty() {
            return Err(format!(
                "none of its {} keys is usable (RSA of 2048 to 8192 bits, EC P-256 or Ed25519, \
                 with use \"sig\" or no use)",
                entries.len()
            ));
        }
        Ok(Self { keys })
    }

    /// How many usable keys the set holds.
    pub(crate) fn len(&self) -> usize {
        self.keys.len()
    }

    /// Finds the key for a token with key id `kid` (if any) signed with `alg`.
    pub(crate) fn find(&self, kid: Option<&str>, alg: JwtAlgorithm) -> Lookup<'_> {
        let kind = KeyKind::of(alg);
        let fits = |k: &Jwk| -> Result<(), String> {
            if k.kind != kind {
                return Err(k.kind.describe().to_owned());
            }
            match &k.alg {
                Some(own) if own != alg.as_str() => Err(format!("for {:?} only", clip(own))),
                _ => Ok(()),
            }
        };
        match kid {
            Some(kid) => {
                let mut mismatch = None;
                for k in self.keys.iter().filter(|k| k.kid.as_deref() == Some(kid)) {
                    match fits(k) {
                        Ok(()) => return Lookup::Found(k),
                        Err(what) => mismatch = Some(what),
                    }
                }
                mismatch.map_or(Lookup::Unknown, Lookup::Mismatch)
            }
            None => {
                let mut candidates = self.keys.iter().filter(|k| fits(k).is_ok());
                match (candidates.next(), candidates.count()) {
                    (None, _) => Lookup::Unknown,
                    (Some(k), 0) => Lookup::Found(k),
                    (Some(_), more) => Lookup::Ambiguous(more + 1),
                }
            }
        }
    }
}

/// Why a JWK was left out.
enum Skip {
    /// Expected in a real JWKS (encryption keys, other key types): logged at debug.
    NotForUs(String),
    /// A key of a supported type that cannot be used: logged as a warning.
    Malformed(String),
}

fn parse_jwk(entry: &Value) -> Result<Jwk, Skip> {
    let field = |name: &str| entry.get(name).and_then(Value::as_str);
    let bytes = |name: &str| -> Result<Vec<u8>, Skip> {
        let text = field(name).ok_or_else(|| Skip::Malformed(format!("no {name:?} member")))?;
        // RFC 7515 base64url has no padding; tolerate it anyway.
        URL_SAFE_NO_PAD
            .decode(text.trim_end_matches('='))
            .map_err(|_| Skip::Malformed(format!("{name:?} is not base64url")))
    };
    if entry.get("kid").is_some_and(|kid| !kid.is_string()) {
        return Err(Skip::Malformed("\"kid\" is not a string".to_owned()));
    }
    match entry.get("use") {
        None => {}
        Some(Value::String(u)) if u == "sig" => {}
        Some(other) => return Err(Skip::NotForUs(format!("use {}", clip(&other.to_string())))),
    }
    if let Some(ops) = entry.get("key_ops") {
        let verifies = ops
            .as_array()
            .is_some_and(|ops| ops.iter().any(|op| op == "verify"));
        if !verifies {
            return Err(Skip::NotForUs(format!(
                "key_ops {} lacks \"verify\"",
                clip(&ops.to_string())
            )));
        }
    }
    if entry.get("alg").is_some_and(|alg| !alg.is_string()) {
        return Err(Skip::Malformed("\"alg\" is not a string".to_owned()));
    }
    let kty = field("kty").ok_or_else(|| Skip::Malformed("no \"kty\" member".to_owned()))?;
    let (kind, key) = match kty {
        "RSA" => {
            let n = bytes("n")?;
            let e = bytes("e")?;
            let n_trimmed = match n.iter().position(|b| *b != 0) {
                Some(first) => n.get(first..).unwrap_or_default(),
                None => &[],
            };
            let bits = match n_trimmed.first() {
                Some(top) => (n_trimmed.len() - 1) * 8 + (8 - top.leading_zeros() as usize),
                None => 0,
            };
            if !(2048..=8192).contains(&bits) || e.is_empty() {
                return Err(Skip::Malformed(format!(
                    "RSA modulus of {bits} bits; 2048 to 8192 are supported"
                )));
            }
            (KeyKind::Rsa, DecodingKey::from_rsa_raw_components(&n, &e))
        }
        "EC" => {
            match field("crv") {
                Some("P-256") => {}
                other => {
                    return Err(Skip::NotForUs(format!(
                        "EC curve {:?}; only P-256 is supported",
                        other.map(clip)
                    )))
                }
            }
            let x = bytes("x")?;
            let y = bytes("y")?;
            if x.len() != 32 || y.len() != 32 {
                return Err(Skip::Malformed(
                    "P-256 coordinates must be 32 bytes each".to_owned(),
                ));
            }
            let mut point = Vec::with_capacity(65);
            point.push(0x04);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            (KeyKind::EcP256, DecodingKey::from_ec_der(&point))
        }
        "OKP" => {
            match field("crv") {
                Some("Ed25519") => {}
                other => {
                    return Err(Skip::NotForUs(format!(
                        "OKP curve {:?}; only Ed25519 is supported",
                        other.map(clip)
                    )))
                }
            }
            let x = bytes("x")?;
            if x.len() != 32 {
                return Err(Skip::Malformed(
                    "an Ed25519 public key is 32 bytes".to_owned(),
                ));
            }
            (KeyKind::Ed25519, DecodingKey::from_ed_der(&x))
        }
        other => {
            return Err(Skip::NotForUs(format!(
                "key type {:?} is not supported",
                clip(other)
            )))
        }
    };
    Ok(Jwk {
        kid: field("kid").map(str::to_owned),
        kind,
        alg: field("alg").map(str::to_owned),
        key,
    })
}

/// Where an issuer's JWKS comes from.
pub(crate) enum JwksSource {
    /// A file, read again when a token names an unknown key.
    File(PathBuf),
    /// An HTTP(S) endpoint.
    Url(FetchTarget),
}

impl JwksSource {
    async fn load(&self, issuer: &str) -> Result<KeySet, String> {
        let doc = match self {
            Self::File(path) => tokio::fs::read(path)
                .await
                .map_err(|e| format!("reading {}: {e}", path.display()))?,
            Self::Url(target) => target.get().await?,
        };
        KeySet::parse(&doc, issuer)
    }

    fn describe(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Url(target) => target.url().to_owned(),
        }
    }
}

/// What a reload did.
pub(crate) enum Reload {
    /// The keys were loaded again (by this call or a concurrent one).
    Reloaded,
    /// Not loaded: the last load was too recent.
    TooSoon {
        /// How long ago the last load was.
        ago: Duration,
        /// How that load failed, if it did.
        last_error: Option<String>,
    },
    /// Loading failed.
    Failed(String),
}

impl Reload {
    /// Says what happened, for an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Reloaded => "the JWKS was just loaded again and does not have it".to_owned(),
            Self::TooSoon { ago, last_error } => {
                let mut text = format!(
                    "the JWKS was not loaded again: the last attempt was {} s ago and attempts \
                     are at most every {} s",
                    ago.as_secs(),
                    REFETCH_INTERVAL.as_secs()
                );
                if let Some(why) = last_error {
                    text.push_str(&format!("; it failed: {why}"));
                }
                text
            }
            Self::Failed(why) => format!("loading the JWKS again failed: {why}"),
        }
    }
}

/// One issuer's keys: the current set, and the lock that serialises reloads.
pub(crate) struct KeyCache {
    issuer: String,
    source: JwksSource,
    current: Mutex<Option<Loaded>>,
    reload: tokio::sync::Mutex<ReloadState>,
}

#[derive(Clone)]
struct Loaded {
    keys: Arc<KeySet>,
    at: Instant,
}

#[derive(Default)]
struct ReloadState {
    /// When the last load that counts toward the rate limit was attempted.
    cooldown_since: Option<Instant>,
    /// Why the last attempt failed, if it did.
    last_error: Option<String>,
}

impl KeyCache {
    /// A cache starting with `initial` keys (a file read at startup) or none (a URL).
    pub(crate) fn new(issuer: &str, source: JwksSource, initial: Option<KeySet>) -> Self {
        let now = Instant::now();
        Self {
            issuer: issuer.to_owned(),
            source,
            current: Mutex::new(initial.map(|keys| Loaded {
                keys: Arc::new(keys),
                at: now,
            })),
            reload: tokio::sync::Mutex::new(ReloadState::default()),
        }
    }

    fn snapshot(&self) -> Option<Loaded> {
        self.current
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The keys to verify with. Loads them if none are cached yet (an error if that fails);
    /// reloads them if they are older than [`MAX_AGE`] (keeping the old ones if that fails).
    pub(crate) async fn keys(&self) -> Result<Arc<KeySet>, OidcError> {
        match self.snapshot() {
            Some(loaded) if loaded.at.elapsed() < MAX_AGE => Ok(loaded.keys),
            // Stale: one caller reloads, the others go on with the keys they have.
            Some(loaded) => match self.reload.try_lock() {
                Ok(state) => Ok(self
                    .reload_locked(state, Some(&loaded.keys))
                    .await
                    .0
                    .unwrap_or(loaded.keys)),
                Err(_) => Ok(loaded.keys),
            },
            None => match self.reload(None).await {
                (Some(keys), _) => Ok(keys),
                (None, outcome) => Err(OidcError::JwksUnavailable {
                    issuer: self.issuer.clone(),
                    why: match outcome {
                        Reload::Failed(why) => why,
                        other => other.describe(),
                    },
                }),
            },
        }
    }

    /// Loads the keys again, unless another task did since the caller looked at `seen`, or
    /// the last counted attempt was less than [`REFETCH_INTERVAL`] ago. Returns the keys to
    /// look in now (new or current) and what happened.
    pub(crate) async fn reload(&self, seen: Option<&Arc<KeySet>>) -> (Option<Arc<KeySet>>, Reload) {
        let state = self.reload.lock().await;
        self.reload_locked(state, seen).await
    }

    async fn reload_locked(
        &self,
        mut state: tokio::sync::MutexGuard<'_, ReloadState>,
        seen: Option<&Arc<KeySet>>,
    ) -> (Option<Arc<KeySet>>, Reload) {
        let current = self.snapshot().map(|l| l.keys);
        let changed = match (&current, seen) {
            (Some(now), Some(seen)) => !Arc::ptr_eq(now, seen),
            (Some(_), None) => true,
            (None, _) => false,
        };
        if changed {
            return (current, Reload::Reloaded);
        }
        if let Some(since) = state.cooldown_since {
            let ago = since.elapsed();
            if ago < REFETCH_INTERVAL {
                let last_error = state.last_error.clone();
                return (current, Reload::TooSoon { ago, last_error });
            }
        }
        let started = Instant::now();
        match self.source.load(&self.issuer).await {
            Ok(keys) => {
                tracing::info!(
                    issuer = %self.issuer,
                    source = %self.source.describe(),
                    keys = keys.len(),
                    "JWKS loaded"
                );
                // The first successful load does not start the cooldown: a key rotated in
                // right after startup can still be fetched at once.
                if current.is_some() {
                    state.cooldown_since = Some(started);
                }
                state.last_error = None;
                let keys = Arc::new(keys);
                *self.current.lock().unwrap_or_else(PoisonError::into_inner) = Some(Loaded {
                    keys: Arc::clone(&keys),
                    at: Instant::now(),
                });
                (Some(keys), Reload::Reloaded)
            }
            Err(why) => {
                tracing::warn!(
                    issuer = %self.issuer,
                    source = %self.source.describe(),
                    "JWKS could not be loaded: {why}"
                );
                state.cooldown_since = Some(started);
                state.last_error = Some(why.clone());
                (current, Reload::Failed(why))
            }
        }
    }
}
