//! The gateway core: opens sessions for the wires and carries revocations to them.

use std::collections::HashMap;
use std::fmt;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use crate::access::may_open;
use crate::approval::ApprovalDesk;
use crate::connection::{ConnectionSpec, Protocol};
use crate::error::{CoreError, Refusal};
use crate::events::SessionId;
use crate::events::SessionInfo;
use crate::identity::{random_hex, Identity, TokenHash, TokenId, TokenRecord};
use crate::mask::MaskPolicy;
use crate::oidc::{OidcVerifier, VerifiedJwt};
use crate::revocation::Revocations;
use crate::rules::Rules;
use crate::session::Session;
use crate::ssh_key::is_fingerprint;
use crate::store::{AuditSink, RecordingEvent, RecordingSink, TokenRegistry};
use crate::time;

/// How far back each revocation poll looks past the newest revocation already seen.
const REVOCATION_OVERLAP: Duration = Duration::from_secs(10);

/// What the gateway is built from: the configured connections and the store behind its traits.
pub struct GatewayParts {
    /// Every `[[connection]]`.
    pub connections: Vec<ConnectionSpec>,
    /// Token lookups.
    pub tokens: Arc<dyn TokenRegistry>,
    /// Audit entries.
    pub audit: Arc<dyn AuditSink>,
    /// Session recordings.
    pub recordings: Arc<dyn RecordingSink>,
    /// The `[[rule]]`s.
    pub rules: Rules,
    /// Where held commands' approval requests go.
    pub approvals: Arc<dyn ApprovalDesk>,
    /// The `[[oidc]]` issuers whose JWTs are taken as tokens.
    pub oidc: OidcVerifier,
    /// The `[[mask]]`s.
    pub masks: MaskPolicy,
}

/// What a client presented to prove who it is.
///
/// The two kinds never cross: a password is only ever looked up as a token (or verified as a
/// JWT), a fingerprint only as a registered key, so a password that happens to spell a key's
/// fingerprint is just an unknown token.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Credential<'a> {
    /// A password: a gateway-issued service token or an OIDC JWT.
    Token(&'a str),
    /// A public key the wire has already verified the client holds (the signature over the
    /// SSH session checked), named by its OpenSSH fingerprint `SHA256:<base64, no padding>`
    /// ([`crate::ssh_key::fingerprint_of_blob`]).
    PublicKey {
        /// The key's fingerprint.
        fingerprint: &'a str,
    },
}

impl fmt::Debug for Credential<'_> {
    // A token is a secret: it must not reach a log through `{:?}` of a request.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Token(_) => f.write_str("Token(<redacted>)"),
            Self::PublicKey { fingerprint } => f
                .debug_struct("PublicKey")
                .field("fingerprint", fingerprint)
                .finish(),
        }
    }
}

/// What a wire read from the client when it asks to open a session.
#[derive(Debug, Clone, Copy)]
pub struct OpenRequest<'a> {
    /// The connection name the client asked for.
    pub connection: &'a str,
    /// What the client presented: its password as a token, or a public key it proved it holds.
    pub credential: Credential<'a>,
    /// The user name it claimed (recorded only).
    pub claimed_user: &'a str,
    /// The settings it sent as it connected (recorded in the session's entry; the wire decides
    /// which reach the server).
    pub settings: &'a [(String, String)],
    /// Where it connects from.
    pub client_addr: SocketAddr,
    /// The wire it came in on; a connection of another protocol is "not found".
    pub protocol: Protocol,
}

/// The shared core. Cheap to clone; every listener holds one.
#[derive(Clone)]
pub struct Gateway {
    inner: Arc<Inner>,
}

struct Inner {
    connections: HashMap<String, Arc<ConnectionSpec>>,
    tokens: Arc<dyn TokenRegistry>,
    audit: Arc<dyn AuditSink>,
    recordings: Arc<dyn RecordingSink>,
    rules: Arc<Rules>,
    approvals: Arc<dyn ApprovalDesk>,
    oidc: OidcVerifier,
    masks: MaskPolicy,
    revocations: Revocations,
    shutdown: tokio::sync::watch::Sender<bool>,
    live: Arc<()>,
    /// Commands admitted and not finished, across sessions.
    running: crate::running::Running,
    refusals: crate::refusal_budget::RefusalBudget,
}

impl Gateway {
    /// Builds the core; connection names must be unique.
    pub fn new(parts: GatewayParts) -> Result<Self, CoreError> {
        let mut connections = HashMap::new();
        for c in parts.connections {
            let name = c.name.clone();
            if connections.insert(name.clone(), Arc::new(c)).is_some() {
                return Err(CoreError::DuplicateConnection(name));
            }
        }
        Ok(Self {
            inner: Arc::new(Inner {
                connections,
                tokens: parts.tokens,
                audit: parts.audit,
                recordings: parts.recordings,
                rules: Arc::new(parts.rules),
                approvals: parts.approvals,
                oidc: parts.oidc,
                masks: parts.masks,
                revocations: Revocations::default(),
                shutdown: tokio::sync::watch::Sender::new(false),
                live: Arc::new(()),
                running: Default::default(),
                refusals: Default::default(),
            }),
        })
    }

    /// Authenticates the credential (token, JWT or registered key), checks access and opens a
    /// session. A key's session is a token's in every other way: its identity, groups,
    /// connection scope and expiry come from its registration, and revoking it ends the session.
    ///
    /// Refusals are recorded too (a session row that ends at once with the reason): failed
    /// access attempts are evidence.
    pub async fn open(&self, req: OpenRequest<'_>) -> Result<Session, Refusal> {
        let protocol = req.protocol;
        let opened = self.open_checked(req).await;
        match &opened {
            Ok(_) => crate::telemetry::session_opened(protocol),
            Err(refusal) => crate::telemetry::session_refused(
                protocol,
                match refusal {
                    Refusal::BadToken => "bad_token",
                    Refusal::Forbidden(_) => "forbidden",
                    Refusal::StoreUnavailable(_) => "store",
                },
            ),
        }
        opened
    }

    async fn open_checked(&self, req: OpenRequest<'_>) -> Result<Session, Refusal> {
        let now = SystemTime::now();
        let token = match self.identify(req.credential, now).await {
            Ok(t) => t,
            Err(Unauthenticated::Store(e)) => return Err(Refusal::StoreUnavailable(e)),
            Err(Unauthenticated::Invalid(why, who)) => {
                // A revoked or expired token still names who tried: that is evidence too.
                self.record_refusal(&req, who.as_deref(), &format!("refused: {why}"))
                    .await;
                return Err(Refusal::BadToken);
            }
        };
        let connection = self
            .inner
            .connections
            .get(req.connection)
            .filter(|c| c.protocol == req.protocol);
        let connection = match connection {
            Some(c) if may_open(&token, c) => c.clone(),
            _ => {
                self.record_refusal(
                    &req,
                    Some(&token.identity.name),
                    "refused: connection not allowed",
                )
                .await;
                return Err(Refusal::Forbidden(req.connection.to_owned()));
            }
        };
        let info = SessionInfo {
            id: new_session_id().map_err(Refusal::StoreUnavailable)?,
            identity: Arc::from(token.identity.name.as_str()),
            groups: Arc::from(token.identity.groups.clone()),
            token_id: token.id.clone(),
            connection: Arc::from(connection.name.as_str()),
            protocol: req.protocol,
            client_addr: req.client_addr,
            claimed_user: req.claimed_user.to_owned(),
            settings: req.settings.to_vec(),
            started_at: now,
        };
        self.inner
            .audit
            .session_opened(&info)
            .await
            .map_err(Refusal::StoreUnavailable)?;
        self.inner.recordings.append(
            &info.id,
            RecordingEvent::Start {
                at: time::display(now),
                identity: token.identity.name.clone(),
                connection: connection.name.clone(),
                protocol: req.protocol.to_string(),
                client: req.client_addr.to_string(),
            },
        );
        Ok(Session {
            info,
            connection,
            token_expires: token.expires_at,
            audit: self.inner.audit.clone(),
            recordings: self.inner.recordings.clone(),
            rules: self.inner.rules.clone(),
            masker: self.inner.masks.for_groups(&token.identity.groups),
            evidence_masker: self.inner.masks.for_groups(&[]),
            approvals: self.inner.approvals.clone(),
            revoked: self.inner.revocations.subscribe(),
            shutdown: self.inner.shutdown.subscribe(),
            _live: self.inner.live.clone(),
            running: self.inner.running.clone(),
            seq: AtomicU64::new(0),
            classified: std::sync::Mutex::new(HashMap::new()),
            mysql_modes: std::sync::Mutex::new(crate::classify::mysql::Modes::default()),
            meters: crate::telemetry::CommandMeters::new(req.protocol),
            client: Arc::from(req.client_addr.to_string()),
        })
    }

    /// Who a token names, if it is valid now: for the admin API's bearer tokens. The client
    /// learns nothing about why a token is refused; the log does.
    pub async fn authenticate(&self, token: &str) -> Result<TokenRecord, Refusal> {
        match self
            .identify(Credential::Token(token), SystemTime::now())
            .await
        {
            Ok(t) => Ok(t),
            Err(Unauthenticated::Store(e)) => Err(Refusal::StoreUnavailable(e)),
            Err(Unauthenticated::Invalid(why, _)) => {
                tracing::info!(why = %why, "token refused");
                Err(Refusal::BadToken)
            }
        }
    }

    /// Whether a key with this fingerprint is registered (valid or not), recording nothing: for
    /// the SSH wire's answer to a key the client merely offers before signing, so the other
    /// keys an agent tries in turn do not each leave a refused session. A registered key is
    /// let on to [`Gateway::open`] even when revoked or expired, whose refusal then records
    /// who tried (that is evidence). A store failure answers `false` (fail closed).
    pub async fn knows_key(&self, fingerprint: &str) -> bool {
        if !is_fingerprint(fingerprint) {
            return false;
        }
        match self.inner.tokens.find_by_key(fingerprint).await {
            Ok(found) => found.is_some(),
            Err(e) => {
                tracing::warn!(error = %e, "could not look up an offered key");
                false
            }
        }
    }

    async fn identify(
        &self,
        credential: Credential<'_>,
        now: SystemTime,
    ) -> Result<TokenRecord, Unauthenticated> {
        let token = match credential {
            Credential::Token(token) => token,
            Credential::PublicKey { fingerprint } => {
                return self.identify_key(fingerprint, now).await
            }
        };
        if !self.inner.oidc.is_empty() && OidcVerifier::looks_like_jwt(token) {
            return match self.inner.oidc.verify(token).await {
                // A JWT is as good as a service token for its lifetime: same identity shape,
                // its own non-secret id for the audit trail, no connection scope of its own.
                Ok(jwt) => {
                    self.subject_not_revoked(&jwt).await?;
                    Ok(TokenRecord {
                        id: TokenId(jwt.token_id),
                        identity: Identity {
                            name: jwt.identity,
                            groups: jwt.groups,
                        },
                        connections: Vec::new(),
                        created_at: now,
                        expires_at: jwt.expires_at,
                        revoked_at: None,
                        created_by: jwt.issuer,
                    })
                }
                Err(e) => Err(Unauthenticated::Invalid(format!("JWT refused: {e}"), None)),
            };
        }
        let found = self
            .inner
            .tokens
            .find_by_hash(&TokenHash::of(token))
            .await
            .map_err(Unauthenticated::Store)?;
        valid_at(found, now, "token", || "unknown token".into())
    }

    /// A JWT issued before its subject was revoked is refused; one issued after (the
    /// identity provider vouching again) is not.
    async fn subject_not_revoked(&self, jwt: &VerifiedJwt) -> Result<(), Unauthenticated> {
        let revoked = self
            .inner
            .tokens
            .subject_revoked_at(&jwt.identity)
            .await
            .map_err(Unauthenticated::Store)?;
        match revoked {
            Some(at) if jwt.issued_at.is_none_or(|iat| iat <= at) => Err(Unauthenticated::Invalid(
                format!(
                    "JWT refused: subject {} was revoked at {}; tokens issued before then \
                         are refused (get a new one from the identity provider)",
                    jwt.identity,
                    crate::time::display(at)
                ),
                None,
            )),
            _ => Ok(()),
        }
    }

    async fn identify_key(
        &self,
        fingerprint: &str,
        now: SystemTime,
    ) -> Result<TokenRecord, Unauthenticated> {
        if !is_fingerprint(fingerprint) {
            // Whatever the wire passed, it names no key; not worth a store round trip.
            return Err(Unauthenticated::Invalid(
                "malformed key fingerprint".into(),
                None,
            ));
        }
        let found = self
            .inner
            .tokens
            .find_by_key(fingerprint)
            .await
            .map_err(Unauthenticated::Store)?;
        // A fingerprint is public, so naming it in the refusal helps whoever reads the evidence.
        valid_at(found, now, "key", || format!("unknown key {fingerprint}"))
    }

    async fn record_refusal(&self, req: &OpenRequest<'_>, identity: Option<&str>, why: &str) {
        use crate::refusal_budget::Budget;
        let source = req.client_addr.ip();
        let why = match self.inner.refusals.spend(source, std::time::Instant::now()) {
            Budget::Count => {
                tracing::info!(%source, why, "refused attempt counted, not recorded (flood)");
                return;
            }
            Budget::Record { counted_before: 0 } => why.to_owned(),
            Budget::Record { counted_before } => format!(
                "{why} ({counted_before} more refused attempts from {source} in the minute \
                 before were counted, not recorded one by one)"
            ),
        };
        let why = why.as_str();
        let Ok(id) = new_session_id() else { return };
        let now = SystemTime::now();
        let info = SessionInfo {
            id: id.clone(),
            identity: Arc::from(identity.unwrap_or("-")),
            groups: Arc::from(Vec::new()),
            token_id: TokenId(String::new()),
            connection: Arc::from(req.connection),
            protocol: req.protocol,
            client_addr: req.client_addr,
            claimed_user: req.claimed_user.to_owned(),
            settings: req.settings.to_vec(),
            started_at: now,
        };
        let end = crate::events::SessionEnd {
            id,
            ended_at: now,
            reason: why.to_owned(),
            bytes_from_client: 0,
            bytes_from_server: 0,
            recording_sha256: None,
        };
        let opened = self.inner.audit.session_opened(&info);
        let closed = self.inner.audit.session_closed(&end);
        if let Err(e) = opened.await.and(closed.await) {
            tracing::error!(error = %e, "refused access attempt not recorded");
        }
    }

    /// Fetches the keys of issuers configured by URL now, so the first JWT does not wait.
    pub async fn warm_up(&self) {
        self.inner.oidc.warm_up().await;
    }

    /// Ends every live session (each wire tells its client why) and refuses new ones.
    pub fn shut_down(&self) {
        self.inner.shutdown.send_replace(true);
    }

    /// Sessions open right now.
    pub fn live_sessions(&self) -> usize {
        Arc::strong_count(&self.inner.live) - 1
    }

    /// Ends the live sessions of these tokens (or JWT subjects, see
    /// [`crate::revocation::subject_key`]), revoked now.
    pub fn revoke(&self, ids: impl IntoIterator<Item = TokenId>) {
        let now = SystemTime::now();
        self.inner
            .revocations
            .revoke(ids.into_iter().map(|id| (id, now)));
    }

    /// Polls the registry for revocations (made by the CLI or another instance) and ends the
    /// sessions of revoked tokens, every `every` and whenever `woken` is notified (the store
    /// announced a revocation). Runs until the future is dropped.
    pub async fn watch_revocations(&self, every: Duration, woken: &tokio::sync::Notify) {
        let mut since = SystemTime::now()
            .checked_sub(Duration::from_secs(1))
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut tick = tokio::time::interval(every);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = woken.notified() => {}
            }
            // Look back a little past the newest revocation seen: another writer (the CLI, an
            // instance with a skewed clock) may commit one stamped slightly earlier. Repeats
            // are harmless; the set ignores them.
            let lookback = since.checked_sub(REVOCATION_OVERLAP).unwrap_or(since);
            match self.inner.tokens.revoked_since(lookback).await {
                Ok(revoked) => {
                    if let Some(latest) = revoked.iter().map(|(_, at)| *at).max() {
                        since = latest;
                    }
                    self.inner.revocations.revoke(revoked);
                }
                Err(e) => tracing::warn!(error = %e, "could not poll for revoked tokens"),
            }
        }
    }
}

/// Why a token did not authenticate.
enum Unauthenticated {
    /// The store could not be asked.
    Store(crate::error::StoreError),
    /// The token is not valid; the reason (and the identity, if the token names one) are for
    /// the log and the refused-session row only.
    Invalid(String, Option<String>),
}

/// A looked-up credential if it is usable at `now`; otherwise why not, for the evidence.
fn valid_at(
    found: Option<TokenRecord>,
    now: SystemTime,
    kind: &str,
    unknown: impl FnOnce() -> String,
) -> Result<TokenRecord, Unauthenticated> {
    match found {
        Some(t) if t.is_valid_at(now) => Ok(t),
        Some(t) => Err(Unauthenticated::Invalid(
            format!(
                "{kind} {} {}",
                t.id,
                if t.revoked_at.is_some() {
                    "revoked"
                } else {
                    "expired"
                }
            ),
            Some(t.identity.name),
        )),
        None => Err(Unauthenticated::Invalid(unknown(), None)),
    }
}

fn new_session_id() -> Result<SessionId, crate::error::StoreError> {
    Ok(SessionId(Arc::from(random_hex(16)?.as_str())))
}
